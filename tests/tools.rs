//! The built binary with real tools: redis-cli, the config file and flags, signals, and the
//! Python (redis-py) and Node (node-redis, ioredis) client libraries.
//!
//! A tool that is not installed is skipped with a message; CI installs them all and sets
//! RELAY_REQUIRE_TOOLS=1 so none can be skipped there.

mod common;

use common::{RawConn, Resp};
use std::process::{Command, Stdio};
use std::time::Duration;

fn have(tool: &str, probe: &[&str], test: &str) -> bool {
    common::have_tool(tool, probe, test)
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(
        out.status.success(),
        "redis-cli {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_smoke() {
    if !have("redis-cli", &["--version"], "redis_cli_smoke") {
        return;
    }
    let server = common::spawn_binary(&[]).await;
    let port = server.addr.port();
    assert_eq!(cli(port, &["PING"]), "PONG");
    assert_eq!(cli(port, &["SET", "greeting", "hello world"]), "OK");
    assert_eq!(cli(port, &["GET", "greeting"]), "hello world");
    let hello = cli(port, &["-3", "HELLO", "3"]);
    assert!(hello.contains("proto 3"), "{hello}");
    assert!(cli(port, &["COMMAND", "DOCS", "subscribe"]).contains("channel"));
    // A subscriber in redis-cli receives what another redis-cli publishes.
    let sub = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "SUBSCRIBE", "tour"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli subscribe");
    let mut delivered = "0".to_string();
    for _ in 0..100 {
        delivered = cli(port, &["PUBLISH", "tour", "welcome"]);
        if delivered == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, "1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut sub = sub;
    sub.kill().ok();
    let out = sub.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("subscribe\ntour\n1"), "{text}");
    assert!(text.contains("message\ntour\nwelcome"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_then_flags_then_config_rewrite() {
    let dir = std::env::temp_dir().join(format!("relay-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("relay.toml");
    std::fs::write(
        &file,
        "maxclients = 50\ntimeout = 30\nclient-output-buffer-limit = \"pubsub 16mb 4mb 30\"\n",
    )
    .unwrap();
    let server =
        common::spawn_binary(&["--config", file.to_str().unwrap(), "--maxclients", "77"]).await;
    let mut c = RawConn::connect(server.addr).await;
    let get = |r: Resp| r.items()[1].text();
    assert_eq!(
        get(c.cmd(&["CONFIG", "GET", "maxclients"]).await),
        "77",
        "the flag overrides the file"
    );
    assert_eq!(
        get(c.cmd(&["CONFIG", "GET", "timeout"]).await),
        "30",
        "the file overrides the default"
    );
    assert!(get(c
        .cmd(&["CONFIG", "GET", "client-output-buffer-limit"])
        .await)
    .ends_with("pubsub 16777216 4194304 30"));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "timeout", "45"]).await,
        Resp::Simple("OK".into())
    );
    assert_eq!(
        c.cmd(&["CONFIG", "REWRITE"]).await,
        Resp::Simple("OK".into())
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.contains("timeout = \"45\""), "{written}");
    assert!(written.contains("maxclients = \"77\""), "{written}");
    // The rewritten file starts a server with the same settings.
    drop(c);
    drop(server);
    let again = common::spawn_binary(&["--config", file.to_str().unwrap()]).await;
    let mut c = RawConn::connect(again.addr).await;
    assert_eq!(get(c.cmd(&["CONFIG", "GET", "timeout"]).await), "45");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loglevel_can_be_raised_at_run_time() {
    let log = std::env::temp_dir().join(format!("relay-log-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let server = common::spawn_binary(&["--logfile", log.to_str().unwrap()]).await;
    let mut admin = RawConn::connect(server.addr).await;
    // At warning level a disconnect is not logged; at debug it is.
    RawConn::connect(server.addr).await.cmd(&["PING"]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Client closed connection"));
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "loglevel", "debug"]).await,
        Resp::Simple("OK".into())
    );
    RawConn::connect(server.addr).await.cmd(&["PING"]).await;
    let mut logged = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Client closed connection")
        {
            logged = true;
            break;
        }
    }
    assert!(logged, "debug lines appear after CONFIG SET loglevel debug");
    std::fs::remove_file(&log).ok();
}

#[test]
fn bad_config_is_refused_at_start() {
    let out = Command::new(common::relay_binary())
        .args(["--maxclients", "lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FATAL CONFIG ERROR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_cleanly() {
    let mut server = common::spawn_binary(&[]).await;
    let pid = server.child.id();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..100 {
        if let Some(st) = server.child.try_wait().unwrap() {
            assert!(st.success(), "exit status {st:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("relay-server did not exit after SIGTERM");
}

const PY_CLIENT: &str = r#"
import sys, time, redis
port = int(sys.argv[1])
r = redis.Redis(port=port, protocol=int(sys.argv[2]))
assert r.ping()
p = r.pubsub()
p.subscribe("py-chan")
p.psubscribe("py-*")
for _ in range(2):
    p.get_message(timeout=2)
assert r.publish("py-chan", "hello") == 2
got = []
deadline = time.time() + 5
while len(got) < 2 and time.time() < deadline:
    m = p.get_message(timeout=1)
    if m:
        got.append((m["type"], m["channel"], m["data"]))
assert ("message", b"py-chan", b"hello") in got, got
assert ("pmessage", b"py-chan", b"hello") in got, got
r.client_setname("py")
assert r.client_getname() == "py" or r.client_getname() == b"py"
print("ok")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_subscribes_and_publishes_in_resp2_and_resp3() {
    if !have("python3", &["-c", "import redis"], "redis_py") {
        return;
    }
    let server = common::spawn_binary(&[]).await;
    for proto in ["2", "3"] {
        let out = Command::new("python3")
            .args(["-c", PY_CLIENT, &server.addr.port().to_string(), proto])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "redis-py (RESP{proto}) failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const NODE_CLIENTS: &str = r#"
const port = Number(process.argv[1]);
(async () => {
  const { createClient } = require('redis');
  const pub = createClient({ socket: { port } });
  const sub = pub.duplicate();
  await pub.connect(); await sub.connect();
  const got = new Promise((resolve) => sub.subscribe('node-chan', (m) => resolve(m)));
  await new Promise((r) => setTimeout(r, 100));
  const n = await pub.publish('node-chan', 'hi from node-redis');
  if (n !== 1) throw new Error('node-redis publish reached ' + n);
  const m = await got;
  if (m !== 'hi from node-redis') throw new Error('node-redis got ' + m);
  await sub.quit(); await pub.quit();

  const Redis = require('ioredis');
  const ipub = new Redis({ port }); const isub = new Redis({ port });
  await isub.psubscribe('io-*');
  const pm = new Promise((resolve) => isub.on('pmessage', (p, c, msg) => resolve([p, c, msg])));
  const k = await ipub.publish('io-chan', 'hi from ioredis');
  if (k !== 1) throw new Error('ioredis publish reached ' + k);
  const [p, c, msg] = await pm;
  if (p !== 'io-*' || c !== 'io-chan' || msg !== 'hi from ioredis') throw new Error('ioredis got ' + [p, c, msg]);
  isub.disconnect(); ipub.disconnect();
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_and_ioredis_subscribe_and_publish() {
    let Some(node_path) = common::node_clients("node_clients") else {
        return;
    };
    let server = common::spawn_binary(&[]).await;
    let out = Command::new("node")
        .env("NODE_PATH", &node_path)
        .args(["-e", NODE_CLIENTS, &server.addr.port().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node clients failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Redis configuration names Relay accepts without a mechanism behind them work from the
/// command line too, and INFO reports the policy job-queue libraries check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_redis_configs_from_flags_and_info() {
    let server = common::spawn_binary(&[
        "--maxmemory-policy",
        "allkeys-lru",
        "--slave-read-only",
        "no",
    ])
    .await;
    let mut c = RawConn::connect(server.addr).await;
    let info = c.cmd(&["INFO", "memory"]).await.text();
    assert!(info.contains("maxmemory_policy:allkeys-lru"), "{info}");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "replica-read-only"]).await,
        Resp::Array(vec![Resp::bulk("replica-read-only"), Resp::bulk("no")])
    );
    c.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        .await;
    let info = c.cmd(&["INFO", "memory"]).await.text();
    assert!(info.contains("maxmemory_policy:noeviction"), "{info}");
}

/// CONFIG SET with several pairs is all or nothing also when applying one fails: turning the
/// AOF on in a directory that cannot be created undoes the other pairs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_apply_undoes_every_pair_of_config_set() {
    let not_a_dir = std::env::temp_dir().join(format!("relay-not-a-dir-{}", std::process::id()));
    std::fs::write(&not_a_dir, b"a file").unwrap();
    let server =
        common::spawn_binary(&["--appendonly", "no", "--dir", not_a_dir.to_str().unwrap()]).await;
    let mut c = RawConn::connect(server.addr).await;
    let reply = c
        .cmd(&["CONFIG", "SET", "maxclients", "77", "appendonly", "yes"])
        .await;
    assert!(
        matches!(&reply, Resp::Error(e) if e.starts_with("ERR CONFIG SET failed (possibly related to argument 'appendonly')")),
        "{reply:?}"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxclients"]).await,
        Resp::Array(vec![Resp::bulk("maxclients"), Resp::bulk("10000")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendonly"]).await,
        Resp::Array(vec![Resp::bulk("appendonly"), Resp::bulk("no")])
    );
    let _ = std::fs::remove_file(&not_a_dir);
}
