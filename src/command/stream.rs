//! Stream commands: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID.
//!
//! Argument parsing follows t_stream.c step for step (option order, which error wins, the
//! defaults of approximate trimming); the data work is in `store::stream`.

use super::flags::*;
use super::{parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::events;
use crate::reply::Reply;
use crate::store::shard::Log;
use crate::store::stream::chunk::Entry;
use crate::store::stream::id::{self, StreamId};
use crate::store::stream::idmp::Idmp;
use crate::store::stream::ops;
use crate::store::stream::{RefPolicy, Stream, Trim};
use crate::store::Value;
use bytes::Bytes;

const WRITE_STREAM: &[&str] = &["write", "stream", "fast"];
const READ_STREAM: &[&str] = &["read", "stream", "fast"];
const READ_STREAM_SLOW: &[&str] = &["read", "stream", "slow"];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, WRITE | DENYOOM | FAST, WRITE_STREAM, xadd)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Appends a new message to a stream. Creates the key if it doesn't exist.")
        .complexity("O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted.")
        .usage("key [NOMKSTREAM] [KEEPREF|DELREF|ACKED] [IDMPAUTO producer-id|IDMP producer-id idempotent-id] [(MAXLEN|MINID) [=|~] threshold [LIMIT count:integer]] (*|id) (field value) ..."),
    CommandSpec::new("xlen", 2, READONLY | FAST, READ_STREAM, xlen)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Return the number of messages in a stream.")
        .usage("key"),
    CommandSpec::new("xrange", -4, READONLY, READ_STREAM_SLOW, xrange)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Returns the messages from a stream within a range of IDs.")
        .complexity("O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).")
        .usage("key start end [COUNT count:integer]"),
    CommandSpec::new("xrevrange", -4, READONLY, READ_STREAM_SLOW, xrevrange)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Returns the messages from a stream within a range of IDs in reverse order.")
        .complexity("O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).")
        .usage("key end start [COUNT count:integer]"),
    CommandSpec::new("xdel", -3, WRITE | FAST, WRITE_STREAM, xdel)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Returns the number of messages after removing them from a stream.")
        .complexity("O(1) for each single item to delete in the stream, regardless of the stream size.")
        .usage("key id ..."),
    CommandSpec::new("xtrim", -4, WRITE, &["write", "stream", "slow"], xtrim)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Deletes messages from the beginning of a stream.")
        .complexity("O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation.")
        .usage("key (MAXLEN|MINID) [=|~] threshold [LIMIT count:integer] [KEEPREF|DELREF|ACKED]"),
    CommandSpec::new("xread", -4, READONLY | BLOCKING, &["read", "stream", "slow", "blocking"], xread)
        .keys(0, 0, 0)
        .doc("stream", "5.0.0", "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise.")
        .usage("[COUNT count:integer] [BLOCK milliseconds:integer] STREAMS key ... id ..."),
    CommandSpec::new("xsetid", -3, WRITE | DENYOOM | FAST, WRITE_STREAM, xsetid)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "An internal command for replicating stream values.")
        .usage("key last-id [ENTRIESADDED entries-added:integer] [MAXDELETEDID max-deleted-id]"),
];

pub(super) fn now_ms() -> u64 {
    crate::store::now_ms()
}

/// The argument as Redis's C string functions see it: up to the first NUL byte.
pub(super) fn cstr(arg: &[u8]) -> &[u8] {
    arg.iter().position(|&b| b == 0).map_or(arg, |n| &arg[..n])
}

pub(super) fn parse_id(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_auto_seq: bool,
) -> Result<(StreamId, bool), Reply> {
    id::parse_id(cstr(arg), missing_seq, strict, allow_auto_seq).map_err(Reply::error)
}

/// Option-name comparison as `strcasecmp` does it (stops at NUL).
pub(super) fn is_opt(arg: &[u8], name: &[u8]) -> bool {
    cstr(arg).eq_ignore_ascii_case(name)
}

/// A range start: `-`, an ID (missing sequence 0), or `(id` exclusive (the next ID).
pub(super) fn parse_start(arg: &[u8]) -> Result<StreamId, Reply> {
    let (id, exclusive) = parse_bound(arg, 0)?;
    if !exclusive {
        return Ok(id);
    }
    id.next()
        .ok_or_else(|| Reply::error("ERR invalid start ID for the interval"))
}

/// A range end: `+`, an ID (missing sequence MAX), or `(id` exclusive (the previous ID).
pub(super) fn parse_end(arg: &[u8]) -> Result<StreamId, Reply> {
    let (id, exclusive) = parse_bound(arg, u64::MAX)?;
    if !exclusive {
        return Ok(id);
    }
    id.prev()
        .ok_or_else(|| Reply::error("ERR invalid end ID for the interval"))
}

/// Several strict IDs (XDEL, XACK): all parsed before anything is changed.
pub(super) fn parse_ids(args: &[Bytes]) -> Result<Vec<StreamId>, Reply> {
    args.iter()
        .map(|a| parse_id(a, 0, true, false).map(|(id, _)| id))
        .collect()
}

fn parse_bound(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        let (id, _) = parse_id(&arg[1..], missing_seq, true, false)?;
        return Ok((id, true));
    }
    let (id, _) = parse_id(arg, missing_seq, false, false)?;
    Ok((id, false))
}

/// Parsed XADD/XTRIM options.
#[derive(Default)]
struct AddTrimArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: usize,
    nomkstream: bool,
    id: Option<(StreamId, bool)>,
    auto: bool,
    /// KEEPREF | DELREF | ACKED (Redis 8.2); `None` = KEEPREF.
    policy: Option<RefPolicy>,
    /// IDMP producer and idempotent ID, or IDMPAUTO producer (Redis 8.6).
    idmp: Option<(Bytes, Option<Bytes>)>,
}

/// KEEPREF | DELREF | ACKED, if `arg` is one of them.
pub(super) fn parse_policy(arg: &[u8]) -> Option<RefPolicy> {
    if is_opt(arg, b"keepref") {
        Some(RefPolicy::KeepRef)
    } else if is_opt(arg, b"delref") {
        Some(RefPolicy::DelRef)
    } else if is_opt(arg, b"acked") {
        Some(RefPolicy::Acked)
    } else {
        None
    }
}

/// `streamParseAddOrTrimArgsOrReply`: returns the parsed options and the index of the ID
/// (XADD) or of the end of the options.
fn parse_add_trim(
    args: &[Bytes],
    xadd: bool,
    max_entries: u64,
) -> Result<(AddTrimArgs, usize), Reply> {
    let mut a = AddTrimArgs::default();
    let mut limit: Option<i64> = None;
    let mut i = 2;
    let incompatible =
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && cstr(opt) == b"*" {
            a.auto = true;
            break;
        } else if (is_opt(opt, b"maxlen") || is_opt(opt, b"minid")) && more > 0 {
            if a.trim.is_some() {
                return Err(Reply::error(incompatible));
            }
            // An optional `~` (approximate) or `=` (exact) before the threshold.
            a.approx = false;
            let next = &args[i + 1];
            if more >= 2 && cstr(next) == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && cstr(next) == b"=" {
                i += 1;
            }
            a.trim = Some(if is_opt(opt, b"maxlen") {
                let n = parse_i64(&args[i + 1]).ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
                if n < 0 {
                    return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
                }
                Trim::MaxLen(n as u64)
            } else {
                Trim::MinId(parse_id(&args[i + 1], 0, true, false)?.0)
            });
            i += 1;
        } else if is_opt(opt, b"limit") && more > 0 {
            let n = parse_i64(&args[i + 1]).ok_or_else(|| Reply::error(error::NOT_INTEGER))?;
            if n < 0 {
                return Err(Reply::error("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 1;
        } else if let Some(p) = parse_policy(opt).filter(|_| a.policy.is_none()) {
            a.policy = Some(p);
        } else if xadd && is_opt(opt, b"nomkstream") {
            a.nomkstream = true;
        } else if xadd && is_opt(opt, b"idmpauto") && more > 0 {
            if a.idmp.is_some() {
                return Err(Reply::error(
                    "ERR syntax error, IDMP/IDMPAUTO specified multiple times",
                ));
            }
            if args[i + 1].is_empty() {
                return Err(Reply::error(
                    "ERR syntax error, IDMPAUTO requires a non-empty producer ID",
                ));
            }
            a.idmp = Some((args[i + 1].clone(), None));
            i += 1;
        } else if xadd && is_opt(opt, b"idmp") && more >= 2 {
            if a.idmp.is_some() {
                return Err(Reply::error(
                    "ERR syntax error, IDMP/IDMPAUTO specified multiple times",
                ));
            }
            if args[i + 1].is_empty() {
                return Err(Reply::error(
                    "ERR syntax error, IDMP requires a non-empty producer ID",
                ));
            }
            if args[i + 2].is_empty() {
                return Err(Reply::error(
                    "ERR syntax error, IDMP requires a non-empty idempotent ID",
                ));
            }
            a.idmp = Some((args[i + 1].clone(), Some(args[i + 2].clone())));
            i += 2;
        } else if xadd {
            a.id = Some(parse_id(opt, 0, true, true)?);
            if a.idmp.is_some() {
                return Err(Reply::error(
                    "ERR syntax error, IDMP/IDMPAUTO can be used only with auto-generated IDs",
                ));
            }
            break;
        } else {
            return Err(Reply::error(error::SYNTAX));
        }
        i += 1;
    }
    if limit.is_some_and(|l| l > 0) && a.trim.is_none() {
        return Err(Reply::error(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && a.trim.is_none() {
        return Err(Reply::error(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    match limit {
        Some(_) if !a.approx => {
            return Err(Reply::error(
                "ERR syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
        Some(l) => a.limit = l as usize,
        None if a.approx => {
            // Redis: 100 nodes' worth, 10000 when that is not positive, capped at 1,000,000.
            let l = 100u64.saturating_mul(max_entries);
            a.limit = if l == 0 {
                10_000
            } else {
                l.min(1_000_000) as usize
            };
        }
        None => a.limit = 0,
    }
    Ok((a, i))
}

/// One entry as XRANGE and friends reply: `[id, [field, value, ...]]`.
pub fn entry_reply(e: Entry) -> Reply {
    let mut fv = Vec::with_capacity(e.fields.len() * 2);
    for (f, v) in e.fields {
        fv.push(Reply::Bulk(f));
        fv.push(Reply::Bulk(v));
    }
    Reply::Array(vec![Reply::Bulk(e.id.to_bytes()), Reply::Array(fv)])
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
fn xadd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (opts, idpos) = match parse_add_trim(args, true, ctx.shared.node_limits().max_entries) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let field_pos = idpos + 1;
    let nfv = args.len().saturating_sub(field_pos);
    if nfv < 2 || nfv % 2 == 1 {
        return Reply::Error(error::wrong_arity("xadd"));
    }
    if let Some((id, true)) = opts.id {
        if id == StreamId::MIN {
            return Reply::error("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let fields: Vec<(Bytes, Bytes)> = args[field_pos..]
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    let key = args[1].clone();
    let limits = ctx.shared.node_limits();
    let (idmp_duration, idmp_maxsize) = ctx.shared.idmp_limits();
    let new_stream = || {
        let mut s = Box::<Stream>::default();
        s.idmp = Idmp::with_limits(idmp_duration, idmp_maxsize);
        s
    };
    let spec = ops::AddSpec {
        id: match opts.id {
            None => ops::IdSpec::Auto,
            Some((id, true)) => ops::IdSpec::Exact(id),
            Some((ms_only, false)) => ops::IdSpec::Ms(ms_only.ms),
        },
        fields: &fields,
        idmp: opts.idmp.clone(),
        trim: opts.trim.map(|how| ops::TrimSpec {
            how,
            approx: opts.approx,
            limit: opts.limit,
            policy: opts.policy.unwrap_or_default(),
        }),
        now: now_ms(),
        limits,
    };
    ctx.with_shard(&key, |shard| {
        // One lookup when the stream exists (the common case); a second after creating it.
        let (stream, mut log) = match shard.get_mut_logged(&key) {
            Some((Value::Stream(s), log)) => (s, log),
            Some(_) => return Reply::error(error::WRONGTYPE),
            None if opts.nomkstream => return Reply::Null,
            None => {
                shard.insert(crate::store::owned(&key), Value::Stream(new_stream()));
                shard.notify(&key, events::NEW);
                match shard.get_mut_logged(&key) {
                    Some((Value::Stream(s), log)) => (s, log),
                    _ => return Reply::error(error::WRONGTYPE),
                }
            }
        };
        match ops::add(stream, &spec) {
            Ok(ops::Added::Duplicate(first)) => {
                // Nothing else changed, but the counter is state XINFO shows: log it.
                let (mut a, mut d) = (itoa::Buffer::new(), itoa::Buffer::new());
                let (added, dups) = crate::store::stream::snapshot::idmp_stats(stream);
                log.cmd(&[
                    crate::store::stream::snapshot::IDMP_STATS,
                    &key,
                    a.format(added).as_bytes(),
                    d.format(dups).as_bytes(),
                ]);
                Reply::Bulk(first.to_bytes())
            }
            Ok(ops::Added::New {
                id,
                idmp,
                trimmed,
                acked,
            }) => {
                let id = id.to_bytes();
                // The effect: this entry under its concrete ID.
                log.cmd_with(&[b"XADD", &key, &id], &args[field_pos..]);
                log.notify(&key, events::XADD);
                if let Some((pid, iid)) = &idmp {
                    log.cmd(&[b"XIDMPRECORD", &key, pid, iid, &id]);
                }
                if let (Some(t), true) = (spec.trim, trimmed > 0) {
                    log_trim(&mut log, &key, stream, t.policy, &acked);
                }
                Reply::Bulk(id)
            }
            Err(ops::AddError::Exhausted) => Reply::error(
                "ERR The stream has exhausted the last possible ID, unable to add more items",
            ),
            // Redis 7.0's reply for a millisecond whose sequences are used up.
            Err(ops::AddError::SequenceExhausted) => {
                Reply::error("ERR Elements are too large to be stored")
            }
            Err(ops::AddError::NotIncreasing) => Reply::error(
                "ERR The ID specified in XADD is equal or smaller than the target stream top item",
            ),
        }
    })
}

/// XREAD [COUNT count] [BLOCK ms] STREAMS key ... id ...
///
/// `$` means "after the last entry now"; `+` (Redis 7.4) returns the last entry. With BLOCK
/// and nothing to return, the client blocks; the retry has `$`/`+` replaced by the IDs they
/// stood for, so entries added meanwhile are not skipped.
/// Options shared by XREAD and XREADGROUP, parsed as t_stream.c's xreadCommand does.
pub(super) struct ReadOpts {
    pub count: usize,
    pub block: Option<u64>,
    pub noack: bool,
    pub group: Option<(Bytes, Bytes)>,
    /// XREADGROUP … CLAIM min-idle-time (Redis 8.4).
    pub claim: Option<u64>,
    /// Index of the first key after STREAMS.
    pub streams_at: usize,
}

pub(super) fn parse_read_opts(args: &[Bytes], xreadgroup: bool) -> Result<ReadOpts, Reply> {
    let mut o = ReadOpts {
        count: 0,
        block: None,
        noack: false,
        group: None,
        claim: None,
        streams_at: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = &args[i];
        if is_opt(opt, b"block") && more > 0 {
            o.block = Some(match parse_i64(&args[i + 1]) {
                None => {
                    return Err(Reply::error(
                        "ERR timeout is not an integer or out of range",
                    ))
                }
                Some(ms) if ms < 0 => return Err(Reply::error("ERR timeout is negative")),
                Some(ms) => ms as u64,
            });
            i += 2;
        } else if is_opt(opt, b"count") && more > 0 {
            o.count = parse_i64(&args[i + 1])
                .ok_or_else(|| Reply::error(error::NOT_INTEGER))?
                .max(0) as usize;
            i += 2;
        } else if is_opt(opt, b"streams") && more > 0 {
            o.streams_at = i + 1;
            break;
        } else if is_opt(opt, b"group") && more >= 2 {
            if !xreadgroup {
                return Err(Reply::error("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."));
            }
            o.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if is_opt(opt, b"noack") {
            if !xreadgroup {
                return Err(Reply::error("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."));
            }
            o.noack = true;
            i += 1;
        } else if is_opt(opt, b"claim") && more > 0 {
            if !xreadgroup {
                return Err(Reply::error("ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead."));
            }
            match parse_i64(&args[i + 1]) {
                None => {
                    return Err(Reply::error(
                        "ERR min-idle-time is not an integer or out of range",
                    ))
                }
                Some(n) if n < 0 => {
                    return Err(Reply::error("ERR min-idle-time must be a positive integer"))
                }
                Some(n) => o.claim = Some(n as u64),
            }
            i += 2;
        } else {
            return Err(Reply::error(error::SYNTAX));
        }
    }
    if o.streams_at == 0 {
        return Err(Reply::error(error::SYNTAX));
    }
    // Redis 7.0 uses the XREAD wording for XREADGROUP too.
    if !(args.len() - o.streams_at).is_multiple_of(2) {
        return Err(Reply::error(
            "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    Ok(o)
}

/// The reply of XREAD/XREADGROUP: key → entries, a map in RESP3, pairs in RESP2.
/// Each stream's entries are one array reply (often `Reply::Encoded`).
pub(super) fn streams_reply(resp: u8, found: Vec<(Bytes, Reply)>) -> Reply {
    let pairs = found.into_iter().map(|(k, e)| (Reply::Bulk(k), e));
    if resp >= 3 {
        Reply::Map(pairs.collect())
    } else {
        Reply::Array(pairs.map(|(k, v)| Reply::Array(vec![k, v])).collect())
    }
}

/// XREAD [COUNT count] [BLOCK ms] STREAMS key ... id ...
///
/// `$` means "after the last entry now"; `+` (Redis 7.4) returns the last entry. With BLOCK
/// and nothing to return, the client blocks; the retry has `$`/`+` replaced by the IDs they
/// stood for, so entries added meanwhile are not skipped.
fn xread(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let opts = match parse_read_opts(args, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (count, block) = (opts.count, opts.block);
    let rest = &args[opts.streams_at..];
    let (keys, id_args) = rest.split_at(rest.len() / 2);
    // A blocked reader re-checking: a key that became another type is no error for it —
    // it keeps waiting, as in Redis, until the key is a stream with new entries again.
    let retrying = ctx.session.blocked.is_some();
    // Resolve every ID first (errors before any data), `$` and `+` against the streams now.
    let mut after: Vec<(StreamId, bool)> = Vec::with_capacity(keys.len());
    for (key, arg) in keys.iter().zip(id_args) {
        match with_stream(ctx, key, false, |_| true) {
            Err(e) if !retrying => return e,
            // Redis looks every key up twice (here and to read): two `keymiss` each.
            Ok(false) => keymiss(ctx, key),
            _ => {}
        }
        if cstr(arg) == b">" {
            return Reply::error("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
        }
        let special = arg.as_ref() == b"$" || arg.as_ref() == b"+";
        let resolved = if special {
            let last = arg.as_ref() == b"+";
            with_stream(ctx, key, (StreamId::MIN, false), |s| {
                if last {
                    // The last entry itself is returned (inclusive).
                    s.last_entry().map_or((s.last_id, false), |e| (e.id, true))
                } else {
                    (s.last_id, false)
                }
            })
        } else {
            parse_id(arg, 0, false, false).map(|(id, _)| (id, false))
        };
        match resolved {
            Ok(v) => after.push(v),
            Err(e) => return e,
        }
    }
    let limit = (count > 0).then_some(count);
    let mut found = Vec::new();
    for (key, (from, inclusive)) in keys.iter().zip(&after) {
        let start = if *inclusive { Some(*from) } else { from.next() };
        let Some(start) = start else { continue };
        let entries = with_stream(ctx, key, None, |s| {
            let mut out = bytes::BytesMut::new();
            let ids = s.encode_range(start, StreamId::MAX, limit, false, &mut out);
            Some((!ids.is_empty()).then(|| Reply::Encoded(out.freeze())))
        });
        let entries = match entries {
            Ok(None) => {
                keymiss(ctx, key);
                Ok(None)
            }
            Ok(Some(e)) => Ok(e),
            Err(e) => Err(e),
        };
        match entries {
            Ok(None) => {}
            Ok(Some(e)) => found.push((key.clone(), e)),
            Err(_) if retrying => {}
            Err(err) => return err,
        }
    }
    if !found.is_empty() {
        return streams_reply(ctx.session.resp, found);
    }
    // Inside EXEC a blocking read does not block: it answers as if it timed out.
    let Some(ms) = block.filter(|_| !ctx.session.in_exec) else {
        return Reply::NullArray;
    };
    // Block: re-run with the resolved IDs when a key changes.
    let mut retry: Vec<Bytes> = vec![Bytes::from_static(b"XREAD")];
    if count > 0 {
        retry.push(Bytes::from_static(b"COUNT"));
        retry.push(Bytes::from(count.to_string()));
    }
    retry.push(Bytes::from_static(b"BLOCK"));
    retry.push(Bytes::from(ms.to_string()));
    retry.push(Bytes::from_static(b"STREAMS"));
    retry.extend(keys.iter().cloned());
    retry.extend(after.iter().map(|(id, _)| id.to_bytes()));
    let timeout = (ms > 0).then(|| std::time::Duration::from_millis(ms));
    ctx.session
        .block_on(ctx.shared, keys.to_vec(), timeout, retry);
    Reply::None
}

/// A read lookup of `key` found nothing: the `keymiss` keyspace event (Redis's
/// lookupKeyRead), for the read commands whose lookup missed.
pub(super) fn keymiss(ctx: &Ctx, key: &Bytes) {
    ctx.with_shard(key, |shard| shard.missed(key));
}

/// `keymiss` if `key` does not exist (for error paths that do not say which lookup failed).
pub(super) fn keymiss_if_missing(ctx: &Ctx, key: &Bytes) {
    ctx.with_shard(key, |shard| {
        if shard.peek(key).is_none() {
            shard.missed(key);
        }
    });
}

/// Run `f` on the stream at `key` (read access); `missing` if there is none.
pub(super) fn with_stream<R>(
    ctx: &Ctx,
    key: &[u8],
    missing: R,
    f: impl FnOnce(&Stream) -> R,
) -> Result<R, Reply> {
    ctx.with_shard(key, |shard| match shard.get(key) {
        Some(Value::Stream(s)) => Ok(f(s)),
        Some(_) => Err(Reply::error(error::WRONGTYPE)),
        None => Ok(missing),
    })
}

/// Run `f` on the stream at `key` (write access) with the log its effects go to; `missing`
/// if there is none.
pub(super) fn with_stream_logged<R>(
    ctx: &Ctx,
    key: &[u8],
    missing: R,
    f: impl FnOnce(&mut Stream, &mut Log) -> R,
) -> Result<R, Reply> {
    ctx.with_shard(key, |shard| match shard.get_mut_logged(key) {
        Some((Value::Stream(s), mut log)) => Ok(f(s, &mut log)),
        Some(_) => Err(Reply::error(error::WRONGTYPE)),
        None => Ok(missing),
    })
}

/// Run `f` on the stream at `key` (write access); `missing` if there is none.
pub(super) fn with_stream_mut<R>(
    ctx: &Ctx,
    key: &[u8],
    missing: R,
    f: impl FnOnce(&mut Stream) -> R,
) -> Result<R, Reply> {
    ctx.with_shard(key, |shard| match shard.get_mut(key) {
        Some(Value::Stream(s)) => Ok(f(s)),
        Some(_) => Err(Reply::error(error::WRONGTYPE)),
        None => Ok(missing),
    })
}

fn xlen(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match with_stream(ctx, &args[1], None, |s| Some(s.len())) {
        Ok(Some(n)) => Reply::Integer(n as i64),
        Ok(None) => {
            keymiss(ctx, &args[1]);
            Reply::Integer(0)
        }
        Err(e) => e,
    }
}

fn range_generic(ctx: &mut Ctx, args: &[Bytes], rev: bool) -> Reply {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let start = match parse_start(start_arg) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let end = match parse_end(end_arg) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is_opt(&args[j], b"count") && j + 1 < args.len() {
            match parse_i64(&args[j + 1]) {
                Some(n) => count = n.max(0),
                None => return Reply::error(error::NOT_INTEGER),
            }
            j += 2;
        } else {
            return Reply::error(error::SYNTAX);
        }
    }
    let result = with_stream(ctx, &args[1], None, |s| {
        if count == 0 {
            return Some(Reply::NullArray);
        }
        let limit = (count > 0).then_some(count as usize);
        let mut out = bytes::BytesMut::new();
        s.encode_range(start, end, limit, rev, &mut out);
        Some(Reply::Encoded(out.freeze()))
    });
    match result {
        Ok(Some(r)) => r,
        Ok(None) => {
            keymiss(ctx, &args[1]);
            Reply::Array(vec![])
        }
        Err(e) => e,
    }
}

fn xrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    range_generic(ctx, args, true)
}

/// XDEL key id ...: Redis looks the key up before parsing the IDs.
fn xdel(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match with_stream(ctx, &args[1], false, |_| true) {
        Err(e) => return e,
        Ok(false) => return Reply::Integer(0),
        Ok(true) => {}
    }
    let ids = match parse_ids(&args[2..]) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    match with_stream_logged(ctx, &args[1], 0, |s, log| {
        let n = ops::delete(s, &ids);
        if n > 0 {
            log.args(args);
            log.notify(&args[1], events::XDEL);
        }
        n
    }) {
        Ok(n) => Reply::Integer(n as i64),
        Err(e) => e,
    }
}

/// Log a trim that happened as its exact effect: the length it left, under the same
/// reference condition (the deleted entries are the first ones the condition allowed, so an
/// exact MAXLEN trim to the resulting length deletes the same ones on replay).
/// Log a trim that changed `s`. A trim that removes a prefix of the stream (KEEPREF, DELREF)
/// is `XTRIM key MAXLEN = <length left>`, which replays to the same prefix whatever `~`,
/// LIMIT or MINID chose. An ACKED trim leaves holes (it skips entries still referenced), so
/// its length does not say which entries went: it is logged as the IDs it deleted, with the
/// counters a trim leaves alone (XDELEX moves max-deleted-entry-id, a trim does not) set back
/// by XSETID.
fn log_trim(log: &mut Log, key: &Bytes, s: &Stream, policy: RefPolicy, acked: &[StreamId]) {
    log.notify(key, events::XTRIM);
    if policy == RefPolicy::Acked {
        let ids: Vec<Bytes> = acked.iter().map(|id| id.to_bytes()).collect();
        let n = ids.len().to_string();
        log.cmd_with(&[b"XDELEX", key, b"ACKED", b"IDS", n.as_bytes()], &ids);
        let (last, maxdel) = (s.last_id.to_bytes(), s.max_deleted_id.to_bytes());
        let added = s.entries_added.to_string();
        log.cmd(&[
            b"XSETID",
            key,
            &last,
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            &maxdel,
        ]);
        return;
    }
    let len = s.len().to_string();
    let mut rec: Vec<&[u8]> = vec![b"XTRIM", key, b"MAXLEN", b"=", len.as_bytes()];
    match policy {
        RefPolicy::KeepRef => {}
        RefPolicy::DelRef => rec.push(b"DELREF"),
        RefPolicy::Acked => rec.push(b"ACKED"),
    }
    log.cmd(&rec);
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]: arguments are checked first.
fn xtrim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (opts, _) = match parse_add_trim(args, false, ctx.shared.node_limits().max_entries) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let Some(how) = opts.trim else {
        return Reply::error(error::SYNTAX);
    };
    let policy = opts.policy.unwrap_or_default();
    let spec = ops::TrimSpec {
        how,
        approx: opts.approx,
        limit: opts.limit,
        policy,
    };
    match with_stream_logged(ctx, &args[1], 0, |s, log| {
        let (n, acked) = ops::trim(s, spec);
        if n > 0 {
            log_trim(log, &args[1], s, policy, &acked);
        }
        n
    }) {
        Ok(n) => Reply::Integer(n as i64),
        Err(e) => e,
    }
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]
fn xsetid(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let id = match parse_id(&args[2], 0, true, false) {
        Ok((id, _)) => id,
        Err(e) => return e,
    };
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is_opt(&args[i], b"entriesadded") && more > 0 {
            match parse_i64(&args[i + 1]) {
                None => return Reply::error(error::NOT_INTEGER),
                Some(n) if n < 0 => return Reply::error("ERR entries_added must be positive"),
                Some(n) => entries_added = Some(n as u64),
            }
            i += 2;
        } else if is_opt(&args[i], b"maxdeletedid") && more > 0 {
            match parse_id(&args[i + 1], 0, true, false) {
                Err(e) => return e,
                Ok((m, _)) if id < m => {
                    return Reply::error("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
                }
                Ok((m, _)) => max_deleted = m,
            }
            i += 2;
        } else {
            return Reply::error(error::SYNTAX);
        }
    }
    let result = ctx.with_shard(&args[1], |shard| {
        let (s, mut log) = match shard.get_mut_logged(&args[1]) {
            Some((Value::Stream(s), log)) => (s, log),
            Some(_) => return Reply::error(error::WRONGTYPE),
            None => return Reply::error(error::NO_SUCH_KEY),
        };
        let spec = ops::SetIdSpec {
            last: id,
            entries_added,
            max_deleted,
        };
        match ops::set_id(s, spec) {
            Ok(()) => {}
            Err(ops::SetIdError::BelowTop) => {
                return Reply::error(
                    "ERR The ID specified in XSETID is smaller than the target stream top item",
                )
            }
            Err(ops::SetIdError::AddedBelowLength) => {
                return Reply::error(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                )
            }
        }
        log.args(args);
        log.notify(&args[1], events::XSETID);
        Reply::ok()
    });
    result
}
