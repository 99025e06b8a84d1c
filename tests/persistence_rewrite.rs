//! AOF compaction with the built relay-server: a rewrite under load neither loses nor
//! doubles a write; a SIGKILL at any moment of a rewrite leaves files that load to the
//! acknowledged state; the automatic rewrite; BGSAVE / SAVE / LASTSAVE.

mod common;

use common::persist::{kill9, shutdown, start, temp_dir};
use common::{render, RawConn, Resp};
use std::path::Path;
use std::time::{Duration, Instant};

/// Everything a restart must reproduce: the stream, its groups' PELs and counters, a TTL.
async fn full_state(c: &mut RawConn) -> String {
    let entries = c.cmd(&["XRANGE", "s", "-", "+"]).await;
    let pending = c.cmd(&["XPENDING", "s", "g", "-", "+", "100000"]).await;
    // Idle times move with the clock; owners and delivery counts must not.
    let pending: Vec<String> = pending
        .items()
        .iter()
        .map(|p| {
            let p = p.items();
            format!("{} {} {}", p[0].text(), p[1].text(), p[3].text())
        })
        .collect();
    let groups = c.cmd(&["XINFO", "GROUPS", "s"]).await;
    let info = c.cmd(&["XINFO", "STREAM", "s"]).await.items();
    let counters: Vec<String> = info
        .chunks(2)
        .filter(|p| {
            [
                "length",
                "last-generated-id",
                "max-deleted-entry-id",
                "entries-added",
            ]
            .contains(&p[0].text().as_str())
        })
        .map(|p| format!("{}={}", p[0].text(), render(&p[1])))
        .collect();
    let deadline = c.cmd(&["PEXPIRETIME", "s"]).await;
    format!(
        "{}\n{pending:?}\n{}\n{counters:?}\n{}",
        render(&entries),
        render(&groups),
        render(&deadline)
    )
}

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap_or_default()
}

async fn wait_rewrite_done(c: &mut RawConn) {
    for _ in 0..1000 {
        let info = c.cmd(&["INFO", "persistence"]).await.text();
        if info
            .lines()
            .any(|l| l.trim() == "aof_rewrite_in_progress:0")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the rewrite did not finish");
}

/// A stream with groups, pending entries, a released entry, deletions and a deadline.
async fn build(c: &mut RawConn, n: usize) {
    let mut i = 0;
    while i < n {
        let mut wire = Vec::new();
        for j in i..(i + 1000).min(n) {
            let v = format!("value-{j}");
            wire.extend(common::encode_command(&[
                b"XADD".as_slice(),
                b"s",
                b"*",
                b"n",
                v.as_bytes(),
            ]));
        }
        c.send_raw(&wire).await;
        for _ in i..(i + 1000).min(n) {
            c.read().await;
        }
        i += 1000;
    }
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"]).await;
    c.cmd(&["XGROUP", "CREATE", "s", "g2", "$"]).await;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "50",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "COUNT",
        "20",
        "STREAMS",
        "s",
        ">",
    ])
    .await;
    let first = c
        .cmd(&["XRANGE", "s", "-", "+", "COUNT", "3"])
        .await
        .items();
    let (a, b, d) = (
        first[0].items()[0].text(),
        first[1].items()[0].text(),
        first[2].items()[0].text(),
    );
    c.cmd(&["XCLAIM", "s", "g", "carol", "0", &a, "RETRYCOUNT", "5"])
        .await;
    c.cmd(&["XNACK", "s", "g", "FAIL", "IDS", "1", &b]).await;
    c.cmd(&["XACK", "s", "g", &d]).await;
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "idle-one"])
        .await;
    c.cmd(&["XDEL", "s", &d]).await;
    c.cmd(&["PEXPIREAT", "s", "33177117420000"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_under_load_loses_and_doubles_nothing() {
    let dir = temp_dir("rewrite-load");
    let server = start(&dir, &["--appendfsync", "everysec"]).await;
    let mut c = RawConn::connect(server.addr).await;
    build(&mut c, 20_000).await;
    // Writers keep adding while the rewrite runs.
    let addr = server.addr;
    let writer = tokio::spawn(async move {
        let mut w = RawConn::connect(addr).await;
        let mut n = 0;
        let until = Instant::now() + Duration::from_millis(600);
        while Instant::now() < until {
            w.cmd(&["XADD", "s", "*", "n", "during"]).await;
            w.cmd(&[
                "XREADGROUP",
                "GROUP",
                "g2",
                "w",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                ">",
            ])
            .await;
            n += 1;
        }
        n
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        Resp::Simple("Background append only file rewriting started".into())
    );
    let added = writer.await.unwrap();
    wait_rewrite_done(&mut c).await;
    assert!(manifest(&dir).contains("type b"), "{}", manifest(&dir));
    let before = full_state(&mut c).await;
    assert_eq!(
        c.cmd(&["XLEN", "s"]).await,
        Resp::Int(20_000 - 1 + added as i64),
        "every write counted once"
    );
    shutdown(server).await;
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(full_state(&mut c).await, before);
    // The old files are gone once the new manifest is in place.
    let files: Vec<String> = std::fs::read_dir(dir.join("appendonlydir"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 3, "manifest, base, incremental: {files:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_at_any_moment_of_a_rewrite_leaves_files_that_load() {
    for delay_ms in [0u64, 2, 10, 40, 150] {
        let dir = temp_dir(&format!("rewrite-kill-{delay_ms}"));
        let mut server = start(&dir, &["--appendfsync", "always"]).await;
        let mut c = RawConn::connect(server.addr).await;
        build(&mut c, 30_000).await;
        c.cmd(&["BGREWRITEAOF"]).await;
        // Acknowledged writes after the cut go to the new incremental file.
        c.cmd(&["XADD", "s", "*", "n", "after-cut"]).await;
        let before = full_state(&mut c).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        kill9(&mut server);
        let server = start(&dir, &[]).await;
        let mut c = RawConn::connect(server.addr).await;
        assert_eq!(
            full_state(&mut c).await,
            before,
            "killed {delay_ms} ms into the rewrite; manifest:\n{}",
            manifest(&dir)
        );
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_compacted_automatically_once_it_has_doubled() {
    let dir = temp_dir("rewrite-auto");
    let server = start(
        &dir,
        &[
            "--auto-aof-rewrite-min-size",
            "64kb",
            "--auto-aof-rewrite-percentage",
            "100",
        ],
    )
    .await;
    let mut c = RawConn::connect(server.addr).await;
    // The same few keys overwritten: the log grows, the state does not.
    for i in 0..3000 {
        c.cmd(&["SET", &format!("k{}", i % 10), &"x".repeat(50)])
            .await;
    }
    let mut compacted = false;
    for _ in 0..300 {
        if manifest(&dir).contains("type b") {
            compacted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(compacted, "no automatic rewrite: {}", manifest(&dir));
    wait_rewrite_done(&mut c).await;
    let info = c.cmd(&["INFO", "persistence"]).await.text();
    let size = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(size("aof_base_size") < 10_000, "{info}");
    // 3,000 records of ~90 bytes were written; compaction keeps the files near the 64 KiB
    // threshold (checked every 100 ms, so writes made meanwhile may pass it a little).
    assert!(size("aof_current_size") < 128 * 1024, "{info}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgsave_save_and_lastsave_map_onto_the_aof() {
    let dir = temp_dir("rewrite-save");
    let mut server = start(&dir, &["--appendfsync", "no"]).await;
    let mut c = RawConn::connect(server.addr).await;
    let before = c.cmd(&["LASTSAVE"]).await;
    c.cmd(&["SET", "a", "1"]).await;
    // SAVE: on disk when it replies, even under appendfsync no; a SIGKILL right after loses
    // nothing.
    assert_eq!(c.cmd(&["SAVE"]).await, Resp::Simple("OK".into()));
    kill9(&mut server);
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(c.cmd(&["GET", "a"]).await, Resp::bulk("1"));
    assert_eq!(
        c.cmd(&["BGSAVE"]).await,
        Resp::Simple("Background saving started".into())
    );
    wait_rewrite_done(&mut c).await;
    let after = c.cmd(&["LASTSAVE"]).await;
    assert!(matches!((&before, &after), (Resp::Int(b), Resp::Int(a)) if a >= b));
    assert!(manifest(&dir).contains("type b"));
    assert_eq!(
        c.cmd(&["BGSAVE", "NOW"]).await,
        Resp::Error("ERR syntax error".into())
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appendonly_turned_on_at_run_time_starts_from_the_current_state() {
    let dir = temp_dir("enable");
    let mut server = start(&dir, &["--appendonly", "no"]).await;
    let mut c = RawConn::connect(server.addr).await;
    build(&mut c, 2_000).await;
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "appendonly", "yes"]).await,
        Resp::Simple("OK".into())
    );
    wait_rewrite_done(&mut c).await;
    assert!(manifest(&dir).contains("type b"), "{}", manifest(&dir));
    c.cmd(&["XADD", "s", "*", "n", "after"]).await;
    c.cmd(&["SAVE"]).await;
    let before = full_state(&mut c).await;
    kill9(&mut server);
    let mut server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(full_state(&mut c).await, before);
    // Off again: later changes are not logged.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "appendonly", "no"]).await,
        Resp::Simple("OK".into())
    );
    let info = c.cmd(&["INFO", "persistence"]).await.text();
    assert!(info.contains("aof_enabled:0"), "{info}");
    c.cmd(&["XADD", "s", "*", "n", "unlogged"]).await;
    kill9(&mut server);
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(full_state(&mut c).await, before);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
