//! Helpers for the durability tests: the built relay-server on a directory of its own,
//! started and waited for until its AOF is loaded, killed with SIGKILL or shut down.

use super::{relay_binary, RawConn};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh directory for one test's AOF.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A relay-server child process, killed on drop.
pub type Server = super::Spawned;

pub use super::free_port;

pub fn spawn(dir: &Path, extra: &[&str]) -> Child {
    let port = free_port();
    Command::new(relay_binary())
        .args(["--port", &port.to_string(), "--loglevel", "notice"])
        .args(["--dir", dir.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn relay-server")
}

/// Start relay-server on `dir` (the AOF on unless `extra` says otherwise) and wait until it
/// has loaded its AOF.
pub async fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--dir", dir.to_str().unwrap()];
    if !extra.iter().any(|a| a.starts_with("--appendonly")) {
        args.extend(["--appendonly", "yes"]);
    }
    args.extend(extra);
    let server = super::spawn_binary(&args).await;
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "relay-server did not load"
        );
        let mut c = RawConn::connect(server.addr).await;
        if loaded(&c.cmd(&["INFO", "persistence"]).await.text()) {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// INFO persistence says the load is over (`loading:0`, not `async_loading:0`).
pub fn loaded(info: &str) -> bool {
    info.lines().any(|l| l.trim() == "loading:0")
}

pub fn kill9(server: &mut Server) {
    let _ = server.child.kill(); // SIGKILL
    let _ = server.child.wait();
}

/// SHUTDOWN (no reply) and wait for the process to exit.
pub async fn shutdown(mut server: Server) {
    let mut c = RawConn::connect(server.addr).await;
    c.send(&["SHUTDOWN"]).await;
    let status = server.child.wait().unwrap();
    assert!(status.success());
}

/// The incremental AOF file of `dir`.
pub fn incr_file(dir: &Path) -> PathBuf {
    dir.join("appendonlydir/appendonly.aof.1.incr.aof")
}
