//! Streams through real clients: XADD/XRANGE with the `redis` crate, and XREAD BLOCK with its
//! wake-up, timeout, CLIENT UNBLOCK and disconnect paths.

mod common;

use common::{wait_blocked, RawConn, Resp};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_adds_and_ranges() {
    let server = common::start().await;
    let client = redis::Client::open(format!("redis://{}/", server.addr())).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for i in 0..250 {
        let _: String = redis::cmd("XADD")
            .arg("events")
            .arg("*")
            .arg("n")
            .arg(i)
            .query_async(&mut con)
            .await
            .unwrap();
    }
    let len: i64 = redis::cmd("XLEN")
        .arg("events")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(len, 250);
    let page: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("events")
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(3)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(page.len(), 3);
    assert_eq!(page[2].1, vec![("n".to_string(), "2".to_string())]);
    let trimmed: i64 = redis::cmd("XTRIM")
        .arg("events")
        .arg("MAXLEN")
        .arg(10)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(trimmed, 240);
    let kind: String = redis::cmd("TYPE")
        .arg("events")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(kind, "stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xread_block_is_woken_by_xadd_in_fifo_order_for_every_reader() {
    let server = common::start().await;
    let mut readers = vec![];
    for _ in 0..5 {
        let mut r = RawConn::connect(server.addr()).await;
        r.send(&["XREAD", "BLOCK", "0", "STREAMS", "jobs", "$"])
            .await;
        readers.push(r);
    }
    let mut admin = RawConn::connect(server.addr()).await;
    // All five are registered before the write.
    for _ in 0..100 {
        if admin
            .cmd(&["INFO", "clients"])
            .await
            .text()
            .contains("blocked_clients:5")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admin
        .cmd(&["INFO", "clients"])
        .await
        .text()
        .contains("blocked_clients:5"));
    assert_eq!(
        admin.cmd(&["XADD", "jobs", "1-1", "task", "resize"]).await,
        Resp::bulk("1-1")
    );
    for r in &mut readers {
        let reply = r.read().await;
        let streams = reply.items();
        assert_eq!(streams[0].items()[0], Resp::bulk("jobs"));
        let entries = streams[0].items()[1].items();
        assert_eq!(entries[0].items()[0], Resp::bulk("1-1"));
    }
    assert!(admin
        .cmd(&["INFO", "clients"])
        .await
        .text()
        .contains("blocked_clients:0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xread_block_times_out_with_a_null_in_both_protocols() {
    let server = common::start().await;
    let mut r2 = RawConn::connect(server.addr()).await;
    let started = Instant::now();
    assert_eq!(
        r2.cmd(&["XREAD", "BLOCK", "150", "STREAMS", "quiet", "$"])
            .await,
        Resp::NullArray
    );
    assert!(started.elapsed() >= Duration::from_millis(140));
    let mut r3 = RawConn::connect(server.addr()).await;
    r3.cmd(&["HELLO", "3"]).await;
    assert_eq!(
        r3.cmd(&["XREAD", "BLOCK", "50", "STREAMS", "quiet", "$"])
            .await,
        Resp::Null
    );
    // The connection works normally afterwards.
    assert_eq!(r3.cmd(&["PING"]).await, Resp::Simple("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_added_while_blocked_are_not_skipped_and_pipelined_commands_wait() {
    let server = common::start().await;
    let mut admin = RawConn::connect(server.addr()).await;
    admin.cmd(&["XADD", "s", "5-0", "a", "1"]).await;
    let mut r = RawConn::connect(server.addr()).await;
    // `$` resolves to 5-0 when the call is made; the PING queued behind it waits.
    let mut wire = common::encode_command(&[
        b"XREAD", b"COUNT", b"10", b"BLOCK", b"0", b"STREAMS", b"s", b"$",
    ]);
    wire.extend(common::encode_command(&[b"PING"]));
    r.send_raw(&wire).await;
    assert!(
        r.read_timeout(Duration::from_millis(100)).await.is_none(),
        "blocked, and PING waits"
    );
    admin.cmd(&["XADD", "s", "6-0", "a", "2"]).await;
    let reply = r.read().await;
    let entries = reply.items()[0].items()[1].items();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].items()[0], Resp::bulk("6-0"));
    assert_eq!(r.read().await, Resp::Simple("PONG".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_unblock_releases_with_timeout_or_error() {
    let server = common::start().await;
    let mut r = RawConn::connect(server.addr()).await;
    let id = r.cmd(&["CLIENT", "ID"]).await.text();
    let mut admin = RawConn::connect(server.addr()).await;
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &id]).await,
        Resp::Int(0),
        "not blocked yet"
    );
    r.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).await;
    let mut released = Resp::Int(0);
    for _ in 0..100 {
        released = admin.cmd(&["CLIENT", "UNBLOCK", &id]).await;
        if released == Resp::Int(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(released, Resp::Int(1));
    assert_eq!(r.read().await, Resp::NullArray);
    r.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).await;
    for _ in 0..100 {
        if admin.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]).await == Resp::Int(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        r.read().await,
        Resp::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &id, "MAYBE"]).await,
        Resp::Error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_disconnects_while_blocked_is_forgotten() {
    let server = common::start().await;
    let mut admin = RawConn::connect(server.addr()).await;
    {
        let mut r = RawConn::connect(server.addr()).await;
        r.send(&["XREAD", "BLOCK", "0", "STREAMS", "gone", "$"])
            .await;
        wait_blocked(&mut admin, 1).await;
    }
    let mut cleaned = false;
    for _ in 0..100 {
        let info = admin.cmd(&["INFO", "clients"]).await.text();
        if info.contains("blocked_clients:0") && info.contains("connected_clients:1") {
            cleaned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(cleaned, "the disconnected reader is still registered");
    assert_eq!(
        admin.cmd(&["XADD", "gone", "1-0", "a", "b"]).await,
        Resp::bulk("1-0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xread_plus_returns_the_last_entry() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["XADD", "s", "1-0", "a", "1"]).await;
    c.cmd(&["XADD", "s", "2-0", "a", "2"]).await;
    let reply = c.cmd(&["XREAD", "STREAMS", "s", "+"]).await;
    let entries = reply.items()[0].items()[1].items();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].items()[0], Resp::bulk("2-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_consumers_share_new_entries_first_come_first_served() {
    let server = common::start().await;
    let mut admin = RawConn::connect(server.addr()).await;
    admin
        .cmd(&["XGROUP", "CREATE", "q", "workers", "$", "MKSTREAM"])
        .await;
    let mut a = RawConn::connect(server.addr()).await;
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "a",
        "COUNT",
        "1",
        "BLOCK",
        "0",
        "STREAMS",
        "q",
        ">",
    ])
    .await;
    wait_blocked(&mut admin, 1).await;
    let mut b = RawConn::connect(server.addr()).await;
    b.send(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "b",
        "COUNT",
        "1",
        "BLOCK",
        "0",
        "STREAMS",
        "q",
        ">",
    ])
    .await;
    wait_blocked(&mut admin, 2).await;
    admin.cmd(&["XADD", "q", "1-0", "job", "one"]).await;
    let got_a = a.read().await;
    assert_eq!(
        got_a.items()[0].items()[1].items()[0].items()[0],
        Resp::bulk("1-0"),
        "the first blocked consumer gets it"
    );
    assert!(
        b.read_timeout(Duration::from_millis(100)).await.is_none(),
        "the second keeps waiting"
    );
    admin.cmd(&["XADD", "q", "2-0", "job", "two"]).await;
    let got_b = b.read().await;
    assert_eq!(
        got_b.items()[0].items()[1].items()[0].items()[0],
        Resp::bulk("2-0")
    );
    let pending = admin.cmd(&["XPENDING", "q", "workers"]).await.items();
    assert_eq!(pending[0], Resp::Int(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_group_reader_gets_an_error_when_its_group_or_key_goes() {
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
    wait_blocked(&mut admin, 1).await;
    assert_eq!(
        admin.cmd(&["XGROUP", "DESTROY", "q", "g"]).await,
        Resp::Int(1)
    );
    assert_eq!(
        r.read().await,
        Resp::Error(
            "NOGROUP the consumer group this client was blocked on no longer exists".into()
        )
    );
    admin.cmd(&["XGROUP", "CREATE", "q", "g", "$"]).await;
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
    wait_blocked(&mut admin, 1).await;
    assert_eq!(admin.cmd(&["DEL", "q"]).await, Resp::Int(1));
    assert_eq!(
        r.read().await,
        Resp::Error("UNBLOCKED the stream key no longer exists".into())
    );
    wait_blocked(&mut admin, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_group_read_times_out() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"])
        .await;
    let started = Instant::now();
    assert_eq!(
        c.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "100",
            "STREAMS",
            "q",
            ">"
        ])
        .await,
        Resp::NullArray
    );
    assert!(started.elapsed() >= Duration::from_millis(90));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_consumers_work_stays_pending_with_its_delivery_count() {
    let server = common::start().await;
    let mut producer = RawConn::connect(server.addr()).await;
    producer
        .cmd(&["XGROUP", "CREATE", "events", "billing", "$", "MKSTREAM"])
        .await;
    for i in 1..=5 {
        producer
            .cmd(&["XADD", "events", &format!("{i}-0"), "n", &i.to_string()])
            .await;
    }
    {
        // Reads three entries, acknowledges one, then "crashes".
        let mut worker = RawConn::connect(server.addr()).await;
        worker
            .cmd(&[
                "XREADGROUP",
                "GROUP",
                "billing",
                "w1",
                "COUNT",
                "3",
                "STREAMS",
                "events",
                ">",
            ])
            .await;
        assert_eq!(
            worker.cmd(&["XACK", "events", "billing", "1-0"]).await,
            Resp::Int(1)
        );
    }
    let summary = producer
        .cmd(&["XPENDING", "events", "billing"])
        .await
        .items();
    assert_eq!(summary[0], Resp::Int(2));
    assert_eq!(
        summary[3].items()[0].items(),
        vec![Resp::bulk("w1"), Resp::bulk("2")]
    );
    // The consumer comes back and re-reads its history: delivery counts rise.
    let mut again = RawConn::connect(server.addr()).await;
    let history = again
        .cmd(&[
            "XREADGROUP",
            "GROUP",
            "billing",
            "w1",
            "STREAMS",
            "events",
            "0",
        ])
        .await;
    assert_eq!(history.items()[0].items()[1].items().len(), 2);
    let detail = producer
        .cmd(&["XPENDING", "events", "billing", "-", "+", "10"])
        .await
        .items();
    assert_eq!(detail[0].items()[3], Resp::Int(2), "delivered twice");
    // New work continues after the group's last delivered ID.
    let fresh = again
        .cmd(&[
            "XREADGROUP",
            "GROUP",
            "billing",
            "w1",
            "STREAMS",
            "events",
            ">",
        ])
        .await;
    let ids: Vec<Resp> = fresh.items()[0].items()[1]
        .items()
        .iter()
        .map(|e| e.items()[0].clone())
        .collect();
    assert_eq!(ids, vec![Resp::bulk("4-0"), Resp::bulk("5-0")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_consumers_entries_are_autoclaimed_and_dead_lettered_after_n_deliveries() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["XGROUP", "CREATE", "orders", "ship", "$", "MKSTREAM"])
        .await;
    for i in 1..=3 {
        c.cmd(&["XADD", "orders", &format!("{i}-0"), "order", &i.to_string()])
            .await;
    }
    // w1 takes everything and dies without acknowledging.
    RawConn::connect(server.addr())
        .await
        .cmd(&[
            "XREADGROUP",
            "GROUP",
            "ship",
            "w1",
            "STREAMS",
            "orders",
            ">",
        ])
        .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    // w2 sweeps entries idle for 100 ms: all three move to it, delivered a second time.
    let swept = c
        .cmd(&["XAUTOCLAIM", "orders", "ship", "w2", "100", "0"])
        .await
        .items();
    assert_eq!(swept[0], Resp::bulk("0-0"), "the whole PEL was scanned");
    assert_eq!(swept[1].items().len(), 3);
    let pel = c
        .cmd(&["XPENDING", "orders", "ship", "-", "+", "10"])
        .await
        .items();
    assert!(pel
        .iter()
        .all(|p| p.items()[1] == Resp::bulk("w2") && p.items()[3] == Resp::Int(2)));
    // Entries seen too often go to a dead-letter stream and are acknowledged.
    const MAX_DELIVERIES: i64 = 2;
    for p in pel {
        let f = p.items();
        if let Resp::Int(n) = f[3] {
            if n >= MAX_DELIVERIES {
                let id = f[0].text();
                c.cmd(&["XADD", "orders:dead", "*", "id", &id]).await;
                assert_eq!(c.cmd(&["XACK", "orders", "ship", &id]).await, Resp::Int(1));
            }
        }
    }
    assert_eq!(c.cmd(&["XLEN", "orders:dead"]).await, Resp::Int(3));
    assert_eq!(
        c.cmd(&["XPENDING", "orders", "ship"]).await.items()[0],
        Resp::Int(0)
    );
    // Nothing idle is left to claim.
    let again = c
        .cmd(&["XAUTOCLAIM", "orders", "ship", "w3", "0", "0"])
        .await
        .items();
    assert!(again[1].items().is_empty());
}

fn field(map: &Resp, name: &str) -> Resp {
    let items = map.items();
    let at = items
        .iter()
        .position(|r| *r == Resp::bulk(name))
        .unwrap_or_else(|| panic!("no field {name} in {map:?}"));
    items[at + 1].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xinfo_reports_consumers_idle_and_inactive_and_the_full_stream() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["XADD", "s", "1-0", "a", "1"]).await;
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]).await;
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "idle-one"])
        .await;
    c.cmd(&["XREADGROUP", "GROUP", "g", "worker", "STREAMS", "s", ">"])
        .await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let consumers = c.cmd(&["XINFO", "CONSUMERS", "s", "g"]).await.items();
    assert_eq!(consumers.len(), 2);
    let idle_one = &consumers[0];
    assert_eq!(field(idle_one, "name"), Resp::bulk("idle-one"));
    assert_eq!(
        field(idle_one, "inactive"),
        Resp::Int(-1),
        "never given entries"
    );
    let worker = &consumers[1];
    assert_eq!(field(worker, "pending"), Resp::Int(1));
    let Resp::Int(inactive) = field(worker, "inactive") else {
        panic!()
    };
    assert!(inactive >= 50, "{inactive}");
    let full = c.cmd(&["XINFO", "STREAM", "s", "FULL"]).await;
    assert_eq!(field(&full, "length"), Resp::Int(1));
    let group = field(&full, "groups").items()[0].clone();
    assert_eq!(field(&group, "pel-count"), Resp::Int(1));
    assert_eq!(field(&group, "entries-read"), Resp::Int(1));
    assert_eq!(field(&group, "lag"), Resp::Int(0));
    let worker_full = field(&group, "consumers").items()[1].clone();
    assert_eq!(field(&worker_full, "name"), Resp::bulk("worker"));
    assert!(matches!(field(&worker_full, "active-time"), Resp::Int(t) if t > 0));
}

/// Regression: chunks kept the field names as slices of the request buffer, so every chunk
/// pinned a whole read buffer (~200 bytes per entry instead of ~45).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_entries_do_not_pin_request_buffers() {
    let server = common::spawn_binary(&[]).await;
    let mut c = RawConn::connect(server.addr).await;
    let used = |info: String| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let before = used(c.cmd(&["INFO", "memory"]).await.text());
    let n = 200_000u64;
    for batch in 0..n / 1000 {
        let mut wire = Vec::new();
        for j in 0..1000 {
            let i = batch * 1000 + j + 1;
            let id = format!("{i}-0");
            let v = format!("{i:010}");
            wire.extend(common::encode_command(&[
                b"XADD",
                b"big",
                id.as_bytes(),
                b"field-one",
                v.as_bytes(),
                b"field-two",
                b"0123456789",
                b"field-3",
                b"abcdefghij",
            ]));
        }
        c.send_raw(&wire).await;
        for _ in 0..1000 {
            c.read().await;
        }
    }
    let after = used(c.cmd(&["INFO", "memory"]).await.text());
    let per_entry = (after.saturating_sub(before)) / n;
    assert!(per_entry < 80, "{per_entry} bytes per entry");
}
