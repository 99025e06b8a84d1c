//! XCLAIM and XAUTOCLAIM: moving pending entries to another consumer.
//!
//! Check order and error texts follow t_stream.c (Redis 7.0); an entry released by XNACK
//! (Redis 8.8) is claimable whatever the min-idle-time. The group state and its invariants
//! live in `store::stream::group`.

use super::flags::*;
use super::stream::{
    cstr, entry_reply, is_opt, now_ms, parse_id, parse_start, with_stream_logged, with_stream_mut,
};
use super::stream_group::nogroup_short;
use super::stream_group::GroupLog;
use super::{parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::reply::Reply;
use crate::store::stream::group::ConsumerGroup;
use crate::store::stream::id::StreamId;
use bytes::Bytes;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xclaim", -6, WRITE | FAST, &["write", "stream", "fast"], xclaim)
        .keys(1, 1, 1)
        .doc("stream", "5.0.0", "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member.")
        .complexity("O(log N) with N being the number of messages in the PEL of the consumer group.")
        .usage("key group consumer min-idle-time:integer id ... [IDLE ms:integer] [TIME unix-time-milliseconds:unix-time] [RETRYCOUNT count:integer] [FORCE] [JUSTID] [LASTID lastid]"),
    CommandSpec::new("xautoclaim", -6, WRITE | FAST, &["write", "stream", "fast"], xautoclaim)
        .keys(1, 1, 1)
        .doc("stream", "6.2.0", "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member.")
        .complexity("O(1) if COUNT is small.")
        .usage("key group consumer min-idle-time:integer start [COUNT count:integer] [JUSTID]"),
];

/// Whether pending entry `id` has been idle for `min_idle` ms; a NACKed entry always has.
fn idle_enough(g: &ConsumerGroup, id: StreamId, min_idle: u64, now: u64) -> bool {
    match g.pel().get(&id) {
        Some(p) if p.is_nacked() => true,
        Some(p) => now.saturating_sub(p.delivery_time) >= min_idle,
        None => false,
    }
}

/// XCLAIM key group consumer min-idle-time id ... [IDLE ms] [TIME ms] [RETRYCOUNT n] [FORCE]
/// [JUSTID] [LASTID id]
pub(super) fn xclaim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, group, consumer) = (&args[1], &args[2], &args[3]);
    match with_stream_mut(ctx, key, None, |s| Some(s.groups.contains_key(group))) {
        Err(e) => return e,
        Ok(None) => {
            super::stream::keymiss(ctx, key);
            return nogroup_short(key, group);
        }
        Ok(Some(false)) => return nogroup_short(key, group),
        Ok(Some(true)) => {}
    }
    let Some(min_idle) = parse_i64(&args[4]) else {
        return Reply::error("ERR Invalid min-idle-time argument for XCLAIM");
    };
    let min_idle = min_idle.max(0) as u64;
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_id(&args[j], 0, true, false) {
            Ok((id, _)) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = now_ms();
    let (mut force, mut justid) = (false, false);
    let mut delivery: Option<i64> = None;
    let mut retry: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        let int_arg = |j: usize, what: &str| -> Result<i64, Reply> {
            parse_i64(&args[j]).ok_or_else(|| {
                Reply::Error(format!("ERR Invalid {what} option argument for XCLAIM").into())
            })
        };
        if is_opt(opt, b"force") {
            force = true;
        } else if is_opt(opt, b"justid") {
            justid = true;
        } else if is_opt(opt, b"idle") && more > 0 {
            j += 1;
            match int_arg(j, "IDLE") {
                Ok(ms) => delivery = Some((now as i64).saturating_sub(ms)),
                Err(e) => return e,
            }
        } else if is_opt(opt, b"time") && more > 0 {
            j += 1;
            match int_arg(j, "TIME") {
                Ok(t) => delivery = Some(t),
                Err(e) => return e,
            }
        } else if is_opt(opt, b"retrycount") && more > 0 {
            j += 1;
            match int_arg(j, "RETRYCOUNT") {
                Ok(n) => retry = Some(n),
                Err(e) => return e,
            }
        } else if is_opt(opt, b"lastid") && more > 0 {
            j += 1;
            match parse_id(&args[j], 0, true, false) {
                Ok((id, _)) => last_id = id,
                Err(e) => return e,
            }
        } else {
            return error::with_arg("ERR Unrecognized XCLAIM option '", cstr(opt), "'");
        }
        j += 1;
    }
    // A bogus delivery time (negative or in the future) becomes now, as in Redis.
    let delivery_time = match delivery {
        Some(t) if t >= 0 && t <= now as i64 => t as u64,
        _ => now,
    };
    let retry = retry.filter(|n| *n >= 0).map(|n| n as u64);
    let reply = with_stream_logged(ctx, key, Reply::Array(vec![]), |s, log| {
        let had = super::stream_group::has_consumer(s, group, consumer);
        let mut log = GroupLog { log, key };
        let mut moved = false;
        let mut out = Vec::new();
        for id in ids {
            let exists = !s.range(id, id, Some(1), false).is_empty();
            let Some(g) = s.groups.get_mut(group) else {
                break;
            };
            if last_id > g.last_id {
                g.last_id = last_id;
                moved = true;
            }
            if !exists {
                if g.ack(id) {
                    log.dropped(group, id);
                }
                continue;
            }
            let fresh = match g.pel().get(&id) {
                Some(_) => false,
                None if !force => continue,
                None => {
                    // FORCE creates the pending entry (delivered once, owned by nobody yet).
                    g.insert_unowned(id, now);
                    true
                }
            };
            if !fresh && min_idle > 0 && !idle_enough(g, id, min_idle, now) {
                continue;
            }
            g.claim(id, consumer, delivery_time, retry, !justid, now);
            let count = g.pel().get(&id).map_or(1, |p| p.delivery_count);
            log.delivered(group, consumer, id, delivery_time, count);
            if justid {
                out.push(Reply::Bulk(id.to_bytes()));
            } else if let Some(e) = s.range(id, id, Some(1), false).pop() {
                out.push(entry_reply(e));
            }
        }
        if let Some(g) = s.groups.get_mut(group) {
            if last_id > g.last_id {
                g.last_id = last_id;
                moved = true;
            }
            if moved {
                log.moved_to(group, g.last_id, g.entries_read);
            }
        }
        if !had && super::stream_group::has_consumer(s, group, consumer) {
            log.created(group, consumer, false);
        }
        Reply::Array(out)
    });
    reply.unwrap_or_else(|e| e)
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT n] [JUSTID]
pub(super) fn xautoclaim(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, group, consumer) = (&args[1], &args[2], &args[3]);
    let Some(min_idle) = parse_i64(&args[4]) else {
        return Reply::error("ERR Invalid min-idle-time argument for XAUTOCLAIM");
    };
    let min_idle = min_idle.max(0) as u64;
    let start = match parse_start(&args[5]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is_opt(&args[j], b"count") && more > 0 {
            match parse_i64(&args[j + 1]) {
                Some(n) if (1..=i64::MAX / 16).contains(&n) => count = n,
                _ => return Reply::error("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if is_opt(&args[j], b"justid") {
            justid = true;
        } else {
            return Reply::error(error::SYNTAX);
        }
        j += 1;
    }
    let now = now_ms();
    let result = with_stream_logged(ctx, key, None, |s, log| {
        let had = super::stream_group::has_consumer(s, group, consumer);
        let mut log = GroupLog { log, key };
        s.groups.get(group)?;
        let mut attempts = count.saturating_mul(10);
        let mut remaining = count;
        let mut claimed = Vec::new();
        let mut deleted = Vec::new();
        // At most `attempts` entries are examined, plus one for the next cursor.
        let candidates: Vec<StreamId> = s
            .groups
            .get(group)?
            .pel()
            .range(start..)
            .take(
                usize::try_from(attempts)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
            )
            .map(|(id, _)| *id)
            .collect();
        let mut next_cursor = StreamId::MIN;
        let mut iter = candidates.into_iter().peekable();
        while attempts > 0 && remaining > 0 {
            let Some(id) = iter.next() else { break };
            attempts -= 1;
            let exists = !s.range(id, id, Some(1), false).is_empty();
            let g = s.groups.get_mut(group)?;
            if !exists {
                if g.ack(id) {
                    log.dropped(group, id);
                }
                deleted.push(Reply::Bulk(id.to_bytes()));
                remaining -= 1;
                continue;
            }
            if min_idle > 0 && !idle_enough(g, id, min_idle, now) {
                continue;
            }
            g.claim(id, consumer, now, None, !justid, now);
            let count = g.pel().get(&id).map_or(1, |p| p.delivery_count);
            log.delivered(group, consumer, id, now, count);
            remaining -= 1;
            if justid {
                claimed.push(Reply::Bulk(id.to_bytes()));
            } else if let Some(e) = s.range(id, id, Some(1), false).pop() {
                claimed.push(entry_reply(e));
            }
        }
        if let Some(id) = iter.next() {
            next_cursor = id;
        }
        if !had && super::stream_group::has_consumer(s, group, consumer) {
            log.created(group, consumer, false);
        }
        Some(Reply::Array(vec![
            Reply::Bulk(next_cursor.to_bytes()),
            Reply::Array(claimed),
            Reply::Array(deleted),
        ]))
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
