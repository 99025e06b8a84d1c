//! Durability: the append-only file (AOF) of effects.
//!
//! Every change to the keyspace is logged as the command that reproduces it exactly (XADD
//! with its concrete ID, SET with an absolute PXAT, the XCLAIM and XGROUP SETID a group read
//! caused, DEL for a key that expired). Records for one key are appended while its shard is
//! locked, so they are in the order the changes were applied; a record is one command, so a
//! multi-key effect (RENAME) is one atomic record.
//!
//! Appending only copies bytes into a shared buffer. A dedicated writer thread writes the
//! buffer to the current file and fsyncs it as `appendfsync` says: `always` — every write
//! waits (in its own connection, nobody else does) until its record is on disk, and all the
//! records that arrived during one fsync share the next (group commit); `everysec` — an
//! fsync at least once a second; `no` — the kernel decides.
//!
//! Files follow Redis 7's multi-part layout: `<dir>/<appenddirname>/` holds a manifest
//! naming an optional base file and the incremental files, loaded in order at start
//! (`load`), and replaced atomically (write, fsync, rename, fsync the directory).

pub mod load;
pub mod manifest;
pub mod rewrite;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The command name of a checkpoint record: `RELAY-CRC <batch bytes> <crc32 hex> <batch
/// number>`, written after every write batch over the bytes since the previous checkpoint.
/// Batches are numbered from 1 in each file, so a batch that is missing, repeated or out of
/// place is damage even though each batch's own checksum holds. (Files written before the
/// number was added end their batches with the first three fields only; they still load.)
pub const CHECKPOINT: &[u8] = b"RELAY-CRC";

/// End the batch whose bytes are all of `batch` with its checkpoint, as batch number `seq`
/// of its file.
pub fn end_batch(batch: &mut Vec<u8>, seq: u64) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(batch);
    let sum = format!("{:08x}", crc.finalize());
    let (mut len, mut n) = (itoa::Buffer::new(), itoa::Buffer::new());
    let len = len.format(batch.len());
    encode_command(
        batch,
        &[
            CHECKPOINT,
            len.as_bytes(),
            sum.as_bytes(),
            n.format(seq).as_bytes(),
        ],
    );
}

/// `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always = 0,
    EverySec = 1,
    No = 2,
}

impl Fsync {
    pub fn parse(v: &str) -> Option<Fsync> {
        match v.to_ascii_lowercase().as_str() {
            "always" => Some(Fsync::Always),
            "everysec" => Some(Fsync::EverySec),
            "no" => Some(Fsync::No),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::EverySec => "everysec",
            Fsync::No => "no",
        }
    }

    fn from_u8(v: u8) -> Fsync {
        match v {
            0 => Fsync::Always,
            2 => Fsync::No,
            _ => Fsync::EverySec,
        }
    }
}

pub use crate::resp::{encode_command, encode_command_parts};

/// What the writer thread and the appenders share.
struct Pending {
    /// Records not yet handed to the writer.
    buf: Vec<u8>,
    /// The database the records in the file are for (a SELECT precedes a change).
    db: Option<usize>,
    /// Bytes appended since start (the offset every record ends at).
    appended: u64,
    /// The writer should stop once the buffer is written.
    stopping: bool,
    /// A compaction's cut: the first `n` bytes of `buf` still go to the current file, the
    /// rest to this new incremental file.
    rotate: Option<(usize, std::fs::File)>,
    /// SAVE asked for an fsync whatever the policy.
    force_sync: bool,
    /// A transaction's records, gathered while EXEC runs and appended as one block.
    transaction: Option<Vec<u8>>,
}

/// INFO persistence counters.
#[derive(Default)]
pub struct AofStats {
    pub rewriting: AtomicBool,
    /// BGREWRITEAOF/BGSAVE inside EXEC: started after it, by the next background tick (a
    /// compaction's cut in the middle of a transaction would split it between the files).
    pub scheduled: AtomicBool,
    /// The appended offset known to be fsynced.
    pub synced: AtomicU64,
    /// Seconds the last compaction took (-1: none yet).
    pub last_rewrite_secs: std::sync::atomic::AtomicI64,
    pub last_rewrite_ok: AtomicBool,
    /// Unix time of the last successful compaction, or of the start (LASTSAVE).
    pub last_save: AtomicU64,
    /// Size of the files right after the last compaction or load (auto-rewrite's base).
    pub rewrite_base: AtomicU64,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    pub last_write_ok: AtomicBool,
    pub fsyncs: AtomicU64,
    pub delayed_fsync: AtomicU64,
}

/// The append-only file of one server.
pub struct Aof {
    /// Appends are logged only while on (off while loading, or with `appendonly no`).
    enabled: AtomicBool,
    policy: AtomicU8,
    pending: Mutex<Pending>,
    wake: Condvar,
    /// The offset known to be on disk (under `always`), or written (otherwise).
    durable: tokio::sync::watch::Sender<u64>,
    pub stats: AofStats,
    dir: Mutex<Option<PathBuf>>,
    /// The manifest in force and the file names (for compaction).
    files: Mutex<Option<(manifest::Manifest, manifest::Names)>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Default for Aof {
    fn default() -> Self {
        Aof {
            enabled: AtomicBool::new(false),
            policy: AtomicU8::new(Fsync::EverySec as u8),
            pending: Mutex::new(Pending {
                buf: Vec::new(),
                db: None,
                appended: 0,
                stopping: false,
                rotate: None,
                force_sync: false,
                transaction: None,
            }),
            wake: Condvar::new(),
            durable: tokio::sync::watch::Sender::new(0),
            stats: AofStats {
                last_write_ok: AtomicBool::new(true),
                last_rewrite_ok: AtomicBool::new(true),
                last_rewrite_secs: std::sync::atomic::AtomicI64::new(-1),
                ..Default::default()
            },
            dir: Mutex::new(None),
            files: Mutex::new(None),
            writer: Mutex::new(None),
        }
    }
}

impl Aof {
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn policy(&self) -> Fsync {
        Fsync::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn set_policy(&self, p: Fsync) {
        self.policy.store(p as u8, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// The directory of the AOF files, once opened.
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.lock().ok().and_then(|d| d.clone())
    }

    /// Bytes appended so far (a client waits for the offset its writes ended at).
    pub fn appended(&self) -> u64 {
        self.pending.lock().map_or(0, |p| p.appended)
    }

    /// The offset up to which records are durable (per the policy).
    pub fn durable(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Wait until the records up to `offset` are durable.
    pub async fn wait_durable(&self, offset: u64) {
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|d| *d >= offset).await;
    }

    /// Append already-encoded records for database `db` (a SELECT is written first when the
    /// database changes). Called with the changed keys' shard locked.
    pub fn append(&self, db: usize, records: &[u8]) {
        if !self.enabled() || records.is_empty() {
            return;
        }
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        let p = &mut *p;
        if let Some(t) = p.transaction.as_mut() {
            // Inside EXEC: gathered, appended whole at its end.
            if p.db != Some(db) {
                let mut n = itoa::Buffer::new();
                encode_command(t, &[b"SELECT", n.format(db).as_bytes()]);
                p.db = Some(db);
            }
            t.extend_from_slice(records);
            return;
        }
        // The writer only needs waking when the buffer goes from empty to not: while it is
        // busy it takes everything that piled up on its next turn (no wake-up per record).
        let wake = p.buf.is_empty();
        if p.db != Some(db) {
            let mut n = itoa::Buffer::new();
            let before = p.buf.len();
            encode_command(&mut p.buf, &[b"SELECT", n.format(db).as_bytes()]);
            p.appended += (p.buf.len() - before) as u64;
            p.db = Some(db);
        }
        p.buf.extend_from_slice(records);
        p.appended += records.len() as u64;
        if wake {
            self.wake.notify_one();
        }
    }

    /// EXEC starts: records are gathered until `end_transaction`. Nothing else appends
    /// meanwhile — EXEC runs alone (see `command::transactions`).
    pub fn begin_transaction(&self) {
        if !self.enabled() {
            return;
        }
        if let Ok(mut p) = self.pending.lock() {
            p.transaction = Some(Vec::new());
        }
    }

    /// EXEC is over: its records go to the file as one `MULTI … EXEC` block, in one write
    /// batch, so that no crash can leave part of it to replay; nothing if it wrote nothing.
    pub fn end_transaction(&self) {
        if !self.enabled() {
            // Never on, or turned off during EXEC (`stop` dropped what was gathered).
            return;
        }
        let Ok(mut p) = self.pending.lock() else {
            return;
        };
        let Some(records) = p.transaction.take() else {
            return;
        };
        if records.is_empty() || !self.enabled() {
            return;
        }
        let wake = p.buf.is_empty();
        let before = p.buf.len();
        encode_command(&mut p.buf, &[b"MULTI"]);
        p.buf.extend_from_slice(&records);
        encode_command(&mut p.buf, &[b"EXEC"]);
        p.appended += (p.buf.len() - before) as u64;
        drop(p);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Append one command for `db` (for changes made outside a shard lock: FLUSHALL).
    pub fn append_command(&self, db: usize, args: &[&[u8]]) {
        if !self.enabled() {
            return;
        }
        let mut rec = Vec::new();
        encode_command(&mut rec, args);
        self.append(db, &rec);
    }

    /// Open (or create) the AOF in `dir` for appending and start the writer thread; the
    /// files named by the manifest must have been loaded first, `loaded` saying how many
    /// batches the last incremental file already holds (the writer numbers on from there).
    /// Logging starts now.
    pub fn start(
        self: &Arc<Self>,
        dir: &Path,
        names: &manifest::Names,
        loaded: load::Loaded,
    ) -> std::io::Result<()> {
        let m = manifest::Manifest::open_for_append(dir, names)?;
        let batches = match (&loaded.last_incr, m.incrs.last()) {
            (Some((name, n)), Some((last, _))) if name == last => *n,
            _ => 0,
        };
        let file = m.open_incr()?;
        self.open_writer(dir, names, m, file, batches)?;
        self.enabled.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Start the writer thread on `file` (the last incremental file of `m`, holding
    /// `batches` batches already), without turning logging on.
    pub(crate) fn open_writer(
        self: &Arc<Self>,
        dir: &Path,
        names: &manifest::Names,
        m: manifest::Manifest,
        file: std::fs::File,
        batches: u64,
    ) -> std::io::Result<()> {
        if let Ok(mut p) = self.pending.lock() {
            p.stopping = false;
            p.db = None;
            p.transaction = None;
        }
        self.stats
            .current_size
            .store(m.total_size(dir), Ordering::Relaxed);
        self.stats
            .base_size
            .store(m.base_size(dir), Ordering::Relaxed);
        if let Ok(mut d) = self.dir.lock() {
            *d = Some(dir.to_path_buf());
        }
        let total = m.total_size(dir);
        self.stats.rewrite_base.store(total, Ordering::Relaxed);
        self.stats.last_save.store(unix_now(), Ordering::Relaxed);
        if let Ok(mut f) = self.files.lock() {
            *f = Some((m.clone(), names.clone()));
        }
        let me = self.clone();
        let handle = std::thread::Builder::new()
            .name("relay-aof".into())
            .spawn(move || writer::run(&me, file, batches))?;
        if let Ok(mut w) = self.writer.lock() {
            *w = Some(handle);
        }
        Ok(())
    }

    /// Turn logging on (with every shard locked, at an AOF-enabling compaction's cut).
    pub(crate) fn set_enabled(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Stop logging, write and fsync everything appended, and stop the writer (SHUTDOWN,
    /// SIGTERM).
    pub fn stop(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        if let Ok(mut p) = self.pending.lock() {
            p.stopping = true;
            p.transaction = None;
        }
        self.wake.notify_one();
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl crate::store::ChangeLog for Aof {
    fn enabled(&self) -> bool {
        Aof::enabled(self)
    }

    fn append(&self, db: usize, records: &[u8]) {
        Aof::append(self, db, records)
    }
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Aof {
    /// The cut of a compaction (called with every shard locked): records appended so far
    /// stay in the current file, every later one goes to `next`, which starts with a SELECT.
    pub(crate) fn rotate_to(&self, next: std::fs::File) {
        if let Ok(mut p) = self.pending.lock() {
            let n = p.buf.len();
            p.rotate = Some((n, next));
            p.db = None;
        }
        self.wake.notify_one();
    }

    /// SAVE: make everything appended so far durable now, whatever the policy; false if it
    /// did not happen within `timeout`.
    pub fn sync_now(&self, timeout: std::time::Duration) -> bool {
        let target = match self.pending.lock() {
            Ok(mut p) => {
                p.force_sync = true;
                p.appended
            }
            Err(_) => return false,
        };
        self.wake.notify_one();
        let until = std::time::Instant::now() + timeout;
        while self.stats.synced.load(Ordering::Acquire) < target {
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }

    /// The manifest in force and the names, while the AOF is open.
    pub(crate) fn files(&self) -> Option<(manifest::Manifest, manifest::Names)> {
        self.files.lock().ok().and_then(|f| f.clone())
    }

    pub(crate) fn set_manifest(&self, m: manifest::Manifest) {
        if let Ok(mut f) = self.files.lock() {
            if let Some((cur, _)) = f.as_mut() {
                *cur = m;
            }
        }
    }
}

/// The file names of one server's AOF, from its configuration.
pub fn names(appendfilename: &str) -> manifest::Names {
    manifest::Names::new(appendfilename)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(aof: &Aof) -> Vec<u8> {
        aof.pending.lock().unwrap().buf.clone()
    }

    #[test]
    fn a_transaction_reaches_the_buffer_whole_and_only_at_its_end() {
        let aof = Aof::default();
        aof.enabled.store(true, Ordering::Relaxed);
        aof.begin_transaction();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_command(&mut a, &[b"XADD", b"a", b"1-0", b"f", b"v"]);
        encode_command(&mut b, &[b"XADD", b"b", b"1-0", b"f", b"v"]);
        aof.append(0, &a);
        aof.append(3, &b);
        assert!(pending(&aof).is_empty(), "nothing before EXEC ends");
        aof.end_transaction();
        let mut want = Vec::new();
        encode_command(&mut want, &[b"MULTI"]);
        encode_command(&mut want, &[b"SELECT", b"0"]);
        want.extend(&a);
        encode_command(&mut want, &[b"SELECT", b"3"]);
        want.extend(&b);
        encode_command(&mut want, &[b"EXEC"]);
        assert_eq!(pending(&aof), want);
        assert_eq!(aof.appended(), want.len() as u64);
        // A transaction that wrote nothing leaves nothing.
        aof.begin_transaction();
        aof.end_transaction();
        assert_eq!(pending(&aof), want);
    }
}
