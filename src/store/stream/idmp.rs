//! Idempotent producers (Redis 8.6's XADD … IDMP / IDMPAUTO): per stream, the IDs each
//! producer has used recently and the entry each one added, so a retried XADD is answered
//! with the original entry's ID instead of appending a duplicate.
//!
//! Invariants: per producer, `order` holds the same (iid, entry ID) pairs as `ids`, in the
//! order they were recorded (a FIFO, as Redis keeps it: XADD records in stream-ID order,
//! XIDMPRECORD may record an older entry later). Eviction by size (`maxsize` per producer)
//! and expiry (an entry's ID millisecond older than `duration` seconds) pop from the front.
//! A producer with no IDs left is forgotten. An XADD expires its own producer exactly and
//! sweeps all producers at most once a second, so neither the cost of an XADD nor the memory
//! of producers that went quiet grows without bound.

use super::id::StreamId;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};

/// Redis's defaults and limits for IDMP-DURATION (seconds) and IDMP-MAXSIZE.
pub const DEFAULT_DURATION: u64 = 100;
pub const DEFAULT_MAXSIZE: u64 = 100;
pub const MAX_DURATION: u64 = 86_400;
pub const MAX_MAXSIZE: u64 = 10_000;

#[derive(Debug, Clone, Default)]
struct Producer {
    ids: HashMap<Bytes, StreamId>,
    order: VecDeque<(Bytes, StreamId)>,
}

#[derive(Debug, Clone)]
pub struct Idmp {
    pub duration: u64,
    pub maxsize: u64,
    producers: HashMap<Bytes, Producer>,
    /// IDs ever recorded, and XADDs answered as duplicates (lifetime counters).
    pub iids_added: u64,
    pub iids_duplicates: u64,
    /// When an XADD next sweeps every producer (unix ms).
    next_sweep: u64,
}

/// How often an XADD sweeps all of a stream's producers for expired IDs.
const SWEEP_EVERY_MS: u64 = 1000;

impl Default for Idmp {
    fn default() -> Self {
        Idmp {
            duration: DEFAULT_DURATION,
            maxsize: DEFAULT_MAXSIZE,
            producers: HashMap::new(),
            iids_added: 0,
            iids_duplicates: 0,
            next_sweep: 0,
        }
    }
}

/// Pop `p`'s IDs whose entry is at or before `horizon` (unix ms).
fn expire_producer(p: &mut Producer, horizon: u64) {
    while p.order.front().is_some_and(|(_, id)| id.ms <= horizon) {
        if let Some((iid, _)) = p.order.pop_front() {
            p.ids.remove(&iid);
        }
    }
}

/// The outcome of recording an idempotent ID.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    Added,
    /// Already recorded for this producer with this entry ID.
    Same,
    /// Already recorded with another entry ID.
    Conflict(StreamId),
}

impl Idmp {
    pub fn with_limits(duration: u64, maxsize: u64) -> Self {
        Idmp {
            duration,
            maxsize,
            ..Default::default()
        }
    }

    /// Every producer with its IDs, oldest first (a snapshot of the table).
    pub fn producers(&self) -> Vec<(&Bytes, &VecDeque<(Bytes, StreamId)>)> {
        self.producers
            .iter()
            .map(|(pid, p)| (pid, &p.order))
            .collect()
    }

    /// The table as a snapshot recorded it: limits, lifetime counters, and each producer's
    /// IDs oldest first (no producer empty or named twice, no ID twice for one producer).
    pub fn restore(
        duration: u64,
        maxsize: u64,
        iids_added: u64,
        iids_duplicates: u64,
        producers: Vec<(Bytes, Vec<(Bytes, StreamId)>)>,
    ) -> Result<Self, String> {
        let mut t = Idmp {
            iids_added,
            iids_duplicates,
            ..Idmp::with_limits(duration, maxsize)
        };
        for (pid, ids) in producers {
            if ids.is_empty() {
                return Err("an idempotent producer without IDs".into());
            }
            let mut p = Producer::default();
            for (iid, id) in ids {
                if p.ids.insert(iid.clone(), id).is_some() {
                    return Err("an idempotent ID recorded twice".into());
                }
                p.order.push_back((iid, id));
            }
            if t.producers.insert(pid, p).is_some() {
                return Err("an idempotent producer named twice".into());
            }
        }
        Ok(t)
    }

    /// Producers with IDs remembered (XINFO STREAM pids-tracked).
    pub fn pids_tracked(&self) -> usize {
        self.producers.len()
    }

    /// IDs remembered over all producers (XINFO STREAM iids-tracked).
    pub fn iids_tracked(&self) -> usize {
        self.producers.values().map(|p| p.ids.len()).sum()
    }

    fn horizon(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.duration.saturating_mul(1000))
    }

    /// Forget every producer's IDs whose entry is older than `duration` seconds at `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let horizon = self.horizon(now_ms);
        self.producers.retain(|_, p| {
            expire_producer(p, horizon);
            !p.ids.is_empty()
        });
        self.next_sweep = now_ms.saturating_add(SWEEP_EVERY_MS);
    }

    /// Before an XADD by `pid`: expire that producer's IDs exactly, and everyone's if a
    /// sweep is due.
    pub fn expire_for(&mut self, pid: &[u8], now_ms: u64) {
        if now_ms >= self.next_sweep {
            self.expire(now_ms);
            return;
        }
        let horizon = self.horizon(now_ms);
        if let Some(p) = self.producers.get_mut(pid) {
            expire_producer(p, horizon);
            if p.ids.is_empty() {
                self.producers.remove(pid);
            }
        }
    }

    /// Every remembered (producer, idempotent ID, entry), each producer's oldest first (what a
    /// compacted append-only file records with XIDMPRECORD).
    pub fn records(&self) -> impl Iterator<Item = (&Bytes, &Bytes, StreamId)> + '_ {
        self.producers
            .iter()
            .flat_map(|(pid, p)| p.order.iter().map(move |(iid, id)| (pid, iid, *id)))
    }

    /// The entry a producer's idempotent ID already added, if it is remembered.
    pub fn lookup(&self, pid: &[u8], iid: &[u8]) -> Option<StreamId> {
        self.producers.get(pid)?.ids.get(iid).copied()
    }

    /// Remember that `pid`'s `iid` added entry `id`, evicting the producer's oldest ID past
    /// `maxsize`.
    pub fn record(&mut self, pid: &[u8], iid: &[u8], id: StreamId) -> Record {
        let p = self.producers.entry(crate::store::owned(pid)).or_default();
        if let Some(existing) = p.ids.get(iid) {
            return if *existing == id {
                Record::Same
            } else {
                Record::Conflict(*existing)
            };
        }
        let iid = crate::store::owned(iid);
        p.ids.insert(iid.clone(), id);
        p.order.push_back((iid, id));
        while p.ids.len() as u64 > self.maxsize {
            if let Some((old, _)) = p.order.pop_front() {
                p.ids.remove(&old);
            }
        }
        self.iids_added += 1;
        Record::Added
    }

    /// XCFGSET: change the limits; any actual change forgets every remembered ID (the
    /// lifetime counters stay). Returns whether something changed.
    pub fn configure(&mut self, duration: Option<u64>, maxsize: Option<u64>) -> bool {
        let changed = duration.is_some_and(|d| d != self.duration)
            || maxsize.is_some_and(|m| m != self.maxsize);
        if changed {
            if let Some(d) = duration {
                self.duration = d;
            }
            if let Some(m) = maxsize {
                self.maxsize = m;
            }
            self.producers.clear();
        }
        changed
    }
}

/// IDMPAUTO's idempotent ID: a 128-bit XXH3 hash of the field/value pairs that does not
/// depend on their order, computed as Redis's `createIdempotencyHash` does, so the IDs are
/// the same bytes Redis stores.
pub fn auto_iid(fields: &[(Bytes, Bytes)]) -> Bytes {
    let (mut sum_lo, mut sum_hi, mut xor_lo, mut xor_hi) = (0u64, 0u64, 0u64, 0u64);
    let mut buf = Vec::new();
    for (f, v) in fields {
        buf.clear();
        buf.extend_from_slice(f);
        buf.extend_from_slice(&(f.len() as i64).to_ne_bytes());
        buf.extend_from_slice(v);
        let h = xxhash_rust::xxh3::xxh3_128(&buf);
        let (lo, hi) = (h as u64, (h >> 64) as u64);
        sum_lo = sum_lo.wrapping_add(lo);
        sum_hi = sum_hi.wrapping_add(hi);
        xor_lo ^= lo;
        xor_hi ^= hi;
    }
    let lo = sum_lo ^ xor_hi.rotate_left(1);
    let hi = sum_hi ^ xor_lo.rotate_left(1);
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&lo.to_le_bytes());
    out.extend_from_slice(&hi.to_le_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64) -> StreamId {
        StreamId::new(ms, 0)
    }

    #[test]
    fn a_producer_keeps_its_newest_ids_up_to_maxsize() {
        let mut t = Idmp::with_limits(100, 2);
        assert_eq!(t.record(b"p", b"a", id(1)), Record::Added);
        assert_eq!(t.record(b"p", b"b", id(2)), Record::Added);
        assert_eq!(t.record(b"p", b"a", id(1)), Record::Same);
        assert_eq!(t.record(b"p", b"a", id(9)), Record::Conflict(id(1)));
        assert_eq!(t.record(b"p", b"c", id(3)), Record::Added);
        assert_eq!(t.lookup(b"p", b"a"), None, "the oldest was evicted");
        assert_eq!(t.lookup(b"q", b"b"), None, "producers are separate");
        assert_eq!(
            (t.pids_tracked(), t.iids_tracked(), t.iids_added),
            (1, 2, 3)
        );
    }

    #[test]
    fn ids_expire_by_their_entry_time_and_empty_producers_go() {
        let mut t = Idmp::with_limits(10, 100);
        t.record(b"p", b"a", id(1_000));
        t.record(b"p", b"b", id(5_000));
        t.record(b"q", b"a", id(2_000));
        t.expire(12_000);
        assert_eq!((t.pids_tracked(), t.iids_tracked()), (1, 1));
        assert!(t.configure(Some(10), Some(5)));
        assert_eq!(t.iids_tracked(), 0);
        assert!(!t.configure(Some(10), None));
    }

    #[test]
    fn auto_ids_ignore_pair_order() {
        let a = (Bytes::from_static(b"f"), Bytes::from_static(b"1"));
        let b = (Bytes::from_static(b"g"), Bytes::from_static(b"2"));
        assert_eq!(
            auto_iid(&[a.clone(), b.clone()]),
            auto_iid(&[b.clone(), a.clone()])
        );
        assert_ne!(auto_iid(std::slice::from_ref(&a)), auto_iid(&[b]));
        assert_eq!(auto_iid(&[a]).len(), 16);
    }
}
