//! The keyspace: numbered databases of keys, each sharded across mutex-protected maps.
//!
//! Commands on keys in different shards run in parallel; a handler holds a shard lock only for
//! its in-memory work. Multi-key operations lock one shard at a time in ascending order (the
//! commands here need no cross-key atomicity beyond that). Streams join `Value` with their
//! own module; strings exist so the generic key commands have something to act on.
//!
//! SCAN's cursor walks shards in order and, inside a shard, keys in order of a fixed 60-bit
//! hash: a key present for a whole iteration is returned at least once however the maps grow.

pub mod blocking;
pub mod stream;

use crate::pubsub::glob;
use bytes::Bytes;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Mutex, MutexGuard};

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

type Shard = HashMap<Bytes, Value>;

pub struct Db {
    shards: Vec<Mutex<Shard>>,
}

pub struct Keyspace {
    dbs: Vec<Db>,
    hasher: RandomState,
}

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

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        Keyspace {
            dbs: (0..databases.max(1))
                .map(|_| Db {
                    shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                })
                .collect(),
            hasher: RandomState::new(),
        }
    }

    pub fn databases(&self) -> usize {
        self.dbs.len()
    }

    fn shard_of(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn lock(&self, db: usize, shard: usize) -> MutexGuard<'_, Shard> {
        self.dbs[db].shards[shard]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` with the shard holding `key` locked.
    pub fn with_shard<R>(&self, db: usize, key: &[u8], f: impl FnOnce(&mut Shard) -> R) -> R {
        let shard = self.shard_of(key);
        f(&mut self.lock(db, shard))
    }

    pub fn get(&self, db: usize, key: &[u8]) -> Option<Value> {
        self.with_shard(db, key, |s| s.get(key).cloned())
    }

    pub fn type_of(&self, db: usize, key: &[u8]) -> &'static str {
        self.with_shard(db, key, |s| s.get(key).map_or("none", Value::type_name))
    }

    pub fn exists(&self, db: usize, key: &[u8]) -> bool {
        self.with_shard(db, key, |s| s.contains_key(key))
    }

    pub fn remove(&self, db: usize, key: &[u8]) -> bool {
        self.with_shard(db, key, |s| s.remove(key).is_some())
    }

    /// RENAME / RENAMENX: move `from` to `to` (replacing it unless `nx`). `Some(false)` when
    /// `nx` and `to` exists; `None` when `from` does not exist. Both shards are locked, lower
    /// index first, so concurrent renames cannot deadlock.
    pub fn rename(&self, db: usize, from: &[u8], to: &[u8], nx: bool) -> Option<bool> {
        let (a, b) = (self.shard_of(from), self.shard_of(to));
        let mut first = self.lock(db, a.min(b));
        let mut second = (a != b).then(|| self.lock(db, a.max(b)));
        let (src, dst): (&mut Shard, &mut Shard) = match second.as_mut() {
            None => {
                let value = first.remove(from)?;
                if from == to || (nx && first.contains_key(to)) {
                    first.insert(owned(from), value);
                    return Some(from == to && !nx);
                }
                first.insert(owned(to), value);
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
        let value = src.remove(from)?;
        dst.insert(owned(to), value);
        Some(true)
    }

    pub fn len(&self, db: usize) -> usize {
        (0..SHARDS).map(|s| self.lock(db, s).len()).sum()
    }

    pub fn flush(&self, db: usize) {
        for s in 0..SHARDS {
            // Dropping a large map happens outside the lock.
            let old = std::mem::take(&mut *self.lock(db, s));
            drop(old);
        }
    }

    pub fn keys(&self, db: usize, pattern: &[u8]) -> Vec<Bytes> {
        let all = pattern == b"*";
        let mut out = Vec::new();
        for s in 0..SHARDS {
            let shard = self.lock(db, s);
            out.extend(
                shard
                    .keys()
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
            let map = self.lock(db, shard);
            let mut candidates: Vec<(u64, Bytes, &'static str)> = map
                .iter()
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
        let ks = Keyspace::new(1);
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
