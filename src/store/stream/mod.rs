//! The stream value: entries in compact chunks keyed by their first ID, plus the stream's
//! bookkeeping (last generated ID, entries ever added, largest deleted ID).
//!
//! Invariants: chunks are disjoint and ordered by ID; only the last chunk is appended to
//! (O(1)); a seek is one ordered-map lookup (O(log n)) followed by a scan of at most one
//! chunk; trimming from the head drops whole chunks. `len` counts live entries and
//! `last_id` never decreases, even when the entries holding it are deleted.

pub mod chunk;
pub mod group;
pub mod id;
pub mod idmp;
pub mod ops;
pub mod snapshot;

use bytes::Bytes;
use chunk::{Chunk, Entry};
use id::StreamId;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a chunk ends: Redis's stream-node-max-entries and stream-node-max-bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_entries: u64,
    pub max_bytes: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_entries: 100,
            max_bytes: 4096,
        }
    }
}

/// What deleting an entry does about consumer groups that still reference it (Redis 8.2's
/// KEEPREF | DELREF | ACKED on XADD, XTRIM, XDELEX and XACKDEL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefPolicy {
    /// Delete; pending entries that name it stay (dangling), as XDEL always did.
    #[default]
    KeepRef,
    /// Delete, and remove it from every group's PEL.
    DelRef,
    /// Delete only if no group still needs it (read by all, pending in none).
    Acked,
}

/// An entry as a snapshot carries it: ID, deleted, fields.
pub type RestoredEntry = (StreamId, bool, Vec<(Bytes, Bytes)>);

/// How XADD/XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

#[derive(Debug, Clone, Default)]
pub struct Stream {
    /// Shared so that copying a stream (an AOF compaction's snapshot) copies pointers, not
    /// bytes: a chunk is copied only when it is next changed while a copy still holds it.
    chunks: BTreeMap<StreamId, Arc<Chunk>>,
    len: usize,
    pub last_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    /// Consumer groups by name (ordered, as Redis lists them).
    pub groups: BTreeMap<Bytes, group::ConsumerGroup>,
    /// Idempotent producers' recent IDs (XADD IDMP / IDMPAUTO).
    pub idmp: idmp::Idmp,
}

impl Stream {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last ID held in any chunk, deleted or not.
    pub fn last_chunk_id(&self) -> Option<StreamId> {
        self.chunks
            .values()
            .next_back()
            .and_then(|c| c.last_id_any())
    }

    /// Append a chunk rebuilt from its entries (ID, deleted, fields), as `snapshot` does:
    /// the entries must follow every ID already held, in increasing order, and one at least
    /// must be live (a chunk goes when its last live entry does). The stream's counters are
    /// not touched.
    pub(crate) fn restore_chunk(&mut self, entries: Vec<RestoredEntry>) -> Result<(), String> {
        let mut prev = self.last_chunk_id();
        for (id, _, _) in &entries {
            if prev.is_some_and(|p| p >= *id) {
                return Err(format!("entry {id:?} is out of order"));
            }
            prev = Some(*id);
        }
        let live = entries.iter().filter(|(_, deleted, _)| !deleted).count();
        let Some(((first, _, first_fields), rest)) = entries.split_first() else {
            return Err("an empty chunk".into());
        };
        if live == 0 {
            return Err("a chunk without a live entry".into());
        }
        let mut chunk = Chunk::new(*first, first_fields);
        for (id, _, fields) in rest {
            chunk.push(*id, fields);
        }
        for (id, deleted, _) in &entries {
            if *deleted {
                chunk.delete(*id);
            }
        }
        chunk.shrink();
        self.chunks.insert(*first, Arc::new(chunk));
        self.len += live;
        Ok(())
    }

    /// Number of chunks (Redis's nodes: XINFO STREAM radix-tree-keys).
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Approximate heap bytes (for MEMORY-style accounting).
    pub fn heap_bytes(&self) -> usize {
        self.chunks.values().map(|c| c.heap_bytes() + 64).sum()
    }

    /// The ID `*` produces at `now_ms`: the clock if it moved past the last ID, otherwise the
    /// next sequence after it (so IDs stay monotonic when the clock goes back). `None` when the
    /// stream has used the last possible ID.
    pub fn next_auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.next()
        }
    }

    /// Append an entry. The caller has checked `id > last_id`.
    pub fn append(&mut self, id: StreamId, fields: &[(Bytes, Bytes)], limits: NodeLimits) {
        let raw_len: usize = fields.iter().map(|(f, v)| f.len() + v.len()).sum();
        match self.chunks.last_entry() {
            Some(mut last) if !last.get().is_full_for(raw_len, limits) => {
                Arc::make_mut(last.get_mut()).push(id, fields)
            }
            last => {
                // The finished chunk will not grow again: give back its spare capacity
                // (unless a snapshot shares it; it is not worth a copy).
                if let Some(mut full) = last {
                    if let Some(c) = Arc::get_mut(full.get_mut()) {
                        c.shrink();
                    }
                }
                self.chunks.insert(id, Arc::new(Chunk::new(id, fields)));
            }
        }
        self.len += 1;
        self.last_id = id;
        self.entries_added += 1;
    }

    /// The chunks that may hold IDs in `[start, end]` (`start <= end`): the one holding
    /// `start` may begin before it.
    fn chunks_covering(
        &self,
        start: StreamId,
        end: StreamId,
    ) -> std::collections::btree_map::Range<'_, StreamId, Arc<Chunk>> {
        let from = self
            .chunks
            .range(..=start)
            .next_back()
            .map_or(start, |(k, _)| *k);
        self.chunks.range(from..=end)
    }

    /// Entries with IDs in `[start, end]`, at most `count`, ascending or (`rev`) descending.
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        count: Option<usize>,
        rev: bool,
    ) -> Vec<Entry> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let limit = count.unwrap_or(usize::MAX);
        let chunks = self.chunks_covering(start, end);
        let mut push_from = |c: &Chunk| {
            for e in c.entries_in(start, end, rev, limit - out.len()) {
                if out.len() >= limit {
                    return false;
                }
                out.push(e);
            }
            out.len() < limit
        };
        if rev {
            for (_, c) in chunks.rev() {
                if !push_from(c) {
                    break;
                }
            }
        } else {
            for (_, c) in chunks {
                if !push_from(c) {
                    break;
                }
            }
        }
        out
    }

    /// The IDs `range` would return (ascending), without decoding the entries.
    pub fn range_ids(&self, start: StreamId, end: StreamId, count: Option<usize>) -> Vec<StreamId> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let limit = count.unwrap_or(usize::MAX);
        for (_, c) in self.chunks_covering(start, end) {
            for id in c.ids().filter(|id| *id >= start && *id <= end) {
                if out.len() >= limit {
                    return out;
                }
                out.push(id);
            }
        }
        out
    }

    /// `range`, encoded straight into `out` as the RESP array XRANGE replies with (one copy
    /// from the chunks, no per-field allocations). Returns the IDs it holds, in reply order.
    pub fn encode_range(
        &self,
        start: StreamId,
        end: StreamId,
        count: Option<usize>,
        rev: bool,
        out: &mut bytes::BytesMut,
    ) -> Vec<StreamId> {
        let mut body = bytes::BytesMut::new();
        let mut ids = Vec::new();
        let mut n = 0;
        if start <= end {
            let limit = count.unwrap_or(usize::MAX);
            let chunks = self.chunks_covering(start, end);
            let mut each = |c: &Chunk| {
                n += c.encode_entries_in(start, end, rev, limit - n, &mut body, &mut ids);
                n < limit
            };
            if rev {
                for (_, c) in chunks.rev() {
                    if !each(c) {
                        break;
                    }
                }
            } else {
                for (_, c) in chunks {
                    if !each(c) {
                        break;
                    }
                }
            }
        }
        out.reserve(body.len() + 16);
        crate::reply::array_header(out, n);
        out.extend_from_slice(&body);
        ids
    }

    /// Whether a deleted entry may lie at or after `start` (Redis's streamRangeHasTombstones
    /// with an open end), which makes a group's entries-read counter unknowable.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.len == 0 || self.max_deleted_id == StreamId::MIN {
            return false;
        }
        let first = self.first_entry().map_or(StreamId::MIN, |e| e.id);
        if first > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id
    }

    /// Redis's streamEstimateDistanceFromFirstEverEntry: the entries-read value of `id`, if
    /// it can be known.
    pub fn entries_read_at(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.len == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        if id == self.last_id {
            return Some(self.entries_added);
        }
        if id > self.last_id {
            return None;
        }
        let first = self.first_entry().map_or(StreamId::MIN, |e| e.id);
        if self.max_deleted_id == StreamId::MIN || self.max_deleted_id < first {
            if id < first {
                return Some(self.entries_added - self.len as u64);
            }
            if id == first {
                return Some(self.entries_added - self.len as u64 + 1);
            }
        }
        None
    }

    /// The first and last live entries.
    pub fn first_entry(&self) -> Option<Entry> {
        self.range(StreamId::MIN, StreamId::MAX, Some(1), false)
            .pop()
    }

    pub fn last_entry(&self) -> Option<Entry> {
        self.range(StreamId::MIN, StreamId::MAX, Some(1), true)
            .pop()
    }

    /// Delete one entry (XDEL). Empty chunks are dropped; the largest deleted ID is kept.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&key, chunk)) = self.chunks.range_mut(..=id).next_back() else {
            return false;
        };
        if !chunk.contains(id) || !Arc::make_mut(chunk).delete(id) {
            return false;
        }
        if chunk.live() == 0 {
            self.chunks.remove(&key);
        }
        self.len -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        true
    }

    /// Whether entry `id` exists (not deleted).
    pub fn contains(&self, id: StreamId) -> bool {
        self.chunks
            .range(..=id)
            .next_back()
            .is_some_and(|(_, c)| c.contains(id))
    }

    /// Redis's `streamEntryIsReferenced`: some group has not read `id` yet, or has it
    /// pending.
    pub fn is_referenced(&self, id: StreamId) -> bool {
        let Some(min_last) = self.groups.values().map(|g| g.last_id).min() else {
            return false;
        };
        id > min_last || self.groups.values().any(|g| g.pel().contains_key(&id))
    }

    /// Remove `id` from every group's PEL (and its owner's); true if any had it.
    pub fn remove_refs(&mut self, id: StreamId) -> bool {
        let mut any = false;
        for g in self.groups.values_mut() {
            any |= g.ack(id);
        }
        any
    }

    /// Delete `id` under `policy` (XDELEX): 1 deleted, -1 not found, 2 kept because a group
    /// still references it (ACKED).
    pub fn delete_with(&mut self, id: StreamId, policy: RefPolicy) -> i64 {
        match policy {
            RefPolicy::Acked if self.is_referenced(id) => return 2,
            RefPolicy::DelRef => {
                self.remove_refs(id);
            }
            _ => {}
        }
        if self.delete(id) {
            1
        } else {
            -1
        }
    }

    /// Trim from the head as Redis's `streamTrim` does: whole chunks while the condition holds
    /// and `limit` (0 = none) allows; then, unless `approx`, entries inside the next chunk.
    /// Returns the number of entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: usize) -> usize {
        self.trim_with(how, approx, limit, RefPolicy::KeepRef, None)
    }

    /// `trim` under a reference policy. With DELREF or ACKED no chunk is dropped unseen and
    /// `~` does not stop the walk: every entry a trim would remove is looked at, ACKED skips
    /// the ones still referenced (leaving holes), DELREF clears their references first.
    /// The IDs deleted under ACKED are pushed to `acked_ids` when given: with holes, the
    /// length left does not say which entries went (the AOF logs them by ID).
    pub fn trim_with(
        &mut self,
        how: Trim,
        approx: bool,
        limit: usize,
        policy: RefPolicy,
        mut acked_ids: Option<&mut Vec<StreamId>>,
    ) -> usize {
        if policy == RefPolicy::KeepRef {
            return self.trim_keepref(how, approx, limit);
        }
        let mut deleted = 0;
        // With ACKED, an entry past the least-advanced group's last delivered ID is still to
        // be read, and so is every entry after it: the walk can stop there (Redis walks on).
        let unread_after = self.groups.values().map(|g| g.last_id).min();
        let mut all_unread = false;
        let mut next = self.chunks.keys().next().copied();
        while let Some(key) = next {
            next = self
                .chunks
                .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, _)| *k);
            if let Trim::MaxLen(max) = how {
                if self.len as u64 <= max {
                    break;
                }
            }
            let Some(chunk) = self.chunks.get(&key) else {
                break;
            };
            let live = chunk.live();
            if limit > 0 && deleted + live > limit {
                break;
            }
            let eligible = match how {
                Trim::MaxLen(max) => (self.len - live) as u64 >= max,
                Trim::MinId(min) => chunk.last_id_any().is_some_and(|last| last < min),
            };
            let ids: Vec<StreamId> = chunk.ids().collect();
            let mut from_chunk = 0;
            for id in ids {
                let stop = match how {
                    Trim::MaxLen(max) => self.len as u64 <= max,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                if policy == RefPolicy::Acked && unread_after.is_some_and(|last| id > last) {
                    all_unread = true;
                    break;
                }
                if policy == RefPolicy::Acked && self.is_referenced(id) {
                    continue;
                }
                if policy == RefPolicy::DelRef {
                    self.remove_refs(id);
                }
                if let Some(c) = self.chunks.get_mut(&key) {
                    if Arc::make_mut(c).delete(id) {
                        from_chunk += 1;
                        self.len -= 1;
                        if policy == RefPolicy::Acked {
                            if let Some(ids) = acked_ids.as_mut() {
                                ids.push(id);
                            }
                        }
                    }
                }
            }
            deleted += from_chunk;
            if self.chunks.get(&key).is_some_and(|c| c.live() == 0) {
                self.chunks.remove(&key);
            }
            if !eligible || all_unread {
                break;
            }
        }
        deleted
    }

    fn trim_keepref(&mut self, how: Trim, approx: bool, limit: usize) -> usize {
        let mut deleted = 0;
        while let Some(mut first) = self.chunks.first_entry() {
            if let Trim::MaxLen(max) = how {
                if self.len as u64 <= max {
                    break;
                }
            }
            let live = first.get().live();
            if limit > 0 && deleted + live > limit {
                break;
            }
            let whole = match how {
                Trim::MaxLen(max) => (self.len - live) as u64 >= max,
                Trim::MinId(min) => first.get().last_id_any().is_some_and(|last| last < min),
            };
            if whole {
                first.remove();
                deleted += live;
                self.len -= live;
                continue;
            }
            if approx {
                break;
            }
            let excess = match how {
                Trim::MaxLen(max) => self.len - max as usize,
                Trim::MinId(_) => usize::MAX,
            };
            let n = Arc::make_mut(first.get_mut()).delete_front_while(excess, |id| match how {
                Trim::MinId(min) => id < min,
                Trim::MaxLen(_) => true,
            });
            deleted += n;
            self.len -= n;
            if first.get().live() == 0 {
                first.remove();
            }
            break;
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &mut Stream, ms: u64, seq: u64) {
        s.append(
            StreamId::new(ms, seq),
            &[(Bytes::from("f"), Bytes::from(format!("{ms}-{seq}")))],
            NodeLimits::default(),
        );
    }

    #[test]
    fn range_spans_chunks_in_both_directions() {
        let mut s = Stream::default();
        for i in 1..=350 {
            add(&mut s, i, 0);
        }
        assert_eq!(s.len(), 350);
        let mid = s.range(StreamId::new(95, 0), StreamId::new(105, 0), None, false);
        assert_eq!(mid.len(), 11);
        assert_eq!(mid[0].id, StreamId::new(95, 0));
        let back = s.range(StreamId::MIN, StreamId::MAX, Some(3), true);
        assert_eq!(
            back.iter().map(|e| e.id.ms).collect::<Vec<_>>(),
            vec![350, 349, 348]
        );
    }

    #[test]
    fn exact_trim_keeps_maxlen_and_approx_trims_whole_chunks() {
        let mut s = Stream::default();
        for i in 1..=250 {
            add(&mut s, i, 0);
        }
        assert_eq!(
            s.trim(Trim::MaxLen(120), true, 0),
            100,
            "one whole chunk of 100"
        );
        assert_eq!(s.len(), 150);
        assert_eq!(s.trim(Trim::MaxLen(120), false, 0), 30);
        assert_eq!(s.len(), 120);
        assert_eq!(s.first_entry().unwrap().id, StreamId::new(131, 0));
        assert_eq!(s.trim(Trim::MinId(StreamId::new(200, 0)), false, 0), 69);
        assert_eq!(s.first_entry().unwrap().id, StreamId::new(200, 0));
    }

    #[test]
    fn a_copy_shares_chunks_until_either_side_changes_them() {
        let mut s = Stream::default();
        for i in 1..=250 {
            add(&mut s, i, 0);
        }
        let copy = s.clone();
        assert!(Arc::ptr_eq(
            &s.chunks[&StreamId::new(1, 0)],
            &copy.chunks[&StreamId::new(1, 0)]
        ));
        assert!(s.delete(StreamId::new(5, 0)));
        add(&mut s, 251, 0);
        assert!(
            Arc::ptr_eq(
                &s.chunks[&StreamId::new(101, 0)],
                &copy.chunks[&StreamId::new(101, 0)]
            ),
            "an untouched chunk is still shared"
        );
        s.trim(Trim::MaxLen(100), false, 0);
        assert_eq!(copy.len(), 250, "the copy is the state it was taken at");
        assert_eq!(
            copy.range(StreamId::new(5, 0), StreamId::new(5, 0), None, false)
                .len(),
            1
        );
        assert_eq!(copy.last_entry().unwrap().id, StreamId::new(250, 0));
        assert_eq!(s.len(), 100);
    }

    #[test]
    fn delete_tracks_max_deleted_and_drops_empty_chunks() {
        let mut s = Stream::default();
        add(&mut s, 1, 0);
        add(&mut s, 2, 0);
        assert!(s.delete(StreamId::new(2, 0)));
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(s.is_empty());
        assert_eq!(s.max_deleted_id, StreamId::new(2, 0));
        assert_eq!(s.last_id, StreamId::new(2, 0));
        assert!(s
            .range(StreamId::MIN, StreamId::MAX, None, false)
            .is_empty());
    }

    #[test]
    fn an_acked_trim_is_not_reproduced_by_its_length_alone() {
        // Why ACKED trims are logged by ID: search small streams for a trim whose result
        // differs from `MAXLEN = <length left> ACKED` replayed on the same state.
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let limits = NodeLimits {
            max_entries: 3,
            max_bytes: 4096,
        };
        let mut found = None;
        for _ in 0..20_000 {
            let mut s = Stream::default();
            let n = 4 + next(8);
            for i in 1..=n {
                s.append(
                    StreamId::new(i, 0),
                    &[(Bytes::from("f"), Bytes::from("v"))],
                    limits,
                );
            }
            let mut g = group::ConsumerGroup::new(StreamId::new(n, 0), Some(n));
            let c = Bytes::from_static(b"c");
            g.consumer(&c, 0);
            for i in 1..=n {
                if next(3) == 0 {
                    g.deliver_new(StreamId::new(i, 0), &c, 0);
                }
            }
            s.groups.insert(Bytes::from_static(b"g"), g);
            let how = if next(2) == 0 {
                Trim::MaxLen(next(n))
            } else {
                Trim::MinId(StreamId::new(1 + next(n), 0))
            };
            let (approx, limit) = (next(2) == 0, next(4) as usize);
            let mut replay = s.clone();
            let mut ids = Vec::new();
            s.trim_with(how, approx, limit, RefPolicy::Acked, Some(&mut ids));
            let by_length = {
                let mut r = replay.clone();
                r.trim_with(
                    Trim::MaxLen(s.len() as u64),
                    false,
                    0,
                    RefPolicy::Acked,
                    None,
                );
                r.range_ids(StreamId::MIN, StreamId::MAX, None)
            };
            for id in &ids {
                assert_eq!(replay.delete_with(*id, RefPolicy::Acked), 1);
            }
            let want = s.range_ids(StreamId::MIN, StreamId::MAX, None);
            assert_eq!(
                replay.range_ids(StreamId::MIN, StreamId::MAX, None),
                want,
                "by ID"
            );
            if by_length != want && found.is_none() {
                found = Some((how, approx, limit));
            }
        }
        assert!(found.is_some(), "replaying by length always matched");
    }
}
