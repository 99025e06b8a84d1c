//! Connection commands: PING, ECHO, QUIT, RESET, SELECT, HELLO, AUTH.

use super::flags::*;
use super::{parse_i64, CommandSpec, Ctx};
use crate::error;
use crate::reply::Reply;
use bytes::Bytes;
use std::sync::atomic::Ordering;

const FAST_CONN: &[&str] = &["fast", "connection"];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, FAST | SENTINEL | SUBSCRIBED_OK, FAST_CONN, ping)
        .doc(
            "connection",
            "1.0.0",
            "Returns the server's liveliness response.",
        )
        .usage("[message]"),
    CommandSpec::new("echo", 2, FAST, FAST_CONN, echo)
        .doc("connection", "1.0.0", "Returns the given string.")
        .usage("message"),
    CommandSpec::new(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SUBSCRIBED_OK,
        FAST_CONN,
        quit,
    )
    .doc("connection", "1.0.0", "Closes the connection."),
    CommandSpec::new(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | SUBSCRIBED_OK,
        FAST_CONN,
        reset,
    )
    .doc("connection", "6.2.0", "Resets the connection."),
    CommandSpec::new("select", 2, LOADING | STALE | FAST, FAST_CONN, select)
        .doc("connection", "1.0.0", "Changes the selected database.")
        .usage("index:integer"),
    CommandSpec::new(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        FAST_CONN,
        hello,
    )
    .doc("connection", "6.0.0", "Handshakes with the Redis server.")
    .usage("[protover:integer [AUTH username password] [SETNAME clientname]]"),
    CommandSpec::new(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | SENTINEL | ALLOW_BUSY,
        FAST_CONN,
        auth,
    )
    .doc("connection", "1.0.0", "Authenticates the connection.")
    .complexity("O(N) where N is the number of passwords defined for the user")
    .usage("[username] password"),
];

/// PING [message]: PONG, or the message. A RESP2 client in subscribed mode gets the
/// two-element `pong` array instead.
fn ping(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if args.len() > 2 {
        return Reply::Error(error::wrong_arity("ping"));
    }
    if ctx.session.resp == 2 && ctx.session.handle.is_pubsub() {
        let msg = args.get(1).cloned().unwrap_or_default();
        return Reply::Array(vec![Reply::bulk_str("pong"), Reply::Bulk(msg)]);
    }
    match args.get(1) {
        Some(m) => Reply::Bulk(m.clone()),
        None => Reply::status("PONG"),
    }
}

fn echo(_: &mut Ctx, args: &[Bytes]) -> Reply {
    Reply::Bulk(args[1].clone())
}

/// QUIT: reply +OK, then close once it is written.
fn quit(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    ctx.session.close_after_reply = true;
    Reply::ok()
}

/// RESET: back to a fresh connection's state (RESP2, db 0, no name, no subscriptions).
fn reset(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    super::pubsub::unsubscribe_everything(ctx);
    super::transactions::end_multi(ctx);
    super::transactions::unwatch_all(ctx);
    let s = &mut *ctx.session;
    s.resp = 2;
    s.db = 0;
    s.reply_off = false;
    s.skip_next = false;
    s.handle.resp.store(2, Ordering::Relaxed);
    s.handle.db.store(0, Ordering::Relaxed);
    s.handle.no_evict.store(false, Ordering::Relaxed);
    s.handle.no_touch.store(false, Ordering::Relaxed);
    if let Ok(mut n) = s.handle.names.lock() {
        n.name.clear();
    }
    Reply::status("RESET")
}

fn select(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let Some(index) = parse_i64(&args[1]) else {
        return Reply::error(error::NOT_INTEGER);
    };
    if i32::try_from(index).is_err() {
        return Reply::error(
            "ERR value is out of range, value must between -2147483648 and 2147483647",
        );
    }
    if index < 0 || index as usize >= ctx.shared.keyspace.databases() {
        return Reply::error(error::DB_INDEX_OUT_OF_RANGE);
    }
    ctx.session.db = index as usize;
    ctx.session.handle.db.store(index as u32, Ordering::Relaxed);
    Reply::ok()
}

/// Check a password for `user` against the (password-less) default user, as Redis does
/// without `requirepass`: the default user accepts any password, other users do not exist.
fn check_auth(user: &[u8]) -> Result<(), Reply> {
    if user == b"default" {
        Ok(())
    } else {
        Err(Reply::error(error::WRONGPASS))
    }
}

fn auth(_: &mut Ctx, args: &[Bytes]) -> Reply {
    match args.len() {
        2 => Reply::error(error::AUTH_NOT_CONFIGURED),
        3 => match check_auth(&args[1]) {
            Ok(()) => Reply::ok(),
            Err(e) => e,
        },
        _ => Reply::error(error::SYNTAX),
    }
}

/// Whether a client name is acceptable (printable ASCII without spaces).
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut ver = None;
    let mut next = 1;
    if let Some(v) = args.get(1) {
        let Some(n) = parse_i64(v) else {
            return Reply::error("ERR Protocol version is not an integer or out of range");
        };
        if !(2..=3).contains(&n) {
            return Reply::error(error::NOPROTO);
        }
        ver = Some(n as u8);
        next = 2;
    }
    let mut auth_user = None;
    let mut setname = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            auth_user = Some(args[j + 1].clone());
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            setname = Some(args[j + 1].clone());
            j += 2;
        } else {
            return error::with_arg("ERR Syntax error in HELLO option '", opt, "'");
        }
    }
    if let Some(user) = auth_user {
        if let Err(e) = check_auth(&user) {
            return e;
        }
    }
    if let Some(name) = setname {
        if !valid_client_name(&name) {
            return Reply::error(error::CLIENT_NAME_CHARS);
        }
        if let Ok(mut n) = ctx.session.handle.names.lock() {
            n.name = String::from_utf8_lossy(&name).into_owned();
        }
    }
    if let Some(v) = ver {
        ctx.session.resp = v;
        ctx.session.handle.resp.store(v, Ordering::Relaxed);
    }
    Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str("redis")),
        (
            Reply::bulk_str("version"),
            Reply::bulk_str(crate::REDIS_COMPAT_VERSION),
        ),
        (
            Reply::bulk_str("proto"),
            Reply::Integer(ctx.session.resp as i64),
        ),
        (
            Reply::bulk_str("id"),
            Reply::Integer(ctx.session.handle.id as i64),
        ),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (Reply::bulk_str("role"), Reply::bulk_str("master")),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ])
}
