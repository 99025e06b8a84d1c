//! A chunk of consecutive stream entries in one compact byte buffer — the idea of Redis's
//! listpack nodes.
//!
//! The chunk's master entry is its first: its ID is the chunk's key and its field names are
//! stored once. Each entry is then `flags, ms - master.ms, seq` (varints) followed either by
//! just its values (when its fields equal the master's, the common case) or by its own
//! field/value pairs. Deleting an entry flips a flag bit in place; the chunk is dropped when
//! its last live entry goes. A chunk ends where Redis would end its node — at `max_entries`
//! entries (live or deleted), or when Redis's listpack for it would reach `max_bytes` — so
//! approximate trimming removes exactly what Redis removes. For that the chunk keeps the byte
//! size Redis's listpack encoding would have (`redis_bytes`), computed as entries are added.

use super::id::StreamId;
use bytes::Bytes;

const DELETED: u8 = 1;
const SAME_FIELDS: u8 = 2;

/// One decoded entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: StreamId,
    pub fields: Vec<(Bytes, Bytes)>,
}

#[derive(Debug, Clone)]
pub struct Chunk {
    master: StreamId,
    master_fields: Vec<Bytes>,
    data: Vec<u8>,
    /// Entries ever appended (deleted ones included).
    total: usize,
    /// Live entries.
    live: usize,
    /// Redis listpack bytes of the master fields and of every entry appended (the parts that
    /// do not change after an append).
    lp_fixed: usize,
}

/// Listpack element sizes (listpack.c), to reproduce Redis's node boundaries.
mod lp {
    /// `lpStringToInt64`: a string stored as an integer.
    pub fn str2int(b: &[u8]) -> Option<i64> {
        if b.is_empty() || b.len() > 20 {
            return None;
        }
        crate::resp::parse_i64(b)
    }

    fn enclen_int(v: i64) -> usize {
        match v {
            0..=127 => 1,
            -4096..=4095 => 2,
            -32768..=32767 => 3,
            -8388608..=8388607 => 4,
            -2147483648..=2147483647 => 5,
            _ => 9,
        }
    }

    fn backlen(l: usize) -> usize {
        match l {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        }
    }

    pub fn int(v: i64) -> usize {
        let l = enclen_int(v);
        l + backlen(l)
    }

    pub fn bytes(b: &[u8]) -> usize {
        let l = match str2int(b) {
            Some(v) => enclen_int(v),
            None if b.len() < 64 => 1 + b.len(),
            None if b.len() < 4096 => 2 + b.len(),
            None => 5 + b.len(),
        };
        l + backlen(l)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(data: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = data.get(*pos) {
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    v
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn get_bytes<'a>(data: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = get_varint(data, pos) as usize;
    let start = (*pos).min(data.len());
    let end = (start + len).min(data.len());
    *pos = end;
    &data[start..end]
}

/// A position inside a chunk's data, with the entry header decoded.
struct Raw {
    offset: usize,
    flags: u8,
    id: StreamId,
    body: usize,
}

impl Chunk {
    pub fn new(id: StreamId, fields: &[(Bytes, Bytes)]) -> Chunk {
        let master_fields: Vec<Bytes> =
            fields.iter().map(|(f, _)| crate::store::owned(f)).collect();
        let lp_fixed = lp::int(master_fields.len() as i64)
            + master_fields.iter().map(|f| lp::bytes(f)).sum::<usize>()
            + lp::int(0);
        let mut c = Chunk {
            master: id,
            master_fields,
            data: Vec::with_capacity(64),
            total: 0,
            live: 0,
            lp_fixed,
        };
        c.push(id, fields);
        c
    }

    /// Whether Redis would start a new node for an entry whose fields and values total
    /// `raw_len` bytes (streamAppendItem's checks, in its order).
    pub fn is_full_for(&self, raw_len: usize, limits: super::NodeLimits) -> bool {
        let max_bytes = match limits.max_bytes {
            0 => 1 << 30,
            b => b.min(1 << 30),
        };
        (self.redis_bytes() + raw_len) as u64 >= max_bytes
            || (limits.max_entries > 0 && self.total as u64 >= limits.max_entries)
    }

    /// The size of Redis's listpack for this node: header, counters, master fields, entries.
    pub fn redis_bytes(&self) -> usize {
        6 + 1 + lp::int(self.live as i64) + lp::int((self.total - self.live) as i64) + self.lp_fixed
    }

    pub fn live(&self) -> usize {
        self.live
    }

    pub fn first_id(&self) -> StreamId {
        self.master
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity()
            + self
                .master_fields
                .iter()
                .map(|f| f.len() + 32)
                .sum::<usize>()
    }

    /// Append an entry; its ID must be greater than every ID in the chunk.
    pub fn push(&mut self, id: StreamId, fields: &[(Bytes, Bytes)]) {
        let same = fields.len() == self.master_fields.len()
            && fields
                .iter()
                .zip(&self.master_fields)
                .all(|((f, _), m)| f == m);
        self.data.push(if same { SAME_FIELDS } else { 0 });
        put_varint(&mut self.data, id.ms - self.master.ms);
        put_varint(&mut self.data, id.seq);
        if same {
            for (_, v) in fields {
                put_bytes(&mut self.data, v);
            }
        } else {
            put_varint(&mut self.data, fields.len() as u64);
            for (f, v) in fields {
                put_bytes(&mut self.data, f);
                put_bytes(&mut self.data, v);
            }
        }
        let s64 = |d: u64| d as i64;
        let mut lp_entry = lp::int(if same { 2 } else { 0 })
            + lp::int(s64(id.ms.wrapping_sub(self.master.ms)))
            + lp::int(s64(id.seq.wrapping_sub(self.master.seq)));
        if same {
            lp_entry += fields.iter().map(|(_, v)| lp::bytes(v)).sum::<usize>()
                + lp::int(fields.len() as i64 + 3);
        } else {
            lp_entry += lp::int(fields.len() as i64)
                + fields
                    .iter()
                    .map(|(f, v)| lp::bytes(f) + lp::bytes(v))
                    .sum::<usize>()
                + lp::int(2 * fields.len() as i64 + 4);
        }
        self.lp_fixed += lp_entry;
        self.total += 1;
        self.live += 1;
    }

    fn header(&self, offset: usize) -> Option<Raw> {
        let flags = *self.data.get(offset)?;
        let mut pos = offset + 1;
        let ms = self.master.ms + get_varint(&self.data, &mut pos);
        let seq = get_varint(&self.data, &mut pos);
        Some(Raw {
            offset,
            flags,
            id: StreamId::new(ms, seq),
            body: pos,
        })
    }

    /// Offset just past the entry whose body starts at `raw.body`.
    fn skip(&self, raw: &Raw) -> usize {
        let mut pos = raw.body;
        if raw.flags & SAME_FIELDS != 0 {
            for _ in 0..self.master_fields.len() {
                get_bytes(&self.data, &mut pos);
            }
        } else {
            let n = get_varint(&self.data, &mut pos);
            for _ in 0..n * 2 {
                get_bytes(&self.data, &mut pos);
            }
        }
        pos
    }

    fn decode(&self, raw: &Raw) -> Entry {
        let mut pos = raw.body;
        let fields = if raw.flags & SAME_FIELDS != 0 {
            self.master_fields
                .iter()
                .map(|f| {
                    (
                        f.clone(),
                        Bytes::copy_from_slice(get_bytes(&self.data, &mut pos)),
                    )
                })
                .collect()
        } else {
            let n = get_varint(&self.data, &mut pos) as usize;
            (0..n)
                .map(|_| {
                    let f = Bytes::copy_from_slice(get_bytes(&self.data, &mut pos));
                    let v = Bytes::copy_from_slice(get_bytes(&self.data, &mut pos));
                    (f, v)
                })
                .collect()
        };
        Entry { id: raw.id, fields }
    }

    fn raws(&self) -> impl Iterator<Item = Raw> + '_ {
        let mut offset = 0;
        std::iter::from_fn(move || {
            let raw = self.header(offset)?;
            offset = self.skip(&raw);
            Some(raw)
        })
    }

    /// Release spare buffer capacity (the chunk is complete).
    pub fn shrink(&mut self) {
        self.data.shrink_to_fit();
    }

    /// The last entry's ID, deleted or not (what Redis reads as a node's edge ID).
    pub fn last_id_any(&self) -> Option<StreamId> {
        self.raws().last().map(|r| r.id)
    }

    /// Every entry ever appended, deleted ones included (flagged `true`), in order: what
    /// rebuilds this chunk byte for byte (a compacted AOF's stream state).
    pub fn all_entries(&self) -> Vec<(Entry, bool)> {
        self.raws()
            .map(|r| (self.decode(&r), r.flags & DELETED != 0))
            .collect()
    }

    /// Whether `id` is a live entry of this chunk.
    pub fn contains(&self, id: StreamId) -> bool {
        self.raws()
            .find(|r| r.id >= id)
            .is_some_and(|r| r.id == id && r.flags & DELETED == 0)
    }

    /// Live entries in ID order.
    pub fn ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.raws().filter(|r| r.flags & DELETED == 0).map(|r| r.id)
    }

    /// Live entries with IDs in `[start, end]`, in order (or reversed).
    /// At most `limit` of them: only those are decoded (the first ones, or the last ones
    /// when `rev`).
    pub fn entries_in(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        limit: usize,
    ) -> Vec<Entry> {
        let live = self
            .raws()
            .filter(|r| r.flags & DELETED == 0 && r.id >= start && r.id <= end);
        if rev {
            let raws: Vec<Raw> = live.collect();
            raws.iter()
                .rev()
                .take(limit)
                .map(|r| self.decode(r))
                .collect()
        } else {
            live.take(limit).map(|r| self.decode(&r)).collect()
        }
    }

    /// `entries_in`, encoded straight into `out` as RESP entries (`[id, [field, value, …]]`)
    /// without decoding them first, their IDs pushed to `ids`. Returns how many were written.
    pub fn encode_entries_in(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        limit: usize,
        out: &mut bytes::BytesMut,
        ids: &mut Vec<StreamId>,
    ) -> usize {
        let live = self
            .raws()
            .filter(|r| r.flags & DELETED == 0 && r.id >= start && r.id <= end);
        if rev {
            let raws: Vec<Raw> = live.collect();
            let n = raws.len().min(limit);
            for r in raws.iter().rev().take(limit) {
                self.encode(r, out);
                ids.push(r.id);
            }
            n
        } else {
            let mut n = 0;
            for r in live.take(limit) {
                self.encode(&r, out);
                ids.push(r.id);
                n += 1;
            }
            n
        }
    }

    fn encode(&self, raw: &Raw, out: &mut bytes::BytesMut) {
        use crate::reply::{array_header, put_bulk};
        array_header(out, 2);
        // "<ms>-<seq>": at most 20 + 1 + 20 bytes.
        let (mut ms, mut seq) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (ms, seq) = (
            ms.format(raw.id.ms).as_bytes(),
            seq.format(raw.id.seq).as_bytes(),
        );
        let mut text = [0u8; 41];
        text[..ms.len()].copy_from_slice(ms);
        text[ms.len()] = b'-';
        text[ms.len() + 1..ms.len() + 1 + seq.len()].copy_from_slice(seq);
        put_bulk(out, &text[..ms.len() + 1 + seq.len()]);
        let mut pos = raw.body;
        if raw.flags & SAME_FIELDS != 0 {
            array_header(out, self.master_fields.len() * 2);
            for f in &self.master_fields {
                put_bulk(out, f);
                put_bulk(out, get_bytes(&self.data, &mut pos));
            }
        } else {
            let n = get_varint(&self.data, &mut pos) as usize;
            array_header(out, n * 2);
            for _ in 0..n * 2 {
                put_bulk(out, get_bytes(&self.data, &mut pos));
            }
        }
    }

    /// Mark `id` deleted; true if it was live here.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let found = self
            .raws()
            .find(|r| r.id == id)
            .filter(|r| r.flags & DELETED == 0)
            .map(|r| r.offset);
        match found {
            Some(offset) => {
                self.data[offset] |= DELETED;
                self.live -= 1;
                true
            }
            None => false,
        }
    }

    /// Delete live entries from the front while `keep_going(id)` holds, at most `limit`.
    /// Returns the number deleted.
    pub fn delete_front_while(
        &mut self,
        limit: usize,
        mut keep_going: impl FnMut(StreamId) -> bool,
    ) -> usize {
        let victims: Vec<usize> = self
            .raws()
            .filter(|r| r.flags & DELETED == 0)
            .take_while(|r| keep_going(r.id))
            .take(limit)
            .map(|r| r.offset)
            .collect();
        for &offset in &victims {
            self.data[offset] |= DELETED;
        }
        self.live -= victims.len();
        victims.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fv(pairs: &[(&str, &str)]) -> Vec<(Bytes, Bytes)> {
        pairs
            .iter()
            .map(|(f, v)| (Bytes::from(f.to_string()), Bytes::from(v.to_string())))
            .collect()
    }

    #[test]
    fn entries_round_trip_with_shared_and_own_fields() {
        let mut c = Chunk::new(StreamId::new(10, 0), &fv(&[("a", "1"), ("b", "2")]));
        c.push(StreamId::new(10, 1), &fv(&[("a", "3"), ("b", "4")]));
        c.push(StreamId::new(12, 0), &fv(&[("x", "y")]));
        let all = c.entries_in(StreamId::MIN, StreamId::MAX, false, usize::MAX);
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].fields, fv(&[("a", "3"), ("b", "4")]));
        assert_eq!(all[2].id, StreamId::new(12, 0));
        assert_eq!(all[2].fields, fv(&[("x", "y")]));
    }

    #[test]
    fn delete_marks_in_place() {
        let mut c = Chunk::new(StreamId::new(1, 0), &fv(&[("a", "1")]));
        c.push(StreamId::new(2, 0), &fv(&[("a", "2")]));
        assert!(c.delete(StreamId::new(1, 0)));
        assert!(!c.delete(StreamId::new(1, 0)));
        assert_eq!(c.live(), 1);
        assert_eq!(c.ids().collect::<Vec<_>>(), vec![StreamId::new(2, 0)]);
    }
}
