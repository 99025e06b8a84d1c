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
    /// Every byte belongs to a verified batch; the last one is batch number `batches`.
    Complete { len: u64, batches: u64 },
    /// The bytes after `valid_len` are a batch the crash did not finish; `batches` verified
    /// batches come before them.
    TornTail {
        valid_len: u64,
        file_len: u64,
        batches: u64,
    },
    /// The file is damaged at `offset`.
    Damaged { offset: u64, reason: String },
}

/// What a successful load leaves for the writer: the manifest's last incremental file and
/// how many batches it holds, so that the batches appended to it are numbered on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub last_incr: Option<(String, u64)>,
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
    // Each argument takes at least 4 bytes (`$0\r\n`): a count beyond what the data can hold
    // must not reserve memory for it.
    let mut args = Vec::with_capacity((n as usize).min(b.len() / 4));
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
        let (Some(end), Some(need)) = (
            start.checked_add(len as usize),
            start
                .checked_add(len as usize)
                .and_then(|e| e.checked_add(2)),
        ) else {
            return Parsed::Bad("bad length");
        };
        if b.len() < need {
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
    // The number of the last verified batch; files written before batches were numbered
    // have checkpoints without one (`numbered` stays false while they last).
    let mut batches = 0u64;
    let mut numbered = false;
    let marker = checkpoint_marker();
    // What follows the last verified batch is a torn tail only if a crash mid-write could
    // have left it: the start of a record and nothing more (perhaps followed by zeros, where
    // the file grew before its data reached the disk), with no checkpoint after it — the
    // writer ends every batch with one, so a later checkpoint means the bytes in between
    // were damaged, not left unwritten. Bytes that no write ever starts with are damage.
    let torn_or_damaged = |pos: usize, valid: usize, reason: &str, batches: u64| {
        let end = data.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let rest = data.get(pos..end).unwrap_or_default();
        // The unfinished record may be the batch's own checkpoint: its marker does not count.
        let own = (rest.starts_with(b"*3\r\n") || rest.starts_with(b"*4\r\n"))
            && rest[4..].starts_with(&marker);
        let from = pos + if own { 4 + marker.len() } else { 1 };
        let later = data
            .get(from..)
            .is_some_and(|rest| memchr::memmem::find(rest, &marker).is_some());
        let unfinished = rest.is_empty() || matches!(parse_record(rest), Parsed::Incomplete);
        if later || !unfinished {
            Outcome::Damaged {
                offset: pos as u64,
                reason: reason.to_string(),
            }
        } else {
            Outcome::TornTail {
                valid_len: valid as u64,
                file_len: data.len() as u64,
                batches,
            }
        }
    };
    loop {
        if pos == data.len() {
            return if batch_start == data.len() {
                Outcome::Complete {
                    len: data.len() as u64,
                    batches,
                }
            } else {
                Outcome::TornTail {
                    valid_len: batch_start as u64,
                    file_len: data.len() as u64,
                    batches,
                }
            };
        }
        let (args, used) = match parse_record(&data[pos..]) {
            Parsed::Record(args, used) => (args, used),
            Parsed::Incomplete => {
                return torn_or_damaged(pos, batch_start, "truncated record", batches)
            }
            Parsed::Bad(reason) => return torn_or_damaged(pos, batch_start, reason, batches),
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
        let ok = (args.len() == 3 || args.len() == 4)
            && args[1].as_ref() == body.len().to_string().as_bytes()
            && args[2].as_ref() == want.as_bytes();
        if !ok {
            return Outcome::Damaged {
                offset: batch_start as u64,
                reason: "checksum mismatch".into(),
            };
        }
        // The batch is intact; is it the one that belongs here?
        match args.get(3) {
            Some(n) => {
                let expected = batches + 1;
                let seq = std::str::from_utf8(n)
                    .ok()
                    .and_then(|n| n.parse::<u64>().ok());
                if seq != Some(expected) {
                    return Outcome::Damaged {
                        offset: batch_start as u64,
                        reason: format!(
                            "batch number {} where batch {expected} belongs: batches are missing, repeated or out of order",
                            String::from_utf8_lossy(n)
                        ),
                    };
                }
                batches = expected;
                numbered = true;
            }
            None if numbered => {
                return Outcome::Damaged {
                    offset: batch_start as u64,
                    reason: "a batch without a number after numbered batches".into(),
                };
            }
            None => {}
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
    if path.extension().is_some_and(|e| e == "manifest") {
        return check_manifest(path, fix);
    }
    check_one(path, fix)
}

/// `--check-aof <manifest>`: the manifest itself, that every file it names is there, and
/// each file in load order (only the last one written may have a torn tail).
fn check_manifest(path: &Path, fix: bool) -> u8 {
    use super::manifest::{Manifest, Names};
    let dir = path.parent().unwrap_or(Path::new("."));
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Cannot read {}: {e}", path.display());
            return 1;
        }
    };
    let manifest = match Manifest::parse(dir, path, &text) {
        Ok(m) => m,
        Err(e) => {
            println!("{e}");
            return 1;
        }
    };
    let prefix = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".manifest"))
        .unwrap_or("appendonly.aof");
    if let Err(e) = manifest.check_files(&Names::new(prefix)) {
        println!("{e}");
        return 1;
    }
    let files = manifest.files();
    println!(
        "AOF manifest {} is valid: {} files",
        path.display(),
        files.len()
    );
    let last_written = files
        .iter()
        .rposition(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .unwrap_or(0);
    let mut worst = 0;
    for (i, f) in files.iter().enumerate() {
        // A torn tail is repairable only where a crash can leave one: the last file written.
        let code = check_one(f, fix && i >= last_written);
        if code != 0 && i < last_written {
            println!(
                "{} is not the last file of the manifest: a torn or damaged write there is damage; restore it from a backup",
                f.display()
            );
        }
        worst = worst.max(code);
    }
    worst
}

/// `--check-aof FILE` for one data file.
fn check_one(path: &Path, fix: bool) -> u8 {
    let data = match read_file(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("Cannot read {}: {e}", path.display());
            return 1;
        }
    };
    let mut commands = 0u64;
    match scan(&data, |_, _| commands += 1) {
        Outcome::Complete { len, batches } => {
            println!(
                "AOF {} is valid: {commands} commands in {batches} numbered batches, {len} bytes",
                path.display()
            );
            0
        }
        Outcome::TornTail {
            valid_len,
            file_len,
            ..
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

/// Apply one of Relay's own records — a compacted stream's state, or its idempotency
/// counters — to database `db`; `None` for an ordinary command.
fn restore_record(
    shared: &crate::server::Shared,
    db: usize,
    args: &[Bytes],
) -> Option<Result<(), String>> {
    use crate::store::stream::{snapshot, Stream};
    use crate::store::Value;
    let name = args.first()?.as_ref();
    let which = [snapshot::CHUNKS, snapshot::META, snapshot::IDMP_STATS]
        .into_iter()
        .find(|n| *n == name)?;
    let (Some(key), Some(arg)) = (args.get(1), args.get(2)) else {
        return Some(Err(format!(
            "{} without its arguments",
            String::from_utf8_lossy(name)
        )));
    };
    if db >= shared.keyspace.databases() {
        return Some(Err(format!("database {db} out of range")));
    }
    Some(shared.keyspace.with_shard(db, key, |shard| {
        if shard.get_mut(key).is_none() {
            if which == snapshot::IDMP_STATS {
                return Err("idempotency counters for a stream that does not exist".into());
            }
            shard.insert(key.clone(), Value::Stream(Box::<Stream>::default()));
        }
        let Some(Value::Stream(s)) = shard.get_mut(key) else {
            return Err("a stream's state for a key of another type".into());
        };
        if which == snapshot::CHUNKS {
            snapshot::apply_chunks(s, arg)
        } else if which == snapshot::META {
            snapshot::apply_meta(s, arg)
        } else {
            let number = |a: Option<&Bytes>| {
                a.and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|a| a.parse::<u64>().ok())
                    .ok_or_else(|| "bad idempotency counters".to_string())
            };
            s.idmp.iids_added = number(Some(arg))?;
            s.idmp.iids_duplicates = number(args.get(3))?;
            Ok(())
        }
    }))
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
) -> Result<Loaded, String> {
    use super::manifest::Manifest;
    use std::sync::atomic::Ordering;
    let Some(manifest) = Manifest::read(dir, names).map_err(|e| e.to_string())? else {
        // No manifest: a fresh instance — unless files that hold data are there, whose
        // manifest is gone.
        let orphans = Manifest::orphans(dir, names).map_err(|e| {
            format!(
                "Can't read the append only directory {}: {e}",
                dir.display()
            )
        })?;
        if !orphans.is_empty() {
            return Err(format!(
                "The append only directory {} holds {} but no manifest {}: without it the load order is unknown, and starting empty would drop their data. Restore the manifest from a backup, or write one naming the files in order (one `file <name> seq <n> type b|i` line each, the base first), or move the files away to start empty",
                dir.display(),
                orphans.join(", "),
                names.manifest()
            ));
        }
        Manifest::remove_temp_files(dir);
        return Ok(Loaded::default());
    };
    manifest.check_files(names).map_err(|e| e.to_string())?;
    Manifest::remove_temp_files(dir);
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
    let mut loaded = Loaded::default();
    let mut bad_record: Option<(u64, String)> = None;
    for (i, path) in files.iter().enumerate() {
        let last = i >= last_written;
        let data = match read_file(path) {
            Ok(d) => d,
            Err(e) => {
                return Err(format!(
                    "Cannot read the append only file {}: {e}",
                    path.display()
                ))
            }
        };
        let outcome = scan(&data, |args, at| {
            if bad_record.is_some() {
                return;
            }
            if let Some(done) = restore_record(shared, session.db, &args) {
                if let Err(e) = done {
                    bad_record = Some((at, e));
                }
                return;
            }
            if !crate::command::replayable(&args) {
                // Relay's writer logs write commands only: anything else was put there by
                // something else, and replaying it (SUBSCRIBE, CONFIG SET, SHUTDOWN…) would
                // change more than data.
                bad_record = Some((
                    at,
                    format!(
                        "a {:?} record, which is not a write Relay logs",
                        String::from_utf8_lossy(args.first().map_or(&b""[..], |a| a))
                    ),
                ));
                return;
            }
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
        if let Some((at, e)) = bad_record.take() {
            return Err(format!(
                "Bad record in the append only file {} at offset {at}: {e}. Make a backup of the file and run `relay-server --check-aof {}`; a damaged record cannot be repaired automatically",
                path.display(),
                path.display()
            ));
        }
        let batches = match outcome {
            Outcome::Complete { batches, .. } => batches,
            Outcome::TornTail {
                valid_len,
                file_len,
                batches,
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
                batches
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
        };
        if let Some((name, _)) = manifest.incrs.last() {
            if *path == dir.join(name) {
                loaded.last_incr = Some((name.clone(), batches));
            }
        }
        done_before += data.len() as u64;
    }
    shared.loading_done.store(total, Ordering::Relaxed);
    if session.multi.take().is_some() {
        // Transactions are appended whole, in one checksummed batch, so this cannot come
        // from a crash; a file edited by hand could. Its commands were never acknowledged.
        tracing::warn!(
            "The append only file ends inside a transaction (MULTI without EXEC): its commands were not applied"
        );
    }
    if failed > 0 {
        tracing::warn!("{failed} commands in the append only file failed while replaying");
    }
    tracing::info!(
        "DB loaded from append only file: {:.3} seconds ({total} bytes)",
        started.elapsed().as_secs_f64()
    );
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One batch of `cmds` as the writer lays it out, numbered `seq` (`None`: the
    /// unnumbered checkpoint of files written before batches were numbered).
    fn batch(cmds: &[&[&str]], seq: Option<u64>) -> Vec<u8> {
        let mut data = Vec::new();
        for cmd in cmds {
            let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
            super::super::encode_command(&mut data, &args);
        }
        match seq {
            Some(n) => super::super::end_batch(&mut data, n),
            None => {
                let mut crc = crc32fast::Hasher::new();
                crc.update(&data);
                let sum = format!("{:08x}", crc.finalize());
                let len = data.len().to_string();
                super::super::encode_command(
                    &mut data,
                    &[CHECKPOINT, len.as_bytes(), sum.as_bytes()],
                );
            }
        }
        data
    }

    /// Two batches as the writer lays them out.
    fn sample() -> Vec<u8> {
        let mut file = batch(&[&["SET", "a", "1"], &["SET", "b", "2"]], Some(1));
        file.extend(batch(&[&["DEL", "a"]], Some(2)));
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
                    len: file.len() as u64,
                    batches: 2
                }
            )
        );
        let first_end = batch(&[&["SET", "a", "1"], &["SET", "b", "2"]], Some(1)).len();
        for cut in first_end + 1..file.len() {
            let (n, out) = commands(&file[..cut]);
            assert_eq!(n, 2, "cut at {cut}");
            assert_eq!(
                out,
                Outcome::TornTail {
                    valid_len: first_end as u64,
                    file_len: cut as u64,
                    batches: 1
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

    #[test]
    fn batches_swapped_repeated_or_missing_are_damage() {
        let b = |n: u64| batch(&[&["SET", "k", &n.to_string()]], Some(n));
        let (b1, b2, b3) = (b(1), b(2), b(3));
        let join = |parts: &[&Vec<u8>]| {
            parts
                .iter()
                .flat_map(|p| p.iter().copied())
                .collect::<Vec<u8>>()
        };
        let (n, out) = commands(&join(&[&b1, &b2, &b3]));
        assert_eq!(n, 3);
        assert!(
            matches!(out, Outcome::Complete { batches: 3, .. }),
            "{out:?}"
        );
        for (what, file, applied, offset) in [
            ("swapped", join(&[&b1, &b3, &b2]), 1, b1.len()),
            (
                "repeated",
                join(&[&b1, &b2, &b2, &b3]),
                2,
                b1.len() + b2.len(),
            ),
            ("missing", join(&[&b1, &b3]), 1, b1.len()),
            ("not first", join(&[&b2, &b3]), 0, 0),
        ] {
            let (n, out) = commands(&file);
            assert_eq!(
                n, applied,
                "{what}: only the batches before the damage are applied"
            );
            match out {
                Outcome::Damaged { offset: at, reason } => {
                    assert_eq!(at, offset as u64, "{what}");
                    assert!(reason.contains("out of order"), "{what}: {reason}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn files_from_before_numbering_load_and_continue_numbered() {
        let old1 = batch(&[&["SET", "a", "1"]], None);
        let old2 = batch(&[&["SET", "b", "2"]], None);
        let new1 = batch(&[&["SET", "c", "3"]], Some(1));
        let mut file = [old1.clone(), old2, new1.clone()].concat();
        let (n, out) = commands(&file);
        assert_eq!(n, 3);
        assert!(
            matches!(out, Outcome::Complete { batches: 1, .. }),
            "{out:?}"
        );
        // Once numbered, an unnumbered batch cannot follow.
        file.extend(old1);
        let (n, out) = commands(&file);
        assert_eq!(n, 3);
        assert!(matches!(out, Outcome::Damaged { .. }), "{out:?}");
    }

    #[test]
    fn a_changed_last_byte_is_damage_but_a_zero_filled_tail_is_torn() {
        let file = sample();
        let mut bad = file.clone();
        *bad.last_mut().unwrap() = b'X';
        assert!(matches!(commands(&bad).1, Outcome::Damaged { .. }));
        let first_end = batch(&[&["SET", "a", "1"], &["SET", "b", "2"]], Some(1)).len();
        for cut in [first_end, first_end + 1, first_end + 9, file.len() - 1] {
            let mut zeroed = file[..cut].to_vec();
            zeroed.extend(std::iter::repeat_n(0u8, 4096));
            let (n, out) = commands(&zeroed);
            assert_eq!(n, 2, "cut at {cut}");
            assert!(
                matches!(out, Outcome::TornTail { valid_len, batches: 1, .. } if valid_len == first_end as u64),
                "cut at {cut}: {out:?}"
            );
        }
    }

    #[test]
    fn lengths_near_the_end_of_the_address_space_are_damage_not_a_panic() {
        for len in [u64::MAX - 30, (usize::MAX - 10) as u64, usize::MAX as u64] {
            let rec = format!("*1\r\n${len}\r\nxx");
            let _ = commands(rec.as_bytes());
        }
        let (n, out) = commands(b"*16777216\r\n$1\r\nx\r\n");
        assert_eq!(n, 0);
        assert!(!matches!(out, Outcome::Complete { .. }));
    }
}
