//! A client blocked on a stream while the stream goes away: by DEL, UNLINK, SET (another type),
//! RENAME away, RENAME of another stream onto it, FLUSHDB, FLUSHALL, expiry, or (for a group
//! reader) XGROUP DESTROY. Redis 7.0 answers a blocked `XREADGROUP ... >` with an error naming
//! what is gone (UNBLOCKED the key, NOGROUP the group) — or serves it, when the stream renamed
//! onto its key has its group with unread entries — and keeps a plain `XREAD ... $` blocked
//! until an XADD gives it an entry after the ID it waits for.
//!
//! Each scenario runs on Relay and, when redis-server is installed, on the 7.0 oracle; both
//! must see the expected replies, so the expectation is Redis's and Relay matches it. Every
//! read has a deadline: a missing wake-up fails the test (`never answered`) instead of hanging
//! it, and a reader that should still be blocked is watched for a while first.

mod common;

use common::{oracle, wait_blocked, RawConn, Resp};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a reader that must be answered may take (expiry needs an active-expiry pass).
const WAKE: Duration = Duration::from_secs(5);
/// How long a reader that must stay blocked is watched.
const QUIET: Duration = Duration::from_millis(300);

/// A stream `k` with one entry (5-0) and a group `g` whose last delivered ID is 5-0.
const STREAM_WITH_GROUP: &[&[&str]] = &[
    &["XADD", "k", "5-0", "f", "v"],
    &["XGROUP", "CREATE", "k", "g", "$"],
];
const XREADGROUP: &[&str] = &[
    "XREADGROUP",
    "GROUP",
    "g",
    "c",
    "BLOCK",
    "0",
    "STREAMS",
    "k",
    ">",
];
const XREAD: &[&str] = &["XREAD", "BLOCK", "0", "STREAMS", "k", "$"];

/// What a blocked reader saw.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Its reply after the key went away; `None` while it is still blocked.
    on_change: Option<Resp>,
    /// If it was still blocked: its reply after the follow-up commands (`None`: never answered).
    on_follow_up: Option<Resp>,
}

struct Scenario<'a> {
    setup: &'a [&'a [&'a str]],
    block: &'a [&'a str],
    /// The commands that make the key go away.
    change: &'a [&'a [&'a str]],
    /// Run when the reader is still blocked after `change`; they must answer it.
    follow_up: &'a [&'a [&'a str]],
}

async fn admin_cmd(admin: &mut RawConn, args: &[&str]) {
    let reply = admin.cmd(args).await;
    assert!(
        !matches!(reply, Resp::Error(_)),
        "{args:?} failed: {reply:?}"
    );
}

/// Run `s` against the server at `addr`; `answered`: whether the change must answer the reader
/// (it is waited for up to WAKE) or leave it blocked (it is watched for QUIET).
async fn observe(addr: SocketAddr, s: &Scenario<'_>, answered: bool) -> Seen {
    let mut admin = RawConn::connect(addr).await;
    admin_cmd(&mut admin, &["FLUSHALL"]).await;
    for c in s.setup {
        admin_cmd(&mut admin, c).await;
    }
    let mut reader = RawConn::connect(addr).await;
    reader.send(s.block).await;
    wait_blocked(&mut admin, 1).await;
    for c in s.change {
        admin_cmd(&mut admin, c).await;
    }
    let wait = if answered { WAKE } else { QUIET };
    let on_change = reader.read_timeout(wait).await;
    let mut on_follow_up = None;
    if on_change.is_none() {
        for c in s.follow_up {
            admin_cmd(&mut admin, c).await;
        }
        on_follow_up = reader.read_timeout(WAKE).await;
    }
    // Whatever happened, the reader is no longer blocked and its connection still works.
    if on_change.is_some() || on_follow_up.is_some() {
        wait_blocked(&mut admin, 0).await;
        assert_eq!(reader.cmd(&["PING"]).await, Resp::Simple("PONG".into()));
    }
    Seen {
        on_change,
        on_follow_up,
    }
}

/// Relay sees `want`; so does redis-server 7.0 when it is installed (the check that `want` is
/// Redis's behaviour).
async fn check(s: Scenario<'_>, want: Seen) {
    let answered = want.on_change.is_some();
    let server = common::start().await;
    let relay = observe(server.addr(), &s, answered).await;
    if let Some(redis) = oracle("blocking_wakeups").await {
        let redis_seen = observe(redis.addr, &s, answered).await;
        assert_eq!(
            redis_seen, want,
            "redis-server 7.0 does not do what the test expects"
        );
    }
    match (&relay.on_change, &want.on_change) {
        (None, Some(w)) => {
            panic!("the blocked reader was never answered within {WAKE:?} (no wake-up); expected {w:?}")
        }
        (Some(got), None) => panic!("the reader should still be blocked, but got {got:?}"),
        _ => {}
    }
    if let (None, None, Some(w)) = (&relay.on_change, &relay.on_follow_up, &want.on_follow_up) {
        panic!("the blocked reader was never answered after the follow-up (no wake-up); expected {w:?}");
    }
    assert_eq!(relay, want, "Relay differs from redis-server 7.0");
}

fn gone() -> Seen {
    Seen {
        on_change: Some(Resp::Error(
            "UNBLOCKED the stream key no longer exists".into(),
        )),
        on_follow_up: None,
    }
}

fn group_gone() -> Seen {
    Seen {
        on_change: Some(Resp::Error(
            "NOGROUP the consumer group this client was blocked on no longer exists".into(),
        )),
        on_follow_up: None,
    }
}

/// `[[k, [[id, [f, v]]]]]`: one entry of `k`, as XREAD / XREADGROUP reply in RESP2.
fn entry(id: &str, value: &str) -> Resp {
    Resp::Array(vec![Resp::Array(vec![
        Resp::bulk("k"),
        Resp::Array(vec![Resp::Array(vec![
            Resp::bulk(id),
            Resp::Array(vec![Resp::bulk("f"), Resp::bulk(value)]),
        ])]),
    ])])
}

fn served_now(id: &str, value: &str) -> Seen {
    Seen {
        on_change: Some(entry(id, value)),
        on_follow_up: None,
    }
}

fn served_later(id: &str, value: &str) -> Seen {
    Seen {
        on_change: None,
        on_follow_up: Some(entry(id, value)),
    }
}

/// A blocked XREADGROUP whose key goes by `change`.
fn group_reader(change: &'static [&'static [&'static str]]) -> Scenario<'static> {
    Scenario {
        setup: STREAM_WITH_GROUP,
        block: XREADGROUP,
        change,
        follow_up: &[],
    }
}

/// A blocked XREAD whose key goes by `change`; it stays blocked until `follow_up`.
fn plain_reader(
    change: &'static [&'static [&'static str]],
    follow_up: &'static [&'static [&'static str]],
) -> Scenario<'static> {
    Scenario {
        setup: STREAM_WITH_GROUP,
        block: XREAD,
        change,
        follow_up,
    }
}

const XADD_9: &[&[&str]] = &[&["XADD", "k", "9-0", "f", "w"]];

// --- XREADGROUP GROUP g c BLOCK 0 STREAMS k > ---------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_unblocked_when_its_stream_is_deleted() {
    check(group_reader(&[&["DEL", "k"]]), gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_unblocked_when_its_stream_is_unlinked() {
    check(group_reader(&[&["UNLINK", "k"]]), gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_unblocked_when_its_key_becomes_a_string() {
    check(group_reader(&[&["SET", "k", "now-a-string"]]), gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_unblocked_when_its_stream_is_renamed_away() {
    check(group_reader(&[&["RENAME", "k", "elsewhere"]]), gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_gets_nogroup_when_a_stream_without_its_group_is_renamed_onto_it() {
    let s = Scenario {
        setup: &[
            &["XADD", "k", "5-0", "f", "v"],
            &["XGROUP", "CREATE", "k", "g", "$"],
            &["XADD", "other", "7-0", "f", "v"],
        ],
        ..group_reader(&[&["RENAME", "other", "k"]])
    };
    check(s, group_gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_waits_on_when_a_stream_with_its_group_and_nothing_new_is_renamed_onto_it(
) {
    let s = Scenario {
        setup: &[
            &["XADD", "k", "5-0", "f", "v"],
            &["XGROUP", "CREATE", "k", "g", "$"],
            &["XADD", "other", "7-0", "f", "v"],
            &["XGROUP", "CREATE", "other", "g", "$"],
        ],
        follow_up: XADD_9,
        ..group_reader(&[&["RENAME", "other", "k"]])
    };
    check(s, served_later("9-0", "w")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_served_when_a_stream_with_unread_entries_for_its_group_is_renamed_onto_it(
) {
    let s = Scenario {
        setup: &[
            &["XADD", "k", "5-0", "f", "v"],
            &["XGROUP", "CREATE", "k", "g", "$"],
            &["XADD", "other", "7-0", "f", "v"],
            &["XGROUP", "CREATE", "other", "g", "0"],
        ],
        ..group_reader(&[&["RENAME", "other", "k"]])
    };
    check(s, served_now("7-0", "v")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_unblocked_by_flushdb() {
    check(group_reader(&[&["FLUSHDB"]]), gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_unblocked_by_flushall() {
    check(group_reader(&[&["FLUSHALL"]]), gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_is_unblocked_when_its_stream_expires() {
    // Nobody touches the key after PEXPIRE: only the active-expiry pass can wake the reader.
    check(group_reader(&[&["PEXPIRE", "k", "50"]]), gone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_gets_nogroup_when_its_group_is_destroyed() {
    check(
        group_reader(&[&["XGROUP", "DESTROY", "k", "g"]]),
        group_gone(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xreadgroup_in_another_database_is_not_touched_by_flushdb() {
    let s = Scenario {
        change: &[&["SELECT", "1"], &["FLUSHDB"]],
        follow_up: &[&["SELECT", "0"], &["XADD", "k", "9-0", "f", "w"]],
        ..group_reader(&[])
    };
    check(s, served_later("9-0", "w")).await;
}

// --- XREAD BLOCK 0 STREAMS k $ ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_stays_blocked_when_its_stream_is_deleted_until_an_xadd() {
    check(
        plain_reader(&[&["DEL", "k"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_stays_blocked_when_its_stream_is_unlinked_until_an_xadd() {
    check(
        plain_reader(&[&["UNLINK", "k"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

// Redis 7.0 keeps a plain XREAD blocked when its key becomes a string (only XREADGROUP is
// told its stream is gone). Relay answered WRONGTYPE until 2026-12-04 (regression test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_stays_blocked_while_its_key_is_a_string() {
    let s = plain_reader(
        &[&["SET", "k", "now-a-string"]],
        &[&["DEL", "k"], &["XADD", "k", "9-0", "f", "w"]],
    );
    check(s, served_later("9-0", "w")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_stays_blocked_when_its_stream_is_renamed_away_until_an_xadd() {
    check(
        plain_reader(&[&["RENAME", "k", "elsewhere"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_is_served_by_a_stream_with_newer_entries_renamed_onto_its_key() {
    let s = Scenario {
        setup: &[
            &["XADD", "k", "5-0", "f", "v"],
            &["XADD", "other", "7-0", "f", "v"],
        ],
        ..plain_reader(&[&["RENAME", "other", "k"]], &[])
    };
    check(s, served_now("7-0", "v")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_waits_on_when_a_stream_with_only_older_entries_is_renamed_onto_its_key() {
    let s = Scenario {
        setup: &[
            &["XADD", "k", "5-0", "f", "v"],
            &["XADD", "other", "3-0", "f", "v"],
        ],
        ..plain_reader(&[&["RENAME", "other", "k"]], XADD_9)
    };
    check(s, served_later("9-0", "w")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_stays_blocked_through_flushdb_until_an_xadd() {
    check(
        plain_reader(&[&["FLUSHDB"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_stays_blocked_through_flushall_until_an_xadd() {
    check(
        plain_reader(&[&["FLUSHALL"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_stays_blocked_when_its_stream_expires_until_an_xadd() {
    // QUIET (300 ms) outlasts the 50 ms deadline and a few active-expiry passes.
    check(
        plain_reader(&[&["PEXPIRE", "k", "50"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_is_not_disturbed_by_xgroup_destroy() {
    check(
        plain_reader(&[&["XGROUP", "DESTROY", "k", "g"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_xread_keeps_its_id_across_a_delete_so_an_older_id_does_not_serve_it() {
    // `$` was 5-0 when it blocked: a re-created stream's 1-0 is not after it, 9-0 is.
    check(
        plain_reader(&[&["DEL", "k"], &["XADD", "k", "1-0", "f", "old"]], XADD_9),
        served_later("9-0", "w"),
    )
    .await;
}

/// With several threads, an XADD landing between a reader's look at its key and its
/// registration as a waiter used to go unnoticed (24 of 1,500 such reads timed out with
/// --io-threads 4): the reader now looks once more right after registering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_racing_the_registration_of_a_blocked_read_is_not_lost() {
    let server = common::spawn_binary(&["--io-threads", "4"]).await;
    let mut reader = RawConn::connect(server.addr).await;
    let mut writer = RawConn::connect(server.addr).await;
    let mut missed = 0;
    for i in 0..1500 {
        let key = format!("race-{i}");
        reader
            .send(&["XREAD", "BLOCK", "2000", "STREAMS", &key, "0-0"])
            .await;
        writer.cmd(&["XADD", &key, "*", "f", "v"]).await;
        match reader.read_timeout(Duration::from_secs(5)).await {
            Some(Resp::Array(_)) | Some(Resp::Map(_)) => {}
            other => {
                missed += 1;
                assert!(other.is_some(), "no reply at all for {key}");
            }
        }
    }
    assert_eq!(
        missed, 0,
        "blocked reads that missed an XADD made right away"
    );
}
