//! A stream's whole state as bytes, for the base file of a compacted AOF: what an
//! XADD-per-entry rewrite cannot reproduce comes back exactly — chunk boundaries (XINFO
//! `radix-tree-keys`, and so what `~` trimming removes), deleted entries still held in their
//! chunks (which decide a group's `lag`), pending entries whose stream entry is gone, the
//! NACK queue order, consumers' seen and active times, and the idempotency tables with their
//! lifetime counters.
//!
//! Two records carry it: `RELAY-XCHUNKS key <chunks>` (repeated, each a run of whole chunks
//! of bounded size) appends chunks in order, then `RELAY-XMETA key <state>` sets everything
//! else. Chunks travel as their entries (deleted ones flagged) and are rebuilt by the same
//! appends that built them, so their bytes are the same without trusting a stored layout.
//! Decoding checks every length and every invariant the stream relies on (IDs increasing
//! across chunks, a live entry in every chunk, owners that exist) and answers an error,
//! never a panic, for bytes that break one.

use super::group::{ConsumerGroup, PendingEntry};
use super::id::StreamId;
use super::idmp::Idmp;
use super::Stream;
use bytes::Bytes;

/// The record that appends chunks to a stream (creating it).
pub const CHUNKS: &[u8] = b"RELAY-XCHUNKS";
/// The record that sets a stream's counters, groups and idempotency state (creating it).
pub const META: &[u8] = b"RELAY-XMETA";
/// The record that sets a stream's idempotency lifetime counters (logged when an XADD is
/// answered as a duplicate, which changes nothing else).
pub const IDMP_STATS: &[u8] = b"RELAY-XIDMPSTATS";

const META_VERSION: u8 = 1;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_varint(out, id.ms);
    put_varint(out, id.seq);
}

/// `None` as 0, `Some(v)` as `v + 1` (values never reach u64::MAX here: times and counts).
fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    put_varint(out, v.map_or(0, |v| v.saturating_add(1)));
}

/// Checked reads over a blob.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

type Res<T> = Result<T, String>;

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn u8(&mut self) -> Res<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| format!("ends early at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= ((b & 0x7f) as u64)
                .checked_shl(shift)
                .filter(|x| x >> shift == (b & 0x7f) as u64)
                .ok_or("varint too large")?;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    /// A count of items that each take at least one byte: never more than the bytes left,
    /// so a damaged count cannot make a huge allocation.
    fn count(&mut self) -> Res<usize> {
        let n = self.varint()?;
        if n > (self.data.len() - self.pos.min(self.data.len())) as u64 {
            return Err(format!("count {n} larger than the data"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Res<Bytes> {
        let n = self.count()?;
        let b = self
            .data
            .get(self.pos..self.pos + n)
            .ok_or("bytes past the end")?;
        self.pos += n;
        Ok(Bytes::copy_from_slice(b))
    }

    fn id(&mut self) -> Res<StreamId> {
        Ok(StreamId::new(self.varint()?, self.varint()?))
    }

    fn opt(&mut self) -> Res<Option<u64>> {
        Ok(self.varint()?.checked_sub(1))
    }
}

/// Encode the stream's chunks as `RELAY-XCHUNKS` payloads of about `max_bytes` each (whole
/// chunks; a payload holds at least one), calling `emit` with each.
pub fn encode_chunks<E>(
    s: &Stream,
    max_bytes: usize,
    mut emit: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut out = Vec::new();
    for chunk in s.chunks.values() {
        let entries = chunk.all_entries();
        put_varint(&mut out, entries.len() as u64);
        for (e, deleted) in entries {
            out.push(deleted as u8);
            put_id(&mut out, e.id);
            put_varint(&mut out, e.fields.len() as u64);
            for (f, v) in &e.fields {
                put_bytes(&mut out, f);
                put_bytes(&mut out, v);
            }
        }
        if out.len() >= max_bytes {
            emit(&out)?;
            out.clear();
        }
    }
    if !out.is_empty() {
        emit(&out)?;
    }
    Ok(())
}

/// Append the chunks of a `RELAY-XCHUNKS` payload to `s`.
pub fn apply_chunks(s: &mut Stream, blob: &[u8]) -> Res<()> {
    let mut r = Reader::new(blob);
    while !r.done() {
        let n = r.count()?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let deleted = match r.u8()? {
                0 => false,
                1 => true,
                f => return Err(format!("bad entry flag {f}")),
            };
            let id = r.id()?;
            let nfields = r.count()?;
            let mut fields = Vec::with_capacity(nfields);
            for _ in 0..nfields {
                fields.push((r.bytes()?, r.bytes()?));
            }
            entries.push((id, deleted, fields));
        }
        s.restore_chunk(entries)?;
    }
    Ok(())
}

/// The `RELAY-XMETA` payload: counters, groups with their PELs and consumers, idempotency.
pub fn encode_meta(s: &Stream) -> Vec<u8> {
    let mut out = vec![META_VERSION];
    put_id(&mut out, s.last_id);
    put_id(&mut out, s.max_deleted_id);
    put_varint(&mut out, s.entries_added);
    put_varint(&mut out, s.len() as u64);
    put_varint(&mut out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        put_bytes(&mut out, name);
        put_id(&mut out, g.last_id);
        put_opt(&mut out, g.entries_read);
        put_varint(&mut out, g.nack_counter());
        put_varint(&mut out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            put_bytes(&mut out, cname);
            put_varint(&mut out, c.seen_time);
            put_opt(&mut out, c.active_time);
        }
        put_varint(&mut out, g.pel().len() as u64);
        for (id, p) in g.pel() {
            put_id(&mut out, *id);
            put_bytes(&mut out, &p.consumer);
            put_varint(&mut out, p.delivery_time);
            put_varint(&mut out, p.delivery_count);
            put_varint(&mut out, p.nack_seq());
        }
    }
    let idmp = &s.idmp;
    put_varint(&mut out, idmp.duration);
    put_varint(&mut out, idmp.maxsize);
    put_varint(&mut out, idmp.iids_added);
    put_varint(&mut out, idmp.iids_duplicates);
    let producers = idmp.producers();
    put_varint(&mut out, producers.len() as u64);
    for (pid, ids) in producers {
        put_bytes(&mut out, pid);
        put_varint(&mut out, ids.len() as u64);
        for (iid, id) in ids {
            put_bytes(&mut out, iid);
            put_id(&mut out, *id);
        }
    }
    out
}

/// Set everything but the chunks from a `RELAY-XMETA` payload; the chunks must be in place.
pub fn apply_meta(s: &mut Stream, blob: &[u8]) -> Res<()> {
    let mut r = Reader::new(blob);
    let version = r.u8()?;
    if version != META_VERSION {
        return Err(format!("unknown stream state version {version}"));
    }
    let last_id = r.id()?;
    let max_deleted_id = r.id()?;
    let entries_added = r.varint()?;
    let len = r.varint()?;
    if len != s.len() as u64 {
        return Err(format!(
            "the state says {len} entries, the chunks hold {}",
            s.len()
        ));
    }
    if s.last_chunk_id().is_some_and(|top| top > last_id) {
        return Err("the last ID is below an entry's ID".into());
    }
    // Invariants the lag and entries-read arithmetic relies on.
    if entries_added < len || max_deleted_id > last_id {
        return Err("inconsistent counters".into());
    }
    let mut groups = std::collections::BTreeMap::new();
    for _ in 0..r.count()? {
        let name = r.bytes()?;
        let last = r.id()?;
        let entries_read = r.opt()?;
        let nacks = r.varint()?;
        let mut consumers = Vec::new();
        for _ in 0..r.count()? {
            consumers.push((r.bytes()?, r.varint()?, r.opt()?));
        }
        let mut pel = Vec::new();
        for _ in 0..r.count()? {
            let id = r.id()?;
            let consumer = r.bytes()?;
            let delivery_time = r.varint()?;
            let delivery_count = r.varint()?;
            let nack_seq = r.varint()?;
            pel.push((
                id,
                PendingEntry::restored(consumer, delivery_time, delivery_count, nack_seq),
            ));
        }
        let g = ConsumerGroup::restore(last, entries_read, nacks, consumers, pel)
            .map_err(|e| format!("group {}: {e}", String::from_utf8_lossy(&name)))?;
        groups.insert(name, g);
    }
    let duration = r.varint()?;
    let maxsize = r.varint()?;
    let added = r.varint()?;
    let duplicates = r.varint()?;
    let mut producers = Vec::new();
    for _ in 0..r.count()? {
        let pid = r.bytes()?;
        let mut ids = Vec::new();
        for _ in 0..r.count()? {
            ids.push((r.bytes()?, r.id()?));
        }
        producers.push((pid, ids));
    }
    if !r.done() {
        return Err("bytes after the stream state".into());
    }
    s.last_id = last_id;
    s.max_deleted_id = max_deleted_id;
    s.entries_added = entries_added;
    s.groups = groups;
    s.idmp = Idmp::restore(duration, maxsize, added, duplicates, producers)?;
    Ok(())
}

/// The `RELAY-XIDMPSTATS` arguments: iids-added and iids-duplicates.
pub fn idmp_stats(s: &Stream) -> (u64, u64) {
    (s.idmp.iids_added, s.idmp.iids_duplicates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::stream::group::NackMode;
    use crate::store::stream::NodeLimits;

    fn fv(v: &str) -> Vec<(Bytes, Bytes)> {
        vec![(Bytes::from_static(b"f"), Bytes::from(v.to_string()))]
    }

    /// Everything XINFO STREAM FULL and XPENDING can see, as text.
    fn state(s: &Stream) -> String {
        let chunks: Vec<_> = s
            .chunks
            .values()
            .map(|c| (c.all_entries(), c.redis_bytes()))
            .collect();
        let groups: Vec<_> = s
            .groups
            .iter()
            .map(|(n, g)| {
                (
                    n.clone(),
                    g.last_id,
                    g.entries_read,
                    g.nack_counter(),
                    g.pel().clone(),
                    g.by_delivery().collect::<Vec<_>>(),
                    g.consumers
                        .iter()
                        .map(|(n, c)| (n.clone(), c.seen_time, c.active_time, c.pending.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let mut producers = s.idmp.producers();
        producers.sort();
        format!(
            "{chunks:?} {} {:?} {:?} {} {groups:?} {} {} {} {} {producers:?}",
            s.len(),
            s.last_id,
            s.max_deleted_id,
            s.entries_added,
            s.idmp.duration,
            s.idmp.maxsize,
            s.idmp.iids_added,
            s.idmp.iids_duplicates
        )
    }

    fn round_trip(s: &Stream, max_bytes: usize) -> Stream {
        let mut back = Stream::default();
        encode_chunks(s, max_bytes, |blob| apply_chunks(&mut back, blob)).unwrap();
        apply_meta(&mut back, &encode_meta(s)).unwrap();
        back
    }

    fn rich() -> Stream {
        let limits = NodeLimits {
            max_entries: 3,
            max_bytes: 4096,
        };
        let mut s = Stream::default();
        for i in 1..=20 {
            s.append(StreamId::new(i, 0), &fv(&i.to_string()), limits);
        }
        // Tombstones inside chunks, and a chunk emptied (and so dropped) entirely.
        for i in [2, 5, 7, 8, 9] {
            s.delete(StreamId::new(i, 0));
        }
        s.max_deleted_id = StreamId::new(9, 0);
        let mut g = ConsumerGroup::new(StreamId::new(12, 0), Some(12));
        let alice = Bytes::from_static(b"alice");
        g.consumer(&alice, 1_000);
        for i in [3, 8, 11, 12] {
            g.deliver_new(StreamId::new(i, 0), &alice, 2_000 + i);
        }
        g.nack(StreamId::new(11, 0), NackMode::Fail, None, false);
        g.nack(StreamId::new(3, 0), NackMode::Silent, None, false);
        g.consumer(&Bytes::from_static(b"idle"), 500);
        s.groups.insert(Bytes::from_static(b"g1"), g);
        s.idmp = Idmp::with_limits(50, 2);
        s.idmp.record(b"p", b"a", StreamId::new(1, 0));
        s.idmp.record(b"p", b"b", StreamId::new(4, 0));
        s.idmp.record(b"p", b"c", StreamId::new(6, 0));
        s.idmp.iids_duplicates = 4;
        s
    }

    #[test]
    fn a_stream_comes_back_exactly() {
        let s = rich();
        assert!(s.chunk_count() > 3);
        for max_bytes in [1, 64, 1 << 20] {
            let back = round_trip(&s, max_bytes);
            assert_eq!(state(&back), state(&s), "payloads of {max_bytes} bytes");
            assert_eq!(back.chunk_count(), s.chunk_count());
        }
    }

    #[test]
    fn an_empty_stream_with_groups_comes_back() {
        let mut s = rich();
        for i in 1..=20 {
            s.delete(StreamId::new(i, 0));
        }
        assert_eq!(s.chunk_count(), 0);
        let back = round_trip(&s, 1024);
        assert_eq!(state(&back), state(&s));
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let s = rich();
        let mut chunks = Vec::new();
        encode_chunks(&s, usize::MAX, |b| {
            chunks = b.to_vec();
            Ok::<(), ()>(())
        })
        .unwrap();
        let meta = encode_meta(&s);
        for cut in 0..chunks.len() {
            let _ = apply_chunks(&mut Stream::default(), &chunks[..cut]);
        }
        for at in 0..chunks.len() {
            let mut bad = chunks.clone();
            bad[at] ^= 0xff;
            let mut t = Stream::default();
            if apply_chunks(&mut t, &bad).is_ok() {
                let _ = apply_meta(&mut t, &meta);
            }
        }
        let mut whole = Stream::default();
        apply_chunks(&mut whole, &chunks).unwrap();
        for at in 0..meta.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = meta.clone();
                bad[at] ^= flip;
                let _ = apply_meta(&mut whole.clone(), &bad);
            }
        }
        for cut in 0..meta.len() {
            assert!(apply_meta(&mut whole.clone(), &meta[..cut]).is_err());
        }
        // Chunks out of order are refused.
        let mut twice = Stream::default();
        apply_chunks(&mut twice, &chunks).unwrap();
        assert!(apply_chunks(&mut twice, &chunks).is_err());
    }
}
