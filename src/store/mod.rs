//! The keyspace: numbered databases of keys, each sharded across mutex-protected maps.
//!
//! Commands on keys in different shards run in parallel; a handler holds a shard lock only for
//! its in-memory work. Multi-key operations lock one shard at a time in ascending order (the
//! commands here need no cross-key atomicity beyond that). Each lock stamps the shard with the
//! command's time, so expiry (see `shard`) is judged once per command; keys that expire while
//! a shard is locked are announced after it is unlocked (blocked readers re-check them).
//!
//! SCAN's cursor walks shards in order and, inside a shard, keys in order of a fixed 60-bit
//! hash: a key present for a whole iteration is returned at least once however the maps grow.

pub mod blocking;
pub mod shard;
pub mod stream;
pub mod watch;

use crate::events;
use crate::glob;
use bytes::Bytes;
pub use shard::Shard;
use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

const SHARDS: usize = 16;
const SHARD_BITS: u32 = 4;
const _: () = assert!(SHARDS <= 1 << SHARD_BITS, "shard index must fit the cursor");
const HASH_BITS: u32 = 60;

/// A copy of client bytes for long-term storage. Arguments are slices of a connection's read
/// buffer; keeping one alive would keep the whole buffer alive, so whatever outlives the
/// request (keys, values, channel names, field names) is copied into its own allocation.
pub fn owned(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// The wall clock in unix milliseconds (deadlines, stream IDs, delivery times).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone)]
pub enum Value {
    String(Bytes),
    Stream(Box<stream::Stream>),
}

impl Value {
    /// The name TYPE replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Stream(_) => "stream",
        }
    }
}

pub struct Db {
    shards: Vec<Mutex<Shard>>,
}

pub struct Keyspace {
    dbs: Vec<Db>,
    hasher: RandomState,
    /// Told of keys deleted by expiry, so clients blocked on them re-check.
    blocking: Arc<blocking::BlockingRegistry>,
    /// Where changes are logged (the append-only file, behind `ChangeLog`).
    log: Arc<dyn ChangeLog>,
    /// Keys deleted by expiry, lazily or actively (INFO stats expired_keys).
    pub expired_keys: AtomicU64,
    /// Seconds clock for access stamps (OBJECT IDLETIME), refreshed by the active-expiry
    /// task ten times a second — Redis's LRU clock, so no lookup reads the clock for it.
    lru_clock: std::sync::atomic::AtomicU32,
    /// No key expires while set (the AOF is replaying), as in Redis while loading.
    expiry_suspended: std::sync::atomic::AtomicBool,
    /// Keys clients WATCH.
    pub watches: watch::WatchRegistry,
    /// Where keyspace events go (set once by the server).
    notifier: std::sync::OnceLock<Arc<dyn Notify>>,
}

/// Where the keyspace logs its changes: the append-only file (`persist::Aof`), reached
/// through this trait so the keyspace does not depend on the layer above it.
pub trait ChangeLog: Send + Sync {
    /// Whether changes are logged now (a handler can skip building a record).
    fn enabled(&self) -> bool;
    /// Append records (RESP commands) for database `db`, called with the changed keys'
    /// shard locked so that records for one key reach the log in the order applied.
    fn append(&self, db: usize, records: &[u8]);
}

/// A copy of one database's keys with their values and deadlines (unix ms).
pub type DbSnapshot = Vec<(Bytes, Value, Option<u64>)>;

/// One page of a SCAN.
pub struct ScanPage {
    pub cursor: u64,
    pub keys: Vec<Bytes>,
}

fn scan_hash(key: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish() >> (64 - HASH_BITS)
}

/// A locked shard. Dropping it is where a change has its consequences — the one place, for
/// every command and for expiry: with the shard still locked, the records go to the
/// append-only file (so records for a key are in the order applied), the clients watching a
/// changed key have their transaction marked dirty, the clients blocked on it are woken, and
/// the keyspace events are published. Nothing is done when nothing changed; each consequence
/// is an atomic load when nobody watches, blocks or subscribes to keyspace events.
pub struct Locked<'a> {
    guard: Option<MutexGuard<'a, Shard>>,
    db: usize,
    ks: &'a Keyspace,
}

impl std::ops::Deref for Locked<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        self.guard.as_ref().expect("guard is present until drop")
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        self.guard.as_mut().expect("guard is present until drop")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        if !guard.log_buf.is_empty() {
            // Still locked: records for these keys reach the file in the order applied.
            self.ks.log.append(self.db, &guard.log_buf);
            guard.log_buf.clear();
            if guard.log_buf.capacity() > 1 << 20 {
                guard.log_buf = Vec::new();
            }
        }
        if guard.expired > 0 {
            self.ks
                .expired_keys
                .fetch_add(std::mem::take(&mut guard.expired) as u64, Ordering::Relaxed);
        }
        if guard.changes.is_empty() {
            return;
        }
        self.ks.changed(self.db, &guard.changes);
        guard.changes.clear();
        if guard.changes.capacity() > 1024 {
            guard.changes = Vec::new();
        }
    }
}

/// RENAME's events, in Redis's order: `new` for the target (even when it existed: it is
/// deleted and added again), `rename_from`, `rename_to`.
fn renamed(shard: &mut Shard, from: &Bytes, to: &Bytes) {
    shard.notify(to, events::NEW);
    shard.notify(from, events::RENAME_FROM);
    shard.notify(to, events::RENAME_TO);
}

/// Publishes keyspace events (implemented by the server over pub/sub): the keyspace only
/// says what changed.
pub trait Notify: Send + Sync {
    /// Whether any event class is on (a cheap check before anything is built).
    fn any(&self) -> bool;
    /// Publish `event` for `key` of database `db`, if its class is on.
    fn keyspace_event(&self, db: usize, key: &[u8], event: crate::events::Event);
}

impl Keyspace {
    pub fn new(
        databases: usize,
        blocking: Arc<blocking::BlockingRegistry>,
        log: Arc<dyn ChangeLog>,
    ) -> Self {
        Keyspace {
            dbs: (0..databases.max(1))
                .map(|_| Db {
                    shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
                })
                .collect(),
            hasher: RandomState::new(),
            blocking,
            log,
            expired_keys: AtomicU64::new(0),
            lru_clock: std::sync::atomic::AtomicU32::new((now_ms() / 1000) as u32),
            expiry_suspended: std::sync::atomic::AtomicBool::new(false),
            watches: watch::WatchRegistry::default(),
            notifier: std::sync::OnceLock::new(),
        }
    }

    /// Where keyspace events are published (the server sets it once, at start).
    pub fn set_notifier(&self, n: Arc<dyn Notify>) {
        let _ = self.notifier.set(n);
    }

    /// The consequences of `changes` to database `db` (called with their shard locked).
    fn changed(&self, db: usize, changes: &[(Bytes, Option<crate::events::Event>)]) {
        let watched = self.watches.any();
        let notifier = self.notifier.get().filter(|n| n.any());
        for (key, event) in changes {
            if event.is_some_and(|e| e.class == crate::events::class::KEY_MISS) {
                // A read that found nothing: only subscribers care.
                if let (Some(n), Some(e)) = (notifier, event) {
                    n.keyspace_event(db, key, *e);
                }
                continue;
            }
            if watched && event.is_some_and(|e| e.modifies) {
                self.watches.touch(db, key);
            }
            self.blocking.signal(db, key);
            if let (Some(n), Some(e)) = (notifier, event) {
                n.keyspace_event(db, key, *e);
            }
        }
    }

    /// Suspend or resume expiry (lazy and active) for the whole keyspace: suspended while
    /// the AOF replays, so the records apply to the keys they were written for; the keys
    /// whose deadline passed meanwhile expire once it is resumed.
    pub fn suspend_expiry(&self, on: bool) {
        self.expiry_suspended.store(on, Ordering::Release);
    }

    /// Refresh the access-stamp clock (called by the active-expiry task).
    pub fn tick_lru_clock(&self) {
        self.lru_clock
            .store((now_ms() / 1000) as u32, Ordering::Relaxed);
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Lock a shard; `now` 0 lets the shard read the clock if (and when) it needs it.
    fn lock_at(&self, db: usize, shard: usize, now: u64, touch: bool) -> Locked<'_> {
        let mut guard = self.dbs[db].shards[shard]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        guard.now = now;
        guard.clock = self.lru_clock.load(Ordering::Relaxed);
        guard.touch = touch;
        guard.logging = self.log.enabled();
        guard.expiry_off = self.expiry_suspended.load(Ordering::Acquire);
        guard.observed = self.watches.any()
            || self.blocking.waiting()
            || self.notifier.get().is_some_and(|n| n.any());
        Locked {
            guard: Some(guard),
            db,
            ks: self,
        }
    }

    fn lock(&self, db: usize, shard: usize) -> Locked<'_> {
        self.lock_at(db, shard, 0, true)
    }

    /// Run `f` with the shard holding `key` locked; lookups count as accesses.
    pub fn with_shard<R>(&self, db: usize, key: &[u8], f: impl FnOnce(&mut Shard) -> R) -> R {
        self.with_shard_as(db, key, true, f)
    }

    /// `with_shard`, with `touch` false for a client in CLIENT NO-TOUCH mode.
    pub fn with_shard_as<R>(
        &self,
        db: usize,
        key: &[u8],
        touch: bool,
        f: impl FnOnce(&mut Shard) -> R,
    ) -> R {
        let shard = self.shard_of(key);
        let mut locked = self.lock_at(db, shard, 0, touch);
        f(&mut locked)
    }

    pub fn get(&self, db: usize, key: &[u8]) -> Option<Value> {
        self.with_shard(db, key, |s| s.get(key).cloned())
    }

    /// TYPE: a read lookup (a missing key is a `keymiss`).
    pub fn type_of(&self, db: usize, key: &Bytes) -> &'static str {
        self.with_shard(db, key, |s| match s.peek(key) {
            Some(v) => v.type_name(),
            None => {
                s.missed(key);
                "none"
            }
        })
    }

    /// EXISTS: a read lookup (a missing key is a `keymiss`).
    pub fn exists(&self, db: usize, key: &Bytes) -> bool {
        self.with_shard(db, key, |s| {
            let found = s.contains_key(key);
            if !found {
                s.missed(key);
            }
            found
        })
    }

    /// DEL one key (logged as a DEL); true if it existed.
    pub fn remove(&self, db: usize, key: &Bytes) -> bool {
        self.with_shard(db, key, |s| {
            let removed = s.remove(key).is_some();
            if removed {
                s.log(&[b"DEL", key]);
                s.notify(key, events::DEL);
            }
            removed
        })
    }

    /// RENAME / RENAMENX: move `from` to `to` (replacing it unless `nx`), with its deadline.
    /// `Some(false)` when `nx` and `to` exists; `None` when `from` does not exist. Both shards
    /// are locked, lower index first, so concurrent renames cannot deadlock.
    pub fn rename(&self, db: usize, from: &Bytes, to: &Bytes, nx: bool) -> Option<bool> {
        let (a, b) = (self.shard_of(from), self.shard_of(to));
        let mut first = self.lock_at(db, a.min(b), 0, true);
        let mut second = (a != b).then(|| self.lock_at(db, a.max(b), 0, true));
        // The changes of both keys are recorded in one shard's list: whether anybody observes
        // them must be read with both locks held (a WATCH on a key of the shard locked last
        // may have registered in between).
        if let Some(other) = second.as_mut() {
            let observed = first.observed || other.observed;
            first.observed = observed;
            other.observed = observed;
        }
        let (src, dst): (&mut Shard, &mut Shard) = match second.as_mut() {
            None => {
                if !first.contains_key(from) {
                    return None;
                }
                if from == to || (nx && first.contains_key(to)) {
                    return Some(from == to && !nx);
                }
                let slot = first.remove_slot(from)?;
                first.insert_slot(owned(to), slot);
                first.log(&[b"RENAME", from, to]);
                renamed(&mut first, from, to);
                return Some(true);
            }
            Some(other) if a < b => (&mut first, other),
            Some(other) => (other, &mut first),
        };
        if !src.contains_key(from) {
            return None;
        }
        if nx && dst.contains_key(to) {
            return Some(false);
        }
        let slot = src.remove_slot(from)?;
        dst.insert_slot(owned(to), slot);
        // One record for the whole move, appended while both shards are still locked; the
        // events in one list too, so they keep their order.
        dst.log(&[b"RENAME", from, to]);
        renamed(dst, from, to);
        Some(true)
    }

    pub fn len(&self, db: usize) -> usize {
        (0..SHARDS).map(|s| self.lock(db, s).len()).sum()
    }

    /// Keys with a deadline in `db`, and their average remaining time to live in ms.
    pub fn expires(&self, db: usize) -> (usize, u64) {
        let now = now_ms() as u128;
        let (mut n, mut sum) = (0usize, 0u128);
        for s in 0..SHARDS {
            let (k, total) = self.lock(db, s).expires();
            n += k;
            sum += total;
        }
        let avg = if n == 0 {
            0
        } else {
            (sum / n as u128).saturating_sub(now) as u64
        };
        (n, avg)
    }

    /// One pass of active expiry over every shard of every database, deleting at most
    /// `per_shard` keys from each. True if some shard had more to delete.
    pub fn active_expire(&self, per_shard: usize) -> bool {
        let now = now_ms();
        let mut more = false;
        for db in 0..self.dbs.len() {
            for s in 0..SHARDS {
                let mut shard = self.lock_at(db, s, now, false);
                if shard.expires().0 > 0 && shard.expire_cycle(per_shard) == per_shard {
                    more = true;
                }
            }
        }
        more
    }

    /// Every database's keys, values and deadlines at one instant: all shards are locked (in
    /// order) while they are copied and while `at_cut` runs, so nothing changes in between —
    /// an AOF compaction switches files in `at_cut`, making every later record apply to
    /// exactly this state.
    pub fn snapshot_with<R>(&self, at_cut: impl FnOnce() -> R) -> (Vec<DbSnapshot>, R) {
        let mut guards = Vec::with_capacity(self.dbs.len() * SHARDS);
        for db in 0..self.dbs.len() {
            for s in 0..SHARDS {
                guards.push((db, self.lock_at(db, s, 0, false)));
            }
        }
        let mut out: Vec<DbSnapshot> = vec![Vec::new(); self.dbs.len()];
        for (db, g) in guards.iter_mut() {
            out[*db].extend(g.snapshot());
        }
        let r = at_cut();
        drop(guards);
        (out, r)
    }

    /// FLUSHDB (logged as one).
    /// FLUSHDB: every shard of `db` is locked (in order) while it is emptied and the record
    /// appended, so no change to the database can be logged between the emptying and the
    /// record (replay would wipe it). Publishes no event, as Redis; watchers of keys that
    /// existed are dirty and clients blocked on the database re-check their keys.
    pub fn flush(&self, db: usize) {
        let mut guards: Vec<Locked> = (0..SHARDS).map(|s| self.lock(db, s)).collect();
        if self.watches.any() {
            let watched = self.watches.keys_of(db);
            let existed: std::collections::HashSet<Bytes> = watched
                .into_iter()
                .filter(|k| guards[self.shard_of(k)].contains_key(k))
                .collect();
            self.watches.touch_db(db, |k| existed.contains(k));
        }
        let old: Vec<_> = guards.iter_mut().map(|g| g.take_all()).collect();
        if self.log.enabled() {
            let mut rec = Vec::new();
            crate::resp::encode_command(&mut rec, &[b"FLUSHDB"]);
            self.log.append(db, &rec);
        }
        drop(guards);
        // Dropping large maps happens outside the locks.
        drop(old);
        self.blocking.signal_db(db);
    }

    pub fn keys(&self, db: usize, pattern: &[u8]) -> Vec<Bytes> {
        let all = pattern == b"*";
        let mut out = Vec::new();
        for s in 0..SHARDS {
            let mut shard = self.lock(db, s);
            out.extend(
                shard
                    .iter_live()
                    .map(|(k, _)| k)
                    .filter(|k| all || glob::matches(pattern, k))
                    .cloned(),
            );
        }
        out
    }

    /// One SCAN step. `type_filter` and `pattern` filter the returned keys after the walk, as
    /// Redis does (a page may come back empty with a non-zero cursor).
    pub fn scan(
        &self,
        db: usize,
        cursor: u64,
        count: usize,
        pattern: Option<&[u8]>,
        type_filter: Option<&str>,
    ) -> ScanPage {
        let mut shard = (cursor >> HASH_BITS) as usize;
        let mut from = cursor & ((1 << HASH_BITS) - 1);
        let count = count.max(1);
        let mut keys: Vec<(u64, Bytes, &'static str)> = Vec::new();
        let mut next = 0;
        while shard < SHARDS {
            let mut map = self.lock(db, shard);
            let mut candidates: Vec<(u64, Bytes, &'static str)> = map
                .iter_live()
                .map(|(k, v)| (scan_hash(k), k.clone(), v.type_name()))
                .filter(|(h, _, _)| *h >= from)
                .collect();
            drop(map);
            candidates.sort_unstable_by_key(|c| c.0);
            let want = count - keys.len();
            if candidates.len() > want {
                // Take `want` keys plus any that share the last hash, so none is split off.
                let last = candidates[want - 1].0;
                let end = candidates.partition_point(|c| c.0 <= last);
                let exhausted = end == candidates.len();
                candidates.truncate(end);
                keys.extend(candidates);
                if !exhausted {
                    next = ((shard as u64) << HASH_BITS) | (last + 1);
                    break;
                }
            } else {
                keys.extend(candidates);
            }
            shard += 1;
            from = 0;
            if keys.len() >= count {
                if shard < SHARDS {
                    next = (shard as u64) << HASH_BITS;
                }
                break;
            }
        }
        let keys = keys
            .into_iter()
            .filter(|(_, k, t)| {
                pattern.is_none_or(|p| glob::matches(p, k))
                    && type_filter.is_none_or(|tf| tf.eq_ignore_ascii_case(t))
            })
            .map(|(_, k, _)| k)
            .collect();
        ScanPage { cursor: next, keys }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn scan_returns_every_key_once_across_pages() {
        let ks = Keyspace::new(
            1,
            Default::default(),
            Arc::new(crate::persist::Aof::default()),
        );
        for i in 0..1000 {
            let k = Bytes::from(format!("key:{i}"));
            ks.with_shard(0, &k, |s| s.insert(k.clone(), Value::String(Bytes::new())));
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut pages = 0;
        loop {
            let page = ks.scan(0, cursor, 10, None, None);
            for k in page.keys {
                assert!(seen.insert(k), "a key came back twice without changes");
            }
            pages += 1;
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        assert!(pages >= 100);
    }
}
