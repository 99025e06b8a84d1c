//! Clients blocked on keys (XREAD BLOCK), and the wake-ups a write to those keys sends.
//!
//! A blocked client registers on every key it waits for; a write that adds data to a key wakes
//! the key's waiters in the order they blocked (FIFO), through their output buffer's wake-up,
//! and each re-runs its read. Every waiter also has a timeout (its connection's timer) and
//! cancellation paths (CLIENT UNBLOCK, disconnect) that remove it here.

use crate::connection::client::ClientHandle;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The clients waiting on one key: (database, client), first blocked first.
type Waiters = Vec<(usize, Arc<ClientHandle>)>;

#[derive(Default)]
pub struct BlockingRegistry {
    waiters: Mutex<HashMap<Bytes, Waiters>>,
    /// Registrations, so a write to a key nobody waits on skips the lock.
    count: AtomicUsize,
}

impl BlockingRegistry {
    /// Whether any client waits on any key.
    pub fn waiting(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    pub fn register(&self, db: usize, keys: &[Bytes], client: &Arc<ClientHandle>) {
        let Ok(mut w) = self.waiters.lock() else {
            return;
        };
        for k in keys {
            let list = w.entry(k.clone()).or_default();
            if !list.iter().any(|(d, c)| *d == db && c.id == client.id) {
                list.push((db, client.clone()));
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn unregister(&self, db: usize, keys: &[Bytes], client_id: u64) {
        let Ok(mut w) = self.waiters.lock() else {
            return;
        };
        for k in keys {
            if let Some(list) = w.get_mut(k.as_ref()) {
                let before = list.len();
                list.retain(|(d, c)| !(*d == db && c.id == client_id));
                self.count.fetch_sub(before - list.len(), Ordering::Relaxed);
                if list.is_empty() {
                    w.remove(k.as_ref());
                }
            }
        }
    }

    /// Data arrived at `key` (or it changed): wake the key's first waiter. Each woken waiter
    /// passes the turn on when it is done (`pass_on`), so waiters are served strictly in the
    /// order they blocked whatever order the scheduler runs tasks in.
    pub fn signal(&self, db: usize, key: &[u8]) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Ok(w) = self.waiters.lock() else { return };
        if let Some((_, c)) = w
            .get(key)
            .and_then(|list| list.iter().find(|(d, _)| *d == db))
        {
            c.output.wake.notify_one();
        }
    }

    /// Every key of `db` changed at once (FLUSHDB): wake each key's first waiter there.
    pub fn signal_db(&self, db: usize) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Ok(w) = self.waiters.lock() else { return };
        for list in w.values() {
            if let Some((_, c)) = list.iter().find(|(d, _)| *d == db) {
                c.output.wake.notify_one();
            }
        }
    }

    /// The waiter `client_id` has had its turn on `keys`: wake the one blocked after it.
    pub fn pass_on(&self, db: usize, keys: &[Bytes], client_id: u64) {
        let Ok(w) = self.waiters.lock() else { return };
        for k in keys {
            let Some(list) = w.get(k.as_ref()) else {
                continue;
            };
            let mut mine = list
                .iter()
                .filter(|(d, _)| *d == db)
                .skip_while(|(_, c)| c.id != client_id);
            if mine.next().is_some() {
                if let Some((_, next)) = mine.next() {
                    next.output.wake.notify_one();
                }
            }
        }
    }
}
