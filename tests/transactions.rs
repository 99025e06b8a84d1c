//! Transactions as applications use them: redis-py's default (transactional) pipeline and its
//! WATCH retry helper, ioredis and node-redis `multi()`, the Rust `redis` crate's atomic
//! pipeline; EXEC's atomicity against concurrent writers on a multi-threaded runtime; blocked
//! readers served after EXEC with its final state; and SIGKILL in the middle of a stream of
//! transactions under `appendfsync always`: every acknowledged EXEC is whole after the restart,
//! none is half there.

mod common;

use common::persist::{kill9, start as start_aof, temp_dir};
use common::{wait_blocked, RawConn, Resp};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PY_PIPELINE: &str = r#"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]), protocol=int(sys.argv[2]))
r.flushall()
r.xgroup_create("jobs", "workers", id="0", mkstream=True)
r.xadd("jobs", {"n": "1"}, id="1-0")
r.xreadgroup("workers", "w1", {"jobs": ">"}, count=1)
# The default pipeline is a MULTI/EXEC transaction: ack the job, add its result, publish.
p = r.pipeline()
p.xack("jobs", "workers", "1-0")
p.xadd("results", {"n": "1", "ok": "yes"}, id="1-0")
p.set("last", "1-0")
p.publish("done", "1-0")
out = p.execute()
assert out == [1, b"1-0", True, 0], out
assert r.xpending("jobs", "workers")["pending"] == 0
# A run-time error inside the transaction does not roll the rest back.
p = r.pipeline()
p.set("a", "1")
p.xadd("last", {"f": "v"})
p.set("b", "2")
try:
    p.execute()
    raise SystemExit("expected a WRONGTYPE error")
except redis.ResponseError as e:
    assert "WRONGTYPE" in str(e), e
assert r.get("a") == b"1" and r.get("b") == b"2"
# The WATCH/retry helper: a concurrent change makes the first try fail, the retry succeeds.
other = redis.Redis(port=int(sys.argv[1]))
tries = []
def txn(pipe):
    tries.append(1)
    cur = pipe.get("counter") or b"0"
    if len(tries) == 1:
        other.set("counter", "100")
    pipe.multi()
    pipe.set("counter", int(cur) + 1)
r.set("counter", "0")
r.transaction(txn, "counter")
assert len(tries) == 2, tries
assert r.get("counter") == b"101", r.get("counter")
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_default_pipeline_and_watch_retry() {
    if !common::have_tool("python3", &["-c", "import redis"], "redis_py_pipeline") {
        return;
    }
    let server = common::spawn_binary(&[]).await;
    for proto in ["2", "3"] {
        let out = Command::new("python3")
            .args(["-c", PY_PIPELINE, &server.addr.port().to_string(), proto])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-py pipeline (RESP{proto}) failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const NODE_MULTI: &str = r#"
const port = Number(process.argv[1]);
(async () => {
  const { createClient } = require('redis');
  const c = createClient({ socket: { port } });
  await c.connect();
  await c.flushAll();
  const res = await c.multi().set('k', 'v').xAdd('s', '1-0', { f: 'v' }).get('k').exec();
  if (JSON.stringify(res) !== JSON.stringify(['OK', '1-0', 'v'])) throw new Error('node-redis multi: ' + JSON.stringify(res));
  // WATCH: a change by another client aborts the transaction.
  const other = c.duplicate(); await other.connect();
  await c.watch('k');
  await other.set('k', 'changed');
  let aborted = false;
  try { await c.multi().set('k', 'mine').exec(); } catch (e) { aborted = e.name === 'WatchError' || /WATCH|aborted/i.test(String(e)); }
  if (!aborted) throw new Error('node-redis: a watched change did not abort the transaction');
  if (await c.get('k') !== 'changed') throw new Error('node-redis: aborted transaction ran');
  await other.quit(); await c.quit();

  const Redis = require('ioredis');
  const io = new Redis({ port });
  const r = await io.multi().set('x', '1').xadd('s', '2-0', 'f', 'w').get('x').exec();
  if (JSON.stringify(r) !== JSON.stringify([[null, 'OK'], [null, '2-0'], [null, '1']])) throw new Error('ioredis multi: ' + JSON.stringify(r));
  // A queue-time error discards the whole transaction (EXECABORT).
  let execabort = false;
  try { await io.multi().set('y', '1').call('nosuchcommand').exec(); } catch (e) { execabort = /EXECABORT/.test(String(e)); }
  if (!execabort) throw new Error('ioredis: no EXECABORT');
  if (await io.exists('y') !== 0) throw new Error('ioredis: discarded transaction ran');
  io.disconnect();
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ioredis_and_node_redis_multi() {
    let Some(node_path) = common::node_clients("node_multi") else {
        return;
    };
    let server = common::spawn_binary(&[]).await;
    let out = Command::new("node")
        .env("NODE_PATH", &node_path)
        .args(["-e", NODE_MULTI, &server.addr.port().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node multi failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_crate_atomic_pipeline() {
    let server = common::start().await;
    let client = redis::Client::open(format!("redis://{}", server.addr())).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let (id, len): (String, usize) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg("events")
        .arg("5-0")
        .arg("f")
        .arg("v")
        .cmd("XLEN")
        .arg("events")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!((id.as_str(), len), ("5-0", 1));
}

/// Writers add one entry to each of two streams per transaction; a checker reads both lengths
/// in one transaction. On a multi-threaded runtime commands of different clients run in
/// parallel: only if EXEC runs alone do the checker's reads always see equal lengths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_is_atomic_against_concurrent_writers_on_several_threads() {
    let server = common::start().await;
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = vec![];
    for w in 0..4 {
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut c = RawConn::connect(addr).await;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 5_000 {
                i += 1;
                let n = format!("{w}-{i}");
                let mut wire = Vec::new();
                for cmd in [
                    vec!["MULTI"],
                    vec!["XADD", "left", "*", "n", &n],
                    vec!["XADD", "right", "*", "n", &n],
                    vec!["EXEC"],
                ] {
                    let refs: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
                    wire.extend(common::encode_command(&refs));
                }
                c.send_raw(&wire).await;
                for _ in 0..4 {
                    c.read().await;
                }
            }
        }));
    }
    let mut checker = RawConn::connect(addr).await;
    let mut checks = 0;
    for _ in 0..3_000 {
        checker.send(&["MULTI"]).await;
        checker.send(&["XLEN", "left"]).await;
        checker.send(&["XLEN", "right"]).await;
        checker.send(&["EXEC"]).await;
        for _ in 0..3 {
            checker.read().await;
        }
        let lens = checker.read().await.items();
        assert_eq!(lens[0], lens[1], "a transaction was seen half done");
        checks += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let mut c = RawConn::connect(addr).await;
    assert_eq!(
        c.cmd(&["XLEN", "left"]).await,
        c.cmd(&["XLEN", "right"]).await
    );
    assert!(checks > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_reader_is_served_after_exec_with_its_final_state() {
    let server = common::start().await;
    let mut reader = RawConn::connect(server.addr()).await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["XADD", "s", "1-0", "f", "v"]).await;
    reader
        .send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])
        .await;
    wait_blocked(&mut c, 1).await;
    // XADD then DEL in one transaction: the reader must not be woken with the entry.
    for cmd in [
        &["MULTI"][..],
        &["XADD", "s", "2-0", "f", "v"],
        &["DEL", "s"],
        &["EXEC"],
    ] {
        c.cmd(cmd).await;
    }
    assert_eq!(
        reader.read_timeout(Duration::from_millis(300)).await,
        None,
        "XADD + DEL inside one transaction woke the reader"
    );
    // Two XADDs in one transaction reach the reader together.
    for cmd in [
        &["MULTI"][..],
        &["XADD", "s", "3-0", "f", "a"],
        &["XADD", "s", "4-0", "f", "b"],
        &["EXEC"],
    ] {
        c.cmd(cmd).await;
    }
    let got = reader.read().await;
    let entries = got.items()[0].items()[1].items();
    assert_eq!(entries.len(), 2, "{got:?}");
}

/// Transactions of two XADDs each, under appendfsync always, killed at random points: after
/// every restart both streams hold exactly the acknowledged transactions' entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_never_leaves_half_a_transaction() {
    let dir = temp_dir("tx-crash");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for round in 0..6 {
        let mut server = start_aof(&dir, &["--appendfsync", "always"]).await;
        let addr = server.addr;
        let sent = Arc::new(AtomicUsize::new(0));
        let mut tasks = vec![];
        for w in 0..3 {
            let (acked, sent) = (acked.clone(), sent.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = RawConn::connect(addr).await;
                for i in 0.. {
                    let n = format!("{round}-{w}-{i}");
                    let mut wire = Vec::new();
                    for cmd in [
                        vec!["MULTI"],
                        vec!["XADD", "a", "*", "n", &n],
                        vec!["XADD", "b", "*", "n", &n],
                        vec!["EXEC"],
                    ] {
                        let refs: Vec<&[u8]> = cmd.iter().map(|x| x.as_bytes()).collect();
                        wire.extend(common::encode_command(&refs));
                    }
                    if c.try_send_raw(&wire).await.is_err() {
                        return;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    for _ in 0..3 {
                        if c.read_timeout(Duration::from_secs(5)).await.is_none() {
                            return;
                        }
                    }
                    match c.read_timeout(Duration::from_secs(5)).await {
                        Some(Resp::Array(ids)) if ids.len() == 2 => {
                            acked.lock().unwrap().push(n);
                        }
                        _ => return,
                    }
                }
            }));
        }
        // Kill after a varying amount of traffic.
        let target = 150 + round * 60;
        while sent.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        kill9(&mut server);
        for t in tasks {
            let _ = t.await;
        }
        let server = start_aof(&dir, &[]).await;
        let mut c = RawConn::connect(server.addr).await;
        let values = |r: Resp| -> Vec<String> {
            r.items()
                .iter()
                .map(|e| e.items()[1].items()[1].text())
                .collect()
        };
        let a = values(c.cmd(&["XRANGE", "a", "-", "+"]).await);
        let b = values(c.cmd(&["XRANGE", "b", "-", "+"]).await);
        if a != b {
            let first = a.iter().zip(&b).position(|(x, y)| x != y);
            panic!(
                "round {round}: a transaction is half there: {} entries in a, {} in b, first difference at {first:?}",
                a.len(),
                b.len()
            );
        }
        let acked = acked.lock().unwrap().clone();
        for n in &acked {
            assert!(a.contains(n), "round {round}: acknowledged EXEC {n} lost");
        }
        drop(server);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// INFO commandstats and errorstats, as Redis's info.tcl checks them: calls, failed calls
/// (an error from the command) and rejected calls (refused before running), per command and
/// subcommand; errors per code; CONFIG RESETSTAT clears them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commandstats_and_errorstats_count_calls_failures_and_rejections() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    c.cmd(&["CONFIG", "RESETSTAT"]).await;
    c.cmd(&["SET", "k", "v"]).await;
    c.cmd(&["XADD", "k", "*", "f", "v"]).await; // WRONGTYPE: a failed call
    c.cmd(&["SET", "k"]).await; // arity: a rejected call
    c.cmd(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "nokey", ">"])
        .await; // NOGROUP
    c.cmd(&["nosuchcommand"]).await;
    c.cmd(&["CLIENT", "ID"]).await;
    let info = c.cmd(&["INFO", "commandstats"]).await.text();
    let line = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(&format!("cmdstat_{name}:")))
            .unwrap_or_else(|| panic!("no cmdstat_{name} in {info}"))
            .to_string()
    };
    assert!(
        line("set").contains("calls=1,") && line("set").contains("rejected_calls=1,failed_calls=0"),
        "{info}"
    );
    assert!(
        line("xadd").contains("calls=1,")
            && line("xadd").ends_with("rejected_calls=0,failed_calls=1"),
        "{info}"
    );
    assert!(line("client|id").contains("calls=1,"), "{info}");
    let errors = c.cmd(&["INFO", "errorstats"]).await.text();
    for want in [
        "errorstat_WRONGTYPE:count=1",
        "errorstat_NOGROUP:count=1",
        "errorstat_ERR:count=2",
    ] {
        assert!(errors.contains(want), "{want} in {errors}");
    }
    let stats = c.cmd(&["INFO", "stats"]).await.text();
    assert!(stats.contains("total_error_replies:4"), "{stats}");
    c.cmd(&["CONFIG", "RESETSTAT"]).await;
    let errors = c.cmd(&["INFO", "errorstats"]).await.text();
    assert!(!errors.contains("errorstat_"), "{errors}");
}

/// CLIENT LIST / CLIENT INFO show the running command as Redis's introspection.tcl expects:
/// `qbuf=26` (CLIENT LIST's own 26 bytes, still in the query buffer), `argv-mem=10`
/// ("client" + "list"); inside MULTI `flags=x`, `multi=<queued>` and the queue's bytes in
/// `multi-mem`; `d` once a watched key changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_list_shows_the_running_command_and_the_transaction() {
    let server = common::start().await;
    let mut c = RawConn::connect(server.addr()).await;
    let line = c.cmd(&["CLIENT", "LIST"]).await.text();
    assert!(
        line.contains(" qbuf=26 ") && line.contains(" argv-mem=10 ") && line.contains(" multi=-1 "),
        "{line}"
    );
    let mut other = RawConn::connect(server.addr()).await;
    let client_line = |text: String| -> String {
        text.lines()
            .find(|l| !l.contains("cmd=client|list"))
            .unwrap_or_default()
            .to_string()
    };
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "v"]).await;
    c.cmd(&["XADD", "s", "*", "f", "v"]).await;
    let mine = client_line(other.cmd(&["CLIENT", "LIST"]).await.text());
    assert!(
        mine.contains(" flags=x ")
            && mine.contains(" multi=2 ")
            && !mine.contains(" multi-mem=0 ")
            && mine.contains(" cmd=xadd "),
        "{mine}"
    );
    c.cmd(&["DISCARD"]).await;
    // A watch that already failed: still QUEUED, but nothing stored (Redis's multi=0).
    c.cmd(&["WATCH", "w"]).await;
    other.cmd(&["SET", "w", "changed"]).await;
    c.cmd(&["MULTI"]).await;
    c.cmd(&["SET", "k", "v"]).await;
    let mine = client_line(other.cmd(&["CLIENT", "LIST"]).await.text());
    assert!(
        mine.contains(" flags=xd ") && mine.contains(" multi=0 "),
        "{mine}"
    );
    assert_eq!(c.cmd(&["EXEC"]).await, Resp::NullArray);
    let info = other.cmd(&["CLIENT", "LIST"]).await.text();
    assert!(
        info.contains(" flags=N ") && info.contains(" multi-mem=0 "),
        "{info}"
    );
}
