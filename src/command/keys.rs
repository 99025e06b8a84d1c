//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, KEYS, SCAN.

use super::flags::*;
use super::{parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::reply::Reply;
use bytes::Bytes;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, &["keyspace", "write", "slow"], del)
        .keys(1, -1, 1)
        .doc("generic", "1.0.0", "Deletes one or more keys.")
        .complexity("O(N) where N is the number of keys that will be removed.")
        .usage("key ..."),
    CommandSpec::new(
        "unlink",
        -2,
        WRITE | FAST,
        &["keyspace", "write", "fast"],
        del,
    )
    .keys(1, -1, 1)
    .doc(
        "generic",
        "4.0.0",
        "Asynchronously deletes one or more keys.",
    )
    .complexity("O(1) for each key removed regardless of its size.")
    .usage("key ..."),
    CommandSpec::new(
        "exists",
        -2,
        READONLY | FAST,
        &["keyspace", "read", "fast"],
        exists,
    )
    .keys(1, -1, 1)
    .doc(
        "generic",
        "1.0.0",
        "Determines whether one or more keys exist.",
    )
    .complexity("O(N) where N is the number of keys to check.")
    .usage("key ..."),
    CommandSpec::new(
        "type",
        2,
        READONLY | FAST,
        &["keyspace", "read", "fast"],
        type_cmd,
    )
    .keys(1, 1, 1)
    .doc(
        "generic",
        "1.0.0",
        "Determines the type of value stored at a key.",
    )
    .usage("key"),
    CommandSpec::new("rename", 3, WRITE, &["keyspace", "write", "slow"], rename)
        .keys(1, 2, 1)
        .doc(
            "generic",
            "1.0.0",
            "Renames a key and overwrites the destination.",
        )
        .usage("key newkey:key"),
    CommandSpec::new(
        "renamenx",
        3,
        WRITE | FAST,
        &["keyspace", "write", "fast"],
        renamenx,
    )
    .keys(1, 2, 1)
    .doc(
        "generic",
        "1.0.0",
        "Renames a key only when the target key name doesn't exist.",
    )
    .usage("key newkey:key"),
    CommandSpec::new(
        "keys",
        2,
        READONLY,
        &["keyspace", "read", "slow", "dangerous"],
        keys,
    )
    .doc(
        "generic",
        "1.0.0",
        "Returns all key names that match a pattern.",
    )
    .complexity("O(N) with N being the number of keys in the database")
    .usage("pattern:pattern"),
    CommandSpec::new("scan", -2, READONLY, &["keyspace", "read", "slow"], scan)
        .doc(
            "generic",
            "2.8.0",
            "Iterates over the key names in the database.",
        )
        .complexity("O(1) for every call. O(N) for a complete iteration.")
        .usage("cursor:integer [MATCH pattern:pattern] [COUNT count:integer] [TYPE type]"),
];

/// DEL / UNLINK key ...: the number of keys removed. (UNLINK frees nothing large enough yet
/// to need a background thread, so both free in place.)
fn del(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let ks = &ctx.shared.keyspace;
    let mut n = 0;
    for k in &args[1..] {
        if ks.remove(ctx.session.db, k) {
            n += 1;
        }
    }
    Reply::Integer(n)
}

/// EXISTS key ...: counts a key once per mention.
fn exists(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let ks = &ctx.shared.keyspace;
    let n = args[1..]
        .iter()
        .filter(|k| ks.exists(ctx.session.db, k))
        .count();
    Reply::Integer(n as i64)
}

fn rename(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx
        .shared
        .keyspace
        .rename(ctx.session.db, &args[1], &args[2], false)
    {
        Some(_) => Reply::ok(),
        None => Reply::error(error::NO_SUCH_KEY),
    }
}

fn renamenx(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match ctx
        .shared
        .keyspace
        .rename(ctx.session.db, &args[1], &args[2], true)
    {
        Some(true) => Reply::Integer(1),
        Some(false) => Reply::Integer(0),
        None => Reply::error(error::NO_SUCH_KEY),
    }
}

fn type_cmd(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::status(ctx.shared.keyspace.type_of(ctx.session.db, &args[1]))
}

fn keys(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let keys = ctx.shared.keyspace.keys(ctx.session.db, &args[1]);
    Reply::Array(keys.into_iter().map(Reply::Bulk).collect())
}

/// A SCAN cursor as Redis reads it (`strtoul`): an optional sign, digits (none means 0),
/// negative values wrap; leading spaces, trailing junk and overflow are invalid.
fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return arg.is_empty().then_some(0);
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
fn scan(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(cursor) = parse_cursor(&args[1]) else {
        return Reply::error(error::INVALID_CURSOR);
    };
    let mut count = 10usize;
    let mut pattern = None;
    let mut type_filter = None;
    let mut i = 2;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Reply::error(error::SYNTAX);
        };
        let opt = args[i].to_ascii_lowercase();
        match opt.as_slice() {
            b"count" => match parse_i64(value) {
                None => return Reply::error(error::NOT_INTEGER),
                Some(n) if n < 1 => return Reply::error(error::SYNTAX),
                Some(n) => count = n.min(1 << 20) as usize,
            },
            b"match" => pattern = Some(value.clone()).filter(|p| p.as_ref() != b"*"),
            b"type" => type_filter = Some(String::from_utf8_lossy(value).into_owned()),
            _ => return Reply::error(error::SYNTAX),
        }
        i += 2;
    }
    let page = ctx.shared.keyspace.scan(
        ctx.session.db,
        cursor,
        count,
        pattern.as_deref(),
        type_filter.as_deref(),
    );
    Reply::Array(vec![
        Reply::bulk(page.cursor.to_string()),
        Reply::Array(page.keys.into_iter().map(Reply::Bulk).collect()),
    ])
}
