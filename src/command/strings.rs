//! Minimal string values (SET, GET), so the generic key commands have something to act on.
//! Expiry options arrive with key expiry; until then SET accepts NX, XX and GET.

use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::error;
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
        .usage("key value [NX|XX] [GET]"),
];

fn get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let stats = &ctx.shared.stats;
    match ctx.shared.keyspace.get(ctx.session.db, &args[1]) {
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

/// SET key value [NX|XX] [GET]
fn set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx, mut get) = (false, false, false);
    for a in &args[3..] {
        let a = a.to_ascii_lowercase();
        match a.as_slice() {
            b"nx" if !xx => nx = true,
            b"xx" if !nx => xx = true,
            b"get" => get = true,
            _ => return Reply::error(error::SYNTAX),
        }
    }
    let key = args[1].clone();
    let value = args[2].clone();
    ctx.shared
        .keyspace
        .with_shard(ctx.session.db, &key, |shard| {
            let old = shard.get(&key);
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
            shard.insert(
                crate::store::owned(&key),
                Value::String(crate::store::owned(&value)),
            );
            if get {
                old_reply
            } else {
                Reply::ok()
            }
        })
}
