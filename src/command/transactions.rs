//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7's multi.c).
//!
//! After MULTI, `dispatch` queues every command but EXEC, DISCARD, MULTI, WATCH, QUIT and
//! RESET, answering `+QUEUED`; a command rejected while queuing (unknown, wrong arity, not
//! allowed in a transaction) marks the transaction so that EXEC answers EXECABORT. EXEC runs
//! the queue as one unit: nothing else runs in between (with `io-threads 1` there is one
//! thread; with more, EXEC holds the server's execution gate exclusively while every other
//! command holds it shared), blocking commands do not block, a failing command does not stop
//! the others, and the writes reach the append-only file as one `MULTI … EXEC` block, so a
//! crash can never leave half a transaction to replay.
//!
//! WATCH registers the keys in the keyspace's watch registry; any change to one of them (a
//! write by anyone, an expiry, FLUSHDB) marks the client's watcher dirty while the key's
//! shard is locked, and EXEC then answers a null reply without running anything.

use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::reply::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering;

const T: &[&str] = &["fast", "transaction"];
const TS: &[&str] = &["slow", "transaction"];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        T,
        multi,
    )
    .doc("transactions", "1.2.0", "Starts a transaction.")
    .complexity("O(1)"),
    CommandSpec::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG,
        TS,
        exec,
    )
    .doc(
        "transactions",
        "1.2.0",
        "Executes all commands in a transaction.",
    )
    .complexity("Depends on commands in the transaction"),
    CommandSpec::new(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        T,
        discard,
    )
    .doc("transactions", "2.0.0", "Discards a transaction.")
    .complexity("O(N), when N is the number of queued commands"),
    CommandSpec::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        T,
        watch,
    )
    .keys(1, -1, 1)
    .doc(
        "transactions",
        "2.2.0",
        "Monitors changes to keys to determine the execution of a transaction.",
    )
    .complexity("O(1) for every key.")
    .usage("key [key ...]"),
    CommandSpec::new(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        T,
        unwatch,
    )
    .doc(
        "transactions",
        "2.2.0",
        "Forgets about watched keys of a transaction.",
    )
    .complexity("O(1)"),
];

/// A transaction being queued.
#[derive(Default)]
pub struct Multi {
    /// Commands to run at EXEC, with arguments copied out of the read buffer.
    pub queue: Vec<Vec<Bytes>>,
    /// A command was rejected while queuing: EXEC aborts.
    pub dirty: bool,
}

/// The commands that run at once even inside MULTI (Redis's processCommand list).
pub fn runs_in_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

fn multi(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    if ctx.session.multi.is_some() {
        return Reply::error("ERR MULTI calls can not be nested");
    }
    ctx.session.multi = Some(Multi::default());
    ctx.session.handle.multi.store(0, Ordering::Relaxed);
    Reply::ok()
}

fn discard(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    if ctx.session.multi.is_none() {
        return Reply::error("ERR DISCARD without MULTI");
    }
    end_multi(ctx);
    unwatch_all(ctx);
    Reply::ok()
}

fn watch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.session.multi.is_some() {
        return Reply::error("ERR WATCH inside MULTI is not allowed");
    }
    let watcher = ctx.session.handle.watcher.clone();
    // Once a watched key changed, EXEC fails whatever else is watched (Redis 7.0 drops the
    // client's watches at that moment and ignores WATCH until they are cleared).
    if watcher.is_dirty() {
        return Reply::ok();
    }
    let db = ctx.session.db;
    for key in &args[1..] {
        if ctx
            .session
            .watched
            .iter()
            .any(|(d, k)| *d == db && k == key)
        {
            continue;
        }
        // A key already past its deadline is expired first, before the watch exists: gone
        // or stale counts the same, and only a later change (re-creating it) fails the
        // transaction. Then the watch is registered with the key's shard locked, so a write
        // to it is either before the WATCH or seen by it.
        ctx.with_shard(key, |shard| {
            let _ = shard.peek(key);
        });
        ctx.with_shard(key, |_| {
            ctx.shared.keyspace.watches.watch(db, key, &watcher);
        });
        ctx.session.watched.push((db, crate::store::owned(key)));
    }
    Reply::ok()
}

fn unwatch(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    unwatch_all(ctx);
    Reply::ok()
}

/// Forget every watched key of this client and its dirty mark (EXEC, DISCARD, UNWATCH,
/// RESET, disconnect).
pub fn unwatch_all(ctx: &mut Ctx) {
    let w = ctx.session.handle.watcher.clone();
    if !ctx.session.watched.is_empty() {
        let keys = std::mem::take(&mut ctx.session.watched);
        ctx.shared.keyspace.watches.unwatch(&keys, &w);
    }
    w.clear();
}

/// Drop the transaction being queued, if any.
pub fn end_multi(ctx: &mut Ctx) -> Option<Multi> {
    ctx.session.handle.multi.store(-1, Ordering::Relaxed);
    ctx.session.handle.multi_mem.store(0, Ordering::Relaxed);
    ctx.session.multi.take()
}

/// EXEC itself was rejected before running (wrong arity, subscribed context, …): Redis
/// discards the transaction and answers EXECABORT with the reason.
pub fn exec_rejected(ctx: &mut Ctx, reason: Reply) -> Reply {
    end_multi(ctx);
    unwatch_all(ctx);
    let text = match &reason {
        Reply::Error(t) => t.to_string(),
        Reply::ErrorBytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => return reason,
    };
    // Redis quotes the error as it was formatted: a generic error has no `ERR ` yet, a
    // coded one (`OOM …`) keeps its code.
    let text = text.strip_prefix("ERR ").unwrap_or(&text);
    Reply::Error(format!("EXECABORT Transaction discarded because of: {text}").into())
}

/// Whether a watched key changed — looking each one up first, so that one whose deadline
/// passed since WATCH is expired now and counts as changed (Redis 7's isWatchedKeyExpired).
fn watched_changed(ctx: &mut Ctx) -> bool {
    for (db, key) in &ctx.session.watched {
        ctx.shared.keyspace.with_shard(*db, key, |shard| {
            let _ = shard.peek(key);
        });
    }
    ctx.session.handle.watcher.is_dirty()
}

fn exec(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    let Some(multi) = end_multi(ctx) else {
        return Reply::error("ERR EXEC without MULTI");
    };
    if multi.dirty {
        unwatch_all(ctx);
        return Reply::error("EXECABORT Transaction discarded because of previous errors.");
    }
    if watched_changed(ctx) {
        unwatch_all(ctx);
        return Reply::NullArray;
    }
    unwatch_all(ctx);
    let aof = ctx.shared.aof.clone();
    aof.begin_transaction();
    ctx.session.in_exec = true;
    let mut replies = Vec::with_capacity(multi.queue.len());
    for cmd in &multi.queue {
        let reply = super::dispatch(ctx, cmd);
        replies.push(reply);
    }
    ctx.session.in_exec = false;
    aof.end_transaction();
    Reply::Array(replies)
}
