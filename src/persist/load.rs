//! Loading the AOF at start, and `relay-server --check-aof [--fix]`.
//!
//! A file is a sequence of write batches, each a run of RESP commands followed by a
//! checkpoint record (`RELAY-CRC <len> <crc32>`) over the batch's bytes. Loading replays a
//! batch only once its checkpoint has verified it, so a partly written batch is never
//! applied. What can follow the last verified batch decides the outcome:
//! - nothing: the file is complete;
//! - bytes without a checkpoint that parses (the file ends inside a batch, or inside a
//!   record): a torn tail, left by a crash mid-write — truncated with a warning when
//!   `aof-load-truncated yes`, otherwise the start is refused;
//! - a checkpoint that does not match, or bytes that are not RESP followed later by another
//!   checkpoint: damage, which always refuses the start, naming the file and byte offset.
//!
//! Only the last file of the manifest may have a torn tail; any problem in an earlier file
//! is damage. Nothing is dropped without a log line saying how many bytes and where.

use super::CHECKPOINT;
use bytes::Bytes;
use std::io::Read;
use std::path::Path;

/// How a scan of one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte belongs to a verified batch.
    Complete { len: u64 },
    /// The bytes after `valid_len` are a batch the crash did not finish.
    TornTail { valid_len: u64, file_len: u64 },
    /// The file is damaged at `offset`.
    Damaged { offset: u64, reason: String },
}

/// One parsed record, or why none could be parsed.
enum Parsed {
    Record(Vec<Bytes>, usize),
    Incomplete,
    Bad(&'static str),
}

/// Read `<digits>\r\n` at `pos`; `None` if incomplete.
fn number(b: &[u8], pos: usize) -> Result<Option<(u64, usize)>, &'static str> {
    let mut n: u64 = 0;
    let mut i = pos;
    loop {
        let Some(&c) = b.get(i) else {
            return Ok(None);
        };
        match c {
            b'0'..=b'9' => {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add((c - b'0') as u64))
                    .ok_or("number too large")?;
                if i - pos > 19 {
                    return Err("number too large");
                }
            }
            b'\r' => {
                if i == pos {
                    return Err("missing number");
                }
                return match b.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some((n, i + 2))),
                    Some(_) => Err("bad line ending"),
                };
            }
            _ => return Err("not a number"),
        }
        i += 1;
    }
}

/// Parse one `*n` array of `$len` bulk strings at the start of `b`.
fn parse_record(b: &[u8]) -> Parsed {
    let Some(&first) = b.first() else {
        return Parsed::Incomplete;
    };
    if first != b'*' {
        return Parsed::Bad("expected '*'");
    }
    let (n, mut pos) = match number(b, 1) {
        Ok(Some(v)) => v,
        Ok(None) => return Parsed::Incomplete,
        Err(e) => return Parsed::Bad(e),
    };
    if n == 0 || n > 1 << 24 {
        return Parsed::Bad("bad argument count");
    }
    let mut args = Vec::with_capacity(n as usize);
    for _ in 0..n {
        match b.get(pos) {
            None => return Parsed::Incomplete,
            Some(b'$') => {}
            Some(_) => return Parsed::Bad("expected '$'"),
        }
        let (len, start) = match number(b, pos + 1) {
            Ok(Some(v)) => v,
            Ok(None) => return Parsed::Incomplete,
            Err(e) => return Parsed::Bad(e),
        };
        let Some(end) = start.checked_add(len as usize) else {
            return Parsed::Bad("bad length");
        };
        if b.len() < end + 2 {
            return Parsed::Incomplete;
        }
        if &b[end..end + 2] != b"\r\n" {
            return Parsed::Bad("bad bulk ending");
        }
        args.push(Bytes::copy_from_slice(&b[start..end]));
        pos = end + 2;
    }
    Parsed::Record(args, pos)
}

/// The marker every checkpoint record starts with (used to tell a torn tail from damage).
fn checkpoint_marker() -> Vec<u8> {
    let mut m = Vec::new();
    super::encode_command(&mut m, &[CHECKPOINT]);
    // `*1\r\n$9\r\nRELAY-CRC\r\n` → take the part after the array header.
    let at = m.iter().position(|&c| c == b'$').unwrap_or(0);
    m.split_off(at)
}

/// Scan `data` (a whole file): call `apply` for every command of every verified batch, in
/// order. Returns how the file ended.
pub fn scan(data: &[u8], mut apply: impl FnMut(Vec<Bytes>, u64)) -> Outcome {
    let mut pos = 0usize;
    let mut batch_start = 0usize;
    let mut batch: Vec<(Vec<Bytes>, u64)> = Vec::new();
    let marker = checkpoint_marker();
    // A record that does not parse (or claims more bytes than the file has) is a torn tail
    // only if no checkpoint follows it: the writer ends every batch with one, so a later
    // checkpoint means the bytes in between were damaged, not left unwritten.
    let torn_or_damaged = |pos: usize, valid: usize, reason: &str| {
        // The unfinished record may be the batch's own checkpoint: its marker does not count.
        let rest = &data[pos..];
        let own = rest.starts_with(b"*3\r\n") && rest[4..].starts_with(&marker);
        let from = pos + if own { 4 + marker.len() } else { 1 };
        let later = data
            .get(from..)
            .is_some_and(|rest| memchr::memmem::find(rest, &marker).is_some());
        if later {
            Outcome::Damaged {
                offset: pos as u64,
                reason: reason.to_string(),
            }
        } else {
            Outcome::TornTail {
                valid_len: valid as u64,
                file_len: data.len() as u64,
            }
        }
    };
    loop {
        if pos == data.len() {
            return if batch_start == data.len() {
                Outcome::Complete {
                    len: data.len() as u64,
                }
            } else {
                Outcome::TornTail {
                    valid_len: batch_start as u64,
                    file_len: data.len() as u64,
                }
            };
        }
        let (args, used) = match parse_record(&data[pos..]) {
            Parsed::Record(args, used) => (args, used),
            Parsed::Incomplete => return torn_or_damaged(pos, batch_start, "truncated record"),
            Parsed::Bad(reason) => return torn_or_damaged(pos, batch_start, reason),
        };

        let is_checkpoint = args.first().is_some_and(|a| a.as_ref() == CHECKPOINT);
        if !is_checkpoint {
            batch.push((args, pos as u64));
            pos += used;
            continue;
        }
        let body = &data[batch_start..pos];
        let mut crc = crc32fast::Hasher::new();
        crc.update(body);
        let want = format!("{:08x}", crc.finalize());
        let ok = args.len() == 3
            && args[1].as_ref() == body.len().to_string().as_bytes()
            && args[2].as_ref() == want.as_bytes();
        if !ok {
            return Outcome::Damaged {
                offset: batch_start as u64,
                reason: "checksum mismatch".into(),
            };
        }
        for (cmd, at) in batch.drain(..) {
            apply(cmd, at);
        }
        pos += used;
        batch_start = pos;
    }
}

/// Read a whole file (AOF files are loaded in one pass; the largest is read in 8 MiB
/// steps into one buffer).
pub fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut data = Vec::with_capacity(f.metadata().map_or(0, |m| m.len() as usize));
    let mut chunk = vec![0u8; 8 << 20];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(data);
        }
        data.extend_from_slice(&chunk[..n]);
    }
}

/// `relay-server --check-aof [--fix] FILE`: report how FILE ends; with `fix`, cut a torn
/// tail. Returns the process exit code.
pub fn check_file(path: &Path, fix: bool) -> u8 {
    let data = match read_file(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("Cannot read {}: {e}", path.display());
            return 1;
        }
    };
    let mut commands = 0u64;
    match scan(&data, |_, _| commands += 1) {
        Outcome::Complete { len } => {
            println!(
                "AOF {} is valid: {commands} commands, {len} bytes",
                path.display()
            );
            0
        }
        Outcome::TornTail {
            valid_len,
            file_len,
        } => {
            println!(
                "AOF {} ends with a torn write: {} bytes after offset {valid_len} ({commands} commands before it are valid)",
                path.display(),
                file_len - valid_len
            );
            if !fix {
                println!("Run with --fix to truncate the file at offset {valid_len}");
                return 1;
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(valid_len).and_then(|_| f.sync_all()))
            {
                Ok(()) => {
                    println!("Truncated {} to {valid_len} bytes", path.display());
                    0
                }
                Err(e) => {
                    eprintln!("Cannot truncate {}: {e}", path.display());
                    1
                }
            }
        }
        Outcome::Damaged { offset, reason } => {
            println!(
                "AOF {} is damaged at offset {offset} ({reason}); {commands} commands before it are valid. This is not a torn write: restore the file from a backup, or cut it at offset {offset} by hand (everything after is lost).",
                path.display()
            );
            1
        }
    }
}

/// Replay every file of the AOF in `dir` into the server's keyspace (the start-up load).
/// Progress goes to the log every few seconds and to INFO (`loading_*`); a torn tail of the
/// last file is truncated when `truncated_ok`, anything else wrong refuses the start with
/// the file, the offset and what to do.
pub fn load_all(
    shared: &std::sync::Arc<crate::server::Shared>,
    dir: &Path,
    names: &super::manifest::Names,
    truncated_ok: bool,
) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let Some(manifest) = super::manifest::Manifest::read(dir, names).map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let files = manifest.files();
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    shared.loading_total.store(total, Ordering::Relaxed);
    let started = std::time::Instant::now();
    let handle = std::sync::Arc::new(crate::connection::client::ClientHandle::new(
        0, None, None, -1, 0,
    ));
    let mut session = crate::connection::Session::new(handle);
    session.replaying = true;
    let mut done_before = 0u64;
    let mut last_report = std::time::Instant::now();
    let mut failed = 0u64;
    // A torn write can only be at the end of the last file written to: the last non-empty
    // one (a compaction may have added an empty file after it just before a crash).
    let last_written = files
        .iter()
        .rposition(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .unwrap_or(0);
    for (i, path) in files.iter().enumerate() {
        let last = i >= last_written;
        let data = match read_file(path) {
            Ok(d) => d,
            // The newest incremental file may not exist yet (created on first append).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && last => continue,
            Err(e) => {
                return Err(format!(
                    "Cannot read the append only file {}: {e}",
                    path.display()
                ))
            }
        };
        let outcome = scan(&data, |args, at| {
            let reply = crate::command::dispatch(
                &mut crate::command::Ctx {
                    shared,
                    session: &mut session,
                },
                &args,
            );
            if reply.is_error() {
                failed += 1;
                if failed <= 10 {
                    tracing::warn!(
                        "Replaying {} at offset {at}: {:?} failed: {reply:?}",
                        path.display(),
                        String::from_utf8_lossy(args.first().map_or(&b""[..], |a| a))
                    );
                }
            }
            let done = done_before + at;
            shared.loading_done.store(done, Ordering::Relaxed);
            if last_report.elapsed() >= std::time::Duration::from_secs(2) {
                last_report = std::time::Instant::now();
                tracing::info!(
                    "Loading the append only file: {done} of {total} bytes ({:.1}%)",
                    done as f64 * 100.0 / total.max(1) as f64
                );
            }
        });
        match outcome {
            Outcome::Complete { .. } => {}
            Outcome::TornTail {
                valid_len,
                file_len,
            } if last && truncated_ok => {
                tracing::warn!(
                    "The append only file {} ends with a torn write (a crash during a write): truncating {} bytes at offset {valid_len}",
                    path.display(),
                    file_len - valid_len
                );
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(valid_len).and_then(|_| f.sync_all()))
                    .map_err(|e| format!("Cannot truncate {}: {e}", path.display()))?;
            }
            Outcome::TornTail { valid_len, .. } if last => {
                return Err(format!(
                    "The append only file {} ends with a torn write at offset {valid_len} and aof-load-truncated is no. Run `relay-server --check-aof --fix {}` to truncate it, or start with --aof-load-truncated yes",
                    path.display(),
                    path.display()
                ));
            }
            Outcome::TornTail { valid_len, .. } => {
                return Err(format!(
                    "Bad file format reading the append only file {} at offset {valid_len}: the file ends inside a write, but it is not the last file of the manifest. Restore it from a backup; `relay-server --check-aof {}` reports its state",
                    path.display(),
                    path.display()
                ));
            }
            Outcome::Damaged { offset, reason } => {
                return Err(format!(
                    "Bad file format reading the append only file {} at offset {offset} ({reason}). Make a backup of the file and run `relay-server --check-aof {}`; damage before the end of a file cannot be repaired automatically",
                    path.display(),
                    path.display()
                ));
            }
        }
        done_before += data.len() as u64;
    }
    shared.loading_done.store(total, Ordering::Relaxed);
    if failed > 0 {
        tracing::warn!("{failed} commands in the append only file failed while replaying");
    }
    tracing::info!(
        "DB loaded from append only file: {:.3} seconds ({total} bytes)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two batches as the writer lays them out.
    fn sample() -> Vec<u8> {
        let mut file = Vec::new();
        for batch in [
            vec![vec!["SET", "a", "1"], vec!["SET", "b", "2"]],
            vec![vec!["DEL", "a"]],
        ] {
            let mut data = Vec::new();
            for cmd in batch {
                let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
                super::super::encode_command(&mut data, &args);
            }
            let mut crc = crc32fast::Hasher::new();
            crc.update(&data);
            let sum = format!("{:08x}", crc.finalize());
            let len = data.len().to_string();
            super::super::encode_command(&mut data, &[CHECKPOINT, len.as_bytes(), sum.as_bytes()]);
            file.extend(data);
        }
        file
    }

    fn commands(data: &[u8]) -> (usize, Outcome) {
        let mut n = 0;
        let out = scan(data, |_, _| n += 1);
        (n, out)
    }

    #[test]
    fn every_cut_of_the_last_batch_is_a_torn_tail_and_keeps_the_first() {
        let file = sample();
        let (n, out) = commands(&file);
        assert_eq!(
            (n, out),
            (
                3,
                Outcome::Complete {
                    len: file.len() as u64
                }
            )
        );
        let first_batch = file
            .windows(CHECKPOINT.len())
            .position(|w| w == CHECKPOINT)
            .unwrap();
        let first_end = file[first_batch..]
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == b"\r\n")
            .nth(4)
            .map(|(i, _)| first_batch + i + 2)
            .unwrap();
        for cut in first_end + 1..file.len() {
            let (n, out) = commands(&file[..cut]);
            assert_eq!(n, 2, "cut at {cut}");
            assert_eq!(
                out,
                Outcome::TornTail {
                    valid_len: first_end as u64,
                    file_len: cut as u64
                },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_in_an_earlier_batch_is_damage() {
        let file = sample();
        for at in 0..30 {
            let mut bad = file.clone();
            bad[at] ^= 0x01;
            let (n, out) = commands(&bad);
            assert_eq!(
                n, 0,
                "flip at {at}: nothing of the damaged batch is applied"
            );
            assert!(
                matches!(out, Outcome::Damaged { .. }),
                "flip at {at}: {out:?}"
            );
        }
    }
}
