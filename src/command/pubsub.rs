//! Pub/Sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.
//!
//! Confirmations are push frames (`>` in RESP3, arrays in RESP2) carrying the client's running
//! subscription count: channels + patterns for the classic commands, shard channels alone for
//! the S-commands, as in Redis 7. The session keeps the client's own sets; the registry is
//! only told about real changes.

use super::flags::*;
use super::{help_reply, CommandSpec, Ctx};
use crate::pubsub::Kind;
use crate::reply::Reply;
use bytes::Bytes;

const PS: &[&str] = &["pubsub", "slow"];
const PS_FAST: &[&str] = &["pubsub", "fast"];
const SUB_FLAGS: u32 = PUBSUB | NOSCRIPT | LOADING | STALE | SUBSCRIBED_OK;

const PUBSUB_SUBS: &[CommandSpec] = &[
    CommandSpec::new("channels", -2, PUBSUB | LOADING | STALE, PS, channels)
        .doc("pubsub", "2.8.0", "Returns the active channels.")
        .complexity("O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)")
        .usage("[pattern:pattern]"),
    CommandSpec::new("numsub", -2, PUBSUB | LOADING | STALE, PS, numsub)
        .doc("pubsub", "2.8.0", "Returns a count of subscribers to channels.")
        .complexity("O(N) for the NUMSUB subcommand, where N is the number of requested channels")
        .usage("[channel ...]"),
    CommandSpec::new("numpat", 2, PUBSUB | LOADING | STALE, PS, numpat).doc("pubsub", "2.8.0", "Returns a count of unique pattern subscriptions."),
    CommandSpec::new("shardchannels", -2, PUBSUB | LOADING | STALE, PS, shardchannels)
        .doc("pubsub", "7.0.0", "Returns the active shard channels.")
        .complexity("O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).")
        .usage("[pattern:pattern]"),
    CommandSpec::new("shardnumsub", -2, PUBSUB | LOADING | STALE, PS, shardnumsub)
        .doc("pubsub", "7.0.0", "Returns the count of subscribers of shard channels.")
        .complexity("O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels")
        .usage("[shardchannel ...]"),
    CommandSpec::new("help", 2, LOADING | STALE, &["slow"], help).doc("pubsub", "6.2.0", "Returns helpful text about the different subcommands."),
];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, SUB_FLAGS, PS, subscribe)
        .doc("pubsub", "2.0.0", "Listens for messages published to channels.")
        .complexity("O(N) where N is the number of channels to subscribe to.")
        .usage("channel ..."),
    CommandSpec::new("unsubscribe", -1, SUB_FLAGS, PS, unsubscribe)
        .doc("pubsub", "2.0.0", "Stops listening to messages posted to channels.")
        .complexity("O(N) where N is the number of channels to unsubscribe.")
        .usage("[channel ...]"),
    CommandSpec::new("psubscribe", -2, SUB_FLAGS, PS, psubscribe)
        .doc("pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns.")
        .complexity("O(N) where N is the number of patterns to subscribe to.")
        .usage("pattern:pattern ..."),
    CommandSpec::new("punsubscribe", -1, SUB_FLAGS, PS, punsubscribe)
        .doc("pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns.")
        .complexity("O(N) where N is the number of patterns to unsubscribe.")
        .usage("[pattern:pattern ...]"),
    CommandSpec::new("ssubscribe", -2, SUB_FLAGS, PS, ssubscribe)
        .keys(1, -1, 1)
        .doc("pubsub", "7.0.0", "Listens for messages published to shard channels.")
        .complexity("O(N) where N is the number of shard channels to subscribe to.")
        .usage("shardchannel ..."),
    CommandSpec::new("sunsubscribe", -1, SUB_FLAGS, PS, sunsubscribe)
        .keys(1, -1, 1)
        .doc("pubsub", "7.0.0", "Stops listening to messages posted to shard channels.")
        .complexity("O(N) where N is the number of shard channels to unsubscribe.")
        .usage("[shardchannel ...]"),
    CommandSpec::new("publish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, PS_FAST, publish)
        .doc("pubsub", "2.0.0", "Posts a message to a channel.")
        .complexity("O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).")
        .usage("channel message"),
    CommandSpec::new("spublish", 3, PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE, PS_FAST, spublish)
        .keys(1, 1, 1)
        .doc("pubsub", "7.0.0", "Post a message to a shard channel")
        .complexity("O(N) where N is the number of clients subscribed to the receiving shard channel.")
        .usage("shardchannel message"),
    CommandSpec::container("pubsub", &["slow"], PUBSUB_SUBS).doc("pubsub", "2.8.0", "A container for Pub/Sub commands."),
];

fn confirm(kind: &'static str, name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![
        Reply::bulk_str(kind),
        name.map_or(Reply::Null, Reply::Bulk),
        Reply::Integer(count as i64),
    ])
}

fn classic_count(ctx: &Ctx) -> usize {
    ctx.session.channels.len() + ctx.session.patterns.len()
}

fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut out = Vec::with_capacity(args.len() - 1);
    for ch in args[1..].iter().map(|c| crate::store::owned(c)) {
        if ctx.session.channels.insert(ch.clone()) {
            ctx.shared
                .pubsub
                .subscribe(Kind::Channel, &ctx.session.handle, ch.clone());
            ctx.session.publish_subscription_counts();
        }
        out.push(confirm("subscribe", Some(ch.clone()), classic_count(ctx)));
    }
    Reply::Sequence(out)
}

fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if ctx.session.in_exec {
        // Redis refuses it to a client that may not block (one inside EXEC).
        return Reply::error("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
    }
    let mut out = Vec::with_capacity(args.len() - 1);
    for ch in args[1..].iter().map(|c| crate::store::owned(c)) {
        if ctx.session.shard_channels.insert(ch.clone()) {
            ctx.shared
                .pubsub
                .subscribe(Kind::Shard, &ctx.session.handle, ch.clone());
            ctx.session.publish_subscription_counts();
        }
        out.push(confirm(
            "ssubscribe",
            Some(ch.clone()),
            ctx.session.shard_channels.len(),
        ));
    }
    Reply::Sequence(out)
}

fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut out = Vec::with_capacity(args.len() - 1);
    for p in args[1..].iter().map(|c| crate::store::owned(c)) {
        if ctx.session.patterns.insert(p.clone()) {
            ctx.session.pattern_order.push(p.clone());
            ctx.shared.pubsub.psubscribe(&ctx.session.handle, p.clone());
            ctx.session.publish_subscription_counts();
        }
        out.push(confirm("psubscribe", Some(p.clone()), classic_count(ctx)));
    }
    Reply::Sequence(out)
}

/// Remove the named subscriptions, or all of them when none are named; one confirmation
/// each, or a single `[kind, nil, count]` when there was nothing to remove.
fn remove_subscriptions(ctx: &mut Ctx, args: &[Bytes], which: Which) -> Reply {
    let all = args.len() <= 1;
    let names: Vec<Bytes> = if !all {
        args[1..].to_vec()
    } else if matches!(which, Which::Patterns) {
        // Patterns go in the order they were subscribed, as Redis keeps them (a list).
        std::mem::take(&mut ctx.session.pattern_order)
    } else {
        which.set(ctx).iter().cloned().collect()
    };
    if names.is_empty() {
        return Reply::Sequence(vec![confirm(which.reply_kind(), None, which.count(ctx))]);
    }
    let id = ctx.session.handle.id;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if which.set(ctx).remove(&name) {
            match which {
                Which::Channels => ctx.shared.pubsub.unsubscribe(Kind::Channel, id, &name),
                Which::Shard => ctx.shared.pubsub.unsubscribe(Kind::Shard, id, &name),
                Which::Patterns => {
                    ctx.shared.pubsub.punsubscribe(id, &name);
                    if !all {
                        ctx.session.pattern_order.retain(|p| *p != name);
                    }
                }
            }
            ctx.session.publish_subscription_counts();
        }
        out.push(confirm(which.reply_kind(), Some(name), which.count(ctx)));
    }
    Reply::Sequence(out)
}

#[derive(Clone, Copy)]
enum Which {
    Channels,
    Patterns,
    Shard,
}

impl Which {
    fn set<'a>(&self, ctx: &'a mut Ctx) -> &'a mut std::collections::HashSet<Bytes> {
        match self {
            Which::Channels => &mut ctx.session.channels,
            Which::Patterns => &mut ctx.session.patterns,
            Which::Shard => &mut ctx.session.shard_channels,
        }
    }

    fn count(&self, ctx: &Ctx) -> usize {
        match self {
            Which::Shard => ctx.session.shard_channels.len(),
            _ => classic_count(ctx),
        }
    }

    fn reply_kind(&self) -> &'static str {
        match self {
            Which::Channels => "unsubscribe",
            Which::Patterns => "punsubscribe",
            Which::Shard => "sunsubscribe",
        }
    }
}

fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remove_subscriptions(ctx, args, Which::Channels)
}

fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remove_subscriptions(ctx, args, Which::Patterns)
}

fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    remove_subscriptions(ctx, args, Which::Shard)
}

/// Drop every subscription without replying (RESET).
pub fn unsubscribe_everything(ctx: &mut Ctx) {
    let none: [Bytes; 1] = [Bytes::new()];
    for which in [Which::Channels, Which::Patterns, Which::Shard] {
        let _ = remove_subscriptions(ctx, &none, which);
    }
}

fn publish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Integer(
        ctx.shared
            .pubsub
            .publish(&args[1], &args[2], &ctx.shared.limits) as i64,
    )
}

fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Integer(
        ctx.shared
            .pubsub
            .spublish(&args[1], &args[2], &ctx.shared.limits) as i64,
    )
}

fn channels_reply(ctx: &Ctx, args: &[Bytes], kind: Kind) -> Reply {
    if args.len() > 3 {
        return crate::error::subcommand_syntax(&args[1], "pubsub");
    }
    let names = ctx
        .shared
        .pubsub
        .channels(kind, args.get(2).map(|p| p.as_ref()));
    Reply::Array(names.into_iter().map(Reply::Bulk).collect())
}

fn channels(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    channels_reply(ctx, args, Kind::Channel)
}

fn shardchannels(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    channels_reply(ctx, args, Kind::Shard)
}

fn numsub_reply(ctx: &Ctx, args: &[Bytes], kind: Kind) -> Reply {
    let mut out = Vec::with_capacity((args.len() - 2) * 2);
    for ch in &args[2..] {
        out.push(Reply::Bulk(ch.clone()));
        out.push(Reply::Integer(ctx.shared.pubsub.numsub(kind, ch) as i64));
    }
    Reply::Array(out)
}

fn numsub(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    numsub_reply(ctx, args, Kind::Channel)
}

fn shardnumsub(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    numsub_reply(ctx, args, Kind::Shard)
}

fn numpat(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    Reply::Integer(ctx.shared.pubsub.numpat() as i64)
}

fn help(_: &mut Ctx, _: &[Bytes]) -> Reply {
    help_reply(
        "pubsub",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    )
}
