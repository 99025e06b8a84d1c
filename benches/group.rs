//! The consumer-group workload of `relay-bench`: producers XADD to one stream, a group of
//! four consumers XREADGROUP COUNT 100 (BLOCK 100) and XACK what they got. It measures how
//! many entries the group consumes per second with producers in a closed loop, and the
//! XADD→XREADGROUP latency at a fixed production rate (the same load for both servers).
//! Every entry carries its production time (nanoseconds since the run began) in field `ts`.

use super::{cmd, connect, now_ns, percentile};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &[u8] = b"bench:queue";
const GROUP: &[u8] = b"workers";
pub const CONSUMERS: usize = 4;

/// A parsed reply, as much as the consumers need.
enum Val {
    Bulk(Vec<u8>),
    Arr(Vec<Val>),
    Other,
}

/// One complete reply at the start of `b`, and its length.
fn parse(b: &[u8]) -> Option<(Val, usize)> {
    let nl = memchr::memchr(b'\n', b)?;
    let head = std::str::from_utf8(b.get(1..nl.saturating_sub(1))?).ok()?;
    match b.first()? {
        b'$' => {
            let n: i64 = head.parse().ok()?;
            if n < 0 {
                return Some((Val::Other, nl + 1));
            }
            let end = nl + 1 + n as usize;
            (b.len() >= end + 2).then(|| (Val::Bulk(b[nl + 1..end].to_vec()), end + 2))
        }
        b'*' | b'%' => {
            let n: i64 = head.parse().ok()?;
            let n = if b[0] == b'%' { n * 2 } else { n };
            let mut items = Vec::new();
            let mut pos = nl + 1;
            for _ in 0..n.max(0) {
                let (v, used) = parse(&b[pos..])?;
                items.push(v);
                pos += used;
            }
            Some((Val::Arr(items), pos))
        }
        _ => Some((Val::Other, nl + 1)),
    }
}

async fn read_reply(s: &mut TcpStream, pending: &mut Vec<u8>, buf: &mut [u8]) -> Val {
    loop {
        if let Some((v, used)) = parse(pending) {
            pending.drain(..used);
            return v;
        }
        let n = s.read(buf).await.expect("read");
        assert!(n > 0, "server closed the connection");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// (entry IDs, production timestamps) in an XREADGROUP reply.
fn entries(reply: &Val) -> (Vec<Vec<u8>>, Vec<u64>) {
    let (mut ids, mut ts) = (vec![], vec![]);
    let Val::Arr(streams) = reply else {
        return (ids, ts);
    };
    // RESP2: [[key, entries]]; both shapes put the entries list second.
    let lists: Vec<&Val> = match streams.as_slice() {
        [Val::Arr(pair)] => pair.get(1).into_iter().collect(),
        [_, list] => vec![list],
        _ => vec![],
    };
    for list in lists {
        let Val::Arr(list) = list else { continue };
        for e in list {
            let Val::Arr(e) = e else { continue };
            if let Some(Val::Bulk(id)) = e.first() {
                ids.push(id.clone());
            }
            if let Some(Val::Arr(fv)) = e.get(1) {
                if let Some(Val::Bulk(t)) = fv.get(1) {
                    if let Some(t) = std::str::from_utf8(t).ok().and_then(|t| t.parse().ok()) {
                        ts.push(t);
                    }
                }
            }
        }
    }
    (ids, ts)
}

async fn setup(addr: SocketAddr) {
    let mut s = connect(addr).await;
    let mut pending = vec![];
    let mut buf = vec![0u8; 4096];
    for c in [
        cmd(&[b"DEL", KEY]),
        cmd(&[b"XGROUP", b"CREATE", KEY, GROUP, b"$", b"MKSTREAM"]),
    ] {
        s.write_all(&c).await.expect("write");
        read_reply(&mut s, &mut pending, &mut buf).await;
    }
}

fn xadd(epoch: Instant) -> Vec<u8> {
    let ts = now_ns(epoch).to_string();
    cmd(&[
        b"XADD",
        KEY,
        b"*",
        b"ts",
        ts.as_bytes(),
        b"job",
        b"resize-image",
        b"user",
        b"0123456789",
    ])
}

/// The four consumers: read, record latencies, acknowledge, until `stop`.
fn spawn_consumers(
    addr: SocketAddr,
    epoch: Instant,
    consumed: Arc<AtomicU64>,
    lat: Arc<Mutex<Vec<u32>>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CONSUMERS)
        .map(|i| {
            let (consumed, lat, stop) = (consumed.clone(), lat.clone(), stop.clone());
            tokio::spawn(async move {
                let mut s = connect(addr).await;
                let (mut pending, mut buf) = (vec![], vec![0u8; 1 << 20]);
                let name = format!("worker-{i}");
                let read = cmd(&[
                    b"XREADGROUP",
                    b"GROUP",
                    GROUP,
                    name.as_bytes(),
                    b"COUNT",
                    b"100",
                    b"BLOCK",
                    b"100",
                    b"STREAMS",
                    KEY,
                    b">",
                ]);
                let mut samples = vec![];
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&read).await.expect("write");
                    let reply = read_reply(&mut s, &mut pending, &mut buf).await;
                    let now = now_ns(epoch);
                    let (ids, ts) = entries(&reply);
                    samples.extend(ts.iter().map(|t| (now.saturating_sub(*t) / 1000) as u32));
                    if ids.is_empty() {
                        continue;
                    }
                    let mut ack: Vec<&[u8]> = vec![b"XACK", KEY, GROUP];
                    ack.extend(ids.iter().map(|id| id.as_slice()));
                    s.write_all(&cmd(&ack)).await.expect("write");
                    read_reply(&mut s, &mut pending, &mut buf).await;
                    consumed.fetch_add(ids.len() as u64, Ordering::Relaxed);
                }
                lat.lock().unwrap().extend(samples);
            })
        })
        .collect()
}

/// Entries consumed (read and acknowledged) per second by the group while `producers`
/// connections XADD in a closed loop, `pipeline` at a time.
pub async fn consumed_rate(addr: SocketAddr, producers: usize, pipeline: usize, secs: f64) -> f64 {
    setup(addr).await;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let consumed = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(vec![]));
    let consumers = spawn_consumers(addr, epoch, consumed.clone(), lat, stop.clone());
    let mut tasks = vec![];
    for _ in 0..producers {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = connect(addr).await;
            let (mut pending, mut buf) = (vec![], vec![0u8; 1 << 16]);
            while !stop.load(Ordering::Relaxed) {
                let mut wire = vec![];
                for _ in 0..pipeline {
                    wire.extend(xadd(epoch));
                }
                s.write_all(&wire).await.expect("write");
                for _ in 0..pipeline {
                    read_reply(&mut s, &mut pending, &mut buf).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (c0, t0) = (consumed.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let rate = (consumed.load(Ordering::Relaxed) - c0) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks.into_iter().chain(consumers) {
        let _ = t.await;
    }
    rate
}

/// XADD→XREADGROUP latency (p50, p99, µs) with one producer adding `per_ms` entries every
/// millisecond.
pub async fn latency(addr: SocketAddr, per_ms: usize, secs: f64) -> (f64, f64) {
    setup(addr).await;
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let consumed = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(vec![]));
    let consumers = spawn_consumers(addr, epoch, consumed, lat.clone(), stop.clone());
    let mut s = connect(addr).await;
    let (mut pending, mut buf) = (vec![], vec![0u8; 1 << 16]);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        tick.tick().await;
        let mut wire = vec![];
        for _ in 0..per_ms {
            wire.extend(xadd(epoch));
        }
        s.write_all(&wire).await.expect("write");
        for _ in 0..per_ms {
            read_reply(&mut s, &mut pending, &mut buf).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in consumers {
        let _ = t.await;
    }
    let mut samples = std::mem::take(&mut *lat.lock().unwrap());
    (
        percentile(&mut samples, 0.50),
        percentile(&mut samples, 0.99),
    )
}
