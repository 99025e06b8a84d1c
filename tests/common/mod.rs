//! Test support: start a real Relay server in-process (port 0), start Debian's redis-server as
//! the oracle, and a raw RESP2/RESP3 connection for protocol-level assertions.
#![allow(dead_code)]

pub mod persist;

use relay::{Config, Server, ServerHandle};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Start Relay on 127.0.0.1 with a free port.
pub async fn start() -> ServerHandle {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> ServerHandle {
    // In-process servers keep no append-only file unless a test asks for one.
    let mut config = Config {
        port: 0,
        appendonly: false,
        ..Default::default()
    };
    adjust(&mut config);
    Server::start(config).await.expect("server starts")
}

/// Wait until INFO reports `n` blocked clients (checked every 10 ms, for up to 10 s).
pub async fn wait_blocked(conn: &mut RawConn, n: usize) {
    let want = format!("blocked_clients:{n}");
    for _ in 0..1000 {
        if conn.cmd(&["INFO", "clients"]).await.text().contains(&want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never reached {want}");
}

/// A parsed reply, RESP3 types included.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    NullBulk,
    NullArray,
    Array(Vec<Resp>),
    Map(Vec<(Resp, Resp)>),
    Set(Vec<Resp>),
    Push(Vec<Resp>),
    Double(String),
    Bool(bool),
    Verbatim(String, Vec<u8>),
    BigNum(String),
}

impl Resp {
    pub fn bulk(s: &str) -> Resp {
        Resp::Bulk(s.as_bytes().to_vec())
    }

    pub fn text(&self) -> String {
        match self {
            Resp::Simple(s) | Resp::Error(s) | Resp::Double(s) | Resp::BigNum(s) => s.clone(),
            Resp::Bulk(b) | Resp::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
            Resp::Int(n) => n.to_string(),
            other => format!("{other:?}"),
        }
    }

    pub fn items(&self) -> Vec<Resp> {
        match self {
            Resp::Array(v) | Resp::Set(v) | Resp::Push(v) => v.clone(),
            Resp::Map(m) => m.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
            other => panic!("not an aggregate: {other:?}"),
        }
    }
}

/// Human-readable rendering for assertion messages (bulk strings as quoted text).
pub fn render(r: &Resp) -> String {
    let list = |v: &[Resp]| v.iter().map(render).collect::<Vec<_>>().join(", ");
    match r {
        Resp::Simple(s) => format!("+{s}"),
        Resp::Error(s) => format!("-{s}"),
        Resp::Int(n) => format!(":{n}"),
        Resp::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Resp::Verbatim(f, b) => format!("={f}:{:?}", String::from_utf8_lossy(b)),
        Resp::Null => "(null)".into(),
        Resp::NullBulk => "(nil bulk)".into(),
        Resp::NullArray => "(nil array)".into(),
        Resp::Array(v) => format!("[{}]", list(v)),
        Resp::Set(v) => format!("~[{}]", list(v)),
        Resp::Push(v) => format!(">[{}]", list(v)),
        Resp::Map(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", render(k), render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Resp::Double(d) => format!(",{d}"),
        Resp::Bool(b) => format!("#{b}"),
        Resp::BigNum(n) => format!("({n}"),
    }
}

/// Incremental RESP reader over bytes; `None` when more input is needed.
pub fn parse_resp(buf: &[u8]) -> Option<(Resp, usize)> {
    let nl = buf.windows(2).position(|w| w == b"\r\n")?;
    // Status and error lines as text, bytes outside ASCII escaped (\xNN) so that raw bytes
    // and their UTF-8 replacement characters never compare equal.
    let line: String = buf[1..nl]
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect();
    let rest = nl + 2;
    let agg = |n: i64, rest: usize| -> Option<(Vec<Resp>, usize)> {
        let mut items = vec![];
        let mut pos = rest;
        for _ in 0..n {
            let (item, used) = parse_resp(&buf[pos..])?;
            items.push(item);
            pos += used;
        }
        Some((items, pos))
    };
    Some(match buf[0] {
        b'+' => (Resp::Simple(line), rest),
        b'-' => (Resp::Error(line), rest),
        b':' => (Resp::Int(line.parse().ok()?), rest),
        b',' => (Resp::Double(line), rest),
        b'(' => (Resp::BigNum(line), rest),
        b'#' => (Resp::Bool(line == "t"), rest),
        b'_' => (Resp::Null, rest),
        b'$' | b'=' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some((Resp::NullBulk, rest));
            }
            let n = n as usize;
            if buf.len() < rest + n + 2 {
                return None;
            }
            let data = buf[rest..rest + n].to_vec();
            if buf[0] == b'=' {
                (
                    Resp::Verbatim(
                        String::from_utf8_lossy(&data[..3]).into(),
                        data[4..].to_vec(),
                    ),
                    rest + n + 2,
                )
            } else {
                (Resp::Bulk(data), rest + n + 2)
            }
        }
        b'*' | b'~' | b'>' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some((Resp::NullArray, rest));
            }
            let (items, end) = agg(n, rest)?;
            let r = match buf[0] {
                b'*' => Resp::Array(items),
                b'~' => Resp::Set(items),
                _ => Resp::Push(items),
            };
            (r, end)
        }
        b'%' => {
            let n: i64 = line.parse().ok()?;
            let (items, end) = agg(n * 2, rest)?;
            let pairs = items
                .chunks(2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect();
            (Resp::Map(pairs), end)
        }
        other => panic!(
            "unexpected RESP type byte {:?} in {:?}",
            other as char,
            String::from_utf8_lossy(buf)
        ),
    })
}

/// Encode a command as a RESP multibulk.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw connection that sends commands and parses replies itself.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connect, or `None` if nothing listens (a server that is starting or going away).
    pub async fn try_connect(addr: SocketAddr) -> Option<RawConn> {
        let stream = TcpStream::connect(addr).await.ok()?;
        stream.set_nodelay(true).ok();
        Some(RawConn {
            stream,
            buf: Vec::new(),
        })
    }

    /// Send raw bytes; an error if the server went away (crash tests).
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Send a command and read its reply; `None` if the server went away (crash tests).
    pub async fn try_cmd(&mut self, args: &[&str]) -> Option<Resp> {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.stream.write_all(&encode_command(&refs)).await.ok()?;
        self.read_timeout(Duration::from_secs(10)).await
    }

    pub async fn send(&mut self, args: &[&str]) {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send_raw(&encode_command(&a)).await;
    }

    pub async fn send_bytes(&mut self, args: &[&[u8]]) {
        self.send_raw(&encode_command(args)).await;
    }

    /// Read one reply, waiting up to `timeout`; `None` on timeout or EOF.
    pub async fn read_timeout(&mut self, timeout: Duration) -> Option<Resp> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((r, used)) = parse_resp(&self.buf) {
                self.buf.drain(..used);
                return Some(r);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let mut chunk = vec![0u8; 65536]; // on the heap: a 64 KiB array inside every awaited read overflowed test stacks
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    pub async fn read(&mut self) -> Resp {
        self.read_timeout(Duration::from_secs(10))
            .await
            .expect("a reply within 10s")
    }

    pub async fn cmd(&mut self, args: &[&str]) -> Resp {
        self.send(args).await;
        self.read().await
    }

    /// True when the server has closed the connection (EOF) within `timeout`.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            let mut chunk = vec![0u8; 65536]; // on the heap: a 64 KiB array inside every awaited read overflowed test stacks
            match tokio::time::timeout(left, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return false,
            }
        }
    }
}

/// Debian's redis-server as the oracle, on a free port, without persistence.
pub struct Oracle {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start redis-server, or explain why not. With RELAY_REQUIRE_ORACLE=1 a missing oracle fails.
pub async fn oracle(test: &str) -> Option<Oracle> {
    let which = Command::new("redis-server").arg("--version").output();
    if which.is_err() {
        if std::env::var("RELAY_REQUIRE_ORACLE").as_deref() == Ok("1") {
            panic!("{test}: redis-server is required (RELAY_REQUIRE_ORACLE=1) but not installed");
        }
        eprintln!("{test}: skipped: redis-server not found (install redis-server to run the differential suite)");
        return None;
    }
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let oracle = Oracle { child, addr };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(s) = TcpStream::connect(addr).await {
            let mut c = RawConn {
                stream: s,
                buf: vec![],
            };
            if c.cmd(&["PING"]).await == Resp::Simple("PONG".into()) {
                return Some(oracle);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not start on {addr}");
}

/// Path of the built relay-server binary.
pub fn relay_binary() -> &'static str {
    env!("CARGO_BIN_EXE_relay-server")
}

/// Resident memory of a process, in bytes.
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A relay-server child process on a free port, killed on drop.
pub struct Spawned {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn spawn_binary(extra: &[&str]) -> Spawned {
    let port = free_port();
    // No append-only file (in the current directory) unless the test configures one.
    let no_aof: &[&str] = if extra.iter().any(|a| a.starts_with("--appendonly")) {
        &[]
    } else {
        &["--appendonly", "no"]
    };
    let child = Command::new(relay_binary())
        .args(["--port", &port.to_string(), "--loglevel", "warning"])
        .args(no_aof)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn relay-server");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let spawned = Spawned { child, addr };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(addr).await.is_ok() {
            return spawned;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("relay-server did not start on {addr}");
}

/// Whether `tool probe…` runs successfully; when it does not, the test is skipped with a
/// message — or fails under RELAY_REQUIRE_TOOLS=1 (CI), so nothing is skipped there.
pub fn have_tool(tool: &str, probe: &[&str], test: &str) -> bool {
    let ok = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("RELAY_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{test}: {tool} {probe:?} is required (RELAY_REQUIRE_TOOLS=1) but failed");
        }
        eprintln!("{test}: skipped: {tool} {probe:?} not available");
    }
    ok
}

/// The NODE_PATH holding node-redis and ioredis (`.ci/node/node_modules`, or RELAY_NODE_PATH),
/// if node can load both there; otherwise `None` (skipped, or a failure under
/// RELAY_REQUIRE_TOOLS=1, as `have_tool`).
pub fn node_clients(test: &str) -> Option<String> {
    let node_path = std::env::var("RELAY_NODE_PATH").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/node/node_modules").to_string()
    });
    let probe = format!("process.env.NODE_PATH='{node_path}';require('module').Module._initPaths();require('redis');require('ioredis')");
    have_tool("node", &["-e", &probe], test).then_some(node_path)
}
