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
use crate::store::stream::Stream;
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
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.batch);
        let sum = format!("{:08x}", crc.finalize());
        let len = self.batch.len().to_string();
        encode_command(
            &mut self.batch,
            &[super::CHECKPOINT, len.as_bytes(), sum.as_bytes()],
        );
        self.file.write_all(&self.batch)?;
        self.written += self.batch.len() as u64;
        self.batch.clear();
        Ok(())
    }
}

/// The commands that rebuild one stream: its entries, its counters, its groups with their
/// PELs (XCLAIM with delivery time and count; XNACK for released entries), consumers without
/// pending entries, and its idempotency settings and IDs.
fn write_stream(w: &mut BaseWriter, key: &[u8], s: &Stream) -> std::io::Result<()> {
    let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
    let ids = s.range_ids(
        crate::store::stream::id::StreamId::MIN,
        crate::store::stream::id::StreamId::MAX,
        None,
    );
    if ids.is_empty() {
        // An empty stream still exists (its ID and groups): create it and empty it.
        w.cmd(&[b"XADD", key, b"MAXLEN", b"0", b"0-1", b"x", b"y"])?;
    }
    for chunk in ids.chunks(100) {
        let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        for e in s.range(*first, *last, None, false) {
            let id = e.id.to_bytes();
            let mut rec: Vec<&[u8]> = vec![b"XADD", key, &id];
            for (f, v) in &e.fields {
                rec.push(f);
                rec.push(v);
            }
            w.cmd(&rec)?;
        }
    }
    let (last, maxdel) = (s.last_id.to_bytes(), s.max_deleted_id.to_bytes());
    w.cmd(&[
        b"XSETID",
        key,
        &last,
        b"ENTRIESADDED",
        a.format(s.entries_added).as_bytes(),
        b"MAXDELETEDID",
        &maxdel,
    ])?;
    for (name, g) in &s.groups {
        let last = g.last_id.to_bytes();
        let read = g
            .entries_read
            .map_or_else(|| "-1".to_string(), |n| n.to_string());
        w.cmd(&[
            b"XGROUP",
            b"CREATE",
            key,
            name,
            &last,
            b"ENTRIESREAD",
            read.as_bytes(),
        ])?;
        // Claim order first (released entries keep their queue order), then owners.
        for id in g.by_delivery() {
            let Some(p) = g.pel().get(&id) else { continue };
            let idb = id.to_bytes();
            if p.is_nacked() {
                w.cmd(&[
                    b"XNACK",
                    key,
                    name,
                    b"FAIL",
                    b"IDS",
                    b"1",
                    &idb,
                    b"RETRYCOUNT",
                    a.format(p.delivery_count).as_bytes(),
                    b"FORCE",
                ])?;
            } else {
                w.cmd(&[
                    b"XCLAIM",
                    key,
                    name,
                    &p.consumer,
                    b"0",
                    &idb,
                    b"TIME",
                    a.format(p.delivery_time).as_bytes(),
                    b"RETRYCOUNT",
                    b.format(p.delivery_count).as_bytes(),
                    b"FORCE",
                    b"JUSTID",
                ])?;
            }
        }
        for (cname, c) in &g.consumers {
            if c.pending.is_empty() {
                w.cmd(&[b"XGROUP", b"CREATECONSUMER", key, name, cname])?;
            }
        }
    }
    w.cmd(&[
        b"XCFGSET",
        key,
        b"IDMP-DURATION",
        a.format(s.idmp.duration).as_bytes(),
        b"IDMP-MAXSIZE",
        b.format(s.idmp.maxsize).as_bytes(),
    ])?;
    for (pid, iid, id) in s.idmp.records() {
        if s.contains(id) {
            let id = id.to_bytes();
            w.cmd(&[b"XIDMPRECORD", key, pid, iid, &id])?;
        }
    }
    Ok(())
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
    let old = Manifest::read(&dir, &names)?;
    let seq = old
        .as_ref()
        .map(|m| {
            m.incrs
                .iter()
                .map(|(_, s)| *s)
                .chain(m.base.iter().map(|(_, s)| *s))
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
        + 1;
    if old.is_some() {
        std::fs::remove_file(dir.join(names.manifest()))?;
        sync_dir(&dir)?;
    }
    let incr_name = names.incr(seq);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(&incr_name))?;
    let target = Manifest {
        dir: dir.clone(),
        base: None,
        incrs: vec![(incr_name.clone(), seq)],
    };
    aof.open_writer(&dir, &names, target.clone(), file)?;
    let started = std::time::Instant::now();
    let (snapshot, ()) = shared.keyspace.snapshot_with(|| aof.set_enabled());
    let old = old.unwrap_or(Manifest {
        dir: dir.clone(),
        base: None,
        incrs: vec![],
    });
    std::thread::Builder::new()
        .name("relay-rewrite".into())
        .spawn(move || {
            let result = finish(&aof, &old, &names, seq, &incr_name, &snapshot);
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
            let result = finish(&aof, &manifest, &names, seq, &incr_name, &snapshot);
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

/// Steps 3 and 4: write the base, switch the manifest, delete the old files.
fn finish(
    aof: &Aof,
    old: &Manifest,
    names: &super::manifest::Names,
    seq: u64,
    incr_name: &str,
    snapshot: &[DbSnapshot],
) -> std::io::Result<u64> {
    let dir = &old.dir;
    let base_name = names.base(seq);
    let tmp = dir.join(format!("temp-rewrite-{base_name}"));
    let size = write_base(&tmp, snapshot)?;
    std::fs::rename(&tmp, dir.join(&base_name))?;
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
