//! OBJECT ENCODING | FREQ | IDLETIME | REFCOUNT | HELP: what Redis reports about a stored
//! value, as far as it means something here.
//!
//! ENCODING names the encoding Redis would have chosen for the same value (`int`, `embstr`,
//! `raw` for strings, `stream` for streams), so tools that branch on it behave as with
//! Redis. IDLETIME is real (every key keeps its last access, in seconds, and CLIENT
//! NO-TOUCH and these introspection commands do not count as accesses). REFCOUNT reports
//! Redis's shared-integer convention. FREQ needs an LFU eviction policy, which Relay does
//! not have, so it always gives Redis's "not selected" error.

use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::reply::Reply;
use crate::store::Value;
use bytes::Bytes;

const OBJECT_READ: &[&str] = &["keyspace", "read", "slow"];

const SUBS: &[CommandSpec] = &[
    CommandSpec::new("encoding", 3, READONLY, OBJECT_READ, encoding)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "2.2.3",
            "Returns the internal encoding of a Redis object.",
        )
        .usage("key"),
    CommandSpec::new("freq", 3, READONLY, OBJECT_READ, freq)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "4.0.0",
            "Returns the logarithmic access frequency counter of a Redis object.",
        )
        .usage("key"),
    CommandSpec::new("idletime", 3, READONLY, OBJECT_READ, idletime)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "2.2.3",
            "Returns the time since the last access to a Redis object.",
        )
        .usage("key"),
    CommandSpec::new("refcount", 3, READONLY, OBJECT_READ, refcount)
        .keys(2, 2, 1)
        .doc(
            "generic",
            "2.2.3",
            "Returns the reference count of a value of a key.",
        )
        .usage("key"),
    CommandSpec::new("help", 2, LOADING | STALE, &["keyspace", "slow"], help).doc(
        "generic",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
    ),
];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::container("object", &["slow"], SUBS).doc(
    "generic",
    "2.2.3",
    "A container for object introspection commands.",
)];

/// Redis keeps integers 0..10000 as shared objects whose refcount is INT_MAX.
const SHARED_INTEGERS: i64 = 10_000;
const SHARED_REFCOUNT: i64 = i32::MAX as i64;
/// Strings up to this length are embedded in their object header (`embstr`).
const EMBSTR_MAX: usize = 44;

/// The encoding Redis's `tryObjectEncoding` picks for a string value.
fn string_encoding(v: &[u8]) -> (&'static str, Option<i64>) {
    if v.len() <= 20 {
        if let Some(n) = super::parse_i64(v) {
            return ("int", Some(n));
        }
    }
    if v.len() <= EMBSTR_MAX {
        ("embstr", None)
    } else {
        ("raw", None)
    }
}

/// Run `f` on the value at the key in `args[2]` without counting an access; null if missing.
fn inspect(ctx: &mut Ctx, args: &[Bytes], f: impl FnOnce(&Value) -> Reply) -> Reply {
    let key = &args[2];
    ctx.shared
        .keyspace
        .with_shard_as(ctx.session.db, key, false, |shard| match shard.peek(key) {
            Some(v) => f(v),
            None => Reply::Null,
        })
}

fn encoding(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    inspect(ctx, args, |v| match v {
        Value::String(s) => Reply::bulk(string_encoding(s).0),
        Value::Stream(_) => Reply::bulk("stream"),
    })
}

fn refcount(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    inspect(ctx, args, |v| match v {
        Value::String(s) => match string_encoding(s).1 {
            Some(n) if (0..SHARED_INTEGERS).contains(&n) => Reply::Integer(SHARED_REFCOUNT),
            _ => Reply::Integer(1),
        },
        Value::Stream(_) => Reply::Integer(1),
    })
}

fn idletime(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let key = &args[2];
    match ctx
        .shared
        .keyspace
        .with_shard_as(ctx.session.db, key, false, |shard| shard.idle_seconds(key))
    {
        Some(secs) => Reply::Integer(secs as i64),
        None => Reply::Null,
    }
}

fn freq(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    inspect(ctx, args, |_| {
        Reply::error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")
    })
}

fn help(_ctx: &mut Ctx, _args: &[Bytes]) -> Reply {
    super::help_reply(
        "object",
        &[
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_get_the_encoding_redis_would_choose() {
        assert_eq!(string_encoding(b"12345").0, "int");
        assert_eq!(string_encoding(b"-9223372036854775808").0, "int");
        assert_eq!(string_encoding(b"012").0, "embstr");
        assert_eq!(string_encoding(&[b'a'; 44]).0, "embstr");
        assert_eq!(string_encoding(&[b'a'; 45]).0, "raw");
    }
}
