//! Persistence workloads of `relay-bench`: XADD throughput with the append-only file on
//! (same appendfsync for both servers), and the time to load a large AOF at start. Each run
//! starts its own server on a fresh directory, so the figures include nothing left over.

use super::{cmd, command_rate, connect, roundtrip, start_with, xadd_small, Target};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn fresh_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        total += if p.is_dir() {
            size_of(&p)
        } else {
            e.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn start_aof(name: &'static str, dir: &Path, policy: &str) -> Target {
    start_with(
        name,
        &[
            "--appendonly",
            "yes",
            "--appendfsync",
            policy,
            "--dir",
            dir.to_str().unwrap(),
            // Compaction would rewrite what the load test is about to load.
            "--auto-aof-rewrite-percentage",
            "0",
        ],
    )
}

/// XADD, 50 clients at pipeline 1, with the AOF on under `policy`.
pub async fn xadd_rate(name: &'static str, policy: &str, secs: f64) -> f64 {
    let dir = fresh_dir(&format!("{name}-{policy}"));
    let t = start_aof(name, &dir, policy);
    let rate = command_rate(t.addr, 50, 1, secs, xadd_small).await;
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
    rate
}

/// INFO persistence of the server at `addr` (read until its last field), if it answers.
async fn persistence_info(addr: std::net::SocketAddr) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(&cmd(&[b"INFO", b"persistence"])).await.ok()?;
    let mut buf = vec![0u8; 8192];
    let mut text = String::new();
    while !text.contains("aof_last_bgrewrite_status") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    Some(text)
}

/// Whether INFO persistence on `addr` says the load is over.
async fn loaded(addr: std::net::SocketAddr) -> bool {
    persistence_info(addr)
        .await
        .is_some_and(|text| text.lines().any(|l| l.trim() == "loading:0"))
}

/// Add 2,000 entries of three 60-byte values to `key` in one pipeline; `i` counts them.
async fn add_batch(s: &mut tokio::net::TcpStream, key: &[u8], i: &mut u64, buf: &mut [u8]) {
    let value = [b'v'; 60];
    let mut wire = Vec::new();
    for _ in 0..2000 {
        *i += 1;
        let n = format!("{:020}", *i);
        wire.extend(cmd(&[
            b"XADD",
            key,
            b"*",
            b"seq",
            n.as_bytes(),
            b"a",
            &value,
            b"b",
            &value,
        ]));
    }
    roundtrip(s, &wire, 4000, buf).await;
}

/// Milliseconds from process start to `loading:0` for an AOF of about `mb` MB of XADDs
/// (entries of three 60-byte values), written by the same server beforehand.
pub async fn load_time(name: &'static str, mb: u64) -> f64 {
    let dir = fresh_dir(&format!("{name}-load"));
    {
        let t = start_aof(name, &dir, "no");
        let mut s = connect(t.addr).await;
        let mut buf = vec![0u8; 1 << 20];
        let mut i = 0u64;
        while size_of(&dir) < mb << 20 {
            add_batch(&mut s, b"bench:load", &mut i, &mut buf).await;
        }
        restart_ms(name, &dir, t, &mut s).await
    }
}

/// SHUTDOWN `t` (it writes and fsyncs the AOF; no reply), start the server again on `dir`
/// and return the milliseconds from process start to `loading:0`; the directory goes.
async fn restart_ms(
    name: &'static str,
    dir: &Path,
    t: Target,
    s: &mut tokio::net::TcpStream,
) -> f64 {
    let _ = s.write_all(&cmd(&[b"SHUTDOWN"])).await;
    let mut t = t;
    let _ = t.child.wait();
    let started = Instant::now();
    let t = start_aof(name, dir, "everysec");
    while !loaded(t.addr).await {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(t);
    let _ = std::fs::remove_dir_all(dir);
    ms
}

/// INFO persistence says no rewrite is running or scheduled.
async fn rewrite_done(addr: std::net::SocketAddr) -> bool {
    persistence_info(addr).await.is_some_and(|text| {
        let has = |l: &str| text.lines().any(|x| x.trim() == l);
        has("aof_rewrite_in_progress:0") && has("aof_rewrite_scheduled:0")
    })
}

/// A stream of `entries` entries (three 60-byte values each) with a consumer group that has
/// read all of them and acknowledged every other one (half the entries pending), compacted
/// with BGREWRITEAOF: milliseconds the rewrite took (BGREWRITEAOF to done) and from process
/// start to `loading:0` on the compacted files. Redis writes its base as RDB (its default
/// aof-use-rdb-preamble yes); Relay as its stream-state records.
pub async fn compacted(name: &'static str, entries: u64) -> (f64, f64) {
    let dir = fresh_dir(&format!("{name}-compact"));
    {
        let t = start_aof(name, &dir, "no");
        let mut s = connect(t.addr).await;
        let mut buf = vec![0u8; 1 << 20];
        let mut i = 0u64;
        while i < entries {
            add_batch(&mut s, b"bench:compact", &mut i, &mut buf).await;
        }
        roundtrip(
            &mut s,
            &cmd(&[b"XGROUP", b"CREATE", b"bench:compact", b"g", b"0"]),
            1,
            &mut buf,
        )
        .await;
        // Read everything in pages, acknowledging every other entry.
        let mut read = 0;
        while read < entries {
            let page = cmd(&[
                b"XREADGROUP",
                b"GROUP",
                b"g",
                b"c",
                b"COUNT",
                b"10000",
                b"STREAMS",
                b"bench:compact",
                b">",
            ]);
            s.write_all(&page).await.unwrap();
            let ids = read_ids(&mut s, &mut buf).await;
            read += ids.len() as u64;
            if ids.is_empty() {
                break;
            }
            let mut ack: Vec<&[u8]> = vec![b"XACK", b"bench:compact", b"g"];
            ack.extend(ids.iter().step_by(2).map(|id| id.as_slice()));
            roundtrip(&mut s, &cmd(&ack), 1, &mut buf).await;
        }
        let started = Instant::now();
        roundtrip(&mut s, &cmd(&[b"BGREWRITEAOF"]), 1, &mut buf).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        while !rewrite_done(t.addr).await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let rewrite_ms = started.elapsed().as_secs_f64() * 1000.0;
        let load_ms = restart_ms(name, &dir, t, &mut s).await;
        (rewrite_ms, load_ms)
    }
}

/// Read one XREADGROUP reply (RESP2) and return the entry IDs in it: every bulk string that
/// follows a two-element array header is an ID.
async fn read_ids(s: &mut tokio::net::TcpStream, buf: &mut [u8]) -> Vec<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let n = s.read(buf).await.unwrap_or(0);
        if n == 0 {
            return vec![];
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(ids) = parse_ids(&data) {
            return ids;
        }
    }
}

/// The IDs of a complete XREADGROUP reply in `data`, or `None` if it is not complete yet.
fn parse_ids(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    // *1 [ *2 [ $key, *n [ *2 [ $id, *6 [...] ] ... ] ] ]  (or a nil array)
    if data.starts_with(b"*-1\r\n") {
        return Some(vec![]);
    }
    let mut pos = 0;
    let line = |pos: &mut usize| -> Option<(u8, i64)> {
        let end = data[*pos..].windows(2).position(|w| w == b"\r\n")? + *pos;
        let kind = data[*pos];
        let n = std::str::from_utf8(&data[*pos + 1..end])
            .ok()?
            .parse()
            .ok()?;
        *pos = end + 2;
        Some((kind, n))
    };
    let bulk = |pos: &mut usize| -> Option<Vec<u8>> {
        let (_, len) = line(pos)?;
        let end = *pos + len as usize;
        let b = data.get(*pos..end)?.to_vec();
        data.get(end..end + 2)?;
        *pos = end + 2;
        Some(b)
    };
    line(&mut pos)?; // *1
    line(&mut pos)?; // *2
    bulk(&mut pos)?; // key
    let (_, n) = line(&mut pos)?;
    let mut ids = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        line(&mut pos)?; // *2
        ids.push(bulk(&mut pos)?);
        let (_, fields) = line(&mut pos)?;
        for _ in 0..fields {
            bulk(&mut pos)?;
        }
    }
    Some(ids)
}
