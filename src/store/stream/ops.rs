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
}
