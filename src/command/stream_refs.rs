//! Redis 8's stream commands that say what happens to consumer-group references: XDELEX and
//! XACKDEL (8.2), XNACK (8.8); and the idempotent-producer settings XCFGSET and XIDMPRECORD
//! (8.6).
//!
//! Redis 7 cannot serve as the oracle for these, so parsing, check order and error texts
//! follow t_stream.c of Redis 8 as read from its source; tests/streams_redis8.rs checks
//! them. The data work is in `store::stream` (`delete_with`, `is_referenced`, the group's
//! `nack`) and `store::stream::idmp`.

use super::flags::*;
use super::stream::{is_opt, parse_ids, parse_policy, with_stream, with_stream_logged};
use super::stream_group::nogroup_short as nogroup;
use super::{parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::events;
use crate::reply::Reply;
use crate::store::stream::group::NackMode;
use crate::store::stream::id::StreamId;
use crate::store::stream::idmp::{Record, MAX_DURATION, MAX_MAXSIZE};
use crate::store::stream::RefPolicy;
use bytes::Bytes;

const W: &[&str] = &["write", "stream", "fast"];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xdelex", -5, WRITE | FAST, W, xdelex)
        .keys(1, 1, 1)
        .doc("stream", "8.2.0", "Deletes one or multiple entries from the stream.")
        .complexity("O(1) for each single item to delete in the stream, regardless of the stream size.")
        .usage("key [KEEPREF|DELREF|ACKED] IDS numids:integer id ..."),
    CommandSpec::new("xackdel", -6, WRITE | FAST, W, xackdel)
        .keys(1, 1, 1)
        .doc("stream", "8.2.0", "Acknowledges and deletes one or multiple messages for a stream consumer group.")
        .complexity("O(1) for each message ID processed.")
        .usage("key group [KEEPREF|DELREF|ACKED] IDS numids:integer id ..."),
    CommandSpec::new("xnack", -7, WRITE | FAST, W, xnack)
        .keys(1, 1, 1)
        .doc("stream", "8.8.0", "Releases claimed messages back to the group's PEL without acknowledging them, making them available for re-delivery.")
        .complexity("O(1) for each message ID processed.")
        .usage("key group (SILENT|FAIL|FATAL) IDS numids:integer id ... [RETRYCOUNT count:integer] [FORCE]"),
    CommandSpec::new("xcfgset", -2, WRITE | FAST, W, xcfgset)
        .keys(1, 1, 1)
        .doc("stream", "8.6.0", "Sets the IDMP configuration parameters for a stream.")
        .usage("key [IDMP-DURATION duration:integer] [IDMP-MAXSIZE maxsize:integer]"),
    CommandSpec::new("xidmprecord", 5, WRITE | DENYOOM | FAST, W, xidmprecord)
        .keys(1, 1, 1)
        .doc("stream", "8.6.2", "An internal command for setting IDMP metadata on an existing stream message.")
        .usage("key producer-id idempotent-id stream-id"),
];

/// `[KEEPREF|DELREF|ACKED] IDS numids id ...` from `start`, as Redis's
/// `streamParseAckDelArgsOrReply` reads it: the condition may come before or after the IDs,
/// a later IDS block replaces an earlier one, surplus arguments are options.
fn parse_ack_del(args: &[Bytes], start: usize) -> Result<(RefPolicy, &[Bytes]), Reply> {
    let mut policy = None;
    let mut ids: Option<&[Bytes]> = None;
    let mut j = start;
    while j < args.len() {
        let opt = &args[j];
        if let Some(p) = parse_policy(opt).filter(|_| policy.is_none()) {
            policy = Some(p);
            j += 1;
        } else if is_opt(opt, b"ids") && j + 1 < args.len() {
            let n = match parse_i64(&args[j + 1]) {
                Some(n) if n >= 1 => n as usize,
                _ => return Err(Reply::error("ERR Number of IDs must be a positive integer")),
            };
            if n > args.len() - j - 2 {
                return Err(Reply::error(
                    "ERR The `numids` parameter must match the number of arguments",
                ));
            }
            ids = Some(&args[j + 2..j + 2 + n]);
            j += 2 + n;
        } else {
            return Err(Reply::error(error::SYNTAX));
        }
    }
    match ids {
        Some(ids) => Ok((policy.unwrap_or_default(), ids)),
        None => Err(Reply::error("ERR IDS option is required")),
    }
}

/// One `-1` per requested ID: the reply when the key (or group) does not exist.
fn all_missing(n: usize) -> Reply {
    Reply::Array(vec![Reply::Integer(-1); n])
}

/// XDELEX key [KEEPREF|DELREF|ACKED] IDS numids id ...: per ID 1 (deleted), -1 (no such
/// entry) or 2 (kept: a group still references it, with ACKED).
fn xdelex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let exists = match with_stream(ctx, key, false, |_| true) {
        Ok(e) => e,
        Err(e) => return e,
    };
    let (policy, id_args) = match parse_ack_del(args, 2) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if !exists {
        return all_missing(id_args.len());
    }
    let ids = match parse_ids(id_args) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let results = with_stream_logged(ctx, key, vec![], |s, log| {
        let r: Vec<i64> = ids.iter().map(|id| s.delete_with(*id, policy)).collect();
        // Replaying it on the same state has the same effect (DELREF clean-ups included).
        log.args(args);
        if r.contains(&1) {
            // Redis 8.2 names a deletion by XDELEX `xdel`.
            log.notify(key, events::XDEL);
        }
        r
    });
    match results {
        Ok(r) if r.is_empty() => all_missing(ids.len()),
        Ok(r) => Reply::Array(r.into_iter().map(Reply::Integer).collect()),
        Err(e) => e,
    }
}

/// XACKDEL key group [KEEPREF|DELREF|ACKED] IDS numids id ...: acknowledge each ID in the
/// group, then delete it from the stream as the condition allows. Per ID 1 (acknowledged and
/// deleted), 2 (acknowledged, kept for another group), -1 (not pending in this group).
fn xackdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, group) = (&args[1], &args[2]);
    let has_group = match with_stream(ctx, key, false, |s| s.groups.contains_key(group)) {
        Ok(g) => g,
        Err(e) => return e,
    };
    let (policy, id_args) = match parse_ack_del(args, 3) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if !has_group {
        return all_missing(id_args.len());
    }
    let ids = match parse_ids(id_args) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let results = with_stream_logged(ctx, key, None, |s, log| {
        log.args(args);
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let acked = s.groups.get_mut(group).is_some_and(|g| g.ack(*id));
            if !acked {
                out.push(-1);
                continue;
            }
            let delete = match policy {
                RefPolicy::Acked => !s.is_referenced(*id),
                RefPolicy::DelRef => {
                    s.remove_refs(*id);
                    true
                }
                RefPolicy::KeepRef => true,
            };
            if delete {
                // Pending but already gone from the stream still counts as deleted.
                s.delete(*id);
            }
            out.push(if delete { 1 } else { 2 });
        }
        if out.contains(&1) {
            log.notify(key, events::XDEL);
        }
        Some(out)
    });
    match results {
        Ok(Some(r)) => Reply::Array(r.into_iter().map(Reply::Integer).collect()),
        Ok(None) => all_missing(ids.len()),
        Err(e) => e,
    }
}

/// XNACK key group SILENT|FAIL|FATAL IDS numids id ... [RETRYCOUNT count] [FORCE]: release
/// pending entries back to the group, owned by nobody and first in line for XCLAIM,
/// XAUTOCLAIM and XREADGROUP … CLAIM. Replies with how many were released.
fn xnack(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, group) = (&args[1], &args[2]);
    match with_stream(ctx, key, false, |s| s.groups.contains_key(group)) {
        Err(e) => return e,
        Ok(false) => return nogroup(key, group),
        Ok(true) => {}
    }
    let mode = if is_opt(&args[3], b"silent") {
        NackMode::Silent
    } else if is_opt(&args[3], b"fail") {
        NackMode::Fail
    } else if is_opt(&args[3], b"fatal") {
        NackMode::Fatal
    } else {
        return Reply::error("ERR mode must be SILENT, FAIL, or FATAL");
    };
    let mut ids: Option<&[Bytes]> = None;
    let mut force = false;
    let mut retrycount = None;
    let mut j = 4;
    while j < args.len() {
        let opt = &args[j];
        if is_opt(opt, b"ids") && j + 1 < args.len() {
            let n = match parse_i64(&args[j + 1]) {
                Some(n) if (1..=i32::MAX as i64).contains(&n) => n as usize,
                _ => return Reply::error("ERR numids must be a positive integer"),
            };
            if n > args.len() - j - 2 {
                return Reply::error("ERR number of IDs doesn't match numids");
            }
            ids = Some(&args[j + 2..j + 2 + n]);
            j += 2 + n;
        } else if is_opt(opt, b"force") {
            force = true;
            j += 1;
        } else if is_opt(opt, b"retrycount") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
                None => return Reply::error(error::NOT_INTEGER),
                Some(n) if n < 0 => {
                    return Reply::error("ERR Invalid RETRYCOUNT value, must be >= 0")
                }
                Some(n) => retrycount = Some(n as u64),
            }
            j += 2;
        } else {
            return error::with_arg("ERR Unrecognized XNACK option '", opt, "'");
        }
    }
    let Some(id_args) = ids else {
        return Reply::error("ERR syntax error, expected IDS keyword");
    };
    let ids = match parse_ids(id_args) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let nacked = with_stream_logged(ctx, key, None, |s, log| {
        s.groups.get(group)?;
        let mut n = 0;
        for id in &ids {
            // FORCE adds an entry that is not pending, if it is still in the stream.
            let create = force && s.contains(*id);
            let g = s.groups.get_mut(group)?;
            if g.nack(*id, mode, retrycount, create) {
                n += 1;
            }
        }
        if n > 0 {
            log.args(args);
            // Readers blocked in XREADGROUP … CLAIM can take them now.
            log.ready(key);
        }
        Some(n)
    });
    match nacked {
        // The group went away between the checks (another thread's XGROUP DESTROY).
        Ok(None) => nogroup(key, group),
        Ok(Some(n)) => Reply::Integer(n),
        Err(e) => e,
    }
}

/// One of XCFGSET's settings: `name` given once, an integer in `1..=max`.
fn cfg_value(
    seen: &mut Option<u64>,
    name: &str,
    arg: &[u8],
    max: u64,
    unit: &str,
) -> Result<(), Reply> {
    if seen.is_some() {
        return Err(Reply::Error(
            format!("ERR {name} specified multiple times").into(),
        ));
    }
    match parse_i64(arg) {
        None => Err(Reply::error(error::NOT_INTEGER)),
        Some(n) if n < 1 || n as u64 > max => Err(Reply::Error(
            format!("ERR {name} must be between 1 and {max} {unit}").into(),
        )),
        Some(n) => {
            *seen = Some(n as u64);
            Ok(())
        }
    }
}

/// XCFGSET key [IDMP-DURATION seconds] [IDMP-MAXSIZE n]: a change forgets the stream's
/// remembered idempotent IDs.
fn xcfgset(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    match with_stream(ctx, key, false, |_| true) {
        Err(e) => return e,
        Ok(false) => return Reply::error(error::NO_SUCH_KEY),
        Ok(true) => {}
    }
    let (mut duration, mut maxsize) = (None, None);
    let mut j = 2;
    while j < args.len() {
        let has_value = j + 1 < args.len();
        let done = if is_opt(&args[j], b"idmp-duration") && has_value {
            cfg_value(
                &mut duration,
                "IDMP-DURATION",
                &args[j + 1],
                MAX_DURATION,
                "seconds",
            )
        } else if is_opt(&args[j], b"idmp-maxsize") && has_value {
            cfg_value(
                &mut maxsize,
                "IDMP-MAXSIZE",
                &args[j + 1],
                MAX_MAXSIZE,
                "entries",
            )
        } else {
            Err(Reply::error(error::SYNTAX))
        };
        if let Err(e) = done {
            return e;
        }
        j += 2;
    }
    if duration.is_none() && maxsize.is_none() {
        return Reply::error("ERR At least one parameter must be specified");
    }
    match with_stream_logged(ctx, key, false, |s, log| {
        if s.idmp.configure(duration, maxsize) {
            log.args(args);
        }
        true
    }) {
        Ok(true) => Reply::ok(),
        Ok(false) => Reply::error(error::NO_SUCH_KEY),
        Err(e) => e,
    }
}

/// XIDMPRECORD key producer-id idempotent-id stream-id: remember that an existing entry was
/// added by this producer's idempotent ID (how a rewritten append-only file restores the
/// idempotency tables).
fn xidmprecord(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, pid, iid) = (&args[1], &args[2], &args[3]);
    let id: StreamId = match parse_ids(&args[4..5]) {
        Ok(ids) => ids.first().copied().unwrap_or_default(),
        Err(e) => return e,
    };
    if pid.is_empty() {
        return Reply::error("ERR producer ID must be non-empty");
    }
    if iid.is_empty() {
        return Reply::error("ERR idempotent ID must be non-empty");
    }
    let recorded = with_stream_logged(ctx, key, None, |s, log| {
        if !s.contains(id) {
            return Some(Err(Reply::error("ERR No such message in stream")));
        }
        let r = s.idmp.record(pid, iid, id);
        if r == Record::Added {
            log.args(args);
        }
        Some(Ok(r))
    });
    match recorded {
        Err(e) => e,
        Ok(None) => Reply::error(error::NO_SUCH_KEY),
        Ok(Some(Err(e))) => e,
        Ok(Some(Ok(Record::Added | Record::Same))) => Reply::ok(),
        Ok(Some(Ok(Record::Conflict(_)))) => {
            Reply::error("ERR IID already exists for this producer with a different stream ID")
        }
    }
}
