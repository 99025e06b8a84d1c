//! Protocol edge cases over raw TCP: pipelining, inline commands, RESP3 types, binary safety,
//! split and huge requests, CLIENT REPLY, SHUTDOWN.

mod common;

use common::{RawConn, Resp};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_reply_in_order() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let mut wire = Vec::new();
    for i in 0..1000 {
        wire.extend(common::encode_command(&[b"ECHO", i.to_string().as_bytes()]));
    }
    c.send_raw(&wire).await;
    for i in 0..1000 {
        assert_eq!(c.read().await, Resp::bulk(&i.to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_commands_work_like_telnet() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.send_raw(b"PING\r\n\r\nECHO \"two words\"\nSET k 'v v'\r\nGET k\r\n")
        .await;
    assert_eq!(c.read().await, Resp::Simple("PONG".into()));
    assert_eq!(c.read().await, Resp::bulk("two words"));
    assert_eq!(c.read().await, Resp::Simple("OK".into()));
    assert_eq!(c.read().await, Resp::bulk("v v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_split_byte_by_byte_is_reassembled() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let wire = common::encode_command(&[b"ECHO", b"fragmented"]);
    for b in wire {
        c.send_raw(&[b]).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(c.read().await, Resp::bulk("fragmented"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_binary_values_round_trip() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let value: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    c.send_bytes(&[b"SET", b"\x00bin\xff", &value]).await;
    assert_eq!(c.read().await, Resp::Simple("OK".into()));
    c.send_bytes(&[b"GET", b"\x00bin\xff"]).await;
    assert_eq!(c.read().await, Resp::Bulk(value));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_error_replies_then_closes_after_earlier_commands_ran() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.send_raw(b"PING\r\n*1\r\n+oops\r\n").await;
    assert_eq!(c.read().await, Resp::Simple("PONG".into()));
    assert_eq!(
        c.read().await,
        Resp::Error("ERR Protocol error: expected '$', got '+'".into())
    );
    assert!(c.closed_within(Duration::from_secs(2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_types_follow_hello() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let hello = c.cmd(&["HELLO", "3", "SETNAME", "probe"]).await;
    let Resp::Map(pairs) = hello else {
        panic!("HELLO 3 replies with a map")
    };
    assert!(pairs.contains(&(Resp::bulk("proto"), Resp::Int(3))));
    assert_eq!(c.cmd(&["GET", "missing"]).await, Resp::Null);
    assert!(matches!(
        c.cmd(&["CONFIG", "GET", "port"]).await,
        Resp::Map(_)
    ));
    assert!(matches!(
        c.cmd(&["CLIENT", "INFO"]).await,
        Resp::Verbatim(..)
    ));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]).await, Resp::bulk("probe"));
    // Back to RESP2.
    c.cmd(&["HELLO", "2"]).await;
    assert_eq!(c.cmd(&["GET", "missing"]).await, Resp::NullBulk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reply_off_skip_on() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.send(&["CLIENT", "REPLY", "OFF"]).await;
    c.send(&["ECHO", "silent"]).await;
    c.send(&["CLIENT", "REPLY", "ON"]).await;
    assert_eq!(c.read().await, Resp::Simple("OK".into()));
    c.send(&["CLIENT", "REPLY", "SKIP"]).await;
    c.send(&["ECHO", "skipped"]).await;
    c.send(&["ECHO", "heard"]).await;
    assert_eq!(c.read().await, Resp::bulk("heard"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_command_stops_the_server() {
    let server = common::start().await;
    let addr = server.addr();
    let mut c = RawConn::connect(addr).await;
    c.send(&["SHUTDOWN", "NOSAVE"]).await;
    assert!(c.closed_within(Duration::from_secs(5)).await);
    tokio::time::timeout(Duration::from_secs(5), server.stopped())
        .await
        .expect("server stopped");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_docs_and_info_describe_the_table() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let count = c.cmd(&["COMMAND", "COUNT"]).await;
    let Resp::Int(n) = count else { panic!() };
    let all = c.cmd(&["COMMAND"]).await.items();
    assert_eq!(all.len() as i64, n);
    let info = c
        .cmd(&["COMMAND", "INFO", "publish", "nosuch"])
        .await
        .items();
    let publish = info[0].items();
    assert_eq!(publish[0], Resp::bulk("publish"));
    assert_eq!(publish[1], Resp::Int(3));
    assert_eq!(info[1], Resp::NullBulk);
    let docs = c.cmd(&["COMMAND", "DOCS", "subscribe"]).await.items();
    assert_eq!(docs[0], Resp::bulk("subscribe"));
    let doc = docs[1].items();
    let args_at = doc
        .iter()
        .position(|r| *r == Resp::bulk("arguments"))
        .expect("arguments");
    let first_arg = doc[args_at + 1].items()[0].items();
    assert!(first_arg.contains(&Resp::bulk("channel")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_reports_instantaneous_ops_under_load() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let mut wire = Vec::new();
    for _ in 0..200 {
        wire.extend(common::encode_command(&[b"PING"]));
    }
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < deadline {
        c.send_raw(&wire).await;
        for _ in 0..200 {
            c.read().await;
        }
    }
    let info = c.cmd(&["INFO", "stats"]).await.text();
    let ops: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("instantaneous_ops_per_sec:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("instantaneous_ops_per_sec");
    assert!(ops > 1000, "{info}");
}

/// go-redis v9 cannot be installed here (no Go module proxy), so its connect-time handshake is
/// replayed byte for byte: HELLO 3, then CLIENT SETINFO LIB-NAME / LIB-VER in one pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_redis_v9_handshake_is_answered() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let mut wire = common::encode_command(&[b"hello", b"3"]);
    wire.extend(common::encode_command(&[
        b"client",
        b"setinfo",
        b"LIB-NAME",
        b"go-redis(,go1.22.1)",
    ]));
    wire.extend(common::encode_command(&[
        b"client", b"setinfo", b"LIB-VER", b"9.5.1",
    ]));
    c.send_raw(&wire).await;
    let Resp::Map(hello) = c.read().await else {
        panic!("HELLO 3 replies with a map")
    };
    assert!(hello.contains(&(
        Resp::bulk("version"),
        Resp::bulk(relay::REDIS_COMPAT_VERSION)
    )));
    assert_eq!(c.read().await, Resp::Simple("OK".into()));
    assert_eq!(c.read().await, Resp::Simple("OK".into()));
    let me = c.cmd(&["CLIENT", "INFO"]).await.text();
    assert!(
        me.contains("lib-name=go-redis(,go1.22.1) lib-ver=9.5.1"),
        "{me}"
    );
    assert!(me.contains("resp=3"), "{me}");
}
