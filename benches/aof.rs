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

/// Whether INFO persistence on `s` says the load is over.
async fn loaded(addr: std::net::SocketAddr) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(&cmd(&[b"INFO", b"persistence"])).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 8192];
    let mut text = String::new();
    while !text.contains("aof_enabled") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    text.lines().any(|l| l.trim() == "loading:0")
}

/// Milliseconds from process start to `loading:0` for an AOF of about `mb` MB of XADDs
/// (entries of three 60-byte values), written by the same server beforehand.
pub async fn load_time(name: &'static str, mb: u64) -> f64 {
    let dir = fresh_dir(&format!("{name}-load"));
    {
        let t = start_aof(name, &dir, "no");
        let mut s = connect(t.addr).await;
        let mut buf = vec![0u8; 1 << 20];
        let value = [b'v'; 60];
        let mut i = 0u64;
        while size_of(&dir) < mb << 20 {
            let mut wire = Vec::new();
            for _ in 0..2000 {
                i += 1;
                let n = format!("{i:020}");
                wire.extend(cmd(&[
                    b"XADD",
                    b"bench:load",
                    b"*",
                    b"seq",
                    n.as_bytes(),
                    b"a",
                    &value,
                    b"b",
                    &value,
                ]));
            }
            roundtrip(&mut s, &wire, 4000, &mut buf).await;
        }
        // SHUTDOWN writes and fsyncs the AOF (no reply).
        let _ = s.write_all(&cmd(&[b"SHUTDOWN"])).await;
        let mut t = t;
        let _ = t.child.wait();
    }
    let started = Instant::now();
    let t = start_aof(name, &dir, "everysec");
    while !loaded(t.addr).await {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
    ms
}
