//! `relay-bench`: identical workloads against relay-server and redis-server, alternately, in
//! one run, printing each figure and the ratio (above 1.0 = Relay better).
//!
//! Run from a release build so the relay-server beside this binary is a release build too:
//!
//! ```sh
//! cargo build --release && target/release/relay-bench [--seconds 3] [--rounds 3] [--only NAME]
//! ```
//!
//! Each figure is the median of `--rounds` measurements, the two servers measured alternately
//! (redis, relay, redis, relay, …) so drift on the machine affects both alike. `--target relay`
//! measures one server only (for profiling it).
//!
//! The load generator runs in this process on one thread; both servers get the same machine.
//! Pub/sub frames in a workload have a fixed size (fixed-width channel names and payloads),
//! so subscribers find message boundaries by arithmetic and read the publish timestamp each
//! payload carries to measure publish→delivery latency.

mod aof;
mod group;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Target {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(name: &'static str) -> Target {
    // Redis runs without persistence here; so does Relay.
    start_with(name, &["--appendonly", "no"])
}

/// Start `name` with persistence flags (the same spelling for both servers).
fn start_with(name: &'static str, persistence: &[&str]) -> Target {
    let port = free_port();
    let child = if name == "relay" {
        let exe = std::env::current_exe()
            .unwrap()
            .with_file_name("relay-server");
        Command::new(exe)
            .args(["--port", &port.to_string(), "--loglevel", "warning"])
            .args(persistence)
            .stdout(Stdio::null())
            .spawn()
            .expect("relay-server beside relay-bench (cargo build --release)")
    } else {
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--loglevel",
                "warning",
            ])
            .args(persistence)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH")
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Target { name, child, addr };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not start");
}

fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).ok();
    s
}

/// Send `wire` and wait until `lines` reply lines have arrived.
async fn roundtrip(s: &mut TcpStream, wire: &[u8], lines: usize, buf: &mut [u8]) {
    s.write_all(wire).await.expect("write");
    let mut seen = 0;
    while seen < lines {
        let n = s.read(buf).await.expect("read");
        assert!(n > 0, "server closed the connection");
        seen += memchr::memchr_iter(b'\n', &buf[..n]).count();
    }
}

/// Subscribe `s` with `command` to `names` and swallow the confirmations.
async fn subscribe(s: &mut TcpStream, command: &[u8], names: &[String]) {
    let mut args: Vec<&[u8]> = vec![command];
    args.extend(names.iter().map(|n| n.as_bytes()));
    let mut buf = vec![0u8; 65536];
    // Each confirmation is 7 lines: *3, $N, kind, $N, name, :count (6) — count newlines.
    roundtrip(s, &cmd(&args), names.len() * 6, &mut buf).await;
}

fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

const TS_WIDTH: usize = 20;
/// Subscribers read the timestamp of every SAMPLE_EVERY-th message.
const SAMPLE_EVERY: u64 = 4;

/// Publishers: `clients` connections, each sending `pipeline` PUBLISHes per round trip to
/// channels from `channels` (round robin), each payload a zero-padded timestamp.
async fn publish_load(
    addr: SocketAddr,
    clients: usize,
    pipeline: usize,
    channels: Arc<Vec<String>>,
    epoch: Instant,
    stop: Arc<AtomicBool>,
) -> u64 {
    let published = Arc::new(AtomicU64::new(0));
    let mut tasks = vec![];
    for c in 0..clients {
        let (published, channels, stop) = (published.clone(), channels.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(addr).await;
            let mut buf = vec![0u8; 65536];
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let mut wire = Vec::with_capacity(pipeline * 64);
                for _ in 0..pipeline {
                    let ts = format!("{:0width$}", now_ns(epoch), width = TS_WIDTH);
                    wire.extend(cmd(&[
                        b"PUBLISH",
                        channels[i % channels.len()].as_bytes(),
                        ts.as_bytes(),
                    ]));
                    i += 1;
                }
                roundtrip(&mut s, &wire, pipeline, &mut buf).await;
                published.fetch_add(pipeline as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    published.load(Ordering::Relaxed)
}

/// A subscriber reading fixed-size frames; counts them and samples latency.
fn spawn_reader(
    mut s: TcpStream,
    frame_len: usize,
    ts_offset: usize,
    epoch: Instant,
    delivered: Arc<AtomicU64>,
    lat: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 256 * 1024];
        let mut samples = Vec::new();
        let mut n_frames = 0u64;
        let mut pending: Vec<u8> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let n = match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => n,
                Err(_) => continue,
            };
            pending.extend_from_slice(&buf[..n]);
            let whole = pending.len() / frame_len;
            for f in 0..whole {
                n_frames += 1;
                if n_frames.is_multiple_of(SAMPLE_EVERY) {
                    let start = f * frame_len + ts_offset;
                    if let Some(ts) = std::str::from_utf8(&pending[start..start + TS_WIDTH])
                        .ok()
                        .and_then(|t| t.parse::<u64>().ok())
                    {
                        samples.push(((now_ns(epoch).saturating_sub(ts)) / 1000) as u32);
                    }
                }
            }
            pending.drain(..whole * frame_len);
            delivered.fetch_add(whole as u64, Ordering::Relaxed);
        }
        lat.lock().unwrap().extend(samples);
    })
}

fn message_frame_len(kind: &str, pattern: Option<&str>, channel: &str) -> (usize, usize) {
    let bulk = |s: &str| format!("${}\r\n{}\r\n", s.len(), s);
    let mut head = format!("*{}\r\n", if pattern.is_some() { 4 } else { 3 });
    head += &bulk(kind);
    if let Some(p) = pattern {
        head += &bulk(p);
    }
    head += &bulk(channel);
    head += &format!("${TS_WIDTH}\r\n");
    (head.len() + TS_WIDTH + 2, head.len())
}

struct Figures {
    delivered_per_sec: f64,
}

fn percentile(v: &mut [u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize] as f64
}

/// Publish→delivery latency at a fixed, moderate rate (the same load for both servers):
/// every millisecond one publisher sends `per_ms` PUBLISHes to "fan", `subscribers`
/// connections receive them. Returns (p50, p99) in microseconds.
async fn fanout_latency(
    addr: SocketAddr,
    subscribers: usize,
    per_ms: usize,
    secs: f64,
) -> (f64, f64) {
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let frame = message_frame_len("message", None, "fan");
    let mut readers = vec![];
    for _ in 0..subscribers {
        let mut s = connect(addr).await;
        subscribe(&mut s, b"SUBSCRIBE", &["fan".to_string()]).await;
        readers.push(spawn_reader(
            s,
            frame.0,
            frame.1,
            epoch,
            delivered.clone(),
            lat.clone(),
            stop.clone(),
        ));
    }
    let mut p = connect(addr).await;
    let mut buf = vec![0u8; 65536];
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        tick.tick().await;
        let mut wire = Vec::new();
        for _ in 0..per_ms {
            let ts = format!("{:0width$}", now_ns(epoch), width = TS_WIDTH);
            wire.extend(cmd(&[b"PUBLISH", b"fan", ts.as_bytes()]));
        }
        roundtrip(&mut p, &wire, per_ms, &mut buf).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.await;
    }
    let mut samples = std::mem::take(&mut *lat.lock().unwrap());
    (
        percentile(&mut samples, 0.50),
        percentile(&mut samples, 0.99),
    )
}

/// Subscribers on `sub_names` (one connection each, or `per_conn` names per connection) with
/// `sub_cmd`, publishers on `pub_channels`; measure for `secs`.
#[allow(clippy::too_many_arguments)]
async fn pubsub_run(
    addr: SocketAddr,
    sub_cmd: &str,
    subscribers: Vec<Vec<String>>,
    frame: (usize, usize),
    pub_channels: Vec<String>,
    publishers: usize,
    pipeline: usize,
    secs: f64,
) -> Figures {
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::new()));
    let mut readers = vec![];
    for names in &subscribers {
        let mut s = connect(addr).await;
        subscribe(&mut s, sub_cmd.as_bytes(), names).await;
        readers.push(spawn_reader(
            s,
            frame.0,
            frame.1,
            epoch,
            delivered.clone(),
            lat.clone(),
            stop.clone(),
        ));
    }
    let pub_stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(publish_load(
        addr,
        publishers,
        pipeline,
        Arc::new(pub_channels),
        epoch,
        pub_stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs_f64(secs * 0.2)).await;
    let (d0, t0) = (delivered.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let (d1, t1) = (delivered.load(Ordering::Relaxed), Instant::now());
    pub_stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.await;
    }
    let elapsed = (t1 - t0).as_secs_f64();
    Figures {
        delivered_per_sec: (d1 - d0) as f64 / elapsed,
    }
}

/// PUBLISH throughput with no subscriber: `clients` connections at `pipeline`.
async fn publish_rate(addr: SocketAddr, clients: usize, pipeline: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let load = tokio::spawn(publish_load(
        addr,
        clients,
        pipeline,
        Arc::new(vec!["bench:nobody".to_string()]),
        epoch,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let n = load.await.unwrap();
    n as f64 / epoch.elapsed().as_secs_f64()
}

/// Run `make(i)`-generated commands from `clients` connections at `pipeline` for `secs`;
/// returns commands per second.
async fn command_rate(
    addr: SocketAddr,
    clients: usize,
    pipeline: usize,
    secs: f64,
    make: fn(u64) -> Vec<u8>,
) -> f64 {
    unit_rate(addr, clients, pipeline, secs, make, 1).await
}

/// `command_rate` for units that each get `per_unit` replies (a MULTI … EXEC transaction):
/// returns units per second.
async fn unit_rate(
    addr: SocketAddr,
    clients: usize,
    pipeline: usize,
    secs: f64,
    make: fn(u64) -> Vec<u8>,
    per_unit: usize,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = vec![];
    for c in 0..clients as u64 {
        let (stop, done) = (stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(addr).await;
            let mut buf = vec![0u8; 1 << 20];
            let mut i = c << 32;
            while !stop.load(Ordering::Relaxed) {
                let mut wire = Vec::new();
                for _ in 0..pipeline {
                    wire.extend(make(i));
                    i += 1;
                }
                // Every reply here (bulk ID, integer) ends with one line per command... except
                // bulk strings, which have two: count replies, not lines.
                s.write_all(&wire).await.expect("write");
                let mut pending = Vec::new();
                let mut replies = 0;
                while replies < pipeline * per_unit {
                    let n = s.read(&mut buf).await.expect("read");
                    assert!(n > 0, "server closed the connection");
                    pending.extend_from_slice(&buf[..n]);
                    let (complete, used) = count_replies(&pending);
                    replies += complete;
                    pending.drain(..used);
                }
                done.fetch_add(pipeline as u64, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Count complete top-level RESP replies at the start of `b`: (replies, bytes used).
fn count_replies(b: &[u8]) -> (usize, usize) {
    fn one(b: &[u8]) -> Option<usize> {
        let nl = memchr::memchr(b'\n', b)?;
        let head = std::str::from_utf8(&b[1..nl.saturating_sub(1)]).ok()?;
        match b[0] {
            b'$' => {
                let n: i64 = head.parse().ok()?;
                if n < 0 {
                    return Some(nl + 1);
                }
                let end = nl + 1 + n as usize + 2;
                (b.len() >= end).then_some(end)
            }
            b'*' => {
                let n: i64 = head.parse().ok()?;
                let mut pos = nl + 1;
                for _ in 0..n.max(0) {
                    pos += one(&b[pos..])?;
                }
                Some(pos)
            }
            _ => Some(nl + 1),
        }
    }
    let (mut count, mut pos) = (0, 0);
    while pos < b.len() {
        match one(&b[pos..]) {
            Some(used) => {
                pos += used;
                count += 1;
            }
            None => break,
        }
    }
    (count, pos)
}

/// MULTI, 10 XADDs of `xadd_small`, EXEC: 12 replies.
fn multi_10_xadds(i: u64) -> Vec<u8> {
    let mut wire = cmd(&[b"MULTI"]);
    for k in 0..10 {
        wire.extend(xadd_small(i * 10 + k));
    }
    wire.extend(cmd(&[b"EXEC"]));
    wire
}

/// MULTI, SET, PUBLISH (no subscriber), EXEC: 4 replies.
fn multi_set_publish(i: u64) -> Vec<u8> {
    let v = format!("{i:010}");
    let mut wire = cmd(&[b"MULTI"]);
    wire.extend(cmd(&[b"SET", b"bench:last", v.as_bytes()]));
    wire.extend(cmd(&[b"PUBLISH", b"bench:events", v.as_bytes()]));
    wire.extend(cmd(&[b"EXEC"]));
    wire
}

fn xadd_small(i: u64) -> Vec<u8> {
    let v = format!("{i:010}");
    cmd(&[
        b"XADD",
        b"bench:stream",
        b"*",
        b"field-one",
        v.as_bytes(),
        b"field-two",
        b"0123456789",
        b"field-3",
        b"abcdefghij",
    ])
}

/// Fill `key` with `n` entries of 3 fields of ~10 bytes (explicit IDs), pipelined.
async fn fill_stream(addr: SocketAddr, key: &str, n: u64) {
    let mut s = connect(addr).await;
    let mut buf = vec![0u8; 1 << 20];
    let batch = 1000;
    let mut i = 1;
    while i <= n {
        let mut wire = Vec::new();
        let end = (i + batch).min(n + 1);
        for j in i..end {
            let id = format!("{j}-0");
            let v = format!("{j:010}");
            wire.extend(cmd(&[
                b"XADD",
                key.as_bytes(),
                id.as_bytes(),
                b"field-one",
                v.as_bytes(),
                b"field-two",
                b"0123456789",
                b"field-3",
                b"abcdefghij",
            ]));
        }
        roundtrip(&mut s, &wire, ((end - i) * 2) as usize, &mut buf).await;
        i = end;
    }
}

async fn info_field(addr: SocketAddr, field: &str) -> u64 {
    let mut s = connect(addr).await;
    s.write_all(&cmd(&[b"INFO", b"memory"])).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let mut text = String::new();
    while !text.contains("mem_allocator") && !text.contains("maxmemory_policy") {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Memory per stream entry (3 fields of ~10 bytes) over 1,000,000 entries: (used_memory, RSS).
async fn memory_per_entry(t: &Target, n: u64) -> (f64, f64) {
    let (used0, rss0) = (info_field(t.addr, "used_memory").await, rss(t.child.id()));
    fill_stream(t.addr, "bench:mem", n).await;
    let (used1, rss1) = (info_field(t.addr, "used_memory").await, rss(t.child.id()));
    let mut s = connect(t.addr).await;
    roundtrip(
        &mut s,
        &cmd(&[b"DEL", b"bench:mem"]),
        1,
        &mut vec![0u8; 1024],
    )
    .await;
    (
        used1.saturating_sub(used0) as f64 / n as f64,
        rss1.saturating_sub(rss0) as f64 / n as f64,
    )
}

/// XRANGE of 100 entries from the middle of a 1,000,000-entry stream (filled once per server).
async fn xrange_rate(t: &Target, secs: f64) -> f64 {
    fill_stream(t.addr, "bench:big", 1_000_000).await;
    let rate = command_rate(t.addr, 50, 1, secs, |i| {
        let start = format!("{}-0", 400_000 + (i % 200_000));
        cmd(&[
            b"XRANGE",
            b"bench:big",
            start.as_bytes(),
            b"+",
            b"COUNT",
            b"100",
        ])
    })
    .await;
    let mut s = connect(t.addr).await;
    roundtrip(
        &mut s,
        &cmd(&[b"DEL", b"bench:big"]),
        1,
        &mut vec![0u8; 1024],
    )
    .await;
    rate
}

/// Server RSS growth per idle subscribed connection.
async fn memory_per_subscriber(t: &Target, n: usize) -> f64 {
    let before = rss(t.child.id());
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = connect(t.addr).await;
        subscribe(&mut s, b"SUBSCRIBE", &[format!("idle:{i:06}")]).await;
        conns.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss(t.child.id());
    drop(conns);
    tokio::time::sleep(Duration::from_millis(500)).await;
    (after.saturating_sub(before)) as f64 / n as f64
}

struct Row {
    name: String,
    unit: &'static str,
    redis: f64,
    relay: f64,
    higher_is_better: bool,
}

fn print_rows(rows: &[Row]) {
    println!("| workload | redis-server | relay | ratio (relay vs redis, >1 = relay better) |");
    println!("|---|---:|---:|---:|");
    for r in rows {
        let ratio = if r.higher_is_better {
            r.relay / r.redis
        } else {
            r.redis / r.relay
        };
        println!(
            "| {} | {:.0} {} | {:.0} {} | {:.2} |",
            r.name, r.redis, r.unit, r.relay, r.unit, ratio
        );
    }
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1)?.parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

type Workload<'a> = Box<dyn Fn(&Target) -> Vec<f64> + 'a>;
/// A figure's name, unit, and whether higher is better.
type Figure = (String, &'static str, bool);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = arg(&args, "--seconds").unwrap_or(3.0);
    let rounds: usize = arg(&args, "--rounds").unwrap_or(3);
    let only: Option<String> = arg(&args, "--only");
    let single: Option<String> = arg(&args, "--target");
    let rt = &tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let targets = [start("redis"), start("relay")];
    let version = Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "relay-bench: median of {rounds} alternating rounds of {secs}s, load generator on 1 thread, {} cores; {version}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Each workload yields one or more figures: (name, unit, higher is better).
    let mut workloads: Vec<(Vec<Figure>, Workload)> = vec![];
    for pipeline in [1usize, 16] {
        workloads.push((
            vec![(
                format!("PUBLISH, 50 clients, pipeline {pipeline}"),
                "msg/s",
                true,
            )],
            Box::new(move |t: &Target| vec![rt.block_on(publish_rate(t.addr, 50, pipeline, secs))]),
        ));
    }
    workloads.push((
        vec![(
            "fan-out 1 channel x 100 subscribers: delivered (4 publishers, closed loop)".into(),
            "msg/s",
            true,
        )],
        Box::new(|t: &Target| {
            let frame = message_frame_len("message", None, "fan");
            let subs = (0..100).map(|_| vec!["fan".to_string()]).collect();
            vec![
                rt.block_on(pubsub_run(
                    t.addr,
                    "SUBSCRIBE",
                    subs,
                    frame,
                    vec!["fan".into()],
                    4,
                    1,
                    secs,
                ))
                .delivered_per_sec,
            ]
        }),
    ));
    workloads.push((
        vec![
            (
                "fan-out 1 x 100 at 2,000 publishes/s: publish→delivery p50".into(),
                "µs",
                false,
            ),
            (
                "fan-out 1 x 100 at 2,000 publishes/s: publish→delivery p99".into(),
                "µs",
                false,
            ),
        ],
        Box::new(|t: &Target| {
            let (p50, p99) = rt.block_on(fanout_latency(t.addr, 100, 2, secs));
            vec![p50, p99]
        }),
    ));
    workloads.push((
        vec![(
            "1,000 channels x 1 subscriber: delivered".into(),
            "msg/s",
            true,
        )],
        Box::new(|t: &Target| {
            let channels: Vec<String> = (0..1000).map(|i| format!("ch:{i:04}")).collect();
            let frame = message_frame_len("message", None, "ch:0000");
            let subs = channels.iter().map(|c| vec![c.clone()]).collect();
            vec![
                rt.block_on(pubsub_run(
                    t.addr,
                    "SUBSCRIBE",
                    subs,
                    frame,
                    channels.clone(),
                    50,
                    16,
                    secs,
                ))
                .delivered_per_sec,
            ]
        }),
    ));
    workloads.push((
        vec![(
            "10 subscribers on one pattern: delivered".into(),
            "msg/s",
            true,
        )],
        Box::new(|t: &Target| {
            let frame = message_frame_len("pmessage", Some("events.*"), "events.x");
            let subs = (0..10).map(|_| vec!["events.*".to_string()]).collect();
            vec![
                rt.block_on(pubsub_run(
                    t.addr,
                    "PSUBSCRIBE",
                    subs,
                    frame,
                    vec!["events.x".into()],
                    50,
                    16,
                    secs,
                ))
                .delivered_per_sec,
            ]
        }),
    ));
    workloads.push((
        vec![(
            "PUBLISH with 10,000 non-matching patterns, 50 clients, pipeline 16".into(),
            "msg/s",
            true,
        )],
        Box::new(|t: &Target| {
            vec![rt.block_on(async {
                let mut holder = connect(t.addr).await;
                let patterns: Vec<String> =
                    (0..10_000).map(|i| format!("tenant:{i:05}:*")).collect();
                for chunk in patterns.chunks(1000) {
                    subscribe(&mut holder, b"PSUBSCRIBE", chunk).await;
                }
                let rate = publish_rate(t.addr, 50, 16, secs).await;
                drop(holder);
                rate
            })]
        }),
    ));
    for pipeline in [1usize, 16] {
        workloads.push((
            vec![(
                format!("XADD, 50 clients, pipeline {pipeline}"),
                "entries/s",
                true,
            )],
            Box::new(move |t: &Target| {
                let rate = rt.block_on(command_rate(t.addr, 50, pipeline, secs, xadd_small));
                rt.block_on(async {
                    let mut s = connect(t.addr).await;
                    roundtrip(
                        &mut s,
                        &cmd(&[b"DEL", b"bench:stream"]),
                        1,
                        &mut vec![0u8; 1024],
                    )
                    .await;
                });
                vec![rate]
            }),
        ));
    }
    workloads.push((
        vec![(
            format!(
                "consumer group of {}, XREADGROUP COUNT 100 + XACK, 4 producers pipeline 16: consumed",
                group::CONSUMERS
            ),
            "entries/s",
            true,
        )],
        Box::new(|t: &Target| vec![rt.block_on(group::consumed_rate(t.addr, 4, 16, secs))]),
    ));
    workloads.push((
        vec![
            (
                format!(
                    "consumer group of {} at 10,000 entries/s: XADD→XREADGROUP p50",
                    group::CONSUMERS
                ),
                "µs",
                false,
            ),
            (
                format!(
                    "consumer group of {} at 10,000 entries/s: XADD→XREADGROUP p99",
                    group::CONSUMERS
                ),
                "µs",
                false,
            ),
        ],
        Box::new(|t: &Target| {
            let (p50, p99) = rt.block_on(group::latency(t.addr, 10, secs));
            vec![p50, p99]
        }),
    ));
    workloads.push((
        vec![(
            "XRANGE COUNT 100 from the middle of a 1M-entry stream, 50 clients".into(),
            "calls/s",
            true,
        )],
        Box::new(|t: &Target| vec![rt.block_on(xrange_rate(t, secs))]),
    ));
    workloads.push((
        vec![
            (
                "memory per stream entry, 3 fields of ~10 bytes, 1M entries (used_memory)".into(),
                "bytes",
                false,
            ),
            (
                "memory per stream entry, 3 fields of ~10 bytes, 1M entries (RSS)".into(),
                "bytes",
                false,
            ),
        ],
        Box::new(|t: &Target| {
            let (used, rss) = rt.block_on(memory_per_entry(t, 1_000_000));
            vec![used, rss]
        }),
    ));
    for policy in ["always", "everysec"] {
        workloads.push((
            vec![(
                format!("XADD, 50 clients, pipeline 1, appendonly yes, appendfsync {policy}"),
                "entries/s",
                true,
            )],
            Box::new(move |t: &Target| vec![rt.block_on(aof::xadd_rate(t.name, policy, secs))]),
        ));
    }
    let aof_mb: u64 = arg(&args, "--aof-mb").unwrap_or(1024);
    workloads.push((
        vec![(
            format!("time to load a {aof_mb} MB AOF of XADDs"),
            "ms",
            false,
        )],
        Box::new(move |t: &Target| vec![rt.block_on(aof::load_time(t.name, aof_mb))]),
    ));
    workloads.push((
        vec![("MULTI + 10 XADD + EXEC, 50 clients".into(), "tx/s", true)],
        Box::new(move |t: &Target| {
            vec![rt.block_on(unit_rate(t.addr, 50, 1, secs, multi_10_xadds, 12))]
        }),
    ));
    workloads.push((
        vec![(
            "MULTI + SET + PUBLISH + EXEC, 50 clients".into(),
            "tx/s",
            true,
        )],
        Box::new(move |t: &Target| {
            vec![rt.block_on(unit_rate(t.addr, 50, 1, secs, multi_set_publish, 4))]
        }),
    ));
    let compact_entries: u64 = arg(&args, "--compact-entries").unwrap_or(1_000_000);
    workloads.push((
        vec![
            (
                format!(
                    "BGREWRITEAOF of a {compact_entries}-entry stream, half its entries pending (ms)"
                ),
                "ms",
                false,
            ),
            (
                format!("time to load that compacted AOF ({compact_entries} entries)"),
                "ms",
                false,
            ),
        ],
        Box::new(move |t: &Target| {
            let (rewrite, load) = rt.block_on(aof::compacted(t.name, compact_entries));
            vec![rewrite, load]
        }),
    ));
    workloads.push((
        vec![(
            "memory per idle subscribed connection (RSS)".into(),
            "bytes",
            false,
        )],
        Box::new(|t: &Target| vec![rt.block_on(memory_per_subscriber(t, 5000))]),
    ));

    let mut rows: Vec<Row> = vec![];
    for (figures, run) in &workloads {
        if !figures
            .iter()
            .any(|(name, _, _)| only.as_deref().is_none_or(|o| name.contains(o)))
        {
            continue;
        }
        let mut samples: [Vec<Vec<f64>>; 2] = [vec![], vec![]];
        for _ in 0..rounds {
            for (i, t) in targets.iter().enumerate() {
                if single.as_deref().is_none_or(|s| s == t.name) {
                    samples[i].push(run(t));
                }
            }
        }
        for (k, (name, unit, higher)) in figures.iter().enumerate() {
            let redis = median(samples[0].iter().map(|v| v[k]).collect());
            let relay = median(samples[1].iter().map(|v| v[k]).collect());
            eprintln!("  {name}: redis {redis:.1} {unit}, relay {relay:.1} {unit}");
            rows.push(Row {
                name: name.clone(),
                unit,
                redis,
                relay,
                higher_is_better: *higher,
            });
        }
    }
    println!();
    print_rows(&rows);
}
