//! Minimal string values (SET, GET), so the generic key commands have something to act on;
//! SET takes every option Redis 7.0's does, expiry included.

use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::error;
use crate::events;
use crate::reply::Reply;
use crate::store::Value;
use bytes::Bytes;
use std::sync::atomic::Ordering;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, &["read", "string", "fast"], get)
        .keys(1, 1, 1)
        .doc("string", "1.0.0", "Returns the string value of a key.")
        .usage("key"),
    CommandSpec::new("set", -3, WRITE | DENYOOM, &["write", "string", "slow"], set)
        .keys(1, 1, 1)
        .doc("string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.")
        .usage("key value [NX|XX] [GET] [EX seconds:integer|PX milliseconds:integer|EXAT unix-time-seconds:unix-time|PXAT unix-time-milliseconds:unix-time|KEEPTTL]"),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, &["write", "string", "slow"], setex)
        .keys(1, 1, 1)
        .doc("string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.")
        .usage("key seconds:integer value"),
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, &["write", "string", "slow"], psetex)
        .keys(1, 1, 1)
        .doc("string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.")
        .usage("key milliseconds:integer value"),
];

fn get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let stats = &ctx.shared.stats;
    let found = ctx.with_shard(&args[1], |shard| {
        let v = shard.get(&args[1]).cloned();
        if v.is_none() {
            shard.missed(&args[1]);
        }
        v
    });
    match found {
        Some(Value::String(v)) => {
            stats.keyspace_hits.fetch_add(1, Ordering::Relaxed);
            Reply::Bulk(v)
        }
        None => {
            stats.keyspace_misses.fetch_add(1, Ordering::Relaxed);
            Reply::Null
        }
        #[allow(unreachable_patterns)]
        Some(_) => Reply::error(error::WRONGTYPE),
    }
}

/// What SET was asked to do with the key's deadline.
#[derive(Clone, Copy, PartialEq)]
enum SetTtl {
    /// No option: the new value has no deadline.
    Clear,
    KeepTtl,
    /// EX/PX/EXAT/PXAT: an absolute deadline in unix ms.
    At(u64),
}

/// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ts-ms|KEEPTTL]
///
/// Options are read as `parseExtendedStringArgumentsOrReply` reads them: an option that
/// conflicts with one already given (or lacks its value) is a syntax error, a repeated one
/// replaces its value; the expire time is then checked (positive, no overflow), then GET's
/// type check, then NX/XX.
fn set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut get) = (false, false, false);
    // (option, its value): EX, PX, EXAT, PXAT are mutually exclusive, as is KEEPTTL.
    let mut expire: Option<(&'static str, &Bytes)> = None;
    let mut keepttl = false;
    let mut i = 3;
    while i < args.len() {
        let opt = super::stream::cstr(&args[i]).to_ascii_lowercase();
        let next = args.get(i + 1);
        let timed = |name: &str| {
            !keepttl && expire.is_none_or(|(other, _)| other == name) && next.is_some()
        };
        match opt.as_slice() {
            b"nx" if !xx => nx = true,
            b"xx" if !nx => xx = true,
            b"get" => get = true,
            b"keepttl" if expire.is_none() => keepttl = true,
            b"ex" | b"px" | b"exat" | b"pxat" => {
                let name = match opt.as_slice() {
                    b"ex" => "ex",
                    b"px" => "px",
                    b"exat" => "exat",
                    _ => "pxat",
                };
                match next {
                    Some(v) if timed(name) => expire = Some((name, v)),
                    _ => return Reply::error(error::SYNTAX),
                }
                i += 1;
            }
            _ => return Reply::error(error::SYNTAX),
        }
        i += 1;
    }
    let ttl = match expire {
        None if keepttl => SetTtl::KeepTtl,
        None => SetTtl::Clear,
        Some((unit, value)) => match deadline(unit, value, "set") {
            Ok(at) => SetTtl::At(at),
            Err(e) => return e,
        },
    };
    set_generic(ctx, &args[1], &args[2], (nx, xx, get), ttl)
}

/// SETEX key seconds value: SET key value EX seconds.
fn setex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    set_with_deadline(ctx, args, "ex", "setex")
}

/// PSETEX key milliseconds value: SET key value PX milliseconds.
fn psetex(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    set_with_deadline(ctx, args, "px", "psetex")
}

/// SETEX / PSETEX: `key time value`, the time in `unit` (`ex` or `px`).
fn set_with_deadline(ctx: &mut Ctx, args: &[Bytes], unit: &str, command: &str) -> Reply {
    match deadline(unit, &args[2], command) {
        Ok(at) => set_generic(
            ctx,
            &args[1],
            &args[3],
            (false, false, false),
            SetTtl::At(at),
        ),
        Err(e) => e,
    }
}

/// Store a string under `key` as Redis's `setGenericCommand` does, after GET's type check
/// and the NX/XX condition.
fn set_generic(
    ctx: &mut Ctx,
    key: &Bytes,
    value: &[u8],
    (nx, xx, get): (bool, bool, bool),
    ttl: SetTtl,
) -> Reply {
    ctx.with_shard(key, |shard| {
        if get && shard.peek(key).is_none() {
            // SET … GET reads the old value: a read lookup.
            shard.missed(key);
        }
        let old = shard.get(key);
        let old_reply = match old {
            None => Reply::Null,
            Some(Value::String(v)) => Reply::Bulk(v.clone()),
            #[allow(unreachable_patterns)]
            Some(_) if get => return Reply::error(error::WRONGTYPE),
            #[allow(unreachable_patterns)]
            Some(_) => Reply::Null,
        };
        let exists = old.is_some();
        if (nx && exists) || (xx && !exists) {
            return if get { old_reply } else { Reply::Null };
        }
        let stored = crate::store::owned(key);
        let string = Value::String(crate::store::owned(value));
        match ttl {
            SetTtl::KeepTtl => {
                shard.insert_keep_ttl(stored, string);
                shard.log(&[b"SET", key, value, b"KEEPTTL"]);
            }
            SetTtl::Clear => {
                shard.insert(stored, string);
                shard.log(&[b"SET", key, value]);
            }
            SetTtl::At(at) => {
                shard.insert(stored.clone(), string);
                shard.set_deadline(&stored, at);
                let mut n = itoa::Buffer::new();
                shard.log(&[b"SET", key, value, b"PXAT", n.format(at).as_bytes()]);
            }
        }
        if !exists {
            shard.notify(key, events::NEW);
        }
        shard.notify(key, events::SET);
        if matches!(ttl, SetTtl::At(_)) {
            shard.notify(key, events::EXPIRE);
        }
        if get {
            old_reply
        } else {
            Reply::ok()
        }
    })
}

/// The absolute deadline (unix ms) of SET's EX/PX/EXAT/PXAT value, checked as
/// `getExpireMillisecondsOrReply` checks it.
fn deadline(unit: &str, value: &[u8], command: &str) -> Result<u64, Reply> {
    let Some(n) = super::parse_i64(value) else {
        return Err(Reply::error(error::NOT_INTEGER));
    };
    let seconds = unit == "ex" || unit == "exat";
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(super::expire::invalid_expire_time(command));
    }
    let mut ms = if seconds { n * 1000 } else { n };
    if unit == "ex" || unit == "px" {
        ms = ms.wrapping_add(crate::store::now_ms() as i64);
    }
    if ms <= 0 {
        return Err(super::expire::invalid_expire_time(command));
    }
    Ok(ms as u64)
}
