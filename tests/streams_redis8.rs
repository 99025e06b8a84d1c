//! Redis 8's stream additions, which the Redis 7 oracle cannot check: XDELEX and XACKDEL
//! with KEEPREF/DELREF/ACKED and the same conditions on XADD/XTRIM (8.2), XREADGROUP … CLAIM
//! (8.4), idempotent producers — XADD IDMP/IDMPAUTO, XCFGSET, XIDMPRECORD, the XINFO
//! counters (8.6) — and XNACK (8.8). Expected replies follow Redis 8's t_stream.c and its
//! tests (tests/unit/type/stream.tcl, stream-cgroups.tcl).

mod common;

use common::{render, wait_blocked, RawConn, Resp};
use std::time::Duration;

/// Send a command and render its reply (`[:1, :-1]`, `"1-0"`, `-ERR …`).
async fn r(c: &mut RawConn, args: &[&str]) -> String {
    render(&c.cmd(args).await)
}

/// A stream `s` with entries 1-0 … n-0 and a group `g` created at 0.
async fn stream_with_group(c: &mut RawConn, n: u64) {
    for i in 1..=n {
        c.cmd(&["XADD", "s", &format!("{i}-0"), "f", &format!("v{i}")])
            .await;
    }
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]).await;
}

/// The value of `name` in a flat RESP2 map.
fn field(map: &Resp, name: &str) -> Resp {
    let items = map.items();
    items
        .chunks(2)
        .find(|p| p[0] == Resp::bulk(name))
        .map(|p| p[1].clone())
        .unwrap_or_else(|| panic!("no {name} in {}", render(map)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xdelex_deletes_under_each_condition() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 4).await;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "2",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    // 1-0 and 2-0 are pending, 3-0 and 4-0 not yet read: all referenced. As in Redis, an
    // ID past what the group has read counts as referenced even if it does not exist.
    assert_eq!(
        r(
            &mut c,
            &["XDELEX", "s", "ACKED", "IDS", "3", "1-0", "3-0", "9-0"]
        )
        .await,
        "[:2, :2, :2]"
    );
    assert_eq!(
        r(&mut c, &["XDELEX", "s", "KEEPREF", "IDS", "1", "9-0"]).await,
        "[:-1]"
    );
    c.cmd(&["XACK", "s", "g", "1-0"]).await;
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"])
        .await;
    c.cmd(&["XACK", "s", "g", "3-0", "4-0"]).await;
    assert_eq!(
        r(&mut c, &["XDELEX", "s", "IDS", "2", "1-0", "1-0", "ACKED"]).await,
        "[:1, :-1]",
        "the condition may follow the IDs; a repeated ID is already gone"
    );
    // KEEPREF (the default) leaves 2-0 dangling in the PEL; DELREF would not.
    assert_eq!(r(&mut c, &["XDELEX", "s", "IDS", "1", "2-0"]).await, "[:1]");
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g"]).await,
        "[:1, \"2-0\", \"2-0\", [[\"alice\", \"1\"]]]"
    );
    c.cmd(&["XADD", "s", "5-0", "f", "v5"]).await;
    c.cmd(&["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"])
        .await;
    assert_eq!(
        r(&mut c, &["XDELEX", "s", "DELREF", "IDS", "1", "5-0"]).await,
        "[:1]"
    );
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g", "-", "+", "10", "bob"]).await,
        "[]"
    );
    assert_eq!(r(&mut c, &["XLEN", "s"]).await, ":2");
    // No key: one -1 per ID, and the IDs are not even parsed.
    assert_eq!(
        r(&mut c, &["XDELEX", "nokey", "IDS", "2", "x", "y"]).await,
        "[:-1, :-1]"
    );
    for (args, err) in [
        (
            vec!["XDELEX", "s", "IDS", "0", "1-0"],
            "-ERR Number of IDs must be a positive integer",
        ),
        (
            vec!["XDELEX", "s", "IDS", "x", "1-0"],
            "-ERR Number of IDs must be a positive integer",
        ),
        (
            vec!["XDELEX", "s", "IDS", "3", "1-0"],
            "-ERR The `numids` parameter must match the number of arguments",
        ),
        (
            vec!["XDELEX", "s", "ACKED", "DELREF", "IDS", "1", "1-0"],
            "-ERR syntax error",
        ),
        (
            vec!["XDELEX", "s", "IDS", "1", "1-0", "extra"],
            "-ERR syntax error",
        ),
        (
            vec!["XDELEX", "s", "IDS", "1", "bad"],
            "-ERR Invalid stream ID specified as stream command argument",
        ),
        (
            vec!["XDELEX", "s", "DELREF"],
            "-ERR wrong number of arguments for 'xdelex' command",
        ),
    ] {
        assert_eq!(r(&mut c, &args).await, err, "{args:?}");
    }
    c.cmd(&["SET", "str", "v"]).await;
    assert!(r(&mut c, &["XDELEX", "str", "IDS", "1", "1-0"])
        .await
        .starts_with("-WRONGTYPE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xackdel_acknowledges_then_deletes_what_no_other_group_needs() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 2).await;
    c.cmd(&["XGROUP", "CREATE", "s", "g2", "0"]).await;
    for g in ["g", "g2"] {
        c.cmd(&["XREADGROUP", "GROUP", g, "c", "STREAMS", "s", ">"])
            .await;
    }
    assert_eq!(
        r(
            &mut c,
            &["XACKDEL", "s", "g", "ACKED", "IDS", "2", "1-0", "2-0"]
        )
        .await,
        "[:2, :2]",
        "acknowledged in g, but g2 still has them pending"
    );
    assert_eq!(
        r(
            &mut c,
            &["XACKDEL", "s", "g2", "ACKED", "IDS", "2", "1-0", "2-0"]
        )
        .await,
        "[:1, :1]"
    );
    assert_eq!(r(&mut c, &["XLEN", "s"]).await, ":0");
    assert_eq!(
        r(&mut c, &["XACKDEL", "s", "g", "IDS", "1", "1-0"]).await,
        "[:-1]",
        "no longer pending"
    );
    // KEEPREF deletes from the stream and leaves the other group's entry dangling; that
    // entry can still be acknowledged and "deleted" (it is already gone).
    c.cmd(&["XADD", "s", "3-0", "f", "v"]).await;
    for g in ["g", "g2"] {
        c.cmd(&["XREADGROUP", "GROUP", g, "c", "STREAMS", "s", ">"])
            .await;
    }
    assert_eq!(
        r(&mut c, &["XACKDEL", "s", "g", "IDS", "1", "3-0"]).await,
        "[:1]"
    );
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g2"]).await,
        "[:1, \"3-0\", \"3-0\", [[\"c\", \"1\"]]]"
    );
    assert_eq!(
        r(&mut c, &["XACKDEL", "s", "g2", "IDS", "1", "3-0"]).await,
        "[:1]"
    );
    // DELREF removes the entry from every group's PEL.
    c.cmd(&["XADD", "s", "4-0", "f", "v"]).await;
    for g in ["g", "g2"] {
        c.cmd(&["XREADGROUP", "GROUP", g, "c", "STREAMS", "s", ">"])
            .await;
    }
    assert_eq!(
        r(&mut c, &["XACKDEL", "s", "g", "DELREF", "IDS", "1", "4-0"]).await,
        "[:1]"
    );
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g2"]).await,
        "[:0, (nil bulk), (nil bulk), (nil array)]"
    );
    assert_eq!(
        r(&mut c, &["XACKDEL", "s", "nogroup", "IDS", "1", "junk"]).await,
        "[:-1]"
    );
    assert_eq!(
        r(&mut c, &["XACKDEL", "s", "g"]).await,
        "-ERR wrong number of arguments for 'xackdel' command"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trimming_with_acked_and_delref_respects_consumer_groups() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 5).await;
    // The group has read nothing: ACKED trims nothing.
    assert_eq!(
        r(
            &mut c,
            &["XADD", "s", "MAXLEN", "=", "1", "ACKED", "6-0", "f", "v"]
        )
        .await,
        "\"6-0\""
    );
    assert_eq!(r(&mut c, &["XLEN", "s"]).await, ":6");
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "COUNT",
        "5",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    c.cmd(&["XACK", "s", "g", "1-0", "2-0", "4-0"]).await;
    // 3-0 and 5-0 are still pending: ACKED leaves holes where they are.
    assert_eq!(
        r(&mut c, &["XTRIM", "s", "MINID", "~", "6-0", "ACKED"]).await,
        ":3"
    );
    assert_eq!(
        r(&mut c, &["XRANGE", "s", "-", "+"]).await,
        "[[\"3-0\", [\"f\", \"v3\"]], [\"5-0\", [\"f\", \"v5\"]], [\"6-0\", [\"f\", \"v\"]]]"
    );
    // DELREF trims them and clears the PEL.
    assert_eq!(
        r(&mut c, &["XTRIM", "s", "MAXLEN", "1", "DELREF"]).await,
        ":2"
    );
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g"]).await,
        "[:0, (nil bulk), (nil bulk), (nil array)]"
    );
    // A second condition is taken for the ID by XADD, a syntax error for XTRIM.
    assert_eq!(
        r(&mut c, &["XADD", "s", "ACKED", "DELREF", "*", "f", "v"]).await,
        "-ERR Invalid stream ID specified as stream command argument"
    );
    assert_eq!(
        r(&mut c, &["XTRIM", "s", "MAXLEN", "1", "ACKED", "KEEPREF"]).await,
        "-ERR syntax error"
    );
    assert_eq!(
        r(&mut c, &["XTRIM", "s", "KEEPREF", "MAXLEN", "0"]).await,
        ":1",
        "options in any order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producers_get_their_first_entry_back() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let first = c
        .cmd(&["XADD", "s", "IDMP", "p1", "order-17", "*", "f", "v"])
        .await;
    let again = c
        .cmd(&["XADD", "s", "IDMP", "p1", "order-17", "*", "f", "other"])
        .await;
    assert_eq!(
        first, again,
        "a retry is answered with the first entry's ID"
    );
    assert_eq!(r(&mut c, &["XLEN", "s"]).await, ":1");
    // Another producer may use the same ID.
    let other = c
        .cmd(&["XADD", "s", "IDMP", "p2", "order-17", "*", "f", "v"])
        .await;
    assert_ne!(other, first);
    // IDMPAUTO: the same pairs in another order are the same event.
    let a = c
        .cmd(&["XADD", "s", "IDMPAUTO", "p3", "*", "a", "1", "b", "2"])
        .await;
    let b = c
        .cmd(&["XADD", "s", "IDMPAUTO", "p3", "*", "b", "2", "a", "1"])
        .await;
    assert_eq!(a, b);
    let info = c.cmd(&["XINFO", "STREAM", "s"]).await;
    for (name, want) in [
        ("length", 3),
        ("idmp-duration", 100),
        ("idmp-maxsize", 100),
        ("pids-tracked", 3),
        ("iids-tracked", 3),
        ("iids-added", 3),
        ("iids-duplicates", 2),
    ] {
        assert_eq!(field(&info, name), Resp::Int(want), "{name}");
    }
    // The oldest ID of a producer goes past IDMP-MAXSIZE; any change forgets them all.
    assert_eq!(
        r(&mut c, &["XCFGSET", "s", "IDMP-MAXSIZE", "2"]).await,
        "+OK"
    );
    let info = c.cmd(&["XINFO", "STREAM", "s"]).await;
    assert_eq!(field(&info, "iids-tracked"), Resp::Int(0));
    assert_eq!(field(&info, "iids-added"), Resp::Int(3), "lifetime counter");
    for iid in ["x1", "x2", "x3"] {
        c.cmd(&["XADD", "s", "IDMP", "p", iid, "*", "f", iid]).await;
    }
    assert_eq!(r(&mut c, &["XLEN", "s"]).await, ":6");
    c.cmd(&["XADD", "s", "IDMP", "p", "x1", "*", "f", "x1"])
        .await;
    assert_eq!(
        r(&mut c, &["XLEN", "s"]).await,
        ":7",
        "x1 was evicted, so this is new"
    );
    // XIDMPRECORD marks an existing entry as a producer's.
    let last = c.cmd(&["XADD", "s", "*", "f", "plain"]).await.text();
    assert_eq!(
        r(&mut c, &["XIDMPRECORD", "s", "p9", "r1", &last]).await,
        "+OK"
    );
    assert_eq!(
        c.cmd(&["XADD", "s", "IDMP", "p9", "r1", "*", "f", "v"])
            .await
            .text(),
        last
    );
    assert_eq!(
        r(&mut c, &["XIDMPRECORD", "s", "p9", "r1", "1-1"]).await,
        "-ERR No such message in stream"
    );
    // NOMKSTREAM on a missing key answers null before any idempotency work.
    assert_eq!(
        r(
            &mut c,
            &[
                "XADD",
                "nokey",
                "NOMKSTREAM",
                "IDMP",
                "p",
                "i",
                "*",
                "f",
                "v"
            ]
        )
        .await,
        "(nil bulk)"
    );
    for (args, err) in [
        (
            vec!["XADD", "s", "IDMP", "p", "i", "5-0", "f", "v"],
            "-ERR syntax error, IDMP/IDMPAUTO can be used only with auto-generated IDs",
        ),
        (
            vec![
                "XADD", "s", "IDMP", "p", "i", "IDMPAUTO", "p", "*", "f", "v",
            ],
            "-ERR syntax error, IDMP/IDMPAUTO specified multiple times",
        ),
        (
            vec!["XADD", "s", "IDMP", "", "i", "*", "f", "v"],
            "-ERR syntax error, IDMP requires a non-empty producer ID",
        ),
        (
            vec!["XADD", "s", "IDMP", "p", "", "*", "f", "v"],
            "-ERR syntax error, IDMP requires a non-empty idempotent ID",
        ),
        (
            vec!["XADD", "s", "IDMPAUTO", "", "*", "f", "v"],
            "-ERR syntax error, IDMPAUTO requires a non-empty producer ID",
        ),
        (
            vec!["XCFGSET", "nokey", "IDMP-MAXSIZE", "5"],
            "-ERR no such key",
        ),
        (
            vec!["XCFGSET", "s"],
            "-ERR At least one parameter must be specified",
        ),
        (
            vec!["XCFGSET", "s", "IDMP-DURATION", "0"],
            "-ERR IDMP-DURATION must be between 1 and 86400 seconds",
        ),
        (
            vec!["XCFGSET", "s", "IDMP-MAXSIZE", "10001"],
            "-ERR IDMP-MAXSIZE must be between 1 and 10000 entries",
        ),
        (
            vec!["XCFGSET", "s", "IDMP-MAXSIZE", "5", "IDMP-MAXSIZE", "6"],
            "-ERR IDMP-MAXSIZE specified multiple times",
        ),
        (
            vec!["XCFGSET", "s", "IDMP-MAXSIZE", "x"],
            "-ERR value is not an integer or out of range",
        ),
        (vec!["XCFGSET", "s", "BOGUS", "1"], "-ERR syntax error"),
    ] {
        assert_eq!(r(&mut c, &args).await, err, "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_ids_expire_after_the_configured_duration() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    assert_eq!(
        r(&mut c, &["CONFIG", "SET", "stream-idmp-duration", "1"]).await,
        "+OK"
    );
    let first = c.cmd(&["XADD", "s", "IDMP", "p", "i", "*", "f", "v"]).await;
    assert_eq!(
        field(&c.cmd(&["XINFO", "STREAM", "s"]).await, "idmp-duration"),
        Resp::Int(1),
        "new streams take the configured duration"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let info = c.cmd(&["XINFO", "STREAM", "s"]).await;
    assert_eq!(field(&info, "pids-tracked"), Resp::Int(0));
    let again = c.cmd(&["XADD", "s", "IDMP", "p", "i", "*", "f", "v"]).await;
    assert_ne!(first, again, "forgotten after the duration: a new entry");
    assert_eq!(
        r(&mut c, &["CONFIG", "SET", "stream-idmp-duration", "0"]).await,
        "-ERR CONFIG SET failed (possibly related to argument 'stream-idmp-duration') - argument must be between 1 and 86400 inclusive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xreadgroup_claim_serves_idle_pending_entries_before_new_ones() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 2).await;
    c.cmd(&["XREADGROUP", "GROUP", "g", "crashed", "STREAMS", "s", ">"])
        .await;
    c.cmd(&["XADD", "s", "3-0", "f", "v3"]).await;
    // Not idle long enough yet: only the new entry, in the four-element form.
    assert_eq!(
        r(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "w",
                "CLAIM",
                "60000",
                "STREAMS",
                "s",
                ">"
            ]
        )
        .await,
        "[[\"s\", [[\"3-0\", [\"f\", \"v3\"], :0, :0]]]]"
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    c.cmd(&["XADD", "s", "4-0", "f", "v4"]).await;
    let got = c
        .cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "w2",
            "COUNT",
            "4",
            "CLAIM",
            "100",
            "STREAMS",
            "s",
            ">",
        ])
        .await;
    let entries = got.items()[0].items()[1].items();
    let ids: Vec<String> = entries.iter().map(|e| e.items()[0].text()).collect();
    assert_eq!(
        ids,
        vec!["1-0", "2-0", "3-0", "4-0"],
        "idle pending entries first, longest idle first, then new; COUNT covers both"
    );
    for claimed in &entries[..3] {
        let e = claimed.items();
        assert!(
            matches!(e[2], Resp::Int(idle) if idle >= 100),
            "{}",
            render(claimed)
        );
        assert_eq!(e[3], Resp::Int(1), "delivered once before");
    }
    assert_eq!(render(&entries[3]), "[\"4-0\", [\"f\", \"v4\"], :0, :0]");
    let pending = c
        .cmd(&["XPENDING", "s", "g", "-", "+", "10", "w2"])
        .await
        .items();
    assert_eq!(pending.len(), 4);
    // COUNT 1 with a fresh entry pending: nothing idle enough, the one new entry.
    c.cmd(&["XADD", "s", "5-0", "f", "v5"]).await;
    assert_eq!(
        r(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "w3",
                "COUNT",
                "1",
                "CLAIM",
                "100",
                "STREAMS",
                "s",
                ">"
            ]
        )
        .await,
        "[[\"s\", [[\"5-0\", [\"f\", \"v5\"], :0, :0]]]]"
    );
    assert_eq!(pending[0].items()[3], Resp::Int(2), "the claim counted");
    // An explicit ID reads history; CLAIM is ignored there.
    assert_eq!(
        r(&mut c, &["XREADGROUP", "GROUP", "g", "w2", "CLAIM", "0", "STREAMS", "s", "0"]).await,
        "[[\"s\", [[\"1-0\", [\"f\", \"v1\"]], [\"2-0\", [\"f\", \"v2\"]], [\"3-0\", [\"f\", \"v3\"]], [\"4-0\", [\"f\", \"v4\"]]]]]"
    );
    for (args, err) in [
        (
            vec![
                "XREADGROUP",
                "GROUP",
                "g",
                "w",
                "CLAIM",
                "x",
                "STREAMS",
                "s",
                ">",
            ],
            "-ERR min-idle-time is not an integer or out of range",
        ),
        (
            vec![
                "XREADGROUP",
                "GROUP",
                "g",
                "w",
                "CLAIM",
                "-1",
                "STREAMS",
                "s",
                ">",
            ],
            "-ERR min-idle-time must be a positive integer",
        ),
        (
            vec!["XREAD", "CLAIM", "10", "STREAMS", "s", "0"],
            "-ERR The CLAIM option is only supported by XREADGROUP. You called XREAD instead.",
        ),
    ] {
        assert_eq!(r(&mut c, &args).await, err, "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_claim_reader_wakes_when_an_entry_becomes_idle_or_times_out() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 1).await;
    c.cmd(&["XREADGROUP", "GROUP", "g", "crashed", "STREAMS", "s", ">"])
        .await;
    // Nothing new arrives: the pending entry becoming 300 ms idle is what wakes the reader.
    let mut w = RawConn::connect(server.addr()).await;
    let started = std::time::Instant::now();
    let got = w
        .cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "w",
            "BLOCK",
            "0",
            "CLAIM",
            "300",
            "STREAMS",
            "s",
            ">",
        ])
        .await;
    assert!(started.elapsed() >= Duration::from_millis(250), "it waited");
    assert_eq!(
        got.items()[0].items()[1].items()[0].items()[0],
        Resp::bulk("1-0")
    );
    // With nothing pending and nothing new, BLOCK times out with a null.
    c.cmd(&["XACK", "s", "g", "1-0"]).await;
    assert_eq!(
        w.cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "w",
            "BLOCK",
            "100",
            "CLAIM",
            "50",
            "STREAMS",
            "s",
            ">"
        ])
        .await,
        Resp::NullArray
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xnack_releases_entries_for_the_next_consumer() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 3).await;
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"])
        .await;
    c.cmd(&["XCLAIM", "s", "g", "alice", "0", "2-0"]).await; // 2-0 delivered twice
    assert_eq!(
        r(&mut c, &["XNACK", "s", "g", "SILENT", "IDS", "1", "2-0"]).await,
        ":1"
    );
    assert_eq!(
        r(&mut c, &["XNACK", "s", "g", "FAIL", "IDS", "1", "1-0"]).await,
        ":1"
    );
    let pending = c.cmd(&["XPENDING", "s", "g", "-", "+", "10"]).await.items();
    assert_eq!(
        render(&Resp::Array(pending[..2].to_vec())),
        "[[\"1-0\", \"\", :-1, :1], [\"2-0\", \"\", :-1, :1]]",
        "released entries are unowned and have no idle time"
    );
    assert_eq!(pending[2].items()[1], Resp::bulk("alice"));
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g"]).await,
        "[:3, \"1-0\", \"3-0\", [[\"alice\", \"1\"]]]"
    );
    // The next CLAIM reader takes them first, in the order they were released.
    let got = c
        .cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "CLAIM",
            "3600000",
            "STREAMS",
            "s",
            ">",
        ])
        .await;
    let ids: Vec<String> = got.items()[0].items()[1]
        .items()
        .iter()
        .map(|e| e.items()[0].text())
        .collect();
    assert_eq!(ids, vec!["2-0", "1-0"]);
    // A released entry has no delivery time: its idle time is -1 here too, as in XPENDING
    // (it was the current Unix time in ms: a delivery time of 0 subtracted from now).
    let idles: Vec<Resp> = got.items()[0].items()[1]
        .items()
        .iter()
        .map(|e| e.items()[2].clone())
        .collect();
    assert_eq!(idles, vec![Resp::Int(-1), Resp::Int(-1)]);
    // FATAL marks an entry as never to be retried; RETRYCOUNT sets the count outright;
    // FORCE adds an entry that was not pending.
    assert_eq!(
        r(&mut c, &["XNACK", "s", "g", "FATAL", "IDS", "1", "3-0"]).await,
        ":1"
    );
    assert_eq!(
        r(
            &mut c,
            &[
                "XNACK",
                "s",
                "g",
                "FAIL",
                "IDS",
                "2",
                "1-0",
                "9-0",
                "RETRYCOUNT",
                "7"
            ]
        )
        .await,
        ":1"
    );
    c.cmd(&["XACK", "s", "g", "2-0"]).await;
    assert_eq!(
        r(
            &mut c,
            &["XNACK", "s", "g", "FAIL", "FORCE", "IDS", "2", "2-0", "9-0"]
        )
        .await,
        ":1",
        "2-0 exists and is added; 9-0 does not exist"
    );
    assert_eq!(
        r(&mut c, &["XPENDING", "s", "g", "-", "+", "10"]).await,
        "[[\"1-0\", \"\", :-1, :7], [\"2-0\", \"\", :-1, :0], [\"3-0\", \"\", :-1, :9223372036854775807]]"
    );
    let full = c.cmd(&["XINFO", "STREAM", "s", "FULL"]).await;
    let group = field(&full, "groups").items()[0].clone();
    assert_eq!(field(&group, "nacked-count"), Resp::Int(3));
    // XAUTOCLAIM takes released entries whatever its min-idle-time.
    let auto = c
        .cmd(&["XAUTOCLAIM", "s", "g", "carol", "3600000", "0", "JUSTID"])
        .await;
    assert_eq!(auto.items()[1].items().len(), 3);
    // A FATAL count stays at its ceiling when the entry is claimed again (regression: it
    // wrapped to a negative count).
    c.cmd(&["XCLAIM", "s", "g", "dave", "0", "3-0"]).await;
    let p = c
        .cmd(&["XPENDING", "s", "g", "3-0", "3-0", "1"])
        .await
        .items();
    assert_eq!(p[0].items()[3], Resp::Int(i64::MAX));
    for (args, err) in [
        (
            vec!["XNACK", "s", "nogroup", "FAIL", "IDS", "1", "1-0"],
            "-NOGROUP No such key 's' or consumer group 'nogroup'",
        ),
        (
            vec!["XNACK", "s", "g", "MAYBE", "IDS", "1", "1-0"],
            "-ERR mode must be SILENT, FAIL, or FATAL",
        ),
        (
            vec!["XNACK", "s", "g", "FAIL", "FORCE", "FORCE", "FORCE"],
            "-ERR syntax error, expected IDS keyword",
        ),
        (
            vec!["XNACK", "s", "g", "FAIL", "IDS", "0", "1-0"],
            "-ERR numids must be a positive integer",
        ),
        (
            vec!["XNACK", "s", "g", "FAIL", "IDS", "5", "1-0"],
            "-ERR number of IDs doesn't match numids",
        ),
        (
            vec![
                "XNACK",
                "s",
                "g",
                "FAIL",
                "IDS",
                "1",
                "1-0",
                "RETRYCOUNT",
                "-1",
            ],
            "-ERR Invalid RETRYCOUNT value, must be >= 0",
        ),
        (
            vec!["XNACK", "s", "g", "FAIL", "IDS", "1", "1-0", "BOGUS"],
            "-ERR Unrecognized XNACK option 'BOGUS'",
        ),
        (
            vec!["XNACK", "s", "g", "FAIL", "IDS", "1", "bad"],
            "-ERR Invalid stream ID specified as stream command argument",
        ),
    ] {
        assert_eq!(r(&mut c, &args).await, err, "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xnack_wakes_a_blocked_claim_reader() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 1).await;
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"])
        .await;
    let mut w = RawConn::connect(server.addr()).await;
    w.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "BLOCK",
        "0",
        "CLAIM",
        "3600000",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    wait_blocked(&mut c, 1).await;
    assert!(w.read_timeout(Duration::from_millis(100)).await.is_none());
    c.cmd(&["XNACK", "s", "g", "FAIL", "IDS", "1", "1-0"]).await;
    let got = w.read().await;
    assert_eq!(
        got.items()[0].items()[1].items()[0].items()[0],
        Resp::bulk("1-0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_reader_blocked_on_an_empty_pel_still_finds_entries_pending_later() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    stream_with_group(&mut c, 1).await;
    // The group has read 1-0 (acknowledged), so nothing is new and nothing is pending.
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"])
        .await;
    c.cmd(&["XACK", "s", "g", "1-0"]).await;
    let mut w = RawConn::connect(server.addr()).await;
    w.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "BLOCK",
        "5000",
        "CLAIM",
        "100",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    wait_blocked(&mut c, 1).await;
    // XCLAIM FORCE makes 1-0 pending again without writing to the stream, so no key event
    // wakes the reader: its own recheck (regression: none was scheduled) must find it.
    c.cmd(&["XCLAIM", "s", "g", "alice", "0", "1-0", "FORCE", "JUSTID"])
        .await;
    let got = w
        .read_timeout(Duration::from_secs(3))
        .await
        .expect("served before its timeout");
    assert_eq!(
        got.items()[0].items()[1].items()[0].items()[0],
        Resp::bulk("1-0")
    );
}
