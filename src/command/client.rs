//! CLIENT and its subcommands: identity, listing, killing and reply control.

use super::connection::valid_client_name;
use super::flags::*;
use super::{help_reply, on_off, parse_i64, table, CommandSpec, Ctx};
use crate::connection::client::ClientHandle;
use crate::error;
use crate::reply::Reply;
use crate::server::Shared;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const SLOW_CONN: &[&str] = &["slow", "connection"];
const ADMIN_CONN: &[&str] = &["admin", "slow", "dangerous", "connection"];

const SUBS: &[CommandSpec] = &[
    CommandSpec::new("id", 2, NOSCRIPT | LOADING | STALE, SLOW_CONN, id).doc("connection", "5.0.0", "Returns the unique client ID of the connection."),
    CommandSpec::new("getname", 2, NOSCRIPT | LOADING | STALE, SLOW_CONN, getname).doc("connection", "2.6.9", "Returns the name of the connection."),
    CommandSpec::new("setname", 3, NOSCRIPT | LOADING | STALE, SLOW_CONN, setname)
        .doc("connection", "2.6.9", "Sets the connection name.")
        .usage("connection-name"),
    CommandSpec::new("setinfo", 4, NOSCRIPT | LOADING | STALE, SLOW_CONN, setinfo)
        .doc("connection", "7.2.0", "Sets information specific to the client or connection.")
        .usage("(LIB-NAME libname|LIB-VER libver)"),
    CommandSpec::new("list", -2, ADMIN | NOSCRIPT | LOADING | STALE, ADMIN_CONN, list)
        .doc("connection", "2.4.0", "Lists open connections.")
        .complexity("O(N) where N is the number of client connections")
        .usage("[TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID client-id:integer ...]"),
    CommandSpec::new("info", 2, NOSCRIPT | LOADING | STALE, SLOW_CONN, info).doc("connection", "6.2.0", "Returns information about the connection."),
    CommandSpec::new("kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, ADMIN_CONN, kill)
        .doc("connection", "2.4.0", "Terminates open connections.")
        .complexity("O(N) where N is the number of client connections")
        .usage("(ip-port|(([ID client-id:integer]|[TYPE (NORMAL|MASTER|SLAVE|REPLICA|PUBSUB)]|[USER username]|[ADDR ip-port]|[LADDR ip-port]|[SKIPME (YES|NO)]) ...))"),
    CommandSpec::new("reply", 3, NOSCRIPT | LOADING | STALE, SLOW_CONN, reply)
        .doc("connection", "3.2.0", "Instructs the server whether to reply to commands.")
        .usage("(ON|OFF|SKIP)"),
    CommandSpec::new("no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, ADMIN_CONN, no_evict)
        .doc("connection", "7.0.0", "Sets the client eviction mode of the connection.")
        .usage("(ON|OFF)"),
    CommandSpec::new("no-touch", 3, NOSCRIPT | LOADING | STALE, SLOW_CONN, no_touch)
        .doc("connection", "7.2.0", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.")
        .usage("(ON|OFF)"),
    CommandSpec::new("unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, ADMIN_CONN, unblock)
        .doc("connection", "5.0.0", "Unblocks a client blocked by a blocking command from a different connection.")
        .complexity("O(log N) where N is the number of client connections")
        .usage("client-id:integer [TIMEOUT|ERROR]"),
    CommandSpec::new("help", 2, LOADING | STALE, SLOW_CONN, help).doc("connection", "5.0.0", "Returns helpful text about the different subcommands."),
];

pub const COMMANDS: &[CommandSpec] = &[CommandSpec::container("client", SLOW_CONN, SUBS).doc(
    "connection",
    "2.4.0",
    "A container for client connection commands.",
)];

fn id(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    Reply::Integer(ctx.session.handle.id as i64)
}

fn getname(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    let name = ctx.session.handle.name();
    if name.is_empty() {
        Reply::Null
    } else {
        Reply::bulk(name)
    }
}

fn setname(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if !valid_client_name(&args[2]) {
        return Reply::error(error::CLIENT_NAME_CHARS);
    }
    if let Ok(mut n) = ctx.session.handle.names.lock() {
        n.name = String::from_utf8_lossy(&args[2]).into_owned();
    }
    Reply::ok()
}

fn setinfo(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let attr = &args[2];
    let lib_name = attr.eq_ignore_ascii_case(b"lib-name");
    if !lib_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
        return error::with_arg("ERR Unrecognized option '", attr, "'");
    }
    if !valid_client_name(&args[3]) {
        return error::with_arg(
            "ERR ",
            attr,
            " cannot contain spaces, newlines or special characters.",
        );
    }
    let value = String::from_utf8_lossy(&args[3]).into_owned();
    if let Ok(mut n) = ctx.session.handle.names.lock() {
        if lib_name {
            n.lib_name = value;
        } else {
            n.lib_ver = value;
        }
    }
    Reply::ok()
}

/// One CLIENT LIST line (without the trailing newline), with Redis 7.2's fields.
pub fn info_line(shared: &Shared, c: &ClientHandle) -> String {
    let now = shared.limits.now_ms();
    let names = c.names();
    let mut flags = String::new();
    let multi = c.multi.load(Ordering::Relaxed);
    if c.is_pubsub() {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if c.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if c.watcher.is_dirty() {
        flags.push('d');
    }
    if c.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if c.no_touch.load(Ordering::Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let omem = c.output.pending();
    let qbuf = c.qbuf.load(Ordering::Relaxed);
    let qbuf_free = c.qbuf_free.load(Ordering::Relaxed);
    let argv_mem = c.argv_mem.load(Ordering::Relaxed);
    let multi_mem = c.multi_mem.load(Ordering::Relaxed);
    let cmd = table()
        .fullname(c.last_cmd.load(Ordering::Relaxed) as usize)
        .to_string();
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs=0 rbp=0 obl=0 oll={} omem={} tot-mem={} events=r{} cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        names.name,
        now.saturating_sub(c.created_ms) / 1000,
        now.saturating_sub(c.last_interaction_ms.load(Ordering::Relaxed)) / 1000,
        flags,
        c.db.load(Ordering::Relaxed),
        c.subs.load(Ordering::Relaxed),
        c.psubs.load(Ordering::Relaxed),
        c.ssubs.load(Ordering::Relaxed),
        multi,
        qbuf,
        qbuf_free,
        argv_mem,
        multi_mem,
        c.output.queued_frames(),
        omem,
        qbuf + qbuf_free + argv_mem + multi_mem + omem + std::mem::size_of::<ClientHandle>(),
        if omem > 0 { "w" } else { "" },
        cmd,
        names.user,
        c.resp(),
        names.lib_name,
        names.lib_ver,
    )
}

/// Client types as CLIENT LIST TYPE / CLIENT KILL TYPE name them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    Master,
    Pubsub,
}

fn client_type(name: &[u8]) -> Option<ClientType> {
    let n = name.to_ascii_lowercase();
    match n.as_slice() {
        b"normal" => Some(ClientType::Normal),
        b"slave" | b"replica" => Some(ClientType::Replica),
        b"master" => Some(ClientType::Master),
        b"pubsub" => Some(ClientType::Pubsub),
        _ => None,
    }
}

fn type_of(c: &ClientHandle) -> ClientType {
    if c.is_pubsub() {
        ClientType::Pubsub
    } else {
        ClientType::Normal
    }
}

fn unknown_type(name: &[u8]) -> Reply {
    error::with_arg("ERR Unknown client type '", name, "'")
}

fn list(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let shared = ctx.shared;
    let clients: Vec<Arc<ClientHandle>> =
        if args.len() == 4 && args[2].eq_ignore_ascii_case(b"type") {
            let Some(t) = client_type(&args[3]) else {
                return unknown_type(&args[3]);
            };
            shared
                .clients
                .snapshot()
                .into_iter()
                .filter(|c| type_of(c) == t)
                .collect()
        } else if args.len() > 3 && args[2].eq_ignore_ascii_case(b"id") {
            let mut out = vec![];
            for a in &args[3..] {
                let Some(id) = parse_i64(a) else {
                    return Reply::error("ERR Invalid client ID");
                };
                if let Some(c) = u64::try_from(id).ok().and_then(|id| shared.clients.get(id)) {
                    out.push(c);
                }
            }
            out
        } else if args.len() != 2 {
            return Reply::error(error::SYNTAX);
        } else {
            shared.clients.snapshot()
        };
    let mut text = String::new();
    for c in clients {
        text.push_str(&info_line(shared, &c));
        text.push('\n');
    }
    Reply::Verbatim("txt", Bytes::from(text))
}

fn info(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    let mut line = info_line(ctx.shared, &ctx.session.handle);
    line.push('\n');
    Reply::Verbatim("txt", Bytes::from(line))
}

#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    ctype: Option<ClientType>,
    addr: Option<Bytes>,
    laddr: Option<Bytes>,
    user: Option<Bytes>,
    skipme: bool,
}

impl KillFilter {
    fn matches(&self, c: &ClientHandle) -> bool {
        self.id.is_none_or(|id| id == c.id)
            && self.ctype.is_none_or(|t| t == type_of(c))
            && self
                .addr
                .as_ref()
                .is_none_or(|a| a.as_ref() == c.addr.as_bytes())
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| a.as_ref() == c.laddr.as_bytes())
            && self
                .user
                .as_ref()
                .is_none_or(|u| u.as_ref() == c.names().user.as_bytes())
    }
}

/// CLIENT KILL ip:port (old form: +OK or an error) or CLIENT KILL <filter value> ... (new form:
/// the number of clients killed).
fn kill(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let old_form = args.len() == 3;
    let mut filter = KillFilter {
        skipme: !old_form,
        ..Default::default()
    };
    if old_form {
        filter.addr = Some(args[2].clone());
    } else {
        let mut i = 2;
        while i < args.len() {
            let Some(value) = args.get(i + 1) else {
                return Reply::error(error::SYNTAX);
            };
            let opt = args[i].to_ascii_lowercase();
            match opt.as_slice() {
                b"id" => match parse_i64(value) {
                    Some(n) if n > 0 => filter.id = Some(n as u64),
                    _ => return Reply::error("ERR client-id should be greater than 0"),
                },
                b"type" => match client_type(value) {
                    Some(t) => filter.ctype = Some(t),
                    None => return unknown_type(value),
                },
                b"addr" => filter.addr = Some(value.clone()),
                b"laddr" => filter.laddr = Some(value.clone()),
                b"user" => {
                    if value.as_ref() != b"default" {
                        return error::with_arg("ERR No such user '", value, "'");
                    }
                    filter.user = Some(value.clone());
                }
                b"skipme" => {
                    if value.eq_ignore_ascii_case(b"yes") {
                        filter.skipme = true;
                    } else if value.eq_ignore_ascii_case(b"no") {
                        filter.skipme = false;
                    } else {
                        return Reply::error(error::SYNTAX);
                    }
                }
                _ => return Reply::error(error::SYNTAX),
            }
            i += 2;
        }
    }
    let me = ctx.session.handle.id;
    let mut killed = 0;
    for c in ctx.shared.clients.snapshot() {
        if !filter.matches(&c) || (filter.skipme && c.id == me) {
            continue;
        }
        killed += 1;
        if c.id == me {
            ctx.session.close_after_reply = true;
        } else {
            c.output.close();
        }
    }
    if old_form {
        if killed == 0 {
            Reply::error(error::NO_SUCH_CLIENT)
        } else {
            Reply::ok()
        }
    } else {
        Reply::Integer(killed)
    }
}

fn reply(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"on") {
        ctx.session.reply_off = false;
        ctx.session.skip_current = false;
        Reply::ok()
    } else if mode.eq_ignore_ascii_case(b"off") {
        ctx.session.reply_off = true;
        Reply::None
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if !ctx.session.reply_off {
            ctx.session.skip_next = true;
        }
        Reply::None
    } else {
        Reply::error(error::SYNTAX)
    }
}

fn no_evict(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match on_off(&args[2]) {
        Some(v) => {
            ctx.session.handle.no_evict.store(v, Ordering::Relaxed);
            Reply::ok()
        }
        None => Reply::error(error::SYNTAX),
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if the client was blocked and is now released.
fn unblock(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(id) = parse_i64(&args[2]) else {
        return Reply::error(error::NOT_INTEGER);
    };
    let how = match args.get(3) {
        None => 1,
        Some(m) if m.eq_ignore_ascii_case(b"timeout") => 1,
        Some(m) if m.eq_ignore_ascii_case(b"error") => 2,
        Some(_) => return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
    };
    if args.len() > 4 {
        return Reply::error(error::SYNTAX);
    }
    match u64::try_from(id)
        .ok()
        .and_then(|id| ctx.shared.clients.get(id))
    {
        Some(c) if c.blocked.load(Ordering::Relaxed) => {
            c.unblock.store(how, Ordering::Relaxed);
            c.output.wake.notify_one();
            Reply::Integer(1)
        }
        _ => Reply::Integer(0),
    }
}

fn no_touch(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    match on_off(&args[2]) {
        Some(v) => {
            ctx.session.handle.no_touch.store(v, Ordering::Relaxed);
            Reply::ok()
        }
        None => Reply::error(error::SYNTAX),
    }
}

fn help(_: &mut Ctx, _: &[Bytes]) -> Reply {
    help_reply(
        "client",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
        ],
    )
}
