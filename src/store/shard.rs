//! One shard of a database: its keys, their values, their expiry deadlines and access times.
//!
//! Expiry is both lazy and active, as in Redis. Every lookup first checks the key's deadline
//! and deletes a key whose deadline has passed (`now > deadline`, Redis's `keyIsExpired`), so a
//! command never sees an expired key. Deadlines are also indexed in order (`deadlines`), so the
//! active cycle deletes keys nobody touches by popping the earliest ones — exact, where Redis
//! samples. Keys deleted by expiry are recorded as `expired` changes for the keyspace to
//! announce (blocked readers re-check them, WATCH sees them, subscribers to keyspace events
//! hear of them) and logged as deletions.
//!
//! Invariants: a key is in `deadlines` exactly when its slot has a deadline, with the same
//! time; `ttl_sum` is the sum of those deadlines. The time a lock judges expiry by is read
//! from the clock at most once per lock, and only if the shard has deadlines (reading the
//! clock is a measurable part of an XADD); `clock`, the access stamp, is the keyspace's
//! coarse seconds clock, as Redis's LRU clock is.

use super::Value;
use crate::events::{self, Event};
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};

/// A stored key: its value, its deadline (unix ms; 0 = none) and when it was last accessed
/// (Redis's LRU clock: seconds).
#[derive(Debug)]
pub struct Slot {
    pub value: Value,
    expire_at: u64,
    access: u32,
}

impl Slot {
    /// A slot as a RENAME moves it: value and deadline together.
    pub fn deadline(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }
}

/// Where a handler logs the effects of a change to one value (see `Shard::get_mut_logged`).
pub struct Log<'a> {
    buf: &'a mut Vec<u8>,
    on: bool,
    changes: &'a mut Vec<(Bytes, Option<Event>)>,
    observed: bool,
}

impl Log<'_> {
    /// Record that `key` changed as `event` (see `Shard::notify`).
    pub fn notify(&mut self, key: &Bytes, event: Event) {
        record(self.changes, self.observed, key, Some(event));
    }

    /// Record that clients blocked on `key` may now be served (see `Shard::ready`).
    pub fn ready(&mut self, key: &Bytes) {
        record(self.changes, self.observed, key, None);
    }

    /// Log one command.
    pub fn cmd(&mut self, args: &[&[u8]]) {
        if self.on {
            crate::resp::encode_command(self.buf, args);
        }
    }

    /// Log a command as it was sent.
    pub fn args(&mut self, args: &[Bytes]) {
        if self.on {
            crate::resp::encode_command_parts(self.buf, &[], args);
        }
    }

    /// Log `head` followed by client arguments `tail` (no intermediate list).
    pub fn cmd_with(&mut self, head: &[&[u8]], tail: &[Bytes]) {
        if self.on {
            crate::resp::encode_command_parts(self.buf, head, tail);
        }
    }

    /// Whether anything is logged (records that take work to build can be skipped).
    pub fn on(&self) -> bool {
        self.on
    }
}

/// Record a change of `key` if anybody observes changes (see `Shard::changes`).
fn record(
    changes: &mut Vec<(Bytes, Option<Event>)>,
    observed: bool,
    key: &Bytes,
    event: Option<Event>,
) {
    if observed {
        changes.push((key.clone(), event));
    }
}

#[derive(Default)]
pub struct Shard {
    map: HashMap<Bytes, Slot>,
    deadlines: BTreeSet<(u64, Bytes)>,
    ttl_sum: u128,
    /// The command's time (unix ms) once read; 0 until a lock needs it.
    pub(super) now: u64,
    /// The LRU clock (seconds) at lock time.
    pub(super) clock: u32,
    /// Whether lookups count as accesses (not for CLIENT NO-TOUCH or introspection).
    pub(super) touch: bool,
    /// What this lock changed, in order: each key with the event Redis names the change by
    /// (`None`: blocked clients may be served, nothing else — an XNACK). The keyspace turns the
    /// list into every consequence when the lock is released (`Locked`): WATCH, blocked
    /// clients, keyspace notifications.
    pub(super) changes: Vec<(Bytes, Option<Event>)>,
    /// Keys deleted by expiry under this lock (INFO stats expired_keys).
    pub(super) expired: usize,
    /// Someone watches keys, waits on keys or subscribes to keyspace events (read at lock
    /// time): only then are changes recorded at all, so a write costs nothing extra when
    /// nobody does.
    pub(super) observed: bool,
    /// Whether changes are logged to the append-only file (set at lock time).
    pub(super) logging: bool,
    /// Expiry is suspended (set at lock time, while the AOF replays): a deadline that
    /// passed since the file was written must not delete a key the records after it still
    /// change — it would come back without its deadline, holding only those later changes.
    pub(super) expiry_off: bool,
    /// Records of this lock's changes, in the order they were made; the keyspace hands them
    /// to the append-only file before the lock is released.
    pub(super) log_buf: Vec<u8>,
}

impl Shard {
    /// Record that `key` changed as `event` (Redis's notifyKeyspaceEvent + signalModifiedKey).
    /// `key` is the request's argument: the record lives until the lock is released, within
    /// the request, so sharing its bytes is safe and costs no copy.
    pub fn notify(&mut self, key: &Bytes, event: Event) {
        record(&mut self.changes, self.observed, key, Some(event));
    }

    /// Record that clients blocked on `key` may now be served, though nothing Redis names
    /// changed (Redis's signalKeyAsReady alone: no event, WATCH unaffected).
    pub fn ready(&mut self, key: &Bytes) {
        record(&mut self.changes, self.observed, key, None);
    }

    /// A read lookup of `key` found nothing (keyspace event `keymiss`). Changes nothing.
    pub fn missed(&mut self, key: &Bytes) {
        record(&mut self.changes, self.observed, key, Some(events::KEYMISS));
    }

    /// Log a change as the command that reproduces it (see `persist`).
    pub fn log(&mut self, args: &[&[u8]]) {
        if self.logging {
            crate::resp::encode_command(&mut self.log_buf, args);
        }
    }

    /// Log a command as it was sent (its effect does not depend on anything but the state it
    /// applies to: XACK, XNACK, XDELEX, …).
    pub fn log_args(&mut self, args: &[bytes::Bytes]) {
        if self.logging {
            crate::resp::encode_command_parts(&mut self.log_buf, &[], args);
        }
    }

    /// Whether changes are being logged (a handler can skip building a record).
    pub fn logging(&self) -> bool {
        self.logging
    }

    /// The time this lock judges expiry by, read once.
    pub fn now(&mut self) -> u64 {
        if self.now == 0 {
            self.now = super::now_ms();
        }
        self.now
    }

    /// Whether `slot` is past its deadline at `self.now` (which the caller has read).
    fn is_expired(&self, slot: &Slot) -> bool {
        !self.expiry_off && slot.expire_at != 0 && self.now > slot.expire_at
    }

    /// Delete `key` if its deadline has passed (lazy expiry).
    fn expire_if_needed(&mut self, key: &[u8]) {
        if self.deadlines.is_empty() || self.expiry_off {
            return;
        }
        self.now();
        if self.map.get(key).is_some_and(|s| self.is_expired(s)) {
            if let Some((k, slot)) = self.map.remove_entry(key) {
                self.forget_deadline(&k, slot.expire_at);
                self.log(&[b"DEL", &k]);
                if self.observed {
                    self.changes.push((k, Some(events::EXPIRED)));
                }
                self.expired += 1;
            }
        }
    }

    fn forget_deadline(&mut self, key: &Bytes, at: u64) {
        if at != 0 {
            self.deadlines.remove(&(at, key.clone()));
            self.ttl_sum -= at as u128;
        }
    }

    fn slot_mut(&mut self, key: &[u8], touch: bool) -> Option<&mut Slot> {
        self.expire_if_needed(key);
        let clock = self.clock;
        let slot = self.map.get_mut(key)?;
        if touch {
            slot.access = clock;
        }
        Some(slot)
    }

    /// The value at `key`, counting as an access.
    pub fn get(&mut self, key: &[u8]) -> Option<&Value> {
        let touch = self.touch;
        self.slot_mut(key, touch).map(|s| &s.value)
    }

    /// The value at `key` for writing, counting as an access. Its deadline is kept.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let touch = self.touch;
        self.slot_mut(key, touch).map(|s| &mut s.value)
    }

    /// `get_mut`, with the log its changes are recorded in.
    pub fn get_mut_logged(&mut self, key: &[u8]) -> Option<(&mut Value, Log<'_>)> {
        self.expire_if_needed(key);
        let (touch, clock, on) = (self.touch, self.clock, self.logging);
        let slot = self.map.get_mut(key)?;
        if touch {
            slot.access = clock;
        }
        let log = Log {
            buf: &mut self.log_buf,
            on,
            changes: &mut self.changes,
            observed: self.observed,
        };
        Some((&mut slot.value, log))
    }

    /// The value at `key` without counting an access (TYPE, EXISTS, TTL, OBJECT).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Value> {
        self.slot_mut(key, false).map(|s| &s.value)
    }

    pub fn contains_key(&mut self, key: &[u8]) -> bool {
        self.peek(key).is_some()
    }

    /// Store `value` at `key` with no deadline, replacing any value and deadline it had.
    pub fn insert(&mut self, key: Bytes, value: Value) {
        self.insert_slot(
            key,
            Slot {
                value,
                expire_at: 0,
                access: self.clock,
            },
        );
    }

    /// Store `value` at `key`, keeping the deadline of the value it replaces (SET KEEPTTL).
    pub fn insert_keep_ttl(&mut self, key: Bytes, value: Value) {
        self.expire_if_needed(&key);
        match self.map.get_mut(&key) {
            Some(slot) => {
                slot.value = value;
                slot.access = self.clock;
            }
            None => self.insert(key, value),
        }
    }

    /// Store a slot moved from elsewhere (RENAME): its deadline comes with it.
    pub fn insert_slot(&mut self, key: Bytes, mut slot: Slot) {
        if let Some(old) = self.map.remove(&key) {
            self.forget_deadline(&key, old.expire_at);
        }
        if slot.expire_at != 0 {
            self.deadlines.insert((slot.expire_at, key.clone()));
            self.ttl_sum += slot.expire_at as u128;
        }
        slot.access = self.clock;
        self.map.insert(key, slot);
    }

    /// Remove `key` with its deadline; `None` if it does not exist (or has just expired).
    pub fn remove_slot(&mut self, key: &[u8]) -> Option<Slot> {
        self.expire_if_needed(key);
        let (k, slot) = self.map.remove_entry(key)?;
        self.forget_deadline(&k, slot.expire_at);
        Some(slot)
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.remove_slot(key).map(|s| s.value)
    }

    /// The deadline of `key`: `None` if the key does not exist, `Some(None)` if it has none.
    pub fn deadline(&mut self, key: &[u8]) -> Option<Option<u64>> {
        self.slot_mut(key, false).map(|s| s.deadline())
    }

    /// Give an existing `key` the deadline `at` (unix ms). False if the key does not exist.
    pub fn set_deadline(&mut self, key: &[u8], at: u64) -> bool {
        self.expire_if_needed(key);
        let Some((k, slot)) = self.map.get_key_value(key) else {
            return false;
        };
        let (k, old) = (k.clone(), slot.expire_at);
        self.forget_deadline(&k, old);
        if at != 0 {
            self.deadlines.insert((at, k.clone()));
            self.ttl_sum += at as u128;
        }
        if let Some(slot) = self.map.get_mut(key) {
            slot.expire_at = at;
        }
        true
    }

    /// PERSIST: drop the deadline of `key`; true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        match self.deadline(key) {
            Some(Some(_)) => self.set_deadline(key, 0),
            _ => false,
        }
    }

    /// Seconds since `key` was last accessed (OBJECT IDLETIME).
    pub fn idle_seconds(&mut self, key: &[u8]) -> Option<u64> {
        let clock = self.clock;
        self.slot_mut(key, false)
            .map(|s| clock.saturating_sub(s.access) as u64)
    }

    /// Keys stored, counting expired keys not yet deleted (Redis's DBSIZE does the same).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keys with a deadline, and the sum of their deadlines (INFO keyspace).
    pub fn expires(&self) -> (usize, u128) {
        (self.deadlines.len(), self.ttl_sum)
    }

    /// Keys not past their deadline, with their slots: expired keys are skipped, not deleted.
    fn live_slots(&mut self) -> impl Iterator<Item = (&Bytes, &Slot)> + '_ {
        if !self.deadlines.is_empty() {
            self.now();
        }
        let this = &*self;
        this.map.iter().filter(|(_, s)| !this.is_expired(s))
    }

    /// Live keys with their values (KEYS, SCAN).
    pub fn iter_live(&mut self) -> impl Iterator<Item = (&Bytes, &Value)> + '_ {
        self.live_slots().map(|(k, s)| (k, &s.value))
    }

    /// The active expiry step: delete up to `max` keys whose deadline has passed, earliest
    /// first. Returns how many were deleted; fewer than `max` means none are left.
    pub fn expire_cycle(&mut self, max: usize) -> usize {
        if self.deadlines.is_empty() || self.expiry_off {
            return 0;
        }
        self.now();
        let mut n = 0;
        while n < max {
            let Some(first) = self.deadlines.first() else {
                break;
            };
            if first.0 >= self.now {
                break;
            }
            let Some((at, key)) = self.deadlines.pop_first() else {
                break;
            };
            self.ttl_sum -= at as u128;
            if self.map.remove(&key).is_some() {
                self.log(&[b"DEL", &key]);
                if self.observed {
                    self.changes.push((key, Some(events::EXPIRED)));
                }
                self.expired += 1;
            }
            n += 1;
        }
        n
    }

    /// A copy of every live key with its value and deadline (an AOF compaction's snapshot).
    /// Strings and stream chunks are shared, not copied.
    pub fn snapshot(&mut self) -> Vec<(Bytes, Value, Option<u64>)> {
        self.live_slots()
            .map(|(k, s)| (k.clone(), s.value.clone(), s.deadline()))
            .collect()
    }

    /// Drop every key (FLUSHDB), returning the old map so it is freed outside the lock.
    pub fn take_all(&mut self) -> HashMap<Bytes, Slot> {
        self.deadlines.clear();
        self.ttl_sum = 0;
        std::mem::take(&mut self.map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard_at(now: u64) -> Shard {
        Shard {
            now,
            touch: true,
            observed: true,
            ..Default::default()
        }
    }

    fn s(v: &str) -> Value {
        Value::String(Bytes::copy_from_slice(v.as_bytes()))
    }

    #[test]
    fn a_key_lives_until_its_deadline_and_is_deleted_on_the_next_lookup() {
        let mut sh = shard_at(1000);
        sh.insert(Bytes::from_static(b"k"), s("v"));
        assert!(sh.set_deadline(b"k", 1500));
        sh.now = 1500;
        assert!(sh.get(b"k").is_some(), "alive at its deadline, as in Redis");
        sh.now = 1501;
        assert!(sh.get(b"k").is_none());
        assert_eq!(
            sh.changes,
            vec![(Bytes::from_static(b"k"), Some(events::EXPIRED))]
        );
        assert_eq!(sh.expires(), (0, 0));
        assert!(sh.is_empty());
    }

    #[test]
    fn insert_clears_the_deadline_and_keep_ttl_keeps_it() {
        let mut sh = shard_at(1000);
        sh.insert(Bytes::from_static(b"k"), s("a"));
        sh.set_deadline(b"k", 5000);
        sh.insert_keep_ttl(Bytes::from_static(b"k"), s("b"));
        assert_eq!(sh.deadline(b"k"), Some(Some(5000)));
        sh.insert(Bytes::from_static(b"k"), s("c"));
        assert_eq!(sh.deadline(b"k"), Some(None));
        assert_eq!(sh.expires(), (0, 0));
    }

    #[test]
    fn the_active_cycle_deletes_only_passed_deadlines_in_order() {
        let mut sh = shard_at(1000);
        for (i, at) in [3000u64, 1500, 2000, 9000].iter().enumerate() {
            let k = Bytes::from(format!("k{i}"));
            sh.insert(k.clone(), s("v"));
            sh.set_deadline(&k, *at);
        }
        sh.now = 2500;
        assert_eq!(sh.expire_cycle(1), 1);
        assert_eq!(
            sh.changes,
            vec![(Bytes::from_static(b"k1"), Some(events::EXPIRED))]
        );
        assert_eq!(sh.expire_cycle(10), 1);
        assert_eq!(sh.len(), 2);
        assert_eq!(sh.expires(), (2, 12000));
    }

    #[test]
    fn moved_slots_carry_their_deadline() {
        let mut sh = shard_at(1000);
        sh.insert(Bytes::from_static(b"a"), s("v"));
        sh.set_deadline(b"a", 7000);
        let slot = sh.remove_slot(b"a").unwrap();
        sh.insert_slot(Bytes::from_static(b"b"), slot);
        assert_eq!(sh.deadline(b"b"), Some(Some(7000)));
        assert_eq!(sh.deadline(b"a"), None);
        assert_eq!(sh.expires(), (1, 7000));
        assert!(sh.persist(b"b"));
        assert!(!sh.persist(b"b"));
        assert_eq!(sh.expires(), (0, 0));
    }
}
