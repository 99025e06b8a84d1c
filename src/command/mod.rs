//! The command table: the single source of truth for every command, and dispatch.
//!
//! Each family file declares its commands in one `COMMANDS` list next to the handlers: name,
//! arity (Redis convention: negative = at least), flags, ACL categories, key positions,
//! documentation and the usage line COMMAND DOCS is built from. Dispatch, arity and
//! unknown-command errors, the RESP2 subscribed-context rule, COMMAND / COMMAND INFO / DOCS /
//! COUNT / LIST and CLIENT LIST's `cmd=` field all read this table. Adding a command is one
//! entry plus one handler. A handler parses its arguments and returns a `Reply`; the data work
//! lives in the store and pub/sub modules.

pub mod client;
pub mod connection;
pub mod docs;
pub mod expire;
pub mod introspection;
pub mod keys;
pub mod object;
pub mod persistence;
pub mod pubsub;
pub mod server;
pub mod stats;
pub mod stream;
pub mod stream_claim;
pub mod stream_group;
pub mod stream_info;
pub mod stream_refs;
pub mod strings;
pub mod transactions;

use crate::connection::Session;
use crate::error;
use crate::reply::Reply;
use crate::server::Shared;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// What a handler sees: the server and the calling client's session.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub session: &'a mut Session,
}

impl Ctx<'_> {
    /// Run `f` with the shard holding `key` (in the client's database) locked. Lookups count
    /// as accesses (OBJECT IDLETIME) unless the client turned on CLIENT NO-TOUCH.
    pub fn with_shard<R>(&self, key: &[u8], f: impl FnOnce(&mut crate::store::Shard) -> R) -> R {
        let touch = !self.session.handle.no_touch.load(Ordering::Relaxed);
        self.shared
            .keyspace
            .with_shard_as(self.session.db, key, touch, f)
    }
}

pub type Handler = fn(&mut Ctx, &[Bytes]) -> Reply;

/// Command flags, named as COMMAND INFO reports them.
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    pub const SENTINEL: u32 = 1 << 16;
    /// Relay-internal: allowed while a RESP2 client is subscribed.
    pub const SUBSCRIBED_OK: u32 = 1 << 31;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (SENTINEL, "sentinel"),
    ];
}

/// One command or subcommand.
pub struct CommandSpec {
    /// Lower-case name; for a subcommand, the subcommand alone (`list` under `client`).
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    /// ACL categories without the `@`.
    pub acl: &'static [&'static str],
    /// First key, last key, step (Redis's legacy key positions); (0, 0, 0) = no keys.
    pub keys: (i32, i32, i32),
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub complexity: &'static str,
    /// Usage line, Redis help style: `channel [channel ...]`, `[COUNT count:integer]`.
    pub usage: &'static str,
    pub handler: Option<Handler>,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        acl: &'static [&'static str],
        handler: Handler,
    ) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            acl,
            keys: (0, 0, 0),
            group: "",
            since: "1.0.0",
            summary: "",
            complexity: "O(1)",
            usage: "",
            handler: Some(handler),
            subcommands: &[],
        }
    }

    /// A container command (CLIENT, CONFIG, …) whose work is done by its subcommands.
    pub const fn container(
        name: &'static str,
        acl: &'static [&'static str],
        subs: &'static [CommandSpec],
    ) -> Self {
        CommandSpec {
            name,
            arity: -2,
            flags: 0,
            acl,
            keys: (0, 0, 0),
            group: "",
            since: "1.0.0",
            summary: "",
            complexity: "Depends on subcommand.",
            usage: "",
            handler: None,
            subcommands: subs,
        }
    }

    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> Self {
        self.keys = (first, last, step);
        self
    }

    pub const fn doc(
        mut self,
        group: &'static str,
        since: &'static str,
        summary: &'static str,
    ) -> Self {
        self.group = group;
        self.since = since;
        self.summary = summary;
        self
    }

    pub const fn complexity(mut self, c: &'static str) -> Self {
        self.complexity = c;
        self
    }

    pub const fn usage(mut self, u: &'static str) -> Self {
        self.usage = u;
        self
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn find_sub(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
    }
}

/// FNV-1a over the ASCII-lowercased bytes: command names are matched case-insensitively
/// without copying them first.
fn hash_lower(name: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name {
        h = (h ^ b.to_ascii_lowercase() as u64).wrapping_mul(0x100000001b3);
    }
    h
}

/// All commands, indexed by lower-case name; every spec (subcommands too) has a numeric id.
/// Names live in a small open-addressing table probed with `hash_lower`.
pub struct CommandTable {
    slots: Vec<Option<(&'static str, usize)>>,
    specs: Vec<(&'static CommandSpec, String)>,
    top_level: Vec<usize>,
}

const FAMILIES: &[&[CommandSpec]] = &[
    connection::COMMANDS,
    client::COMMANDS,
    server::COMMANDS,
    introspection::COMMANDS,
    keys::COMMANDS,
    expire::COMMANDS,
    object::COMMANDS,
    persistence::COMMANDS,
    strings::COMMANDS,
    transactions::COMMANDS,
    pubsub::COMMANDS,
    stream::COMMANDS,
    stream_group::COMMANDS,
    stream_claim::COMMANDS,
    stream_info::COMMANDS,
    stream_refs::COMMANDS,
];

pub fn table() -> &'static CommandTable {
    static TABLE: OnceLock<CommandTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = CommandTable {
            slots: Vec::new(),
            specs: Vec::new(),
            top_level: Vec::new(),
        };
        let mut names: Vec<(&'static str, usize)> = Vec::new();
        for family in FAMILIES {
            for spec in family.iter() {
                let id = t.specs.len();
                t.specs.push((spec, spec.name.to_string()));
                names.push((spec.name, id));
                t.top_level.push(id);
                for sub in spec.subcommands {
                    t.specs.push((sub, format!("{}|{}", spec.name, sub.name)));
                    names.push((leak_fullname(spec.name, sub.name), t.specs.len() - 1));
                }
            }
        }
        // At most a quarter full, so probes are short.
        let size = (names.len() * 4).next_power_of_two();
        t.slots = vec![None; size];
        for (name, id) in names {
            let mut i = hash_lower(name.as_bytes()) as usize & (size - 1);
            while t.slots[i].is_some() {
                i = (i + 1) & (size - 1);
            }
            t.slots[i] = Some((name, id));
        }
        t
    })
}

fn leak_fullname(parent: &str, sub: &str) -> &'static str {
    // Built once at start-up for the lifetime of the process.
    Box::leak(format!("{parent}|{sub}").into_boxed_str())
}

impl CommandTable {
    /// Look a command up by the name a client sent (any case).
    pub fn lookup(&self, name: &[u8]) -> Option<(usize, &'static CommandSpec)> {
        if name.len() > 64 || self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = hash_lower(name) as usize & mask;
        while let Some((candidate, id)) = self.slots[i] {
            if candidate.as_bytes().eq_ignore_ascii_case(name) {
                return Some((id, self.specs[id].0));
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Commands and subcommands in the table (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn fullname(&self, id: usize) -> &str {
        self.specs.get(id).map_or("NULL", |s| s.1.as_str())
    }

    pub fn get(&self, id: usize) -> Option<&'static CommandSpec> {
        self.specs.get(id).map(|s| s.0)
    }

    pub fn top_level(&self) -> impl Iterator<Item = &'static CommandSpec> + '_ {
        self.top_level.iter().map(|&id| self.specs[id].0)
    }

    pub fn count(&self) -> usize {
        self.top_level.len()
    }
}

/// Look up, validate and run one command.
pub fn dispatch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let t = table();
    let (id, spec) = match resolve(ctx, t, args) {
        Ok(found) => found,
        Err(reply) => {
            let known = args.first().and_then(|a| t.lookup(a)).map(|(id, _)| id);
            let is_exec = args
                .first()
                .is_some_and(|a| a.eq_ignore_ascii_case(b"exec"));
            let reply = if is_exec {
                transactions::exec_rejected(ctx, reply)
            } else {
                // Rejected before running: inside MULTI the transaction is now doomed.
                if let Some(m) = ctx.session.multi.as_mut() {
                    m.dirty = true;
                }
                reply
            };
            ctx.shared.cmdstats.rejected(known, &reply);
            return reply;
        }
    };
    // The last command dispatched, queued ones included (CLIENT LIST `cmd`).
    let handle = &ctx.session.handle;
    handle.last_cmd.store(id as u32, Ordering::Relaxed);
    if ctx.session.multi.is_some() && !transactions::runs_in_multi(spec.name) {
        return queue(ctx, spec, args);
    }
    ctx.shared.stats.commands.fetch_add(1, Ordering::Relaxed);
    let Some(handler) = spec.handler else {
        return Reply::Error(error::wrong_arity(t.fullname(id)));
    };
    // With several threads, EXEC runs alone: it holds the gate exclusively, every other
    // command shares it (commands inside EXEC already run under EXEC's hold). With one
    // thread nothing can run in between anyway, and the gate is not touched.
    let _gate = if ctx.shared.multi_threaded && !ctx.session.in_exec && !ctx.session.replaying {
        Some(if spec.name == "exec" {
            Gate::Exclusive(
                ctx.shared
                    .exec_gate
                    .write()
                    .unwrap_or_else(|p| p.into_inner()),
            )
        } else {
            Gate::Shared(
                ctx.shared
                    .exec_gate
                    .read()
                    .unwrap_or_else(|p| p.into_inner()),
            )
        })
    } else {
        None
    };
    let reply = handler(ctx, args);
    // One clock read per command: it ends here, and began where the previous command of
    // the batch ended (or the batch began) — a pair of reads was 5% of a pipelined PUBLISH.
    let end = std::time::Instant::now();
    let usec = end.duration_since(ctx.session.tick).as_micros() as u64;
    ctx.session.tick = end;
    ctx.shared.cmdstats.called(id, usec, &reply);
    reply
}

/// Whether a record of the append-only file may be replayed: a write command (what Relay
/// logs), SELECT, or a transaction's MULTI/EXEC. Anything else in a file — SUBSCRIBE,
/// CONFIG SET, SHUTDOWN, a read — did not come from Relay's writer and is damage.
pub fn replayable(args: &[Bytes]) -> bool {
    let t = table();
    let Some((_, spec)) = args.first().and_then(|a| t.lookup(a)) else {
        return false;
    };
    if matches!(spec.name, "select" | "multi" | "exec") {
        return true;
    }
    let spec = match (spec.subcommands.is_empty(), args.get(1)) {
        (true, _) => spec,
        (false, Some(sub)) => match spec
            .subcommands
            .iter()
            .find(|s| s.name.as_bytes().eq_ignore_ascii_case(sub))
        {
            Some(s) => s,
            None => return false,
        },
        (false, None) => return false,
    };
    spec.has(flags::WRITE)
}

/// A hold on the server's execution gate (see `dispatch`).
enum Gate<'a> {
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] std::sync::RwLockWriteGuard<'a, ()>),
}

/// Find the command and check what Redis checks before running it: known command and
/// subcommand, arity, the RESP2 subscribed context, loading.
fn resolve<'t>(
    ctx: &mut Ctx,
    t: &'t CommandTable,
    args: &[Bytes],
) -> Result<(usize, &'t CommandSpec), Reply> {
    let Some(first) = args.first() else {
        return Err(Reply::None);
    };
    // `client|id` names a subcommand in COMMAND INFO/DOCS, but is not itself a command.
    let found = if first.contains(&b'|') {
        None
    } else {
        t.lookup(first)
    };
    let Some((mut id, mut spec)) = found else {
        return Err(error::unknown_command(first, &args[1..]));
    };
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        match spec
            .subcommands
            .iter()
            .position(|s| s.name.as_bytes().eq_ignore_ascii_case(&args[1]))
        {
            Some(pos) => {
                // Subcommands are numbered right after their container.
                id += 1 + pos;
                spec = &spec.subcommands[pos];
            }
            None => return Err(error::unknown_subcommand(&args[1], spec.name)),
        }
    }
    let argc = args.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(Reply::Error(error::wrong_arity(t.fullname(id))));
    }
    let handle = &ctx.session.handle;
    if ctx.session.resp == 2 && handle.is_pubsub() && !spec.has(flags::SUBSCRIBED_OK) {
        return Err(Reply::Error(error::subscribed_context(t.fullname(id))));
    }
    if ctx.shared.loading.load(Ordering::Acquire)
        && !ctx.session.replaying
        && !spec.has(flags::LOADING)
    {
        return Err(Reply::error(error::LOADING));
    }
    if ctx.session.multi.is_some() && spec.has(flags::NO_MULTI) {
        return Err(Reply::error("ERR Command not allowed inside a transaction"));
    }
    Ok((id, spec))
}

/// Queue a command of a transaction: its arguments are copied, since they outlive the
/// request's read buffer.
fn queue(ctx: &mut Ctx, _spec: &CommandSpec, args: &[Bytes]) -> Reply {
    let doomed = ctx.session.handle.watcher.is_dirty();
    if let Some(m) = ctx.session.multi.as_mut() {
        // A doomed transaction still answers QUEUED but stores nothing more (Redis 7.0's
        // queueMultiCommand: CLIENT LIST's `multi` stops growing).
        if m.dirty || doomed {
            return Reply::status("QUEUED");
        }
        // One allocation for all of the command's arguments, sliced back apart.
        let mut all = bytes::BytesMut::with_capacity(args.iter().map(|a| a.len()).sum());
        for a in args {
            all.extend_from_slice(a);
        }
        let all = all.freeze();
        let mut at = 0;
        m.queue.push(
            args.iter()
                .map(|a| {
                    at += a.len();
                    all.slice(at - a.len()..at)
                })
                .collect(),
        );
        ctx.session
            .handle
            .multi
            .store(m.queue.len() as i64, Ordering::Relaxed);
        ctx.session
            .handle
            .multi_mem
            .fetch_add(all.len(), Ordering::Relaxed);
    }
    Reply::status("QUEUED")
}

pub use crate::resp::parse_i64;

/// A boolean-ish ON/OFF argument (`CLIENT NO-EVICT on`).
pub fn on_off(arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"on") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        None
    }
}

/// The `HELP` reply of a container command: a status line per entry, like Redis's addReplyHelp.
pub fn help_reply(container: &str, lines: &[&str]) -> Reply {
    let mut out = vec![Reply::Status(
        format!(
            "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            container.to_ascii_uppercase()
        )
        .into(),
    )];
    out.extend(lines.iter().map(|l| Reply::Status(l.to_string().into())));
    out.push(Reply::status("HELP"));
    out.push(Reply::status("    Prints this help."));
    Reply::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_docs_and_a_valid_usage_line() {
        for spec in table().top_level() {
            let all = std::iter::once(spec).chain(spec.subcommands.iter());
            for s in all {
                assert!(
                    !s.summary.is_empty() || !s.subcommands.is_empty(),
                    "{} has no summary",
                    s.name
                );
                assert!(
                    docs::parse_usage(s.usage).is_ok(),
                    "{} has a bad usage line",
                    s.name
                );
            }
        }
    }

    #[test]
    fn what_relay_logs_replays_and_nothing_else_does() {
        let args = |line: &str| -> Vec<Bytes> {
            line.split(' ')
                .map(|a| Bytes::from(a.to_string()))
                .collect()
        };
        for ok in [
            "SET k v PXAT 1",
            "DEL k",
            "PEXPIREAT k 1",
            "PERSIST k",
            "RENAME a b",
            "FLUSHDB",
            "FLUSHALL",
            "SELECT 1",
            "MULTI",
            "EXEC",
            "XADD s 1-0 f v",
            "XTRIM s MAXLEN = 1",
            "XDEL s 1-0",
            "XDELEX s ACKED IDS 1 1-0",
            "XACKDEL s g KEEPREF IDS 1 1-0",
            "XACK s g 1-0",
            "XCLAIM s g c 0 1-0 TIME 1 RETRYCOUNT 1 FORCE JUSTID",
            "XGROUP CREATE s g 0 ENTRIESREAD 0 MKSTREAM",
            "XGROUP SETID s g 0",
            "XGROUP DESTROY s g",
            "XGROUP CREATECONSUMER s g c",
            "XGROUP DELCONSUMER s g c",
            "XSETID s 1-0",
            "XNACK s g FAIL IDS 1 1-0",
            "XIDMPRECORD s p i 1-0",
            "XCFGSET s IDMP-DURATION 100",
        ] {
            assert!(replayable(&args(ok)), "{ok}");
        }
        for no in [
            "SUBSCRIBE c",
            "CONFIG SET maxclients 1",
            "SHUTDOWN",
            "BGREWRITEAOF",
            "GET k",
            "XGROUP HELP",
            "NOSUCH",
        ] {
            assert!(!replayable(&args(no)), "{no}");
        }
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert!(table().lookup(b"PuBlIsH").is_some());
        assert!(table().lookup(b"nosuchcommand").is_none());
    }
}
