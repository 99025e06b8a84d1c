//! Consumer groups: the last delivered ID, the pending-entries list (PEL) and the consumers.
//!
//! Invariants: every pending entry is in the group PEL; an owned entry is also in exactly
//! one consumer's PEL (the consumer it names), a NACKed entry (XNACK, Redis 8.8) in none.
//! Both PELs are ordered by ID, so XACK and PEL range scans are O(log n). `by_delivery`
//! holds every pending entry once more, in the order XREADGROUP … CLAIM serves them: NACKed
//! entries first, in the order they were released, then the rest by delivery time (oldest
//! first) — so finding the entries idle for at least some time is O(log n) too. Only the
//! methods here change the PEL, which keeps the three in step.
//! Delivery times are wall-clock milliseconds, as Redis keeps them.

use super::id::StreamId;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEntry {
    /// The owner; empty for an entry nobody owns (NACKed, or created by XCLAIM FORCE).
    pub consumer: Bytes,
    /// Last delivery (unix ms); 0 for a NACKed entry.
    pub delivery_time: u64,
    pub delivery_count: u64,
    /// Position in the NACK queue; 0 when not NACKed.
    nack_seq: u64,
}

impl PendingEntry {
    pub fn is_nacked(&self) -> bool {
        self.nack_seq != 0
    }

    /// Its place in the NACK queue (0: not NACKed).
    pub fn nack_seq(&self) -> u64 {
        self.nack_seq
    }

    /// A pending entry as a snapshot recorded it (`ConsumerGroup::restore` checks it).
    pub fn restored(
        consumer: Bytes,
        delivery_time: u64,
        delivery_count: u64,
        nack_seq: u64,
    ) -> Self {
        PendingEntry {
            consumer,
            delivery_time,
            delivery_count,
            nack_seq,
        }
    }

    fn order_key(&self, id: StreamId) -> (bool, u64, StreamId) {
        if self.nack_seq != 0 {
            (false, self.nack_seq, id)
        } else {
            (true, self.delivery_time, id)
        }
    }
}

/// How XNACK changes a released entry's delivery count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackMode {
    /// The delivery did not count: one less (not below zero).
    Silent,
    /// The delivery failed: count unchanged.
    Fail,
    /// Never retry: the count becomes `i64::MAX`.
    Fatal,
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
    pel: BTreeMap<StreamId, PendingEntry>,
    by_delivery: BTreeSet<(bool, u64, StreamId)>,
    nacks: u64,
    nacked: usize,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

/// One more delivery, stopping at Redis's LLONG_MAX (where XNACK FATAL puts a count).
fn bump(count: u64) -> u64 {
    count.saturating_add(1).min(i64::MAX as u64)
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: Option<u64>) -> Self {
        ConsumerGroup {
            last_id,
            entries_read,
            ..Default::default()
        }
    }

    /// The group PEL, by ID.
    pub fn pel(&self) -> &BTreeMap<StreamId, PendingEntry> {
        &self.pel
    }

    /// NACKs ever made in this group (the next one is queued after this number).
    pub fn nack_counter(&self) -> u64 {
        self.nacks
    }

    /// A group as a snapshot recorded it: consumers with their seen and active times, and
    /// pending entries, checked against the invariants (an owned entry's consumer exists, a
    /// NACKed one has no owner and a place in the queue already handed out, no ID twice).
    pub fn restore(
        last_id: StreamId,
        entries_read: Option<u64>,
        nacks: u64,
        consumers: Vec<(Bytes, u64, Option<u64>)>,
        pel: Vec<(StreamId, PendingEntry)>,
    ) -> Result<Self, String> {
        let mut g = ConsumerGroup::new(last_id, entries_read);
        g.nacks = nacks;
        for (name, seen_time, active_time) in consumers {
            let c = Consumer {
                seen_time,
                active_time,
                pending: BTreeSet::new(),
            };
            if g.consumers.insert(name, c).is_some() {
                return Err("a consumer named twice".into());
            }
        }
        for (id, p) in pel {
            if g.pel.contains_key(&id) {
                return Err(format!("pending entry {id:?} twice"));
            }
            if p.is_nacked() && (!p.consumer.is_empty() || p.nack_seq > nacks) {
                return Err(format!("NACKed entry {id:?} is inconsistent"));
            }
            if !p.is_nacked() && !p.consumer.is_empty() && !g.consumers.contains_key(&p.consumer) {
                return Err(format!("pending entry {id:?} names a missing consumer"));
            }
            g.put(id, p);
        }
        Ok(g)
    }

    /// Pending entries nobody owns because they were NACKed (XINFO STREAM FULL nacked-count).
    pub fn nacked_count(&self) -> usize {
        self.nacked
    }

    /// Look up a consumer, creating it; returns whether it was created.
    pub fn consumer(&mut self, name: &Bytes, now: u64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        let c = self.consumers.entry(crate::store::owned(name)).or_default();
        c.seen_time = now;
        (c, created)
    }

    /// Insert or replace the pending entry `id`, keeping the indexes in step.
    fn put(&mut self, id: StreamId, p: PendingEntry) {
        self.take(id);
        if p.is_nacked() {
            self.nacked += 1;
        }
        self.by_delivery.insert(p.order_key(id));
        if let Some(c) = self.consumers.get_mut(&p.consumer) {
            if !p.is_nacked() {
                c.pending.insert(id);
            }
        }
        self.pel.insert(id, p);
    }

    /// Remove the pending entry `id` from the PEL, its owner and the delivery order.
    fn take(&mut self, id: StreamId) -> Option<PendingEntry> {
        let p = self.pel.remove(&id)?;
        self.by_delivery.remove(&p.order_key(id));
        if p.is_nacked() {
            self.nacked -= 1;
        } else if let Some(c) = self.consumers.get_mut(&p.consumer) {
            c.pending.remove(&id);
        }
        Some(p)
    }

    /// Record the delivery of `id` to `consumer` through `>`: a fresh pending entry, or a
    /// reassignment (count reset to 1) if another consumer had it pending.
    pub fn deliver_new(&mut self, id: StreamId, consumer: &Bytes, now: u64) {
        self.put(
            id,
            PendingEntry {
                consumer: crate::store::owned(consumer),
                delivery_time: now,
                delivery_count: 1,
                nack_seq: 0,
            },
        );
    }

    /// A history read delivered `id` again to its owner: new delivery time, one more count.
    pub fn redeliver(&mut self, id: StreamId, now: u64) {
        if let Some(mut p) = self.take(id) {
            p.delivery_time = now;
            p.delivery_count = bump(p.delivery_count);
            self.put(id, p);
        }
    }

    /// Move pending entry `id` to `consumer` (creating the consumer), as XCLAIM, XAUTOCLAIM
    /// and XREADGROUP … CLAIM do: `count` replaces the delivery count, otherwise `add_one`
    /// adds one. Returns the delivery count it had before, if `id` was pending.
    pub fn claim(
        &mut self,
        id: StreamId,
        consumer: &Bytes,
        delivery_time: u64,
        count: Option<u64>,
        add_one: bool,
        now: u64,
    ) -> Option<u64> {
        let mut p = self.take(id)?;
        let (c, _) = self.consumer(consumer, now);
        c.active_time = Some(now);
        let before = p.delivery_count;
        p.consumer = crate::store::owned(consumer);
        p.delivery_time = delivery_time;
        p.nack_seq = 0;
        match count {
            Some(n) => p.delivery_count = n,
            None if add_one => p.delivery_count = bump(p.delivery_count),
            None => {}
        }
        self.put(id, p);
        Some(before)
    }

    /// XCLAIM FORCE: create a pending entry for `id` owned by nobody yet (the claim that
    /// follows gives it an owner).
    pub fn insert_unowned(&mut self, id: StreamId, now: u64) {
        self.put(
            id,
            PendingEntry {
                consumer: Bytes::new(),
                delivery_time: now,
                delivery_count: 1,
                nack_seq: 0,
            },
        );
    }

    /// XNACK: release `id` back to the group, unowned and first in line for claims. With
    /// `create`, an entry that is not pending is added (XNACK FORCE). False if nothing was
    /// done.
    pub fn nack(
        &mut self,
        id: StreamId,
        mode: NackMode,
        retrycount: Option<u64>,
        create: bool,
    ) -> bool {
        let mut p = match self.take(id) {
            Some(p) => p,
            None if create => PendingEntry {
                consumer: Bytes::new(),
                delivery_time: 0,
                delivery_count: 0,
                nack_seq: 0,
            },
            None => return false,
        };
        p.delivery_count = match (retrycount, mode) {
            (Some(n), _) => n,
            (None, NackMode::Silent) => p.delivery_count.saturating_sub(1),
            (None, NackMode::Fail) => p.delivery_count,
            (None, NackMode::Fatal) => i64::MAX as u64,
        };
        p.consumer = Bytes::new();
        p.delivery_time = 0;
        self.nacks += 1;
        p.nack_seq = self.nacks;
        self.put(id, p);
        true
    }

    /// Pending entries in claim order (NACKed first, then oldest delivery first).
    pub fn by_delivery(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.by_delivery.iter().map(|(_, _, id)| *id)
    }

    /// The earliest delivery time among owned pending entries whose ID `exists` (XREADGROUP
    /// … CLAIM's wake-up time); NACKed entries count as delivered at 0.
    pub fn oldest_delivery(&self, mut exists: impl FnMut(StreamId) -> bool) -> Option<u64> {
        self.by_delivery
            .iter()
            .find(|(_, _, id)| exists(*id))
            .map(|(owned, t, _)| if *owned { *t } else { 0 })
    }

    /// Acknowledge `id`; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        self.take(id).is_some()
    }

    /// Remove a consumer and its pending entries; returns how many it had pending.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let pending = self.consumers.get(name)?.pending.clone();
        for id in &pending {
            self.take(*id);
        }
        self.consumers.remove(name);
        Some(pending.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_with(n: u64) -> ConsumerGroup {
        let mut g = ConsumerGroup::default();
        let alice = Bytes::from_static(b"alice");
        g.consumer(&alice, 0);
        for i in 1..=n {
            g.deliver_new(StreamId::new(i, 0), &alice, 1000 - i);
        }
        g
    }

    #[test]
    fn claim_order_is_oldest_delivery_first_with_nacked_entries_ahead() {
        let mut g = group_with(3);
        let order: Vec<u64> = g.by_delivery().map(|id| id.ms).collect();
        assert_eq!(order, vec![3, 2, 1]);
        assert!(g.nack(StreamId::new(1, 0), NackMode::Fail, None, false));
        assert!(g.nack(StreamId::new(2, 0), NackMode::Silent, None, false));
        let order: Vec<u64> = g.by_delivery().map(|id| id.ms).collect();
        assert_eq!(
            order,
            vec![1, 2, 3],
            "released entries first, in release order"
        );
        assert_eq!(g.nacked_count(), 2);
        assert_eq!(g.consumers[&Bytes::from_static(b"alice")].pending.len(), 1);
        assert_eq!(g.pel()[&StreamId::new(2, 0)].delivery_count, 0);
    }

    #[test]
    fn claiming_moves_ownership_and_returns_the_previous_count() {
        let mut g = group_with(2);
        let bob = Bytes::from_static(b"bob");
        assert_eq!(
            g.claim(StreamId::new(1, 0), &bob, 5000, None, true, 5000),
            Some(1)
        );
        assert_eq!(g.pel()[&StreamId::new(1, 0)].delivery_count, 2);
        assert_eq!(g.consumers[&bob].pending.len(), 1);
        assert_eq!(g.consumers[&Bytes::from_static(b"alice")].pending.len(), 1);
        let last = g.by_delivery().last();
        assert_eq!(last, Some(StreamId::new(1, 0)), "now the newest delivery");
        assert_eq!(g.delete_consumer(b"bob"), Some(1));
        assert_eq!(g.pel().len(), 1);
        assert_eq!(g.by_delivery().count(), 1);
    }

    #[test]
    fn fatal_nack_saturates_and_force_creates() {
        let mut g = group_with(0);
        assert!(!g.nack(StreamId::new(7, 0), NackMode::Fatal, None, false));
        assert!(g.nack(StreamId::new(7, 0), NackMode::Fatal, None, true));
        assert_eq!(
            g.pel()[&StreamId::new(7, 0)].delivery_count,
            i64::MAX as u64
        );
        assert!(g.nack(StreamId::new(7, 0), NackMode::Fail, Some(3), false));
        assert_eq!(g.pel()[&StreamId::new(7, 0)].delivery_count, 3);
        assert!(g.ack(StreamId::new(7, 0)));
        assert_eq!(g.nacked_count(), 0);
    }
}
