//! The AOF writer thread: takes what appenders buffered, writes it to the incremental file
//! and fsyncs per `appendfsync`, then publishes the durable offset clients under `always`
//! wait for. Runs on its own OS thread so a slow disk never stalls the event loop.
//!
//! Group commit falls out of the loop: while one write + fsync is in progress, new records
//! pile up in the buffer, and the next turn writes and fsyncs all of them at once.

use super::{Aof, Fsync};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Write `data` completely, retrying after errors (a full disk may clear); nothing is
/// dropped and nothing is written twice.
fn write_fully(aof: &Aof, file: &mut File, data: &[u8]) {
    let mut done = 0;
    let mut last_log: Option<Instant> = None;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => std::thread::sleep(Duration::from_millis(10)),
            Ok(n) => {
                done += n;
                aof.stats.last_write_ok.store(true, Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                aof.stats.last_write_ok.store(false, Ordering::Relaxed);
                if last_log.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    tracing::warn!("Error writing to the AOF: {e} (retrying)");
                    last_log = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn fsync(aof: &Aof, file: &File) {
    match file.sync_data() {
        Ok(()) => {
            aof.stats.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            aof.stats.last_write_ok.store(false, Ordering::Relaxed);
            tracing::warn!("Error fsyncing the AOF: {e}");
        }
    }
}

/// Write one batch to `file` as its batch number `*seq + 1`, ending it with its checkpoint
/// record.
fn write_batch(aof: &Aof, file: &mut File, data: &mut Vec<u8>, seq: &mut u64) {
    if data.is_empty() {
        return;
    }
    // Each batch ends with a checkpoint over its bytes and its number in the file: loading
    // verifies every batch and their order, and a batch without its checkpoint is a torn
    // tail.
    *seq += 1;
    super::end_batch(data, *seq);
    write_fully(aof, file, data);
    aof.stats
        .current_size
        .fetch_add(data.len() as u64, Ordering::Relaxed);
}

/// How long the writer lets records gather under `everysec` and `no`.
const COALESCE: Duration = Duration::from_millis(1);
/// … and under `always`, where each client waits for the fsync.
const GATHER_ALWAYS: Duration = Duration::from_micros(100);

/// Append to `file`, which holds `batches` batches already, until stopped.
pub(super) fn run(aof: &Aof, mut file: File, batches: u64) {
    let mut seq = batches;
    let mut data = Vec::new();
    let mut last_fsync = Instant::now();
    let mut unsynced = false;
    loop {
        let (end, sync_now, rotate, stopping) = {
            let Ok(mut p) = aof.pending.lock() else {
                return;
            };
            loop {
                if !p.buf.is_empty() || p.stopping || p.rotate.is_some() || p.force_sync {
                    break;
                }
                let everysec = aof.policy() == Fsync::EverySec;
                if unsynced && everysec {
                    let left = Duration::from_secs(1).saturating_sub(last_fsync.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    p = match aof.wake.wait_timeout(p, left) {
                        Ok((p, _)) => p,
                        Err(_) => return,
                    };
                } else {
                    p = match aof.wake.wait(p) {
                        Ok(p) => p,
                        Err(_) => return,
                    };
                }
            }
            let urgent = p.stopping || p.force_sync || p.rotate.is_some();
            if !p.buf.is_empty() && !urgent {
                // Let records gather into one write instead of one per wake-up: under
                // everysec and no nobody waits for them, so a millisecond's worth (Redis
                // writes once per event-loop turn); under always the clients wait, so just
                // long enough for the rest of the event loop's turn to append theirs and
                // share this fsync.
                let pause = if aof.policy() == Fsync::Always {
                    GATHER_ALWAYS
                } else {
                    COALESCE
                };
                drop(p);
                std::thread::sleep(pause);
                p = match aof.pending.lock() {
                    Ok(p) => p,
                    Err(_) => return,
                };
            }
            std::mem::swap(&mut p.buf, &mut data);
            let forced = std::mem::take(&mut p.force_sync);
            (
                p.appended,
                p.stopping || forced,
                p.rotate.take(),
                p.stopping,
            )
        };
        if let Some((n, next)) = rotate {
            // A compaction's cut: what came before it completes the old file (made durable
            // before anything reaches the new one), the rest starts the new file.
            let mut after = data.split_off(n.min(data.len()));
            write_batch(aof, &mut file, &mut data, &mut seq);
            fsync(aof, &file);
            file = next;
            seq = 0;
            data.clear();
            write_batch(aof, &mut file, &mut after, &mut seq);
            unsynced = !after.is_empty();
        } else if !data.is_empty() {
            write_batch(aof, &mut file, &mut data, &mut seq);
            unsynced = true;
        }
        data.clear();
        // Keep a big buffer from a burst from staying allocated.
        if data.capacity() > 16 << 20 {
            data = Vec::new();
        }
        let due = match aof.policy() {
            Fsync::Always => true,
            Fsync::EverySec => unsynced && last_fsync.elapsed() >= Duration::from_secs(1),
            Fsync::No => false,
        };
        if due || sync_now {
            fsync(aof, &file);
            unsynced = false;
            last_fsync = Instant::now();
            aof.stats.synced.store(end, Ordering::Release);
        }
        aof.durable.send_replace(end);
        if stopping {
            return;
        }
    }
}
