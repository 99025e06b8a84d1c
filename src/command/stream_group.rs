//! Consumer-group commands: XGROUP, XREADGROUP (with Redis 8.4's CLAIM), XACK, XPENDING.
//! XCLAIM and XAUTOCLAIM are in `stream_claim`.
//!
//! Check order and error texts follow t_stream.c (Redis 7.0). The group state lives in
//! `store::stream::group`; these handlers parse, look up, and shape replies.

use super::flags::*;
use super::stream::{
    cstr, entry_reply, is_opt, now_ms, parse_end, parse_id, parse_ids, parse_read_opts,
    parse_start, streams_reply, with_stream, with_stream_logged, with_stream_mut,
};
use super::{help_reply, parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::events;
use crate::reply::Reply;
use crate::store::shard::Log;
use crate::store::stream::group::ConsumerGroup;
use crate::store::stream::id::StreamId;
use crate::store::stream::idmp::Idmp;
use crate::store::stream::Stream;
use crate::store::Value;
use bytes::Bytes;

const W: &[&str] = &["write", "stream", "slow"];

const XGROUP_SUBS: &[CommandSpec] = &[
    CommandSpec::new("create", -5, WRITE | DENYOOM, W, xgroup)
        .doc("stream", "5.0.0", "Creates a consumer group.")
        .usage("key group (id|$) [MKSTREAM] [ENTRIESREAD entries-read:integer]"),
    CommandSpec::new("setid", -5, WRITE, W, xgroup)
        .doc(
            "stream",
            "5.0.0",
            "Sets the last-delivered ID of a consumer group.",
        )
        .usage("key group (id|$) [ENTRIESREAD entries-read:integer]"),
    CommandSpec::new("destroy", 4, WRITE, W, xgroup)
        .doc("stream", "5.0.0", "Destroys a consumer group.")
        .complexity(
            "O(N) where N is the number of entries in the group's pending entries list (PEL).",
        )
        .usage("key group"),
    CommandSpec::new("createconsumer", 5, WRITE | DENYOOM, W, xgroup)
        .doc("stream", "6.2.0", "Creates a consumer in a consumer group.")
        .usage("key group consumer"),
    CommandSpec::new("delconsumer", 5, WRITE, W, xgroup)
        .doc(
            "stream",
            "5.0.0",
            "Deletes a consumer from a consumer group.",
        )
        .usage("key group consumer"),
    CommandSpec::new("help", 2, LOADING | STALE, &["stream", "slow"], xgroup_help).doc(
        "stream",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::container("xgroup", &["slow"], XGROUP_SUBS).doc("stream", "5.0.0", "A container for consumer groups commands."),
    CommandSpec::new("xreadgroup", -7, WRITE | BLOCKING, &["write", "stream", "slow", "blocking"], xreadgroup)
        .doc("stream", "5.0.0", "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise.")
        .usage("GROUP group consumer [COUNT count:integer] [BLOCK milliseconds:integer] [CLAIM min-idle-time:integer] [NOACK] STREAMS key ... id ..."),
    CommandSpec::new("xack", -4, WRITE | FAST, &["write", "stream", "fast"], xack)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream.")
        .usage("key group id ..."),
    CommandSpec::new("xpending", -3, READONLY, &["read", "stream", "slow"], xpending)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Returns the information and entries from a stream consumer group's pending entries list.")
        .usage("key group [[IDLE min-idle-time:integer] start end count:integer [consumer]]"),
];

/// A NOGROUP error quoting client bytes: the pieces are concatenated as they are.
fn nogroup_error(pieces: &[&[u8]]) -> Reply {
    error::with_arg("", &pieces.concat(), "")
}

fn nogroup(group: &[u8], key: &[u8]) -> Reply {
    nogroup_error(&[
        b"NOGROUP No such consumer group '",
        group,
        b"' for key name '",
        key,
        b"'",
    ])
}

/// A group's entries-read as an ENTRIESREAD argument (-1: unknown).
fn entries_read_arg(read: Option<u64>) -> String {
    read.map_or_else(|| "-1".to_string(), |n| n.to_string())
}

/// XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER (one handler, Redis's order).
fn xgroup(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let sub = cstr(&args[1]).to_ascii_lowercase();
    let (key, group) = (&args[2], &args[3]);
    let create = sub == b"create";
    let mut mkstream = false;
    let mut entries_read: Option<i64> = None;
    if create || sub == b"setid" {
        let mut i = 5;
        while i < args.len() {
            if create && is_opt(&args[i], b"mkstream") {
                mkstream = true;
                i += 1;
            } else if is_opt(&args[i], b"entriesread") && i + 1 < args.len() {
                match parse_i64(&args[i + 1]) {
                    None => return Reply::error(error::NOT_INTEGER),
                    Some(n) if n < -1 => {
                        return Reply::error("ERR value for ENTRIESREAD must be positive or -1")
                    }
                    Some(n) => entries_read = Some(n),
                }
                i += 2;
            } else {
                return error::subcommand_syntax(&args[1], "xgroup");
            }
        }
    }
    let now = now_ms();
    let idmp_limits = ctx.shared.idmp_limits();
    let reply = ctx.with_shard(key, |shard| {
        let exists = match shard.get(key) {
            Some(Value::Stream(_)) => true,
            Some(_) => return Reply::error(error::WRONGTYPE),
            None => false,
        };
        if !exists && !mkstream {
            return Reply::error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
        }
        if exists {
            let Some(Value::Stream(s)) = shard.get(key) else { return Reply::error(error::WRONGTYPE) };
            let needs_group = matches!(sub.as_slice(), b"setid" | b"createconsumer" | b"delconsumer");
            if needs_group && !s.groups.contains_key(group) {
                return nogroup(group, key);
            }
        }
        // CREATE takes strict IDs; SETID also accepts `-` and `+`.
        let strict = create;
        let resolve = |s: Option<&Stream>, arg: &[u8]| -> Result<StreamId, Reply> {
            if cstr(arg) == b"$" {
                Ok(s.map_or(StreamId::MIN, |s| s.last_id))
            } else {
                parse_id(arg, 0, strict, false).map(|(id, _)| id)
            }
        };
        let argc_ok = match sub.as_slice() {
            b"create" => (5..=8).contains(&args.len()),
            b"setid" => args.len() == 5 || args.len() == 7,
            _ => true,
        };
        if !argc_ok {
            return error::subcommand_syntax(&args[1], "xgroup");
        }
        let read = entries_read.and_then(|n| u64::try_from(n).ok());
        match sub.as_slice() {
            b"create" => {
                let current = match shard.get(key) {
                    Some(Value::Stream(s)) => Some(&**s),
                    _ => None,
                };
                let id = match resolve(current, &args[4]) {
                    Ok(id) => id,
                    Err(e) => return e,
                };
                if current.is_some_and(|s| s.groups.contains_key(group)) {
                    return Reply::error("BUSYGROUP Consumer Group name already exists");
                }
                if current.is_none() {
                    let mut fresh = Box::<Stream>::default();
                    fresh.idmp = Idmp::with_limits(idmp_limits.0, idmp_limits.1);
                    shard.insert(crate::store::owned(key), Value::Stream(fresh));
                    shard.notify(key, events::NEW);
                }
                let Some(Value::Stream(s)) = shard.get_mut(key) else { return Reply::error(error::WRONGTYPE) };
                s.groups.insert(crate::store::owned(group), ConsumerGroup::new(id, read));
                // `$` resolved: the effect is a group at this concrete ID.
                let (id, read) = (id.to_bytes(), entries_read_arg(read));
                shard.log(&[b"XGROUP", b"CREATE", key, group, &id, b"ENTRIESREAD", read.as_bytes(), b"MKSTREAM"]);
                shard.notify(key, events::XGROUP_CREATE);
                Reply::ok()
            }
            b"setid" => {
                let Some(Value::Stream(s)) = shard.get_mut(key) else { return Reply::error(error::WRONGTYPE) };
                let id = match resolve(Some(s), &args[4]) {
                    Ok(id) => id,
                    Err(e) => return e,
                };
                if let Some(g) = s.groups.get_mut(group) {
                    g.last_id = id;
                    g.entries_read = read;
                }
                let (id, read) = (id.to_bytes(), entries_read_arg(read));
                shard.log(&[b"XGROUP", b"SETID", key, group, &id, b"ENTRIESREAD", read.as_bytes()]);
                shard.notify(key, events::XGROUP_SETID);
                Reply::ok()
            }
            b"destroy" => {
                let Some(Value::Stream(s)) = shard.get_mut(key) else { return Reply::error(error::WRONGTYPE) };
                let removed = s.groups.remove(group).is_some();
                if removed {
                    shard.log_args(args);
                    // Consumers blocked on the group learn it is gone.
                    shard.notify(key, events::XGROUP_DESTROY);
                }
                Reply::Integer(removed as i64)
            }
            b"createconsumer" => {
                let Some(Value::Stream(s)) = shard.get_mut(key) else { return Reply::error(error::WRONGTYPE) };
                let Some(g) = s.groups.get_mut(group) else { return nogroup(group, key) };
                let (_, created) = g.consumer(&args[4], now);
                if created {
                    shard.log_args(args);
                    shard.notify(key, events::XGROUP_CREATECONSUMER);
                }
                Reply::Integer(created as i64)
            }
            b"delconsumer" => {
                let Some(Value::Stream(s)) = shard.get_mut(key) else { return Reply::error(error::WRONGTYPE) };
                let Some(g) = s.groups.get_mut(group) else { return nogroup(group, key) };
                let deleted = g.delete_consumer(&args[4]);
                if deleted.is_some() {
                    shard.log_args(args);
                    shard.notify(key, events::XGROUP_DELCONSUMER);
                }
                Reply::Integer(deleted.unwrap_or(0) as i64)
            }
            _ => error::subcommand_syntax(&args[1], "xgroup"),
        }
    });
    reply
}

fn xgroup_help(_: &mut Ctx, _: &[Bytes]) -> Reply {
    help_reply(
        "xgroup",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    )
}

/// XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
fn xreadgroup(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let opts = match parse_read_opts(args, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (count, block, noack) = (opts.count, opts.block, opts.noack);
    let rest = &args[opts.streams_at..];
    let Some((group, consumer)) = opts.group else {
        return Reply::error("ERR Missing GROUP option for XREADGROUP");
    };
    let (keys, id_args) = rest.split_at(rest.len() / 2);
    let retrying = ctx.session.blocked.is_some();
    // Validate every stream, group and ID before reading anything.
    let mut wanted: Vec<Option<StreamId>> = Vec::with_capacity(keys.len());
    for (key, arg) in keys.iter().zip(id_args) {
        let state = with_stream_mut(ctx, key, None, |s| Some(s.groups.contains_key(&group)));
        if matches!(state, Ok(None)) && !retrying {
            super::stream::keymiss(ctx, key);
        }
        match state {
            // Deleted, or overwritten with another type (SET, RENAME): Redis 7.0 answers a
            // blocked reader the same way for both.
            Err(_) | Ok(None) if retrying => {
                return Reply::error("UNBLOCKED the stream key no longer exists")
            }
            Err(e) => return e,
            Ok(Some(true)) => {}
            Ok(_) if retrying => {
                return Reply::error(
                    "NOGROUP the consumer group this client was blocked on no longer exists",
                )
            }
            Ok(_) => {
                return nogroup_error(&[
                    b"NOGROUP No such key '",
                    key,
                    b"' or consumer group '",
                    &group,
                    b"' in XREADGROUP with GROUP option",
                ]);
            }
        }
        match cstr(arg) {
            b"$" => return Reply::error("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set."),
            b">" => wanted.push(None),
            // The largest possible ID reads new entries, like `>`.
            _ => match parse_id(arg, 0, true, false) {
                Ok((id, _)) if id == StreamId::MAX => wanted.push(None),
                Ok((id, _)) => wanted.push(Some(id)),
                Err(e) => return e,
            },
        }
    }
    let now = now_ms();
    let limit = (count > 0).then_some(count);
    let mut claim = opts.claim;
    let mut results: Vec<(Bytes, Reply)> = Vec::new();
    for (key, want) in keys.iter().zip(&wanted) {
        // Redis 8.4: a history read turns CLAIM off for it and every stream after it.
        if want.is_some() {
            claim = None;
        }
        let read = GroupRead {
            group: &group,
            consumer: &consumer,
            limit,
            noack,
            claim,
            now,
        };
        let served = with_stream_logged(ctx, key, None, |s, log| {
            read_group(s, &read, *want, &mut GroupLog { log, key })
        });
        match served {
            Err(e) => return e,
            Ok(Some((entries, n))) => {
                // History reads always report the stream, new reads only when they found data.
                if want.is_some() || n > 0 {
                    results.push((key.clone(), entries));
                }
            }
            Ok(None) => {}
        }
    }
    if !results.is_empty() {
        return streams_reply(ctx.session.resp, results);
    }
    match block {
        Some(ms) if wanted.iter().all(Option::is_none) && !ctx.session.in_exec => {
            let timeout = (ms > 0).then(|| std::time::Duration::from_millis(ms));
            ctx.session
                .block_on(ctx.shared, keys.to_vec(), timeout, args.to_vec());
            if let Some(min_idle) = opts.claim {
                // Look again when the oldest pending entry becomes idle enough (or, with
                // nothing pending, min-idle-time from now, as Redis does); at least a
                // millisecond ahead, so a recheck never spins.
                let mut at = now.saturating_add(min_idle);
                for key in keys {
                    let oldest = with_stream(ctx, key, None, |s| {
                        let g = s.groups.get(&group)?;
                        g.oldest_delivery(|id| s.contains(id))
                    });
                    if let Ok(Some(t)) = oldest {
                        at = at.min(t.saturating_add(min_idle));
                    }
                }
                let wait = at.saturating_sub(now).max(1);
                ctx.session
                    .recheck_at(std::time::Instant::now() + std::time::Duration::from_millis(wait));
            }
            Reply::None
        }
        _ => Reply::NullArray,
    }
}

/// How a group read logs its effects: what Redis propagates for XREADGROUP — an XCLAIM per
/// delivered entry with its delivery time and count, XGROUP SETID for the group's new last
/// ID and entries-read, XGROUP CREATECONSUMER for a consumer created without a delivery.
pub(super) struct GroupLog<'a, 'b> {
    pub log: &'a mut Log<'b>,
    pub key: &'a Bytes,
}

impl GroupLog<'_, '_> {
    /// `id` is pending for `consumer`, delivered at `time` for the `count`th time.
    pub fn delivered(
        &mut self,
        group: &[u8],
        consumer: &[u8],
        id: StreamId,
        time: u64,
        count: u64,
    ) {
        if !self.log.on() {
            return;
        }
        let (id, mut t, mut c) = (id.to_bytes(), itoa::Buffer::new(), itoa::Buffer::new());
        self.log.cmd(&[
            b"XCLAIM",
            self.key,
            group,
            consumer,
            b"0",
            &id,
            b"TIME",
            t.format(time).as_bytes(),
            b"RETRYCOUNT",
            c.format(count).as_bytes(),
            b"FORCE",
            b"JUSTID",
        ]);
    }

    /// `id` is no longer pending (its entry was deleted) — XCLAIM/XAUTOCLAIM drop it.
    pub fn dropped(&mut self, group: &[u8], id: StreamId) {
        if self.log.on() {
            let id = id.to_bytes();
            self.log.cmd(&[b"XACK", self.key, group, &id]);
        }
    }

    /// A consumer was created; `record` when no delivery's record creates it on replay.
    pub fn created(&mut self, group: &[u8], consumer: &[u8], record: bool) {
        if record {
            self.log
                .cmd(&[b"XGROUP", b"CREATECONSUMER", self.key, group, consumer]);
        }
        self.log.notify(self.key, events::XGROUP_CREATECONSUMER);
    }

    /// The group now stands at `last` with `read` entries read.
    pub fn moved_to(&mut self, group: &[u8], last: StreamId, read: Option<u64>) {
        if self.log.on() {
            let (last, read) = (last.to_bytes(), entries_read_arg(read));
            self.log.cmd(&[
                b"XGROUP",
                b"SETID",
                self.key,
                group,
                &last,
                b"ENTRIESREAD",
                read.as_bytes(),
            ]);
        }
    }
}

/// What one XREADGROUP asks of each stream.
struct GroupRead<'a> {
    group: &'a Bytes,
    consumer: &'a Bytes,
    limit: Option<usize>,
    noack: bool,
    /// CLAIM min-idle-time: serve idle pending entries first, four-element entries.
    claim: Option<u64>,
    now: u64,
}

/// A CLAIM read's entry: `[id, fields, idle ms, deliveries before this one]`.
fn claimed_reply(entry: Reply, idle: i64, count: u64) -> Reply {
    match entry {
        Reply::Array(mut v) => {
            v.push(Reply::Integer(idle));
            v.push(Reply::Integer(count.min(i64::MAX as u64) as i64));
            Reply::Array(v)
        }
        other => other,
    }
}

/// Serve one stream for a group read: new entries (`want` = None, i.e. `>`), after the
/// pending entries idle for CLAIM's min-idle-time if it is given; or the consumer's own
/// pending entries after `want` (history; deleted entries come back as nil). Returns the
/// entries array and how many entries it holds; `None` without the group.
fn read_group(
    s: &mut Stream,
    r: &GroupRead,
    want: Option<StreamId>,
    log: &mut GroupLog,
) -> Option<(Reply, usize)> {
    let entries = |v: Vec<Reply>| {
        let n = v.len();
        (Reply::Array(v), n)
    };
    let (group, consumer, now) = (r.group, r.consumer, r.now);
    let after = s.groups.get(group)?.last_id;
    match want {
        None => {
            let mut out = Vec::new();
            if let Some(min_idle) = r.claim {
                claim_idle(s, r, min_idle, &mut out, log)?;
            }
            let left = r.limit.map(|l| l - out.len().min(l));
            if left == Some(0) {
                return Some(entries(out));
            }
            let Some(start) = after.next() else {
                return Some(entries(out));
            };
            // The reply and the IDs it delivers from one walk over the chunks; plain reads
            // are encoded straight from them, in one piece.
            let (reply, ids) = if r.claim.is_some() {
                let new = s.range(start, StreamId::MAX, left, false);
                let ids: Vec<StreamId> = new.iter().map(|e| e.id).collect();
                out.extend(new.into_iter().map(|e| claimed_reply(entry_reply(e), 0, 0)));
                (entries(out), ids)
            } else {
                let mut wire = bytes::BytesMut::new();
                let ids = s.encode_range(start, StreamId::MAX, left, false, &mut wire);
                ((Reply::Encoded(wire.freeze()), ids.len()), ids)
            };
            // Redis's entries_read bookkeeping, entry by entry, each step from the last.
            let mut counter = s.groups.get(group)?.entries_read;
            let mut read = Vec::with_capacity(ids.len());
            for id in &ids {
                counter = match counter {
                    Some(n) if !s.has_tombstones_from(*id) => Some(n + 1),
                    _ if s.entries_added > 0 => s.entries_read_at(*id),
                    other => other,
                };
                read.push((*id, counter));
            }
            if ids.is_empty() {
                // Redis 7.0 creates the consumer only when a `>` read serves something.
                return Some(reply);
            }
            let g = s.groups.get_mut(group)?;
            let (c, created) = g.consumer(consumer, now);
            c.active_time = Some(now);
            for (id, counter) in read {
                g.last_id = id;
                g.entries_read = counter;
                if !r.noack {
                    g.deliver_new(id, consumer, now);
                    log.delivered(group, consumer, id, now, 1);
                }
            }
            if created {
                log.created(group, consumer, r.noack);
            }
            log.moved_to(group, g.last_id, g.entries_read);
            Some(reply)
        }
        Some(from) => {
            let ids: Vec<StreamId> = {
                let g = s.groups.get_mut(group)?;
                let (c, created) = g.consumer(consumer, now);
                if created {
                    log.created(group, consumer, true);
                }
                let start = from.next()?;
                c.pending
                    .range(start..)
                    .take(r.limit.unwrap_or(usize::MAX))
                    .copied()
                    .collect()
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let entry = s.range(id, id, Some(1), false).pop();
                // A deleted entry is reported (with no fields) but not counted as delivered.
                if entry.is_some() {
                    if let Some(g) = s.groups.get_mut(group) {
                        g.redeliver(id, now);
                        let count = g.pel().get(&id).map_or(1, |p| p.delivery_count);
                        log.delivered(group, consumer, id, now, count);
                    }
                }
                out.push(match entry {
                    Some(e) => entry_reply(e),
                    None => Reply::Array(vec![Reply::Bulk(id.to_bytes()), Reply::NullArray]),
                });
            }
            Some(entries(out))
        }
    }
}

/// XREADGROUP … CLAIM: move the pending entries idle for at least `min_idle` ms to the
/// reader, NACKed ones first, then the longest idle, up to the read's COUNT. Entries whose
/// stream entry was deleted are skipped (and stay pending). NOACK does not apply to them.
fn claim_idle(
    s: &mut Stream,
    r: &GroupRead,
    min_idle: u64,
    out: &mut Vec<Reply>,
    log: &mut GroupLog,
) -> Option<()> {
    let limit = r.limit.unwrap_or(usize::MAX);
    // The entries to claim, taken from the front of the delivery order before any claim
    // moves one to its end: at most COUNT of them, up to the first one not idle enough.
    let chosen: Vec<(StreamId, i64)> = {
        let g = s.groups.get(r.group)?;
        let mut chosen = Vec::new();
        for id in g.by_delivery() {
            if out.len() + chosen.len() >= limit {
                break;
            }
            let Some(p) = g.pel().get(&id) else { continue };
            // A NACKed entry has no delivery time: its idle time is -1, as XPENDING says.
            let idle = if p.is_nacked() {
                -1
            } else {
                let idle = r.now.saturating_sub(p.delivery_time);
                if idle < min_idle {
                    break;
                }
                idle.min(i64::MAX as u64) as i64
            };
            if s.contains(id) {
                chosen.push((id, idle));
            }
        }
        chosen
    };
    for (id, idle) in chosen {
        let Some(entry) = s.range(id, id, Some(1), false).pop() else {
            continue;
        };
        let g = s.groups.get_mut(r.group)?;
        let before = g.claim(id, r.consumer, r.now, None, true, r.now)?;
        let count = g.pel().get(&id).map_or(1, |p| p.delivery_count);
        log.delivered(r.group, r.consumer, id, r.now, count);
        out.push(claimed_reply(entry_reply(entry), idle, before));
    }
    Some(())
}

/// XACK key group id ...: IDs are all checked first, so an error acknowledges nothing.
fn xack(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, group) = (&args[1], &args[2]);
    // No key or group: nothing to acknowledge, and the IDs are not even checked.
    match with_stream_mut(ctx, key, None, |s| Some(s.groups.contains_key(group))) {
        Err(e) => return e,
        Ok(None) => {
            super::stream::keymiss(ctx, key);
            return Reply::Integer(0);
        }
        Ok(Some(false)) => return Reply::Integer(0),
        Ok(Some(true)) => {}
    }
    let ids = match parse_ids(&args[3..]) {
        Ok(ids) => ids,
        Err(e) => return e,
    };
    let acked = with_stream_logged(ctx, key, 0, |s, log| match s.groups.get_mut(group) {
        Some(g) => {
            let n = ids.iter().filter(|id| g.ack(**id)).count();
            if n > 0 {
                log.args(args);
            }
            n
        }
        None => 0,
    });
    match acked {
        Ok(n) => Reply::Integer(n as i64),
        Err(e) => e,
    }
}

/// XPENDING key group [[IDLE ms] start end count [consumer]]
fn xpending(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let summary = args.len() == 3;
    if !summary && !(6..=9).contains(&args.len()) {
        return Reply::error(error::SYNTAX);
    }
    let mut range = None;
    let mut min_idle = 0i64;
    let mut consumer: Option<Bytes> = None;
    if !summary {
        let mut at = 3;
        if is_opt(&args[3], b"idle") {
            match parse_i64(&args[4]) {
                None => return Reply::error(error::NOT_INTEGER),
                Some(n) => min_idle = n,
            }
            if args.len() < 8 {
                return Reply::error(error::SYNTAX);
            }
            at += 2;
        }
        let count = match args.get(at + 2).and_then(|a| parse_i64(a)) {
            Some(n) => n.max(0) as usize,
            None => return Reply::error(error::NOT_INTEGER),
        };
        let start = match parse_start(&args[at]) {
            Ok(v) => v,
            Err(e) => return e,
        };
        let end = match parse_end(&args[at + 1]) {
            Ok(v) => v,
            Err(e) => return e,
        };
        consumer = args.get(at + 3).cloned();
        range = Some((start, end, count));
    }
    let (key, group) = (&args[1], &args[2]);
    let now = now_ms() as i64;
    let result = with_stream_mut(ctx, key, None, |s| {
        let g = s.groups.get(group)?;
        Some(match range {
            None => {
                if g.pel().is_empty() {
                    return Some(Reply::Array(vec![
                        Reply::Integer(0),
                        Reply::Null,
                        Reply::Null,
                        Reply::NullArray,
                    ]));
                }
                let first = g.pel().keys().next().copied().unwrap_or_default();
                let last = g.pel().keys().next_back().copied().unwrap_or_default();
                let consumers = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pending.is_empty())
                    .map(|(name, c)| {
                        Reply::Array(vec![
                            Reply::Bulk(name.clone()),
                            Reply::bulk(c.pending.len().to_string()),
                        ])
                    })
                    .collect();
                Reply::Array(vec![
                    Reply::Integer(g.pel().len() as i64),
                    Reply::Bulk(first.to_bytes()),
                    Reply::Bulk(last.to_bytes()),
                    Reply::Array(consumers),
                ])
            }
            Some((start, end, count)) => {
                let ids: Box<dyn Iterator<Item = StreamId>> = match &consumer {
                    Some(name) => match g.consumers.get(name) {
                        Some(c) => Box::new(c.pending.range(start..=end.max(start)).copied()),
                        None => return Some(Reply::Array(vec![])),
                    },
                    None => Box::new(g.pel().range(start..=end.max(start)).map(|(id, _)| *id)),
                };
                let mut out = Vec::new();
                for id in ids {
                    if out.len() >= count || id > end {
                        break;
                    }
                    let Some(p) = g.pel().get(&id) else { continue };
                    // A NACKed entry has no owner and no idle time (Redis 8.8 reports -1),
                    // and the IDLE filter does not apply to it.
                    let idle = if p.is_nacked() {
                        -1
                    } else {
                        (now - p.delivery_time as i64).max(0)
                    };
                    if min_idle > 0 && idle < min_idle && !p.is_nacked() {
                        continue;
                    }
                    out.push(Reply::Array(vec![
                        Reply::Bulk(id.to_bytes()),
                        Reply::Bulk(p.consumer.clone()),
                        Reply::Integer(idle),
                        Reply::Integer(p.delivery_count as i64),
                    ]));
                }
                Reply::Array(out)
            }
        })
    });
    match result {
        Err(e) => e,
        Ok(Some(r)) => r,
        Ok(None) => {
            super::stream::keymiss_if_missing(ctx, key);
            nogroup_short(key, group)
        }
    }
}

/// `NOGROUP No such key '<key>' or consumer group '<group>'`.
pub(super) fn nogroup_short(key: &[u8], group: &[u8]) -> Reply {
    nogroup_error(&[
        b"NOGROUP No such key '",
        key,
        b"' or consumer group '",
        group,
        b"'",
    ])
}

/// Whether `consumer` exists in `group` (claims create consumers inside the group's
/// methods: comparing before and after tells the command it created one).
pub(super) fn has_consumer(s: &Stream, group: &[u8], consumer: &[u8]) -> bool {
    s.groups
        .get(group)
        .is_some_and(|g| g.consumers.contains_key(consumer))
}
