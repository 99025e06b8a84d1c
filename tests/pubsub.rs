//! Pub/Sub scenarios through the `redis` crate (a real client library) and raw connections.

mod common;

use common::{RawConn, Resp};
use futures_util::StreamExt;
use std::time::Duration;

async fn client(addr: std::net::SocketAddr) -> redis::Client {
    redis::Client::open(format!("redis://{addr}/")).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_subscriber_receives_channel_and_pattern_messages() {
    let server = common::start().await;
    let c = client(server.addr()).await;
    let mut sub = c.get_async_pubsub().await.unwrap();
    sub.subscribe("orders").await.unwrap();
    sub.psubscribe("orders.*").await.unwrap();
    let mut con = c.get_multiplexed_async_connection().await.unwrap();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders")
        .arg("o1")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("PUBLISH")
        .arg("orders.eu")
        .arg("o2")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let mut stream = sub.on_message();
    let m1 = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m1.get_channel_name(), "orders");
    assert_eq!(m1.get_payload::<String>().unwrap(), "o1");
    let m2 = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m2.get_channel_name(), "orders.eu");
    assert_eq!(m2.get_pattern::<String>().unwrap(), "orders.*");
    assert_eq!(m2.get_payload::<String>().unwrap(), "o2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_client_gets_push_frames_and_can_run_commands_while_subscribed() {
    let server = common::start().await;
    let mut sub = RawConn::connect(server.addr()).await;
    assert!(matches!(sub.cmd(&["HELLO", "3"]).await, Resp::Map(_)));
    let conf = sub.cmd(&["SUBSCRIBE", "chat"]).await;
    assert_eq!(
        conf,
        Resp::Push(vec![
            Resp::bulk("subscribe"),
            Resp::bulk("chat"),
            Resp::Int(1)
        ])
    );
    // Ordinary commands are allowed in RESP3 while subscribed.
    assert_eq!(
        sub.cmd(&["ECHO", "still here"]).await,
        Resp::bulk("still here")
    );
    let mut publisher = RawConn::connect(server.addr()).await;
    assert_eq!(
        publisher.cmd(&["PUBLISH", "chat", "hi"]).await,
        Resp::Int(1)
    );
    assert_eq!(
        sub.read().await,
        Resp::Push(vec![
            Resp::bulk("message"),
            Resp::bulk("chat"),
            Resp::bulk("hi")
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp2_subscriber_is_refused_ordinary_commands() {
    let server = common::start().await;
    let mut sub = RawConn::connect(server.addr()).await;
    sub.cmd(&["SUBSCRIBE", "a"]).await;
    assert_eq!(
        sub.cmd(&["GET", "x"]).await,
        Resp::Error("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context".into())
    );
    assert_eq!(
        sub.cmd(&["PING"]).await,
        Resp::Array(vec![Resp::bulk("pong"), Resp::bulk("")])
    );
    // RESET leaves subscribed mode.
    assert_eq!(sub.cmd(&["RESET"]).await, Resp::Simple("RESET".into()));
    assert_eq!(sub.cmd(&["GET", "x"]).await, Resp::NullBulk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_to_self_delivers_before_the_publish_reply() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    c.cmd(&["SUBSCRIBE", "me"]).await;
    c.send(&["PUBLISH", "me", "loop"]).await;
    assert_eq!(
        c.read().await,
        Resp::Push(vec![
            Resp::bulk("message"),
            Resp::bulk("me"),
            Resp::bulk("loop")
        ])
    );
    assert_eq!(c.read().await, Resp::Int(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_reaches_every_subscriber_once_in_publish_order() {
    let server = common::start().await;
    let mut subs = vec![];
    for _ in 0..20 {
        let mut s = RawConn::connect(server.addr()).await;
        s.cmd(&["SUBSCRIBE", "fan"]).await;
        subs.push(s);
    }
    let mut p = RawConn::connect(server.addr()).await;
    for i in 0..50 {
        assert_eq!(
            p.cmd(&["PUBLISH", "fan", &i.to_string()]).await,
            Resp::Int(20)
        );
    }
    for s in &mut subs {
        for i in 0..50 {
            assert_eq!(s.read().await.items()[2], Resp::bulk(&i.to_string()));
        }
        assert!(s.read_timeout(Duration::from_millis(50)).await.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnected_subscriber_is_removed_from_the_registry() {
    let server = common::start().await;
    let mut admin = RawConn::connect(server.addr()).await;
    {
        let mut s = RawConn::connect(server.addr()).await;
        s.cmd(&["SUBSCRIBE", "gone"]).await;
        s.cmd(&["PSUBSCRIBE", "go*"]).await;
        s.cmd(&["SSUBSCRIBE", "shard"]).await;
        assert_eq!(
            admin.cmd(&["PUBSUB", "NUMSUB", "gone"]).await.items()[1],
            Resp::Int(1)
        );
    }
    for _ in 0..100 {
        if admin.cmd(&["PUBSUB", "NUMSUB", "gone"]).await.items()[1] == Resp::Int(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        admin.cmd(&["PUBSUB", "NUMSUB", "gone"]).await.items()[1],
        Resp::Int(0)
    );
    assert_eq!(admin.cmd(&["PUBSUB", "NUMPAT"]).await, Resp::Int(0));
    assert_eq!(
        admin.cmd(&["PUBSUB", "SHARDNUMSUB", "shard"]).await.items()[1],
        Resp::Int(0)
    );
    assert_eq!(admin.cmd(&["PUBLISH", "gone", "x"]).await, Resp::Int(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_unrelated_patterns_do_not_change_who_receives() {
    let server = common::start().await;
    let mut s = RawConn::connect(server.addr()).await;
    let patterns: Vec<String> = (0..2000).map(|i| format!("tenant.{i}.*")).collect();
    let mut args = vec!["PSUBSCRIBE"];
    args.extend(patterns.iter().map(String::as_str));
    s.send(&args).await;
    for _ in 0..2000 {
        s.read().await;
    }
    let mut p = RawConn::connect(server.addr()).await;
    assert_eq!(
        p.cmd(&["PUBLISH", "tenant.1999.login", "x"]).await,
        Resp::Int(1)
    );
    assert_eq!(
        p.cmd(&["PUBLISH", "tenant.2000.login", "x"]).await,
        Resp::Int(0)
    );
    assert_eq!(p.cmd(&["PUBLISH", "other", "x"]).await, Resp::Int(0));
    let m = s.read().await;
    assert_eq!(m.items()[1], Resp::bulk("tenant.1999.*"));
    assert_eq!(p.cmd(&["PUBSUB", "NUMPAT"]).await, Resp::Int(2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_channels_are_separate_from_classic_channels() {
    let server = common::start().await;
    let mut s = RawConn::connect(server.addr()).await;
    assert_eq!(
        s.cmd(&["SSUBSCRIBE", "orders"]).await.items()[2],
        Resp::Int(1)
    );
    assert_eq!(
        s.cmd(&["SUBSCRIBE", "orders"]).await.items()[2],
        Resp::Int(1)
    );
    let mut p = RawConn::connect(server.addr()).await;
    assert_eq!(p.cmd(&["SPUBLISH", "orders", "s"]).await, Resp::Int(1));
    assert_eq!(
        s.read().await,
        Resp::Array(vec![
            Resp::bulk("smessage"),
            Resp::bulk("orders"),
            Resp::bulk("s")
        ])
    );
    assert_eq!(p.cmd(&["PUBLISH", "orders", "c"]).await, Resp::Int(1));
    assert_eq!(
        s.read().await,
        Resp::Array(vec![
            Resp::bulk("message"),
            Resp::bulk("orders"),
            Resp::bulk("c")
        ])
    );
}
