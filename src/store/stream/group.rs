//! Consumer groups: the last delivered ID, the pending-entries list (PEL) and the consumers.
//!
//! Invariants: every pending entry is in the group PEL and in exactly one consumer's PEL (the
//! consumer it names); both are ordered by ID, so XACK and PEL range scans are O(log n).
//! Delivery times are wall-clock milliseconds, as Redis keeps them.

use super::id::StreamId;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    pub consumer: Bytes,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Consumer {
    /// Last time the consumer was seen (any read or claim attempt).
    pub seen_time: u64,
    /// Last time the consumer was given entries.
    pub active_time: Option<u64>,
    pub pending: BTreeSet<StreamId>,
}

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    /// Entries the group has read, when known (Redis's `entries_read`; -1 = unknown).
    pub entries_read: Option<u64>,
    pub pel: BTreeMap<StreamId, PendingEntry>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Self {
        ConsumerGroup {
            last_id,
            entries_read,
            ..Default::default()
        }
    }

    /// Look up a consumer, creating it; returns whether it was created.
    pub fn consumer(&mut self, name: &Bytes, now: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self.consumers.entry(crate::store::owned(name)).or_default();
        c.seen_time = now;
        (c, created)
    }

    /// Record the delivery of `id` to `consumer` through `>`: a fresh pending entry, or a
    /// reassignment (count reset to 1) if another consumer had it pending.
    pub fn deliver_new(&mut self, id: StreamId, consumer: &Bytes, now: u64) {
        if let Some(old) = self.pel.get(&id) {
            if let Some(c) = self.consumers.get_mut(&old.consumer) {
                c.pending.remove(&id);
            }
        }
        self.pel.insert(
            id,
            PendingEntry {
                consumer: crate::store::owned(consumer),
                delivery_time: now,
                delivery_count: 1,
            },
        );
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pending.insert(id);
        }
    }

    /// Acknowledge `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(p) => {
                if let Some(c) = self.consumers.get_mut(&p.consumer) {
                    c.pending.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Remove a consumer and its pending entries; returns how many it had pending.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in &c.pending {
            self.pel.remove(id);
        }
        Some(c.pending.len())
    }
}
