//! Key expiry: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX|XX|GT|LT), TTL, PTTL, EXPIRETIME,
//! PEXPIRETIME, PERSIST.
//!
//! Deadlines are absolute unix milliseconds on any key type; the shard deletes a key lazily
//! when a lookup finds it past its deadline and actively in the background (see
//! `store::shard`). The checks and their order follow Redis 7.0's `expireGenericCommand`:
//! options first, then the number, then overflow, then the key; a deadline already passed
//! deletes the key and replies 1.

use super::flags::*;
use super::{parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::events;
use crate::reply::Reply;
use bytes::Bytes;

const EXPIRE_ACL: &[&str] = &["keyspace", "write", "fast"];
const TTL_ACL: &[&str] = &["keyspace", "read", "fast"];
const EXPIRE_USAGE: &str = "key seconds:integer [NX|XX|GT|LT]";

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("expire", -3, WRITE | FAST, EXPIRE_ACL, expire)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "1.0.0",
            "Sets the expiration time of a key in seconds.",
        )
        .usage(EXPIRE_USAGE),
    CommandSpec::new("pexpire", -3, WRITE | FAST, EXPIRE_ACL, pexpire)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.6.0",
            "Sets the expiration time of a key in milliseconds.",
        )
        .usage("key milliseconds:integer [NX|XX|GT|LT]"),
    CommandSpec::new("expireat", -3, WRITE | FAST, EXPIRE_ACL, expireat)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "1.2.0",
            "Sets the expiration time of a key to a Unix timestamp.",
        )
        .usage("key unix-time-seconds:unix-time [NX|XX|GT|LT]"),
    CommandSpec::new("pexpireat", -3, WRITE | FAST, EXPIRE_ACL, pexpireat)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.6.0",
            "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        )
        .usage("key unix-time-milliseconds:unix-time [NX|XX|GT|LT]"),
    CommandSpec::new("ttl", 2, READONLY | FAST, TTL_ACL, ttl)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "1.0.0",
            "Returns the expiration time in seconds of a key.",
        )
        .usage("key"),
    CommandSpec::new("pttl", 2, READONLY | FAST, TTL_ACL, pttl)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "2.6.0",
            "Returns the expiration time in milliseconds of a key.",
        )
        .usage("key"),
    CommandSpec::new("expiretime", 2, READONLY | FAST, TTL_ACL, expiretime)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "7.0.0",
            "Returns the expiration time of a key as a Unix timestamp.",
        )
        .usage("key"),
    CommandSpec::new("pexpiretime", 2, READONLY | FAST, TTL_ACL, pexpiretime)
        .keys(1, 1, 1)
        .doc(
            "generic",
            "7.0.0",
            "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        )
        .usage("key"),
    CommandSpec::new("persist", 2, WRITE | FAST, EXPIRE_ACL, persist)
        .keys(1, 1, 1)
        .doc("generic", "2.2.0", "Removes the expiration time of a key.")
        .usage("key"),
];

/// `invalid expire time in 'set' command`: a deadline that overflows or (SET) is not positive.
pub fn invalid_expire_time(command: &str) -> Reply {
    Reply::Error(format!("ERR invalid expire time in '{command}' command").into())
}

#[derive(Clone, Copy, PartialEq)]
enum Unit {
    Seconds,
    Millis,
}

/// NX | XX | GT | LT, as `parseExtendedExpireArgumentsOrReply` reads them.
#[derive(Default)]
struct Condition {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
}

fn parse_condition(args: &[Bytes]) -> Result<Condition, Reply> {
    let mut c = Condition::default();
    for arg in args {
        let opt = super::stream::cstr(arg);
        if opt.eq_ignore_ascii_case(b"nx") {
            c.nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") {
            c.xx = true;
        } else if opt.eq_ignore_ascii_case(b"gt") {
            c.gt = true;
        } else if opt.eq_ignore_ascii_case(b"lt") {
            c.lt = true;
        } else {
            return Err(error::with_arg("ERR Unsupported option ", opt, ""));
        }
    }
    if c.nx && (c.xx || c.gt || c.lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if c.gt && c.lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    Ok(c)
}

impl Condition {
    /// Whether the new deadline `when` may replace `current` (`None` = no deadline, which
    /// counts as infinite for GT and LT).
    fn allows(&self, when: i64, current: Option<i64>) -> bool {
        if self.nx && current.is_some() {
            return false;
        }
        if self.xx && current.is_none() {
            return false;
        }
        if self.gt && current.is_none_or(|c| when <= c) {
            return false;
        }
        if self.lt && current.is_some_and(|c| when >= c) {
            return false;
        }
        true
    }
}

/// The shared body of the four EXPIRE commands; `relative` adds the current time.
fn expire_generic(ctx: &mut Ctx, args: &[Bytes], unit: Unit, relative: bool) -> Reply {
    let cond = match parse_condition(&args[3..]) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let Some(mut when) = parse_i64(&args[2]) else {
        return Reply::error(error::NOT_INTEGER);
    };
    let name = std::str::from_utf8(&args[0])
        .unwrap_or("expire")
        .to_ascii_lowercase();
    if unit == Unit::Seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return invalid_expire_time(&name),
        }
    }
    let now = crate::store::now_ms() as i64;
    if relative {
        match when.checked_add(now) {
            Some(at) => when = at,
            None => return invalid_expire_time(&name),
        }
    }
    let key = &args[1];
    let replaying = ctx.session.replaying;
    let deleted = ctx
        .shared
        .keyspace
        .with_shard(ctx.session.db, key, |shard| {
            let Some(current) = shard.deadline(key) else {
                return Err(Reply::Integer(0));
            };
            if !cond.allows(when, current.map(|c| c as i64)) {
                return Err(Reply::Integer(0));
            }
            // Replaying the AOF, a deadline that has passed since is set like any other
            // (expiry is suspended until the load ends), as Redis does while loading.
            if when <= now && !replaying {
                shard.remove(key);
                shard.log(&[b"DEL", key]);
                // A deadline already past deletes the key: Redis calls that `del`.
                shard.notify(key, events::DEL);
                return Ok(());
            }
            shard.set_deadline(key, when as u64);
            let mut n = itoa::Buffer::new();
            shard.log(&[b"PEXPIREAT", key, n.format(when).as_bytes()]);
            shard.notify(key, events::EXPIRE);
            Ok(())
        });
    match deleted {
        Err(reply) => reply,
        Ok(()) => Reply::Integer(1),
    }
}

/// EXPIRE key seconds [NX|XX|GT|LT]: 1 if the deadline was set (or the key deleted because
/// it is already past), 0 if the key does not exist or the condition failed.
fn expire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::Seconds, true)
}

fn pexpire(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::Millis, true)
}

fn expireat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::Seconds, false)
}

fn pexpireat(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    expire_generic(ctx, args, Unit::Millis, false)
}

/// What the TTL family reports: remaining or absolute time, in seconds or milliseconds.
fn ttl_generic(ctx: &mut Ctx, key: &Bytes, unit: Unit, absolute: bool) -> Reply {
    let found = ctx
        .shared
        .keyspace
        .with_shard(ctx.session.db, key, |shard| {
            let d = shard.deadline(key);
            if d.is_none() {
                shard.missed(key);
            }
            d
        });
    let at = match found {
        None => return Reply::Integer(-2),
        Some(None) => return Reply::Integer(-1),
        Some(Some(at)) => at as i64,
    };
    let t = if absolute {
        at
    } else {
        (at - crate::store::now_ms() as i64).max(0)
    };
    Reply::Integer(match unit {
        Unit::Millis => t,
        // Both round to the nearest second, as Redis does; in 128 bits, so a deadline near
        // i64::MAX rounds up as Redis's reply shows instead of overflowing.
        Unit::Seconds => ((t as i128 + 500) / 1000) as i64,
    })
}

/// TTL key: seconds to live, -1 without a deadline, -2 for a missing key.
fn ttl(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], Unit::Seconds, false)
}

fn pttl(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], Unit::Millis, false)
}

fn expiretime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], Unit::Seconds, true)
}

fn pexpiretime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    ttl_generic(ctx, &args[1], Unit::Millis, true)
}

/// PERSIST key: 1 if a deadline was removed.
fn persist(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[1];
    let removed = ctx
        .shared
        .keyspace
        .with_shard(ctx.session.db, key, |shard| {
            let removed = shard.persist(key);
            if removed {
                shard.log(&[b"PERSIST", key]);
                shard.notify(key, events::PERSIST);
            }
            removed
        });
    Reply::Integer(removed as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(opts: &[&str]) -> Result<Condition, Reply> {
        let args: Vec<Bytes> = opts.iter().map(|o| Bytes::from(o.to_string())).collect();
        parse_condition(&args)
    }

    #[test]
    fn conditions_combine_as_in_redis() {
        assert!(cond(&["XX", "GT"]).is_ok());
        assert!(cond(&["nx", "xx"]).is_err());
        assert!(cond(&["gt", "lt"]).is_err());
        assert!(cond(&["bogus"]).is_err());
        let gt = cond(&["gt"]).ok().unwrap();
        assert!(
            !gt.allows(10, None),
            "no deadline is infinite: GT never wins"
        );
        assert!(gt.allows(10, Some(5)));
        assert!(!gt.allows(5, Some(5)));
        let lt = cond(&["lt"]).ok().unwrap();
        assert!(lt.allows(10, None));
        assert!(!lt.allows(10, Some(5)));
    }
}
