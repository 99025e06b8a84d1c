//! Recovery as an operator meets it: a manifest that names a missing file, an empty or cut
//! manifest, files without their manifest, damage at the first byte, in the middle and at
//! the last byte (with clients knocking all the while, under io-threads 1 and 2), batches
//! swapped or repeated, and idempotency counters across a compaction. In every case the
//! start is refused — exit status 1 and a message naming the file and how to repair it —
//! and no client is ever answered with data or an acknowledgement.

mod common;

use common::persist::{incr_file, shutdown, spawn, start, temp_dir};
use common::{relay_binary, RawConn, Resp};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Start relay-server on `dir` and wait for it to exit by itself (failing the test if it is
/// still up after 30 s, as a start that neither loads nor exits would be).
fn refused_start(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["--appendonly", "yes"];
    args.extend(extra);
    let child = spawn(dir, &args);
    let out = wait_exit(child, Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused start exits with status 1: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_exit(mut child: std::process::Child, limit: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "relay-server neither loaded nor exited within {limit:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn manifest_path(dir: &Path) -> std::path::PathBuf {
    dir.join("appendonlydir/appendonly.aof.manifest")
}

/// A directory whose AOF holds `n` keys, written one fsynced batch each.
async fn dir_with_keys(name: &str, n: usize) -> std::path::PathBuf {
    let dir = temp_dir(name);
    let server = start(&dir, &["--appendfsync", "always"]).await;
    let mut c = RawConn::connect(server.addr).await;
    for i in 0..n {
        c.cmd(&["SET", &format!("k{i}"), "v"]).await;
    }
    shutdown(server).await;
    dir
}

async fn dbsize_after_start(dir: &Path) -> i64 {
    let server = start(dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    let n = match c.cmd(&["DBSIZE"]).await {
        Resp::Int(n) => n,
        other => panic!("DBSIZE: {other:?}"),
    };
    shutdown(server).await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_naming_a_missing_file_refuses_the_start() {
    let dir = dir_with_keys("recovery-missing", 5).await;
    let incr = incr_file(&dir);
    let away = dir.join("moved-away.aof");
    std::fs::rename(&incr, &away).unwrap();
    let log = refused_start(&dir, &[]);
    assert!(
        log.contains("appendonly.aof.1.incr.aof, which does not exist")
            && log.contains("restore the file from a backup"),
        "{log}"
    );
    assert!(!incr.exists(), "the refused start created nothing");
    let check = |expect_ok: bool| {
        let out = Command::new(relay_binary())
            .args(["--check-aof", manifest_path(&dir).to_str().unwrap()])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.success(), expect_ok, "{report}");
        report
    };
    assert!(check(false).contains("which does not exist"));
    // Put back, everything is there.
    std::fs::rename(&away, &incr).unwrap();
    assert!(check(true).contains("is valid"));
    assert_eq!(dbsize_after_start(&dir).await, 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_cut_or_garbled_manifest_refuses_the_start_and_touches_nothing() {
    let dir = dir_with_keys("recovery-manifest", 5).await;
    let good = std::fs::read(manifest_path(&dir)).unwrap();
    let incr_before = std::fs::read(incr_file(&dir)).unwrap();
    let cut = &good[..good.len() - 3];
    for (text, expect) in [
        (&b""[..], "Found an empty AOF manifest"),
        (cut, "cut off"),
        (
            b"file appendonly.aof.1.incr.aof\n",
            "Invalid AOF manifest file format",
        ),
        (b"garbage\x00\xff", "Invalid AOF manifest file format"),
    ] {
        std::fs::write(manifest_path(&dir), text).unwrap();
        let log = refused_start(&dir, &[]);
        assert!(
            log.contains(expect) && log.contains("appendonly.aof.manifest"),
            "{text:?}: {log}"
        );
        assert_eq!(
            std::fs::read(incr_file(&dir)).unwrap(),
            incr_before,
            "{text:?}: the incremental file is left as it was"
        );
        assert_eq!(
            std::fs::read(manifest_path(&dir)).unwrap(),
            text,
            "{text:?}: the manifest is left for the operator"
        );
    }
    // Files without any manifest: refused as well, naming them.
    std::fs::remove_file(manifest_path(&dir)).unwrap();
    let log = refused_start(&dir, &[]);
    assert!(
        log.contains("holds appendonly.aof.1.incr.aof but no manifest"),
        "{log}"
    );
    // The repaired manifest loads everything.
    std::fs::write(manifest_path(&dir), &good).unwrap();
    assert_eq!(dbsize_after_start(&dir).await, 5);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_without_data_is_a_fresh_instance() {
    // No directory at all, an empty one, and one with only an empty incremental file (a
    // crash between creating it and writing the first manifest).
    let dir = temp_dir("recovery-fresh");
    assert_eq!(dbsize_after_start(&dir).await, 0);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(dir.join("appendonlydir")).unwrap();
    assert_eq!(dbsize_after_start(&dir).await, 0);
    std::fs::remove_file(manifest_path(&dir)).unwrap();
    std::fs::write(incr_file(&dir), b"").unwrap();
    std::fs::write(dir.join("appendonlydir/temp-rewrite-x.aof"), b"leftover").unwrap();
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(c.cmd(&["SET", "k", "v"]).await, Resp::Simple("OK".into()));
    shutdown(server).await;
    assert!(
        !dir.join("appendonlydir/temp-rewrite-x.aof").exists(),
        "leftovers of an interrupted rewrite are removed"
    );
    assert_eq!(dbsize_after_start(&dir).await, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Knock on `addr` until `done`: every reply any client gets must be -LOADING (a start that
/// fails must never answer with data nor acknowledge a write). Returns the replies seen.
async fn knock_until_exit(
    addr: std::net::SocketAddr,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> usize {
    let mut replies = 0;
    while !done.load(std::sync::atomic::Ordering::Relaxed) {
        let Some(mut c) = RawConn::try_connect(addr).await else {
            tokio::task::yield_now().await;
            continue;
        };
        for cmd in [
            &["DBSIZE"][..],
            &["XLEN", "s"],
            &["SET", "new", "v"],
            &["XADD", "s", "*", "f", "v"],
        ] {
            match c.try_cmd(cmd).await {
                None => break, // closed: the server is going away
                Some(Resp::Error(e)) if e.starts_with("LOADING") => replies += 1,
                Some(other) => panic!("{cmd:?} was answered during a failed load: {other:?}"),
            }
        }
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_file_never_serves_and_the_process_always_exits() {
    let dir = temp_dir("recovery-damage");
    {
        let server = start(&dir, &["--appendfsync", "always"]).await;
        let mut c = RawConn::connect(server.addr).await;
        // 200 entries, one fsynced batch each, then a larger pipelined tail so that a load
        // failing at the end takes a while.
        for i in 0..200 {
            c.cmd(&["XADD", "s", "*", "n", &i.to_string()]).await;
        }
        let mut pipeline = Vec::new();
        for i in 0..20_000 {
            pipeline.extend(common::encode_command(&[
                b"XADD",
                b"s",
                b"*",
                b"n",
                i.to_string().as_bytes(),
            ]));
        }
        c.send_raw(&pipeline).await;
        for _ in 0..20_000 {
            c.read().await;
        }
        shutdown(server).await;
    }
    let good = std::fs::read(incr_file(&dir)).unwrap();
    assert!(good.starts_with(b"*"));
    let damages: [(&str, usize, u8); 3] = [
        ("first byte", 0, b'%'),
        ("middle", 7000, b'#'),
        ("last byte", good.len() - 1, b'X'),
    ];
    let rounds: usize = std::env::var("RELAY_RECOVERY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut answered = 0;
    for (what, at, byte) in damages {
        let mut bad = good.clone();
        bad[at] = byte;
        std::fs::write(incr_file(&dir), &bad).unwrap();
        for threads in ["1", "2"] {
            for round in 0..rounds {
                let port = common::free_port();
                let child = Command::new(relay_binary())
                    .args(["--port", &port.to_string(), "--loglevel", "notice"])
                    .args(["--dir", dir.to_str().unwrap(), "--appendonly", "yes"])
                    .args(["--io-threads", threads])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
                let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let knocking = tokio::spawn(knock_until_exit(addr, done.clone()));
                let out =
                    tokio::task::spawn_blocking(move || wait_exit(child, Duration::from_secs(30)))
                        .await
                        .unwrap();
                done.store(true, std::sync::atomic::Ordering::Relaxed);
                answered += knocking.await.unwrap();
                let log = String::from_utf8_lossy(&out.stdout);
                let ctx = format!("{what}, io-threads {threads}, round {round}");
                assert_eq!(out.status.code(), Some(1), "{ctx}: {log}");
                assert!(
                    log.contains("appendonly.aof.1.incr.aof")
                        && log.contains("at offset")
                        && log.contains("--check-aof"),
                    "{ctx}: the message names the file, the offset and the repair command: {log}"
                );
                assert_eq!(
                    std::fs::read(incr_file(&dir)).unwrap(),
                    bad,
                    "{ctx}: a damaged file is never changed by a start"
                );
            }
        }
    }
    eprintln!("{answered} commands were answered -LOADING during failed loads");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The batches of an AOF file: each run of records up to and including its checkpoint.
fn batches(file: &[u8]) -> Vec<Vec<u8>> {
    let marker = b"$9\r\nRELAY-CRC\r\n";
    let mut out = Vec::new();
    let mut start = 0;
    let mut from = 0;
    while let Some(p) = file[from..]
        .windows(marker.len())
        .position(|w| w == marker)
        .map(|p| p + from)
    {
        // The checkpoint has four bulk strings: skip past its last one.
        let mut end = p + marker.len();
        for _ in 0..3 {
            let nl = file[end..].windows(2).position(|w| w == b"\r\n").unwrap() + end;
            let len: usize = std::str::from_utf8(&file[end + 1..nl])
                .unwrap()
                .parse()
                .unwrap();
            end = nl + 2 + len + 2;
        }
        out.push(file[start..end].to_vec());
        start = end;
        from = end;
    }
    assert_eq!(start, file.len(), "the file ends with a checkpoint");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_repeated_or_missing_batches_are_damage() {
    let dir = temp_dir("recovery-batches");
    {
        let server = start(&dir, &["--appendfsync", "always"]).await;
        let mut c = RawConn::connect(server.addr).await;
        for i in 1..=20 {
            c.cmd(&["XADD", "s", &format!("{i}-0"), "n", &i.to_string()])
                .await;
        }
        shutdown(server).await;
    }
    let good = std::fs::read(incr_file(&dir)).unwrap();
    let b = batches(&good);
    assert!(
        b.len() >= 20,
        "one batch per acknowledged XADD: {}",
        b.len()
    );
    let check = |file: &Path| {
        Command::new(relay_binary())
            .args(["--check-aof", file.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let ok = check(&incr_file(&dir));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let swapped: Vec<u8> = [&b[..5], &[b[6].clone(), b[5].clone()], &b[7..]]
        .concat()
        .concat();
    let repeated: Vec<u8> = [&b[..6], &[b[5].clone()], &b[6..]].concat().concat();
    let missing: Vec<u8> = [&b[..5], &b[6..]].concat().concat();
    for (what, file) in [
        ("swapped", swapped),
        ("repeated", repeated),
        ("missing", missing),
    ] {
        std::fs::write(incr_file(&dir), &file).unwrap();
        let out = check(&incr_file(&dir));
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            !out.status.success() && report.contains("out of order"),
            "{what}: --check-aof must report damage: {report}"
        );
        let log = refused_start(&dir, &[]);
        assert!(log.contains("out of order"), "{what}: {log}");
    }
    std::fs::write(incr_file(&dir), &good).unwrap();
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(c.cmd(&["XLEN", "s"]).await, Resp::Int(20));
    // Appending to the restored file numbers on: it still checks out after more writes.
    c.cmd(&["XADD", "s", "21-0", "n", "21"]).await;
    shutdown(server).await;
    let ok = check(&incr_file(&dir));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert_eq!(
        batches(&std::fs::read(incr_file(&dir)).unwrap()).len(),
        b.len() + 1
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// XINFO STREAM's idempotency fields.
async fn idmp_fields(c: &mut RawConn, key: &str) -> Vec<(String, i64)> {
    let items = c.cmd(&["XINFO", "STREAM", key]).await.items();
    items
        .chunks(2)
        .filter_map(|p| match (&p[0], &p[1]) {
            (k, Resp::Int(v)) if k.text().contains("id") && k.text() != "last-generated-id" => {
                Some((k.text(), *v))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_counters_survive_restarts_and_compaction() {
    let dir = temp_dir("recovery-idmp");
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    for r in ["req-1", "req-2", "req-3"] {
        c.cmd(&["XADD", "ms", "IDMP", "p1", r, "*", "f", "v"]).await;
    }
    c.cmd(&["XCFGSET", "ms", "IDMP-MAXSIZE", "2"]).await;
    for r in ["req-4", "req-5", "req-5", "req-4"] {
        c.cmd(&["XADD", "ms", "IDMP", "p1", r, "*", "f", "v"]).await;
    }
    let before = idmp_fields(&mut c, "ms").await;
    let field =
        |f: &[(String, i64)], name: &str| f.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    assert_eq!(field(&before, "iids-added"), Some(5), "{before:?}");
    assert_eq!(field(&before, "iids-duplicates"), Some(2), "{before:?}");
    assert_eq!(field(&before, "iids-tracked"), Some(2), "{before:?}");
    shutdown(server).await;

    // A plain restart (the incremental file replayed).
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(idmp_fields(&mut c, "ms").await, before, "after a restart");
    // A compaction, then a restart from the base.
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        Resp::Simple("Background append only file rewriting started".into())
    );
    for _ in 0..500 {
        let info = c.cmd(&["INFO", "persistence"]).await.text();
        if info.contains("aof_rewrite_in_progress:0")
            && std::fs::read_to_string(manifest_path(&dir))
                .unwrap()
                .contains("type b")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(idmp_fields(&mut c, "ms").await, before, "after the rewrite");
    shutdown(server).await;
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(
        idmp_fields(&mut c, "ms").await,
        before,
        "after rewrite + restart"
    );
    // Still a duplicate after all that, counted once more, and that count survives too.
    c.cmd(&["XADD", "ms", "IDMP", "p1", "req-5", "*", "f", "v"])
        .await;
    let after = idmp_fields(&mut c, "ms").await;
    assert_eq!(field(&after, "iids-duplicates"), Some(3), "{after:?}");
    shutdown(server).await;
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    assert_eq!(idmp_fields(&mut c, "ms").await, after);
    shutdown(server).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passed_while_down_expires_the_key_instead_of_splitting_it() {
    let dir = temp_dir("recovery-expiry");
    let mut server = start(&dir, &["--appendfsync", "always"]).await;
    let mut c = RawConn::connect(server.addr).await;
    c.cmd(&["XADD", "s", "1-0", "f", "before"]).await;
    c.cmd(&["SET", "plain", "v", "PX", "400"]).await;
    assert_eq!(c.cmd(&["PEXPIRE", "s", "400"]).await, Resp::Int(1));
    c.cmd(&["XADD", "s", "2-0", "f", "after"]).await;
    // Stopped before the deadline: the file has XADD, PEXPIREAT, XADD and no DEL.
    common::persist::kill9(&mut server);
    // What is waited for here is time itself: the deadlines pass while the server is down.
    tokio::time::sleep(Duration::from_millis(450)).await;
    for round in 0..2 {
        let server = start(&dir, &[]).await;
        let mut c = RawConn::connect(server.addr).await;
        // Replayed with expiry on, the past PEXPIREAT deleted `s` and the second XADD made a
        // new stream of one entry without a deadline.
        assert_eq!(c.cmd(&["EXISTS", "s"]).await, Resp::Int(0), "round {round}");
        assert_eq!(
            c.cmd(&["EXISTS", "plain"]).await,
            Resp::Int(0),
            "round {round}"
        );
        assert_eq!(c.cmd(&["DBSIZE"]).await, Resp::Int(0), "round {round}");
        shutdown(server).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// BGREWRITEAOF inside MULTI is only scheduled (as Redis, which never forks inside EXEC): a
/// compaction cut in the middle of the transaction put its first half in the base and the
/// whole block, without its SELECT, in the new incremental file — replayed into the wrong
/// database, the first half twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrite_asked_for_inside_exec_runs_after_it() {
    let dir = temp_dir("recovery-exec-rewrite");
    let server = start(&dir, &["--appendfsync", "always"]).await;
    let mut c = RawConn::connect(server.addr).await;
    for cmd in [
        &["SELECT", "5"][..],
        &["SET", "y", "1"],
        &["SELECT", "3"],
        &["XADD", "s", "1-1", "f", "v"],
        &["MULTI"],
        &["SET", "a", "1"],
        &["XADD", "s", "2-1", "f", "v"],
        &["BGREWRITEAOF"],
        &["SET", "b", "2"],
    ] {
        c.cmd(cmd).await;
    }
    let replies = c.cmd(&["EXEC"]).await.items();
    assert_eq!(
        replies[2],
        Resp::Simple("Background append only file rewriting scheduled".into())
    );
    for _ in 0..500 {
        let info = c.cmd(&["INFO", "persistence"]).await.text();
        let done = info.contains("aof_rewrite_scheduled:0")
            && info.contains("aof_rewrite_in_progress:0")
            && std::fs::read_to_string(manifest_path(&dir))
                .unwrap_or_default()
                .contains("type b");
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown(server).await;
    let server = start(&dir, &[]).await;
    let mut c = RawConn::connect(server.addr).await;
    c.cmd(&["SELECT", "5"]).await;
    assert_eq!(c.cmd(&["DBSIZE"]).await, Resp::Int(1), "db 5 holds y only");
    c.cmd(&["SELECT", "3"]).await;
    assert_eq!(c.cmd(&["DBSIZE"]).await, Resp::Int(3), "a, b and s in db 3");
    assert_eq!(c.cmd(&["XLEN", "s"]).await, Resp::Int(2));
    shutdown(server).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A record that is not a write Relay logs (here a SUBSCRIBE, which would put the replay in
/// subscribed mode and make every later record fail) is damage: the start is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_relay_never_writes_refuses_the_start() {
    let dir = dir_with_keys("recovery-foreign", 3).await;
    let mut file = std::fs::read(incr_file(&dir)).unwrap();
    let mut batch = common::encode_command(&[b"SUBSCRIBE", b"chan"]);
    batch.extend(common::encode_command(&[b"SET", b"after", b"v"]));
    let crc = crc32fast::hash(&batch);
    let seq = batches(&file).len() + 1;
    let (len, crc, seq) = (
        batch.len().to_string(),
        format!("{crc:08x}"),
        seq.to_string(),
    );
    batch.extend(common::encode_command(&[
        b"RELAY-CRC",
        len.as_bytes(),
        crc.as_bytes(),
        seq.as_bytes(),
    ]));
    file.extend(batch);
    std::fs::write(incr_file(&dir), &file).unwrap();
    let log = refused_start(&dir, &[]);
    assert!(
        log.contains("\"SUBSCRIBE\" record, which is not a write Relay logs"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
