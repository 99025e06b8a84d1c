//! Key expiry through real clients: keys nobody reads are deleted by the active cycle, a
//! blocked group reader hears that its stream expired, deadlines survive RENAME and stream
//! writes, and the `redis` crate's expiry helpers work. (Reply-by-reply equality with Redis
//! is the differential suite's job: tests/scripts/47-*.redis, 48-*, 49-*.)

mod common;

use common::{RawConn, Resp};
use redis::AsyncCommands;
use std::time::Duration;

/// INFO field `name` as an integer.
async fn info_field(conn: &mut RawConn, section: &str, name: &str) -> i64 {
    let text = conn.cmd(&["INFO", section]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {name}: {text}"))
}

/// Poll `cond` every 20 ms for up to 5 s (correctness, not speed: the bound only stops a hang).
async fn eventually(mut cond: impl AsyncFnMut() -> bool, what: &str) {
    for _ in 0..250 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_nobody_reads_are_deleted_by_the_active_cycle() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    // 3,000 keys that expire together (more than one pass of the cycle takes from a shard),
    // strings and streams, beside keys that must stay. One absolute deadline a few seconds
    // out, so all of them still exist when they are counted.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let at = (now + 3000).to_string();
    for i in 0..1500 {
        c.cmd(&["SET", &format!("s:{i}"), "v", "PXAT", &at]).await;
        c.cmd(&["XADD", &format!("x:{i}"), "*", "f", "v"]).await;
        c.cmd(&["PEXPIREAT", &format!("x:{i}"), &at]).await;
    }
    c.cmd(&["SET", "keep", "v"]).await;
    c.cmd(&["SET", "later", "v", "EXAT", "33177117420"]).await;
    let ks = c.cmd(&["INFO", "keyspace"]).await.text();
    assert!(
        ks.contains("db0:keys=3002,expires=3001,"),
        "every deadline is counted: {ks}"
    );
    eventually(
        async || c.cmd(&["DBSIZE"]).await == Resp::Int(2),
        "DBSIZE falls to the two keys without deadlines that pass",
    )
    .await;
    assert_eq!(info_field(&mut c, "stats", "expired_keys").await, 3000);
    assert_eq!(
        c.cmd(&["EXPIRETIME", "later"]).await,
        Resp::Int(33177117420)
    );
    assert_eq!(c.cmd(&["TTL", "keep"]).await, Resp::Int(-1));
    let ks = c.cmd(&["INFO", "keyspace"]).await.text();
    assert!(ks.contains("db0:keys=2,expires=1,"), "{ks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_group_reader_hears_that_its_stream_expired() {
    let server = common::start().await;
    let mut admin = RawConn::connect(server.addr()).await;
    admin
        .cmd(&["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"])
        .await;
    let mut r = RawConn::connect(server.addr()).await;
    r.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "q",
        ">",
    ])
    .await;
    common::wait_blocked(&mut admin, 1).await;
    // Nobody touches the key: the active cycle deletes it and wakes the reader.
    assert_eq!(admin.cmd(&["PEXPIRE", "q", "50"]).await, Resp::Int(1));
    assert_eq!(
        r.read().await,
        Resp::Error("UNBLOCKED the stream key no longer exists".into())
    );
    assert_eq!(admin.cmd(&["EXISTS", "q"]).await, Resp::Int(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_survive_rename_and_stream_writes_but_not_set() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["XADD", "s", "1-0", "f", "v"]).await;
    c.cmd(&["EXPIREAT", "s", "33177117420"]).await;
    c.cmd(&["XADD", "s", "2-0", "f", "v"]).await;
    c.cmd(&["XTRIM", "s", "MAXLEN", "1"]).await;
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]).await;
    assert_eq!(
        c.cmd(&["EXPIRETIME", "s"]).await,
        Resp::Int(33177117420),
        "writes to a stream keep its deadline"
    );
    // Keys in many shards: the deadline moves with the value whichever shard it lands in.
    for i in 0..20 {
        let to = format!("renamed:{i}");
        let from = if i == 0 {
            "s".to_string()
        } else {
            format!("renamed:{}", i - 1)
        };
        assert_eq!(
            c.cmd(&["RENAME", &from, &to]).await,
            Resp::Simple("OK".into())
        );
        assert_eq!(c.cmd(&["EXPIRETIME", &to]).await, Resp::Int(33177117420));
        assert_eq!(c.cmd(&["EXPIRETIME", &from]).await, Resp::Int(-2));
    }
    let ks = c.cmd(&["INFO", "keyspace"]).await.text();
    assert!(ks.contains("db0:keys=1,expires=1,"), "{ks}");
    c.cmd(&["SET", "k", "v", "EX", "100"]).await;
    c.cmd(&["SET", "k", "w"]).await;
    assert_eq!(c.cmd(&["TTL", "k"]).await, Resp::Int(-1), "SET clears it");
    c.cmd(&["SET", "k", "v", "EX", "100"]).await;
    c.cmd(&["SET", "k", "w", "KEEPTTL"]).await;
    assert_eq!(c.cmd(&["TTL", "k"]).await, Resp::Int(100));
    c.cmd(&["FLUSHALL"]).await;
    let ks = c.cmd(&["INFO", "keyspace"]).await.text();
    assert!(!ks.contains("db0:"), "{ks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_expiry_helpers() {
    let server = common::start().await;
    let client = redis::Client::open(format!("redis://{}/", server.addr())).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = con.set_ex("session", "token", 300).await.unwrap();
    let ttl: i64 = con.ttl("session").await.unwrap();
    assert_eq!(ttl, 300);
    let set: bool = con.pexpire("session", 40).await.unwrap();
    assert!(set);
    let left: i64 = con.pttl("session").await.unwrap();
    assert!((0..=40).contains(&left), "{left}");
    tokio::time::sleep(Duration::from_millis(80)).await;
    let gone: Option<String> = con.get("session").await.unwrap();
    assert_eq!(gone, None);
    let _: () = con.set("k", "v").await.unwrap();
    let _: bool = con.expire("k", 100).await.unwrap();
    let persisted: bool = con.persist("k").await.unwrap();
    assert!(persisted);
    let ttl: i64 = con.ttl("k").await.unwrap();
    assert_eq!(ttl, -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_idletime_counts_from_the_last_access_and_no_touch_does_not_reset_it() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let mut quiet = RawConn::connect(server.addr()).await;
    quiet.cmd(&["CLIENT", "NO-TOUCH", "ON"]).await;
    c.cmd(&["XADD", "s", "1-0", "f", "v"]).await;
    assert_eq!(c.cmd(&["OBJECT", "IDLETIME", "s"]).await, Resp::Int(0));
    // The access clock ticks in whole seconds, as Redis's does.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    quiet.cmd(&["XRANGE", "s", "-", "+"]).await;
    c.cmd(&["TYPE", "s"]).await;
    let idle = c.cmd(&["OBJECT", "IDLETIME", "s"]).await;
    assert!(
        matches!(idle, Resp::Int(2) | Resp::Int(3)),
        "NO-TOUCH reads and TYPE leave it idle: {idle:?}"
    );
    c.cmd(&["XRANGE", "s", "-", "+"]).await;
    assert_eq!(c.cmd(&["OBJECT", "IDLETIME", "s"]).await, Resp::Int(0));
}
