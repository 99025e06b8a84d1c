//! Limits a client can run into: output buffers (slow subscribers), query buffers, bulk length,
//! maxclients, idle timeout.

mod common;

use common::{RawConn, Resp};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_is_disconnected_at_hard_limit_and_memory_stays_bounded() {
    // The real binary, so its resident memory is measured apart from the test's.
    let server = common::spawn_binary(&["--client-output-buffer-limit", "pubsub 4mb 2mb 60"]).await;
    let pid = server.child.id();
    let mut slow = RawConn::connect(server.addr).await;
    let slow_id = slow.cmd(&["CLIENT", "ID"]).await.text();
    assert_eq!(
        slow.cmd(&["SUBSCRIBE", "firehose"]).await.items()[2],
        Resp::Int(1)
    );
    // Shrink the subscriber's receive window so the backlog piles up in the server.
    let sock = socket2::SockRef::from(&slow.stream);
    sock.set_recv_buffer_size(4096).ok();

    let mut admin = RawConn::connect(server.addr).await;
    let baseline = common::rss_of(pid);
    let payload = "x".repeat(16 * 1024);
    let mut publisher = RawConn::connect(server.addr).await;
    let mut peak = baseline;
    let mut delivered_to_zero_at = None;
    // 64 MiB of messages in pipelined batches: 16x the hard limit.
    for batch in 0..64 {
        let mut wire = Vec::new();
        for _ in 0..64 {
            wire.extend(common::encode_command(&[
                b"PUBLISH",
                b"firehose",
                payload.as_bytes(),
            ]));
        }
        publisher.send_raw(&wire).await;
        for _ in 0..64 {
            if publisher.read().await == Resp::Int(0) && delivered_to_zero_at.is_none() {
                delivered_to_zero_at = Some(batch);
            }
        }
        peak = peak.max(common::rss_of(pid));
    }
    assert!(
        delivered_to_zero_at.is_some(),
        "the slow subscriber was never cut off"
    );
    assert!(
        peak < baseline + 48 * 1024 * 1024,
        "server memory grew from {baseline} to {peak} bytes with a 4 MiB hard limit"
    );
    let info = admin.cmd(&["INFO", "stats"]).await.text();
    assert!(
        info.contains("client_output_buffer_limit_disconnections:1"),
        "{info}"
    );
    // The server has dropped it (its socket may still be draining what the kernel holds).
    let listed = admin.cmd(&["CLIENT", "LIST", "ID", &slow_id]).await.text();
    assert_eq!(listed, "", "the slow subscriber is still registered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_limit_disconnects_only_after_soft_seconds() {
    let server = common::start_with(|c| {
        c.obuf[2] = relay::config::ObufLimit {
            hard: 0,
            soft: 256 * 1024,
            soft_seconds: 1,
        };
    })
    .await;
    let mut slow = RawConn::connect(server.addr()).await;
    socket2::SockRef::from(&slow.stream)
        .set_recv_buffer_size(4096)
        .ok();
    slow.cmd(&["SUBSCRIBE", "s"]).await;
    let mut p = RawConn::connect(server.addr()).await;
    let payload = "y".repeat(64 * 1024);
    let started = Instant::now();
    let mut cut_after = None;
    while started.elapsed() < Duration::from_secs(10) {
        if p.cmd(&["PUBLISH", "s", &payload]).await == Resp::Int(0) {
            cut_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cut_after = cut_after.expect("the subscriber stayed over the soft limit and was cut off");
    assert!(
        cut_after >= Duration::from_millis(900),
        "cut off after {cut_after:?}, before soft-seconds elapsed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_limit_can_be_changed_with_config_set() {
    let server = common::start().await;
    let mut admin = RawConn::connect(server.addr()).await;
    assert_eq!(
        admin
            .cmd(&[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1mb 0 0"
            ])
            .await,
        Resp::Simple("OK".into())
    );
    let got = admin
        .cmd(&["CONFIG", "GET", "client-output-buffer-limit"])
        .await
        .items()[1]
        .text();
    assert_eq!(
        got,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 0 0"
    );
    let mut slow = RawConn::connect(server.addr()).await;
    socket2::SockRef::from(&slow.stream)
        .set_recv_buffer_size(4096)
        .ok();
    slow.cmd(&["SUBSCRIBE", "c"]).await;
    let payload = "z".repeat(64 * 1024);
    let mut receivers = 1;
    for _ in 0..200 {
        if let Resp::Int(n) = admin.cmd(&["PUBLISH", "c", &payload]).await {
            receivers = n;
        }
        if receivers == 0 {
            break;
        }
    }
    assert_eq!(
        receivers, 0,
        "subscriber survived 12 MiB with a 1 MiB hard limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_buffer_limit_closes_the_connection() {
    let server = common::start_with(|c| c.client_query_buffer_limit = 1024 * 1024).await;
    let mut c = RawConn::connect(server.addr()).await;
    // Announce a 2 MiB argument (allowed by proto-max-bulk-len) and send it slowly past 1 MiB.
    c.send_raw(b"*2\r\n$4\r\nECHO\r\n$2097152\r\n").await;
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..20 {
        if c.stream.try_write(&chunk).is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(c.closed_within(Duration::from_secs(5)).await);
    let mut admin = RawConn::connect(server.addr()).await;
    let info = admin.cmd(&["INFO", "stats"]).await.text();
    assert!(
        info.contains("client_query_buffer_limit_disconnections:1"),
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_longer_than_proto_max_bulk_len_is_a_protocol_error() {
    let server = common::start_with(|c| c.proto_max_bulk_len = 1024 * 1024).await;
    let mut c = RawConn::connect(server.addr()).await;
    c.send_raw(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n").await;
    assert_eq!(
        c.read().await,
        Resp::Error("ERR Protocol error: invalid bulk length".into())
    );
    assert!(c.closed_within(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_rejects_with_redis_error() {
    let server = common::start_with(|c| c.maxclients = 2).await;
    let mut a = RawConn::connect(server.addr()).await;
    let mut b = RawConn::connect(server.addr()).await;
    assert_eq!(a.cmd(&["PING"]).await, Resp::Simple("PONG".into()));
    assert_eq!(b.cmd(&["PING"]).await, Resp::Simple("PONG".into()));
    let mut c = RawConn::connect(server.addr()).await;
    assert_eq!(
        c.read().await,
        Resp::Error("ERR max number of clients reached".into())
    );
    assert!(c.closed_within(Duration::from_secs(2)).await);
    drop(b);
    // Once a slot frees up, a new client gets in.
    let mut admitted = false;
    for _ in 0..50 {
        let mut d = RawConn::connect(server.addr()).await;
        d.send(&["PING"]).await;
        if d.read_timeout(Duration::from_secs(1)).await == Some(Resp::Simple("PONG".into())) {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted);
    let info = a.cmd(&["INFO", "stats"]).await.text();
    assert!(!info.contains("rejected_connections:0"), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_closes_normal_clients_but_never_subscribers() {
    let server = common::start_with(|c| c.timeout = 1).await;
    let mut idle = RawConn::connect(server.addr()).await;
    idle.cmd(&["PING"]).await;
    let mut sub = RawConn::connect(server.addr()).await;
    sub.cmd(&["SUBSCRIBE", "quiet"]).await;
    assert!(
        idle.closed_within(Duration::from_secs(4)).await,
        "idle client was not closed"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut p = RawConn::connect(server.addr()).await;
    assert_eq!(p.cmd(&["PUBLISH", "quiet", "still"]).await, Resp::Int(1));
    assert_eq!(sub.read().await.items()[2], Resp::bulk("still"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_closes_the_target_and_counts() {
    let server = common::start().await;
    let mut victim = RawConn::connect(server.addr()).await;
    let id = victim.cmd(&["CLIENT", "ID"]).await.text();
    let mut admin = RawConn::connect(server.addr()).await;
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id]).await,
        Resp::Int(1)
    );
    assert!(victim.closed_within(Duration::from_secs(2)).await);
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "ID", &id]).await,
        Resp::Int(0)
    );
    // Old form, addressed at oneself: replies OK and then closes.
    let addr = admin.stream.local_addr().unwrap().to_string();
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", &addr]).await,
        Resp::Simple("OK".into())
    );
    assert!(admin.closed_within(Duration::from_secs(2)).await);
}
