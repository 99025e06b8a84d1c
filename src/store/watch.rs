//! WATCH: the keys each client watches, and marking its transaction dirty when one changes.
//!
//! A client's `Watcher` is shared between its session and every key it watches here. A change
//! to a watched key (any write, an expiry, a deletion by FLUSHDB/FLUSHALL) sets the watcher's
//! `dirty` flag while the key's shard is still locked, so an EXEC that checks the flag after
//! the change sees it. EXEC, DISCARD, UNWATCH, RESET and disconnecting remove the client's
//! keys. When nobody watches anything, a change costs one atomic load (`any`).

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// One client's watch state.
#[derive(Debug, Default)]
pub struct Watcher {
    pub client_id: u64,
    /// A watched key changed: the next EXEC aborts.
    pub dirty: AtomicBool,
}

impl Watcher {
    pub fn new(client_id: u64) -> Arc<Watcher> {
        Arc::new(Watcher {
            client_id,
            dirty: AtomicBool::new(false),
        })
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Start afresh (after EXEC, DISCARD, UNWATCH, RESET).
    pub fn clear(&self) {
        self.dirty.store(false, Ordering::Release);
    }
}

type Watchers = Vec<Arc<Watcher>>;

#[derive(Default)]
pub struct WatchRegistry {
    keys: Mutex<HashMap<(usize, Bytes), Watchers>>,
    /// Watched (database, key) pairs, so that changes skip the lock when there are none.
    count: AtomicUsize,
}

impl WatchRegistry {
    /// Whether any key is watched at all.
    pub fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Watch `key` of `db` for `w` (again is a no-op).
    pub fn watch(&self, db: usize, key: &[u8], w: &Arc<Watcher>) {
        let Ok(mut keys) = self.keys.lock() else {
            return;
        };
        let list = keys
            .entry((db, crate::store::owned(key)))
            .or_insert_with(|| {
                self.count.fetch_add(1, Ordering::AcqRel);
                Vec::new()
            });
        if !list.iter().any(|x| Arc::ptr_eq(x, w)) {
            list.push(w.clone());
        }
    }

    /// Stop watching `keys` for `w`.
    pub fn unwatch(&self, keys: &[(usize, Bytes)], w: &Arc<Watcher>) {
        let Ok(mut map) = self.keys.lock() else {
            return;
        };
        for k in keys {
            if let Some(list) = map.get_mut(k) {
                list.retain(|x| !Arc::ptr_eq(x, w));
                if list.is_empty() {
                    map.remove(k);
                    self.count.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// `key` of `db` changed: every client watching it has a dirty transaction.
    pub fn touch(&self, db: usize, key: &[u8]) {
        let Ok(map) = self.keys.lock() else {
            return;
        };
        // A tuple key cannot be looked up by borrowed parts; the copy happens only when some
        // key is watched.
        if let Some(list) = map.get(&(db, Bytes::copy_from_slice(key))) {
            for w in list {
                w.dirty.store(true, Ordering::Release);
            }
        }
    }

    /// Every watched key of `db` for which `existed` holds was removed at once (FLUSHDB,
    /// FLUSHALL): their watchers are dirty.
    pub fn touch_db(&self, db: usize, mut existed: impl FnMut(&[u8]) -> bool) {
        let Ok(map) = self.keys.lock() else {
            return;
        };
        for ((d, key), list) in map.iter() {
            if *d == db && existed(key) {
                for w in list {
                    w.dirty.store(true, Ordering::Release);
                }
            }
        }
    }

    /// The watched keys of `db` (to check which existed before a flush).
    pub fn keys_of(&self, db: usize) -> Vec<Bytes> {
        self.keys.lock().map_or_else(
            |_| vec![],
            |map| {
                map.keys()
                    .filter(|(d, _)| *d == db)
                    .map(|(_, k)| k.clone())
                    .collect()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_dirties_only_the_watchers_of_that_key() {
        let r = WatchRegistry::default();
        let (a, b) = (Watcher::new(1), Watcher::new(2));
        assert!(!r.any());
        r.watch(0, b"k", &a);
        r.watch(0, b"k", &a);
        r.watch(1, b"k", &b);
        assert!(r.any());
        r.touch(0, b"other");
        r.touch(0, b"k");
        assert!(a.is_dirty());
        assert!(!b.is_dirty(), "same key, other database");
        r.unwatch(&[(0, Bytes::from_static(b"k"))], &a);
        r.unwatch(&[(1, Bytes::from_static(b"k"))], &b);
        assert!(!r.any());
    }
}
