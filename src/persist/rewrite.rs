//! Compaction (BGREWRITEAOF, the automatic rewrite, BGSAVE): replace the files with a base
//! holding the current state plus a fresh incremental file, without stopping clients for
//! more than the copy of the keyspace and without losing or doubling a write.
//!
//! 1. A new, empty incremental file is created and added to the manifest (old base, old
//!    incremental files, new one), which is made durable before anything is written to it.
//! 2. With every shard locked, the keyspace is copied and the writer is told to switch files
//!    at exactly that point (`Aof::rotate_to`): every record before the cut is in the old
//!    files, every record after it in the new one, and the copy is the state at the cut.
//! 3. On a thread of its own, the copy is written as commands to a temporary base file
//!    (checksummed batches, like every AOF file), fsynced and renamed into place.
//! 4. A manifest naming only the new base and the new incremental file replaces the old one
//!    (write, fsync, rename, fsync the directory); only then are the old files deleted.
//!
//! A crash at any point leaves a manifest whose files load to the acknowledged state: before
//! 4 it is the old files plus the new incremental file, after 4 the new base plus it.

use super::manifest::{sync_dir, Manifest};
use super::{encode_command, Aof};
use crate::store::stream::{snapshot, Stream};
use crate::store::{DbSnapshot, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Batches of the base file are cut at this size.
const BATCH: usize = 1 << 20;

/// Writes records to the base file in checksummed batches.
struct BaseWriter {
    file: File,
    batch: Vec<u8>,
    written: u64,
    batches: u64,
}

impl BaseWriter {
    fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        encode_command(&mut self.batch, args);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.batches += 1;
        super::end_batch(&mut self.batch, self.batches);
        self.file.write_all(&self.batch)?;
        self.written += self.batch.len() as u64;
        self.batch.clear();
        Ok(())
    }
}

/// The records that rebuild one stream exactly: its chunks (entries, deleted ones too, in
/// their chunk boundaries) in payloads of about 256 KiB, then its counters, groups and
/// idempotency state (`store::stream::snapshot`). Command-per-entry records (XADD, XCLAIM,
/// …) cannot reproduce the chunk layout, tombstones, dangling pending entries, consumer
/// times or the idempotency counters.
fn write_stream(w: &mut BaseWriter, key: &[u8], s: &Stream) -> std::io::Result<()> {
    snapshot::encode_chunks(s, 256 << 10, |blob| w.cmd(&[snapshot::CHUNKS, key, blob]))?;
    w.cmd(&[snapshot::META, key, &snapshot::encode_meta(s)])
}

/// Write the snapshot as the base file at `path`; returns its size.
fn write_base(path: &std::path::Path, snapshot: &[DbSnapshot]) -> std::io::Result<u64> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    let mut w = BaseWriter {
        file,
        batch: Vec::new(),
        written: 0,
        batches: 0,
    };
    let mut n = itoa::Buffer::new();
    for (db, keys) in snapshot.iter().enumerate() {
        if keys.is_empty() {
            continue;
        }
        w.cmd(&[b"SELECT", n.format(db).as_bytes()])?;
        for (key, value, deadline) in keys {
            match value {
                Value::String(v) => w.cmd(&[b"SET", key, v])?,
                Value::Stream(s) => write_stream(&mut w, key, s)?,
            }
            if let Some(at) = deadline {
                let mut t = itoa::Buffer::new();
                w.cmd(&[b"PEXPIREAT", key, t.format(*at).as_bytes()])?;
            }
        }
    }
    w.flush()?;
    w.file.sync_all()?;
    Ok(w.written)
}

/// CONFIG SET appendonly yes while running: start an AOF that begins with a base holding the
/// current state. The old manifest (from an earlier run with the AOF on) is removed first,
/// so until the new manifest is written a crash restarts empty rather than with stale
/// data — what was never logged cannot be recovered, as in Redis. Logging starts at the
/// snapshot's cut, so the new incremental file holds exactly the changes after the base.
pub fn enable(shared: &Arc<crate::server::Shared>) -> Result<(), String> {
    let aof: &Arc<Aof> = &shared.aof;
    if aof.enabled() {
        return Ok(());
    }
    if aof.stats.rewriting.swap(true, Ordering::AcqRel) {
        return Err("a rewrite is in progress".into());
    }
    let result = enable_inner(shared);
    if result.is_err() {
        aof.stats.rewriting.store(false, Ordering::Release);
    }
    result.map_err(|e| e.to_string())
}

fn enable_inner(shared: &Arc<crate::server::Shared>) -> std::io::Result<()> {
    let aof = shared.aof.clone();
    let (dir, names) = {
        let c = shared.config();
        (
            std::path::Path::new(&c.dir).join(&c.appenddirname),
            super::names(&c.appendfilename),
        )
    };
    std::fs::create_dir_all(&dir)?;
    // Files of an earlier run with the AOF on hold a state that is not the current one (it
    // was not loaded): they go, with their manifest, before anything new is written. The
    // new files carry temporary names until the new manifest names them, so a crash before
    // that leaves no data files and no manifest — a fresh start, as nothing of this state
    // was durable yet — instead of stale data or files without a manifest.
    let stale = Manifest::orphans(&dir, &names)?;
    let seq = stale
        .iter()
        .filter_map(|f| {
            f.strip_prefix(&format!("{}.", names.prefix))?
                .split('.')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0)
        + 1;
    match std::fs::remove_file(dir.join(names.manifest())) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    sync_dir(&dir)?;
    for f in &stale {
        tracing::info!("Removing {f}, an append only file of an earlier run");
        std::fs::remove_file(dir.join(f))?;
    }
    Manifest::remove_temp_files(&dir);
    let incr_name = names.incr(seq);
    let temp_incr = dir.join(format!("temp-{incr_name}"));
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&temp_incr)?;
    let target = Manifest {
        dir: dir.clone(),
        base: None,
        incrs: vec![(incr_name.clone(), seq)],
    };
    aof.open_writer(&dir, &names, target, file, 0)?;
    let started = std::time::Instant::now();
    let (snapshot, ()) = shared.keyspace.snapshot_with(|| aof.set_enabled());
    let old = Manifest {
        dir: dir.clone(),
        base: None,
        incrs: vec![],
    };
    std::thread::Builder::new()
        .name("relay-rewrite".into())
        .spawn(move || {
            let result = finish(
                &aof,
                &old,
                &names,
                seq,
                &incr_name,
                Some(&temp_incr),
                &snapshot,
            );
            match &result {
                Ok(size) => {
                    aof.stats.base_size.store(*size, Ordering::Relaxed);
                    let total = aof.stats.current_size.load(Ordering::Relaxed);
                    aof.stats.rewrite_base.store(total, Ordering::Relaxed);
                    aof.stats
                        .last_save
                        .store(super::unix_now(), Ordering::Relaxed);
                    tracing::info!("The append only file is on: {size} bytes of base written");
                }
                Err(e) => tracing::warn!("Turning the append only file on failed: {e}"),
            }
            aof.stats
                .last_rewrite_secs
                .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            aof.stats
                .last_rewrite_ok
                .store(result.is_ok(), Ordering::Relaxed);
            aof.stats.rewriting.store(false, Ordering::Release);
        })?;
    Ok(())
}

/// Why a compaction could not start.
pub enum NotStarted {
    Off,
    InProgress,
    Failed(String),
}

/// Start a compaction (BGREWRITEAOF): steps 1 and 2 here, 3 and 4 on a thread.
pub fn start(shared: &Arc<crate::server::Shared>) -> Result<(), NotStarted> {
    let aof: &Arc<Aof> = &shared.aof;
    let Some((manifest, names)) = aof.files().filter(|_| aof.enabled()) else {
        return Err(NotStarted::Off);
    };
    if aof.stats.rewriting.swap(true, Ordering::AcqRel) {
        return Err(NotStarted::InProgress);
    }
    let fail = |e: std::io::Error| {
        aof.stats.rewriting.store(false, Ordering::Release);
        aof.stats.last_rewrite_ok.store(false, Ordering::Relaxed);
        NotStarted::Failed(e.to_string())
    };
    let started = std::time::Instant::now();
    let seq = manifest
        .incrs
        .iter()
        .map(|(_, s)| *s)
        .chain(manifest.base.iter().map(|(_, s)| *s))
        .max()
        .unwrap_or(0)
        + 1;
    // 1. The new incremental file, in a durable manifest before anything goes to it.
    let incr_name = names.incr(seq);
    let next = OpenOptions::new()
        .create(true)
        .append(true)
        .open(manifest.dir.join(&incr_name))
        .map_err(fail)?;
    let mut during = manifest.clone();
    during.incrs.push((incr_name.clone(), seq));
    during.write_atomic(&names).map_err(fail)?;
    aof.set_manifest(during);
    // 2. The cut.
    let (snapshot, ()) = shared.keyspace.snapshot_with(|| aof.rotate_to(next));
    tracing::info!(
        "Background append only file rewriting started ({} ms to copy the keyspace)",
        started.elapsed().as_millis()
    );
    let aof = aof.clone();
    let spawned = std::thread::Builder::new()
        .name("relay-rewrite".into())
        .spawn(move || {
            let result = finish(&aof, &manifest, &names, seq, &incr_name, None, &snapshot);
            drop(snapshot);
            let ok = result.is_ok();
            match result {
                Ok(size) => {
                    let total = aof.stats.current_size.load(Ordering::Relaxed);
                    aof.stats.base_size.store(size, Ordering::Relaxed);
                    aof.stats.rewrite_base.store(total, Ordering::Relaxed);
                    aof.stats.last_save.store(super::unix_now(), Ordering::Relaxed);
                    tracing::info!(
                        "Background AOF rewrite finished successfully ({size} bytes of base, {:.3} s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                Err(e) => tracing::warn!("Background AOF rewrite failed: {e}"),
            }
            aof.stats
                .last_rewrite_secs
                .store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            aof.stats.last_rewrite_ok.store(ok, Ordering::Relaxed);
            aof.stats.rewriting.store(false, Ordering::Release);
        });
    if let Err(e) = spawned {
        shared.aof.stats.rewriting.store(false, Ordering::Release);
        return Err(NotStarted::Failed(e.to_string()));
    }
    Ok(())
}

/// Steps 3 and 4: write the base, switch the manifest, delete the old files. When the AOF
/// is being turned on, the incremental file still has its temporary name `temp_incr`: it
/// gets its real one together with the base, just before the manifest names both.
fn finish(
    aof: &Aof,
    old: &Manifest,
    names: &super::manifest::Names,
    seq: u64,
    incr_name: &str,
    temp_incr: Option<&std::path::Path>,
    snapshot: &[DbSnapshot],
) -> std::io::Result<u64> {
    let dir = &old.dir;
    let base_name = names.base(seq);
    let tmp = dir.join(format!("temp-rewrite-{base_name}"));
    let size = write_base(&tmp, snapshot)?;
    std::fs::rename(&tmp, dir.join(&base_name))?;
    if let Some(t) = temp_incr {
        std::fs::rename(t, dir.join(incr_name))?;
    }
    sync_dir(dir)?;
    let new = Manifest {
        dir: dir.clone(),
        base: Some((base_name.clone(), seq)),
        incrs: vec![(incr_name.to_string(), seq)],
    };
    new.write_atomic(names)?;
    aof.set_manifest(new.clone());
    // The old files are needed by no manifest any more.
    for (f, _) in old.base.iter().chain(old.incrs.iter()) {
        if *f != base_name && *f != incr_name {
            let _ = std::fs::remove_file(dir.join(f));
        }
    }
    let total = new.total_size(dir);
    aof.stats.current_size.store(total, Ordering::Relaxed);
    Ok(size)
}
