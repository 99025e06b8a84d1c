//! Typed stream operations: the data work of a command, given its parsed arguments, with a
//! typed result — no RESP, no logging, no locking — so the same operation serves a client's
//! command, another command (a durable channel's PUBLISH appending to its stream), and,
//! later, a core that owns the shard; and so it is unit-tested without a socket. The command
//! layer parses, calls the operation with the stream locked, records the effects the result
//! describes (AOF records, keyspace events) and shapes the reply.

use super::id::StreamId;
use super::idmp::auto_iid;
use super::{NodeLimits, RefPolicy, Stream, Trim};
use bytes::Bytes;

/// The ID XADD asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSpec {
    /// `*`: the clock, or the next sequence if the clock is behind the last ID.
    Auto,
    /// `ms-seq`.
    Exact(StreamId),
    /// `ms-*`: the next sequence of that millisecond.
    Ms(u64),
}

/// A trim to apply after adding (XADD's MAXLEN/MINID).
#[derive(Debug, Clone, Copy)]
pub struct TrimSpec {
    pub how: Trim,
    pub approx: bool,
    pub limit: usize,
    pub policy: RefPolicy,
}

/// XADD's request, parsed.
pub struct AddSpec<'a> {
    pub id: IdSpec,
    pub fields: &'a [(Bytes, Bytes)],
    /// An idempotent producer and its ID (`None` as the ID: IDMPAUTO, computed from fields).
    pub idmp: Option<(Bytes, Option<Bytes>)>,
    pub trim: Option<TrimSpec>,
    /// Unix ms (for `*` and for idempotent IDs' expiry).
    pub now: u64,
    pub limits: NodeLimits,
}

/// What an add did.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// A new entry; `idmp` the producer and ID recorded for it; `trimmed` entries removed by
    /// the trim (with the IDs an ACKED trim deleted).
    New {
        id: StreamId,
        idmp: Option<(Bytes, Bytes)>,
        trimmed: usize,
        acked: Vec<StreamId>,
    },
    /// An idempotent producer's retry: the entry its first try added; nothing was added.
    Duplicate(StreamId),
}

/// Why nothing was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// The stream has used the last possible ID.
    Exhausted,
    /// `ms-*` for a millisecond whose sequences are used up.
    SequenceExhausted,
    /// The ID is not above the stream's last ID.
    NotIncreasing,
}

/// XADD's data work on an existing stream (the caller creates it for a missing key).
pub fn add(stream: &mut Stream, spec: &AddSpec) -> Result<Added, AddError> {
    // An idempotent producer's retry: answer with the entry its first try added.
    let idmp = spec.idmp.as_ref().map(|(pid, iid)| {
        let iid = iid.clone().unwrap_or_else(|| auto_iid(spec.fields));
        (pid.clone(), iid)
    });
    if let Some((pid, iid)) = &idmp {
        stream.idmp.expire_for(pid, spec.now);
        if let Some(first) = stream.idmp.lookup(pid, iid) {
            stream.idmp.iids_duplicates += 1;
            return Ok(Added::Duplicate(first));
        }
    }
    if stream.last_id == StreamId::MAX {
        return Err(AddError::Exhausted);
    }
    let last = stream.last_id;
    let id = match spec.id {
        IdSpec::Auto => stream.next_auto_id(spec.now),
        IdSpec::Exact(id) => Some(id).filter(|id| *id > last),
        IdSpec::Ms(ms) if ms > last.ms => Some(StreamId::new(ms, 0)),
        IdSpec::Ms(ms) if ms == last.ms => {
            if last.seq == u64::MAX {
                return Err(AddError::SequenceExhausted);
            }
            Some(StreamId::new(ms, last.seq + 1))
        }
        IdSpec::Ms(_) => None,
    };
    let id = id.ok_or(AddError::NotIncreasing)?;
    stream.append(id, spec.fields, spec.limits);
    if let Some((pid, iid)) = &idmp {
        stream.idmp.record(pid, iid, id);
    }
    let (mut trimmed, mut acked) = (0, Vec::new());
    if let Some(t) = spec.trim {
        trimmed = stream.trim_with(t.how, t.approx, t.limit, t.policy, Some(&mut acked));
    }
    Ok(Added::New {
        id,
        idmp,
        trimmed,
        acked,
    })
}

/// XDEL's data work: delete the entries with these IDs; how many there were.
pub fn delete(stream: &mut Stream, ids: &[StreamId]) -> usize {
    ids.iter().filter(|id| stream.delete(**id)).count()
}

/// XTRIM's data work: how many entries went, and the IDs an ACKED trim deleted.
pub fn trim(stream: &mut Stream, spec: TrimSpec) -> (usize, Vec<StreamId>) {
    let mut acked = Vec::new();
    let n = stream.trim_with(
        spec.how,
        spec.approx,
        spec.limit,
        spec.policy,
        Some(&mut acked),
    );
    (n, acked)
}

/// XSETID's request, parsed (`max_deleted` of `StreamId::MIN`: not given).
#[derive(Debug, Clone, Copy)]
pub struct SetIdSpec {
    pub last: StreamId,
    pub entries_added: Option<u64>,
    pub max_deleted: StreamId,
}

/// Why XSETID changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetIdError {
    /// The ID is below the stream's last entry.
    BelowTop,
    /// entries-added is below the stream's length.
    AddedBelowLength,
}

/// XSETID's data work. Redis 7.0 (the oracle) does not compare the ID with the current
/// max-deleted ID, and checks nothing on an empty stream.
pub fn set_id(stream: &mut Stream, spec: SetIdSpec) -> Result<(), SetIdError> {
    if !stream.is_empty() {
        let top = stream.last_entry().map_or(StreamId::MIN, |e| e.id);
        if spec.last < top {
            return Err(SetIdError::BelowTop);
        }
        if spec
            .entries_added
            .is_some_and(|n| (stream.len() as u64) > n)
        {
            return Err(SetIdError::AddedBelowLength);
        }
    }
    stream.last_id = spec.last;
    if let Some(n) = spec.entries_added {
        stream.entries_added = n;
    }
    if spec.max_deleted != StreamId::MIN {
        stream.max_deleted_id = spec.max_deleted;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: IdSpec, fields: &[(Bytes, Bytes)]) -> AddSpec<'_> {
        AddSpec {
            id,
            fields,
            idmp: None,
            trim: None,
            now: 1_000,
            limits: NodeLimits::default(),
        }
    }

    fn fv() -> Vec<(Bytes, Bytes)> {
        vec![(Bytes::from_static(b"f"), Bytes::from_static(b"v"))]
    }

    #[test]
    fn ids_increase_whatever_is_asked() {
        let mut s = Stream::default();
        let f = fv();
        let id = |a: Result<Added, AddError>| match a {
            Ok(Added::New { id, .. }) => Ok(id),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        assert_eq!(
            id(add(&mut s, &spec(IdSpec::Auto, &f))),
            Ok(StreamId::new(1_000, 0))
        );
        // The clock has not moved: the next sequence.
        assert_eq!(
            id(add(&mut s, &spec(IdSpec::Auto, &f))),
            Ok(StreamId::new(1_000, 1))
        );
        assert_eq!(
            id(add(&mut s, &spec(IdSpec::Ms(1_000), &f))),
            Ok(StreamId::new(1_000, 2))
        );
        assert_eq!(
            id(add(&mut s, &spec(IdSpec::Exact(StreamId::new(999, 5)), &f))),
            Err(AddError::NotIncreasing)
        );
        assert_eq!(
            id(add(
                &mut s,
                &spec(IdSpec::Exact(StreamId::new(1_000, u64::MAX)), &f)
            )),
            Ok(StreamId::new(1_000, u64::MAX))
        );
        assert_eq!(
            id(add(&mut s, &spec(IdSpec::Ms(1_000), &f))),
            Err(AddError::SequenceExhausted)
        );
        assert_eq!(
            id(add(&mut s, &spec(IdSpec::Exact(StreamId::MAX), &f))),
            Ok(StreamId::MAX)
        );
        assert_eq!(
            id(add(&mut s, &spec(IdSpec::Auto, &f))),
            Err(AddError::Exhausted)
        );
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn a_retry_of_an_idempotent_producer_adds_nothing_and_a_trim_reports_its_work() {
        let mut s = Stream::default();
        let f = fv();
        let mut sp = spec(IdSpec::Auto, &f);
        sp.idmp = Some((Bytes::from_static(b"p"), Some(Bytes::from_static(b"req-1"))));
        let first = add(&mut s, &sp).unwrap();
        let Added::New { id, .. } = first else {
            panic!("{first:?}")
        };
        assert_eq!(add(&mut s, &sp), Ok(Added::Duplicate(id)));
        assert_eq!((s.len(), s.idmp.iids_duplicates), (1, 1));
        let mut t = spec(IdSpec::Auto, &f);
        t.trim = Some(TrimSpec {
            how: Trim::MaxLen(1),
            approx: false,
            limit: 0,
            policy: RefPolicy::KeepRef,
        });
        match add(&mut s, &t) {
            Ok(Added::New { trimmed: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn delete_trim_and_set_id_report_what_they_did() {
        let mut s = Stream::default();
        let f = fv();
        for ms in 1..=5 {
            add(&mut s, &spec(IdSpec::Exact(StreamId::new(ms, 0)), &f)).unwrap();
        }
        assert_eq!(
            delete(&mut s, &[StreamId::new(2, 0), StreamId::new(9, 0)]),
            1
        );
        let t = TrimSpec {
            how: Trim::MaxLen(2),
            approx: false,
            limit: 0,
            policy: RefPolicy::KeepRef,
        };
        assert_eq!(trim(&mut s, t).0, 2);
        let bad = SetIdSpec {
            last: StreamId::new(4, 0),
            entries_added: None,
            max_deleted: StreamId::MIN,
        };
        assert_eq!(set_id(&mut s, bad), Err(SetIdError::BelowTop));
        let ok = SetIdSpec {
            last: StreamId::new(9, 0),
            entries_added: Some(7),
            max_deleted: StreamId::new(3, 0),
        };
        assert_eq!(set_id(&mut s, ok), Ok(()));
        assert_eq!((s.last_id, s.entries_added), (StreamId::new(9, 0), 7));
    }
}
