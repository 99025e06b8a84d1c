//! XINFO STREAM [FULL [COUNT n]] | GROUPS | CONSUMERS | HELP.
//!
//! Field names and order are Redis 7.2's (XINFO CONSUMERS has `inactive`, FULL has
//! `active-time`). `radix-tree-keys` is the number of chunks, which are Redis's nodes;
//! `radix-tree-nodes` has no counterpart and reports one more (a radix tree's head node).

use super::flags::*;
use super::stream::{entry_reply, is_opt, now_ms, with_stream, with_stream_mut};
use super::{help_reply, parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::reply::Reply;
use crate::store::stream::group::ConsumerGroup;
use crate::store::stream::id::StreamId;
use crate::store::stream::Stream;
use bytes::Bytes;

const R: &[&str] = &["read", "stream", "slow"];

const SUBS: &[CommandSpec] = &[
    CommandSpec::new("stream", -3, READONLY, R, stream)
        .keys(2, 2, 1)
        .doc("stream", "5.0.0", "Returns information about a stream.")
        .usage("key [FULL [COUNT count:integer]]"),
    CommandSpec::new("groups", 3, READONLY, R, groups)
        .keys(2, 2, 1)
        .doc(
            "stream",
            "5.0.0",
            "Returns a list of the consumer groups of a stream.",
        )
        .usage("key"),
    CommandSpec::new("consumers", 4, READONLY, R, consumers)
        .keys(2, 2, 1)
        .doc(
            "stream",
            "5.0.0",
            "Returns a list of the consumers in a consumer group.",
        )
        .usage("key group"),
    CommandSpec::new("help", 2, LOADING | STALE, &["stream", "slow"], help).doc(
        "stream",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::container("xinfo", &["slow"], SUBS).doc(
    "stream",
    "5.0.0",
    "A container for stream introspection commands.",
)];

fn map(pairs: Vec<(&str, Reply)>) -> Reply {
    Reply::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Reply::bulk_str(k), v))
            .collect(),
    )
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

/// Redis's streamReplyWithCGLag: how many entries the group has still to read, if knowable.
fn lag(s: &Stream, g: &ConsumerGroup) -> Reply {
    if s.entries_added == 0 {
        return Reply::Integer(0);
    }
    if let Some(read) = g.entries_read {
        if !s.has_tombstones_from(g.last_id) {
            return Reply::Integer(s.entries_added as i64 - read as i64);
        }
    }
    match s.entries_read_at(g.last_id) {
        Some(read) => Reply::Integer(s.entries_added as i64 - read as i64),
        None => Reply::Null,
    }
}

fn entries_read(g: &ConsumerGroup) -> Reply {
    g.entries_read
        .map_or(Reply::Null, |n| Reply::Integer(n as i64))
}

fn first_id(s: &Stream) -> StreamId {
    s.first_entry().map_or(StreamId::MIN, |e| e.id)
}

fn stream(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut full = false;
    let mut count: usize = 10;
    let mut i = 3;
    while i < args.len() {
        if is_opt(&args[i], b"full") {
            full = true;
            i += 1;
        } else if full && is_opt(&args[i], b"count") && i + 1 < args.len() {
            match parse_i64(&args[i + 1]) {
                None => return Reply::error(error::NOT_INTEGER),
                Some(n) => count = if n <= 0 { usize::MAX } else { n as usize },
            }
            i += 2;
        } else {
            return error::subcommand_syntax(&args[1], "xinfo");
        }
    }
    let now = now_ms();
    let result = with_stream_mut(ctx, &args[2], None, |s| {
        // Idempotent IDs past their duration are forgotten before they are counted.
        s.idmp.expire(now);
        let s = &*s;
        let mut m = vec![
            ("length", Reply::Integer(s.len() as i64)),
            ("radix-tree-keys", Reply::Integer(s.chunk_count() as i64)),
            (
                "radix-tree-nodes",
                Reply::Integer(s.chunk_count() as i64 + 1),
            ),
            ("last-generated-id", id_reply(s.last_id)),
            ("max-deleted-entry-id", id_reply(s.max_deleted_id)),
            ("entries-added", Reply::Integer(s.entries_added as i64)),
            ("recorded-first-entry-id", id_reply(first_id(s))),
            // Redis 8.6: idempotent producers.
            ("idmp-duration", Reply::Integer(s.idmp.duration as i64)),
            ("idmp-maxsize", Reply::Integer(s.idmp.maxsize as i64)),
            ("pids-tracked", Reply::Integer(s.idmp.pids_tracked() as i64)),
            ("iids-tracked", Reply::Integer(s.idmp.iids_tracked() as i64)),
            ("iids-added", Reply::Integer(s.idmp.iids_added as i64)),
            (
                "iids-duplicates",
                Reply::Integer(s.idmp.iids_duplicates as i64),
            ),
        ];
        if !full {
            m.push(("groups", Reply::Integer(s.groups.len() as i64)));
            m.push((
                "first-entry",
                s.first_entry().map_or(Reply::Null, entry_reply),
            ));
            m.push((
                "last-entry",
                s.last_entry().map_or(Reply::Null, entry_reply),
            ));
            return Some(map(m));
        }
        let entries = s.range(StreamId::MIN, StreamId::MAX, Some(count), false);
        m.push((
            "entries",
            Reply::Array(entries.into_iter().map(entry_reply).collect()),
        ));
        let groups = s
            .groups
            .iter()
            .map(|(name, g)| {
                let pel = g
                    .pel()
                    .iter()
                    .take(count)
                    .map(|(id, p)| {
                        Reply::Array(vec![
                            id_reply(*id),
                            Reply::Bulk(p.consumer.clone()),
                            Reply::Integer(p.delivery_time as i64),
                            Reply::Integer(p.delivery_count as i64),
                        ])
                    })
                    .collect();
                let consumers = g
                    .consumers
                    .iter()
                    .map(|(cname, c)| {
                        let pending = c
                            .pending
                            .iter()
                            .take(count)
                            .filter_map(|id| g.pel().get(id).map(|p| (id, p)))
                            .map(|(id, p)| {
                                Reply::Array(vec![
                                    id_reply(*id),
                                    Reply::Integer(p.delivery_time as i64),
                                    Reply::Integer(p.delivery_count as i64),
                                ])
                            })
                            .collect();
                        map(vec![
                            ("name", Reply::Bulk(cname.clone())),
                            ("seen-time", Reply::Integer(c.seen_time as i64)),
                            (
                                "active-time",
                                Reply::Integer(c.active_time.map_or(-1, |t| t as i64)),
                            ),
                            ("pel-count", Reply::Integer(c.pending.len() as i64)),
                            ("pending", Reply::Array(pending)),
                        ])
                    })
                    .collect();
                map(vec![
                    ("name", Reply::Bulk(name.clone())),
                    ("last-delivered-id", id_reply(g.last_id)),
                    ("entries-read", entries_read(g)),
                    ("lag", lag(s, g)),
                    ("pel-count", Reply::Integer(g.pel().len() as i64)),
                    // Redis 8.8: pending entries released by XNACK, owned by nobody.
                    ("nacked-count", Reply::Integer(g.nacked_count() as i64)),
                    ("pending", Reply::Array(pel)),
                    ("consumers", Reply::Array(consumers)),
                ])
            })
            .collect();
        m.push(("groups", Reply::Array(groups)));
        Some(map(m))
    });
    match result {
        Err(e) => e,
        Ok(Some(r)) => r,
        Ok(None) => {
            super::stream::keymiss_if_missing(ctx, &args[2]);
            Reply::error(error::NO_SUCH_KEY)
        }
    }
}

fn groups(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let result = with_stream(ctx, &args[2], None, |s| {
        Some(Reply::Array(
            s.groups
                .iter()
                .map(|(name, g)| {
                    map(vec![
                        ("name", Reply::Bulk(name.clone())),
                        ("consumers", Reply::Integer(g.consumers.len() as i64)),
                        ("pending", Reply::Integer(g.pel().len() as i64)),
                        ("last-delivered-id", id_reply(g.last_id)),
                        ("entries-read", entries_read(g)),
                        ("lag", lag(s, g)),
                    ])
                })
                .collect(),
        ))
    });
    match result {
        Err(e) => e,
        Ok(Some(r)) => r,
        Ok(None) => {
            super::stream::keymiss_if_missing(ctx, &args[2]);
            Reply::error(error::NO_SUCH_KEY)
        }
    }
}

fn consumers(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (key, group) = (&args[2], &args[3]);
    let now = now_ms() as i64;
    let result = with_stream(ctx, key, None, |s| {
        let Some(g) = s.groups.get(group) else {
            return Some(None);
        };
        Some(Some(Reply::Array(
            g.consumers
                .iter()
                .map(|(name, c)| {
                    map(vec![
                        ("name", Reply::Bulk(name.clone())),
                        ("pending", Reply::Integer(c.pending.len() as i64)),
                        ("idle", Reply::Integer((now - c.seen_time as i64).max(0))),
                        (
                            "inactive",
                            Reply::Integer(c.active_time.map_or(-1, |t| (now - t as i64).max(0))),
                        ),
                    ])
                })
                .collect(),
        )))
    });
    match result {
        Err(e) => e,
        Ok(Some(Some(r))) => r,
        Ok(Some(None)) => {
            let text = [
                &b"NOGROUP No such consumer group '"[..],
                group,
                b"' for key name '",
                key,
                b"'",
            ]
            .concat();
            error::with_arg("", &text, "")
        }
        Ok(None) => {
            super::stream::keymiss_if_missing(ctx, &args[2]);
            Reply::error(error::NO_SUCH_KEY)
        }
    }
}

fn help(_: &mut Ctx, _: &[Bytes]) -> Reply {
    help_reply(
        "xinfo",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    )
}
