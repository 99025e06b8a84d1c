//! Stream scenarios at scale: hundreds of blocked readers and consumers on one key, trimming
//! while a group has pending entries, and a 1,000,000-entry stream.

mod common;

use common::{encode_command, wait_blocked, RawConn, Resp};
use std::collections::HashSet;

/// The IDs in an XREAD/XREADGROUP reply for one stream (RESP2).
fn ids(reply: &Resp) -> Vec<String> {
    reply.items()[0].items()[1]
        .items()
        .iter()
        .map(|e| e.items()[0].text())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_blocked_readers_and_consumers_are_all_served_once() {
    let server = common::start().await;
    let mut admin = RawConn::connect(server.addr()).await;
    admin
        .cmd(&["XGROUP", "CREATE", "q", "workers", "$", "MKSTREAM"])
        .await;
    const READERS: usize = 200;
    const CONSUMERS: usize = 100;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut r = RawConn::connect(server.addr()).await;
        r.send(&["XREAD", "BLOCK", "0", "STREAMS", "q", "$"]).await;
        readers.push(r);
    }
    let mut consumers = Vec::new();
    for i in 0..CONSUMERS {
        let mut c = RawConn::connect(server.addr()).await;
        let name = format!("c{i}");
        c.send(&[
            "XREADGROUP",
            "GROUP",
            "workers",
            &name,
            "COUNT",
            "1",
            "BLOCK",
            "0",
            "STREAMS",
            "q",
            ">",
        ])
        .await;
        consumers.push(c);
    }
    wait_blocked(&mut admin, READERS + CONSUMERS).await;
    // One entry per consumer, added in one pipeline.
    let mut wire = Vec::new();
    for i in 0..CONSUMERS {
        let id = format!("{}-0", i + 1);
        wire.extend(encode_command(&[
            b"XADD".as_slice(),
            b"q",
            id.as_bytes(),
            b"job",
            b"x",
        ]));
    }
    admin.send_raw(&wire).await;
    for _ in 0..CONSUMERS {
        admin.read().await;
    }
    // Every plain reader sees the stream move (at least the first entry, in order).
    for r in &mut readers {
        let got = ids(&r.read().await);
        assert_eq!(got.first().map(String::as_str), Some("1-0"));
    }
    // Each consumer got exactly one entry, and no entry went to two consumers.
    let mut seen = HashSet::new();
    for c in &mut consumers {
        let got = ids(&c.read().await);
        assert_eq!(got.len(), 1);
        assert!(seen.insert(got[0].clone()), "{} delivered twice", got[0]);
    }
    assert_eq!(seen.len(), CONSUMERS);
    wait_blocked(&mut admin, 0).await;
    let pending = admin.cmd(&["XPENDING", "q", "workers"]).await.items();
    assert_eq!(pending[0], Resp::Int(CONSUMERS as i64));
    assert_eq!(
        pending[3].items().len(),
        CONSUMERS,
        "one entry per consumer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_while_a_group_has_pending_entries() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    for i in 1..=1000 {
        c.cmd(&["XADD", "s", &format!("{i}-0"), "n", &i.to_string()])
            .await;
    }
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]).await;
    // A worker takes 300 entries and dies with them pending.
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "dead",
        "COUNT",
        "300",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    // Approximate trimming removes whole nodes of 100: 200 entries, all pending.
    assert_eq!(
        c.cmd(&["XTRIM", "s", "MAXLEN", "~", "750"]).await,
        Resp::Int(200)
    );
    // The PEL still names them (KEEPREF): XPENDING counts them, history shows them as nil.
    let summary = c.cmd(&["XPENDING", "s", "g"]).await.items();
    assert_eq!(summary[0], Resp::Int(300));
    let history = c
        .cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "dead",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            "0",
        ])
        .await;
    let first = &history.items()[0].items()[1].items()[0];
    assert_eq!(first.items()[1], Resp::NullArray, "a trimmed pending entry");
    // XAUTOCLAIM reports the trimmed ones as deleted and removes them from the PEL,
    // claiming the rest for a live worker.
    let mut claimed = 0;
    let mut deleted = 0;
    let mut cursor = "0-0".to_string();
    loop {
        let r = c
            .cmd(&[
                "XAUTOCLAIM",
                "s",
                "g",
                "alive",
                "0",
                &cursor,
                "COUNT",
                "50",
                "JUSTID",
            ])
            .await
            .items();
        claimed += r[1].items().len();
        deleted += r[2].items().len();
        cursor = r[0].text();
        if cursor == "0-0" {
            break;
        }
    }
    assert_eq!((claimed, deleted), (100, 200));
    let summary = c.cmd(&["XPENDING", "s", "g"]).await.items();
    assert_eq!(summary[0], Resp::Int(100));
    // The group keeps reading where it was; lag counts what is left to read.
    let info = c.cmd(&["XINFO", "GROUPS", "s"]).await.items()[0].items();
    let lag = info
        .chunks(2)
        .find(|p| p[0] == Resp::bulk("lag"))
        .map(|p| p[1].clone());
    assert_eq!(lag, Some(Resp::Int(700)), "301-0 .. 1000-0");
    // MINID with DELREF also drops the references, so nothing dangles.
    assert_eq!(
        c.cmd(&["XTRIM", "s", "MINID", "251-0", "DELREF"]).await,
        Resp::Int(50)
    );
    let summary = c.cmd(&["XPENDING", "s", "g"]).await.items();
    assert_eq!(summary[0], Resp::Int(50));
    assert_eq!(summary[1], Resp::bulk("251-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_entry_stream_reads_trims_and_reports_like_a_small_one() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    const N: u64 = 1_000_000;
    let mut i = 1;
    while i <= N {
        let mut wire = Vec::new();
        let end = (i + 5000).min(N + 1);
        for j in i..end {
            let id = format!("{j}-0");
            let v = format!("{j:010}");
            wire.extend(encode_command(&[
                b"XADD".as_slice(),
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
        for _ in i..end {
            c.read().await;
        }
        i = end;
    }
    assert_eq!(c.cmd(&["XLEN", "big"]).await, Resp::Int(N as i64));
    let mid = c
        .cmd(&["XRANGE", "big", "500000", "+", "COUNT", "3"])
        .await
        .items();
    assert_eq!(mid[0].items()[0], Resp::bulk("500000-0"));
    assert_eq!(
        mid[2].items()[1].items()[1],
        Resp::bulk("0000500002"),
        "values survive compaction into chunks"
    );
    let back = c
        .cmd(&["XREVRANGE", "big", "+", "-", "COUNT", "1"])
        .await
        .items();
    assert_eq!(back[0].items()[0], Resp::bulk("1000000-0"));
    // Nodes end at 4096 bytes of Redis's listpack encoding before they reach 100 entries:
    // 10,990 of them, as redis-server 7.0 makes for the same entries.
    let info = c.cmd(&["XINFO", "STREAM", "big"]).await.items();
    let nodes = info
        .chunks(2)
        .find(|p| p[0] == Resp::bulk("radix-tree-keys"))
        .map(|p| p[1].clone());
    assert_eq!(nodes, Some(Resp::Int(10_990)));
    // Approximate trimming removes whole nodes, bounded by its default LIMIT (10,000
    // entries a call): 9,919, the same as redis-server.
    assert_eq!(
        c.cmd(&["XTRIM", "big", "MAXLEN", "~", "0"]).await,
        Resp::Int(9_919)
    );
    assert_eq!(
        c.cmd(&["XTRIM", "big", "MINID", "900001-0"]).await,
        Resp::Int(890_081)
    );
    assert_eq!(c.cmd(&["XLEN", "big"]).await, Resp::Int(100_000));
    let first = c
        .cmd(&["XRANGE", "big", "-", "+", "COUNT", "1"])
        .await
        .items();
    assert_eq!(first[0].items()[0], Resp::bulk("900001-0"));
    // Memory is that of compact chunks: well under 100 bytes an entry for this stream.
    let used = |text: String| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let with = used(c.cmd(&["INFO", "memory"]).await.text());
    c.cmd(&["DEL", "big"]).await;
    let without = used(c.cmd(&["INFO", "memory"]).await.text());
    let per_entry = (with - without) / 100_000;
    assert!(
        (20..100).contains(&per_entry),
        "{per_entry} bytes per entry"
    );
}
