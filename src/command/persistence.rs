//! Persistence commands: BGREWRITEAOF, BGSAVE, SAVE, LASTSAVE.
//!
//! Relay keeps one kind of persistence, the append-only file, so the RDB commands map onto
//! it: BGSAVE compacts the AOF like BGREWRITEAOF (its result is a snapshot of the dataset,
//! which is what BGSAVE promises), SAVE makes everything acknowledged durable at once (an
//! fsync, whatever appendfsync says), LASTSAVE is the time of the last compaction (or of
//! the start).

use super::flags::{self, *};
use super::{CommandSpec, Ctx};
use crate::persist::rewrite::{self, NotStarted};
use crate::reply::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering;

const ADMIN_ACL: &[&str] = &["admin", "slow", "dangerous"];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "bgrewriteaof",
        1,
        flags::ADMIN | NOSCRIPT,
        ADMIN_ACL,
        bgrewriteaof,
    )
    .doc(
        "server",
        "1.0.0",
        "Asynchronously rewrites the append-only file to disk.",
    ),
    CommandSpec::new("bgsave", -1, flags::ADMIN | NOSCRIPT, ADMIN_ACL, bgsave)
        .doc(
            "server",
            "1.0.0",
            "Asynchronously saves the database(s) to disk.",
        )
        .usage("[SCHEDULE]"),
    CommandSpec::new(
        "save",
        1,
        flags::ADMIN | NOSCRIPT | NO_MULTI,
        ADMIN_ACL,
        save,
    )
    .doc(
        "server",
        "1.0.0",
        "Synchronously saves the database(s) to disk.",
    )
    .complexity("O(N) where N is the total number of keys in all databases"),
    CommandSpec::new(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        &["admin", "fast", "dangerous"],
        lastsave,
    )
    .doc(
        "server",
        "1.0.0",
        "Returns the Unix timestamp of the last successful save to disk.",
    ),
];

fn not_started(why: NotStarted, busy: &'static str) -> Reply {
    match why {
        NotStarted::Off => Reply::error(
            "ERR The append-only file is off (appendonly no): there is nothing to rewrite",
        ),
        NotStarted::InProgress => Reply::error(busy),
        NotStarted::Failed(e) => {
            Reply::Error(format!("ERR Can't rewrite the append-only file: {e}").into())
        }
    }
}

/// Inside EXEC a compaction is only scheduled, as in Redis (which never forks inside
/// EXEC): its cut must not fall inside the transaction's records. The background tick
/// starts it once EXEC is over.
fn schedule_rewrite(ctx: &mut Ctx) {
    ctx.shared
        .aof
        .stats
        .scheduled
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

/// BGREWRITEAOF: compact the AOF in the background.
fn bgrewriteaof(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    if ctx.session.in_exec && ctx.shared.aof.enabled() {
        schedule_rewrite(ctx);
        return Reply::status("Background append only file rewriting scheduled");
    }
    match rewrite::start(ctx.shared) {
        Ok(()) => Reply::status("Background append only file rewriting started"),
        Err(why) => not_started(
            why,
            "ERR Background append only file rewriting already in progress",
        ),
    }
}

/// BGSAVE [SCHEDULE]: a compaction (the AOF's snapshot of the dataset).
fn bgsave(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let schedule = match args.get(1) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"schedule") && args.len() == 2 => true,
        Some(_) => return Reply::error(crate::error::SYNTAX),
    };
    if ctx.session.in_exec && ctx.shared.aof.enabled() {
        schedule_rewrite(ctx);
        return Reply::status("Background saving scheduled");
    }
    match rewrite::start(ctx.shared) {
        Ok(()) => Reply::status("Background saving started"),
        Err(NotStarted::InProgress) if schedule => Reply::status("Background saving scheduled"),
        Err(why) => not_started(why, "ERR Background save already in progress"),
    }
}

/// SAVE: everything acknowledged is on disk when the reply arrives.
fn save(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    let aof = &ctx.shared.aof;
    if !aof.enabled() {
        return Reply::error(
            "ERR The append-only file is off (appendonly no): there is nothing to save to",
        );
    }
    if aof.sync_now(std::time::Duration::from_secs(10)) {
        aof.stats
            .last_save
            .store(crate::persist::unix_now(), Ordering::Relaxed);
        Reply::ok()
    } else {
        Reply::error("ERR The append-only file could not be synced to disk (see the log)")
    }
}

fn lastsave(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    let at = ctx.shared.aof.stats.last_save.load(Ordering::Relaxed);
    Reply::Integer(if at == 0 { ctx.shared.started_unix } else { at } as i64)
}
