//! The AOF manifest (Redis 7's multi-part layout): which base file and incremental files
//! make up the data, in load order, in `<dir>/<appenddirname>/<appendfilename>.manifest`.
//!
//! Lines read `file <name> seq <n> type <b|i|h>` (base, incremental, history). The manifest
//! is only ever replaced whole: written to a temporary file, fsynced, renamed over the old
//! one, and the directory fsynced, so a crash leaves the old or the new manifest, never a mix.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File names derived from `appendfilename`.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
}

impl Names {
    pub fn new(appendfilename: &str) -> Self {
        Names {
            prefix: appendfilename.to_string(),
        }
    }

    pub fn manifest(&self) -> String {
        format!("{}.manifest", self.prefix)
    }

    pub fn incr(&self, seq: u64) -> String {
        format!("{}.{seq}.incr.aof", self.prefix)
    }

    pub fn base(&self, seq: u64) -> String {
        format!("{}.{seq}.base.aof", self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub dir: PathBuf,
    pub base: Option<(String, u64)>,
    pub incrs: Vec<(String, u64)>,
}

/// Redis's MANIFEST_MAX_LINE.
const MAX_LINE: usize = 1024;

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Manifest {
    /// Read the manifest in `dir`; `None` if there is none. A manifest that exists must be
    /// whole and valid as Redis 7 checks it (`aofLoadManifestFromFile`): not empty, every
    /// line ended by a newline (a last line without one is a cut-off write), `file <name>
    /// seq <n> type <b|i|h>` on every line that is not a comment, a name that is not a
    /// path, at most one base, incremental files in increasing sequence order. Anything
    /// else is an error that names the line and says how to repair the file.
    pub fn read(dir: &Path, names: &Names) -> io::Result<Option<Manifest>> {
        let path = dir.join(names.manifest());
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "Can't open the AOF manifest file {} for reading: {e}",
                        path.display()
                    ),
                ))
            }
        };
        Manifest::parse(dir, &path, &text).map(Some)
    }

    /// Parse the manifest text read from `path` (see `read`).
    pub fn parse(dir: &Path, path: &Path, text: &[u8]) -> io::Result<Manifest> {
        let fail = |line: Option<(usize, &str)>, what: &str| {
            let at = line.map_or(String::new(), |(n, l)| format!(" at line {n} ('{l}')"));
            bad(format!(
                "Bad AOF manifest {}{at}: {what}. The manifest lists the files of the append only file in load order, one `file <name> seq <n> type <b|i>` line each: restore it from a backup, or rewrite it to name the base (type b) and incremental (type i) files of {} in order",
                path.display(),
                dir.display()
            ))
        };
        if text.is_empty() {
            return Err(fail(None, "Found an empty AOF manifest"));
        }
        let Ok(text) = std::str::from_utf8(text) else {
            return Err(fail(None, "Invalid AOF manifest file format (not text)"));
        };
        if !text.ends_with('\n') {
            return Err(fail(
                None,
                "the last line has no newline (the manifest was cut off while written)",
            ));
        }
        let mut m = Manifest {
            dir: dir.to_path_buf(),
            base: None,
            incrs: vec![],
        };
        let mut max_incr = 0u64;
        for (n, raw) in text.split_terminator('\n').enumerate() {
            let n = n + 1;
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim_matches([' ', '\t', '\r']);
            let at = Some((n, line));
            if line.len() > MAX_LINE {
                return Err(fail(
                    Some((n, "…")),
                    "The AOF manifest file contains too long line",
                ));
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 6 || !words.len().is_multiple_of(2) {
                return Err(fail(at, "Invalid AOF manifest file format"));
            }
            let (mut file, mut seq, mut kind) = (None, None, None);
            for pair in words.chunks(2) {
                if let [k, v] = pair {
                    // Unknown keys are skipped, as Redis does for forward compatibility.
                    match k.to_ascii_lowercase().as_str() {
                        "file" => file = Some(*v),
                        "seq" => seq = v.parse::<u64>().ok().filter(|s| *s > 0),
                        "type" => kind = Some(*v),
                        _ => {}
                    }
                }
            }
            let (Some(file), Some(seq), Some(kind)) = (file, seq, kind) else {
                return Err(fail(at, "Invalid AOF manifest file format"));
            };
            if file.contains('/') || file.contains('\\') {
                return Err(fail(at, "File can't be a path, just a filename"));
            }
            let entry = (file.to_string(), seq);
            if m.base.iter().chain(m.incrs.iter()).any(|(f, _)| f == file) {
                return Err(fail(at, "the same file is named twice"));
            }
            match kind {
                "b" => {
                    if m.base.is_some() {
                        return Err(fail(at, "Found duplicate base file information"));
                    }
                    m.base = Some(entry);
                }
                "i" => {
                    if seq <= max_incr {
                        return Err(fail(at, "Found a non-monotonic sequence number"));
                    }
                    max_incr = seq;
                    m.incrs.push(entry);
                }
                "h" => {}
                _ => return Err(fail(at, "Unknown AOF file type")),
            }
        }
        if m.base.is_none() && m.incrs.is_empty() {
            return Err(fail(None, "it names no base or incremental file"));
        }
        Ok(m)
    }

    /// Check that every file the manifest names exists and can be read: a named file that
    /// is missing is data that is gone, and loading without it would serve the rest as if
    /// it were everything.
    pub fn check_files(&self, names: &Names) -> io::Result<()> {
        for (name, _) in self.base.iter().chain(self.incrs.iter()) {
            let path = self.dir.join(name);
            let problem = match std::fs::File::open(&path).and_then(|f| f.metadata()) {
                Ok(meta) if meta.is_file() => continue,
                Ok(_) => "is not a regular file".to_string(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => "does not exist".to_string(),
                Err(e) => format!("cannot be read: {e}"),
            };
            return Err(bad(format!(
                "The AOF manifest {m} names {name}, which {problem}. The data in it cannot be loaded: restore the file from a backup. If it is lost for good, remove its line from the manifest to start with the data of the other files (`relay-server --check-aof {m}` checks the manifest and every file it names)",
                m = self.dir.join(names.manifest()).display()
            )));
        }
        Ok(())
    }

    /// The manifest to append with: the existing one, or a new one with one empty
    /// incremental file (creating the directory). A file is created before any manifest
    /// names it, so a crash in between leaves an unnamed empty file, never a manifest that
    /// names a missing one.
    pub fn open_for_append(dir: &Path, names: &Names) -> io::Result<Manifest> {
        let mut m = match Manifest::read(dir, names)? {
            Some(m) if !m.incrs.is_empty() => return Ok(m),
            Some(m) => m,
            None => {
                std::fs::create_dir_all(dir)?;
                Manifest {
                    dir: dir.to_path_buf(),
                    base: None,
                    incrs: vec![],
                }
            }
        };
        let seq = m.base.as_ref().map_or(1, |(_, s)| *s);
        m.incrs.push((names.incr(seq), seq));
        m.open_incr()?;
        m.write_atomic(names)?;
        Ok(m)
    }

    /// Without a manifest: the files in `dir` that look like base or incremental files of
    /// this AOF and hold data (empty ones hold nothing to lose). Any means the manifest
    /// that named them is gone, and starting empty would silently drop their data.
    pub fn orphans(dir: &Path, names: &Names) -> io::Result<Vec<String>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e),
        };
        let prefix = format!("{}.", names.prefix);
        let mut found = vec![];
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let data_file = name.starts_with(&prefix)
                && (name.ends_with(".incr.aof") || name.ends_with(".base.aof"));
            if data_file && entry.metadata().is_ok_and(|m| m.len() > 0) {
                found.push(name);
            }
        }
        found.sort();
        Ok(found)
    }

    /// Remove what an interrupted compaction or manifest update left (`temp-*` files, which
    /// no manifest ever names).
    pub fn remove_temp_files(dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("temp-") && entry.path().is_file() {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => tracing::info!("Removed {name}, left by an interrupted rewrite"),
                    Err(e) => tracing::warn!("Cannot remove {name}: {e}"),
                }
            }
        }
    }

    /// Files in load order: the base, then the incremental files.
    pub fn files(&self) -> Vec<PathBuf> {
        self.base
            .iter()
            .chain(self.incrs.iter())
            .map(|(f, _)| self.dir.join(f))
            .collect()
    }

    /// The incremental file new records go to, opened for appending (created if missing).
    pub fn open_incr(&self) -> io::Result<File> {
        let Some((name, _)) = self.incrs.last() else {
            return Err(bad("AOF manifest has no incremental file".into()));
        };
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name))
    }

    pub fn total_size(&self, dir: &Path) -> u64 {
        self.base
            .iter()
            .chain(self.incrs.iter())
            .filter_map(|(f, _)| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum()
    }

    pub fn base_size(&self, dir: &Path) -> u64 {
        self.base
            .as_ref()
            .and_then(|(f, _)| std::fs::metadata(dir.join(f)).ok())
            .map_or(0, |m| m.len())
    }

    /// Replace the manifest: write a temporary file, fsync it, rename it over the old one,
    /// fsync the directory.
    pub fn write_atomic(&self, names: &Names) -> io::Result<()> {
        let mut text = String::new();
        if let Some((f, seq)) = &self.base {
            text.push_str(&format!("file {f} seq {seq} type b\n"));
        }
        for (f, seq) in &self.incrs {
            text.push_str(&format!("file {f} seq {seq} type i\n"));
        }
        let tmp = self.dir.join(format!("temp-{}", names.manifest()));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(names.manifest()))?;
        sync_dir(&self.dir)
    }
}

/// fsync a directory, so a rename or a new file in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_lists_files_in_load_order() {
        let dir = std::env::temp_dir().join(format!("relay-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = Names::new("appendonly.aof");
        let m = Manifest::open_for_append(&dir, &names).unwrap();
        assert_eq!(m.incrs, vec![("appendonly.aof.1.incr.aof".to_string(), 1)]);
        let mut m2 = m.clone();
        m2.base = Some((names.base(2), 2));
        m2.incrs = vec![(names.incr(2), 2)];
        m2.write_atomic(&names).unwrap();
        let back = Manifest::read(&dir, &names).unwrap().unwrap();
        assert_eq!(back, m2);
        assert_eq!(
            back.files(),
            vec![
                dir.join("appendonly.aof.2.base.aof"),
                dir.join("appendonly.aof.2.incr.aof")
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn parse(text: &str) -> Result<Manifest, String> {
        let dir = Path::new("/nowhere");
        Manifest::parse(dir, &dir.join("m"), text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn manifests_are_checked_as_redis_checks_them() {
        let ok = "file a.1.base.aof seq 1 type b\nfile a.1.incr.aof seq 1 type i\nfile a.2.incr.aof seq 2 type i\n";
        let m = parse(ok).unwrap();
        assert_eq!(m.incrs.len(), 2);
        assert!(parse("# a comment\nfile x seq 1 type i future key\n").is_ok());
        for (text, why) in [
            ("", "Found an empty AOF manifest"),
            ("file a.1.incr.aof seq 1 type i", "cut off"),
            ("file a.1.incr.aof seq 1 ty", "cut off"),
            (
                "file a.1.incr.aof seq 1 ty\n",
                "Invalid AOF manifest file format",
            ),
            ("\n", "Invalid AOF manifest file format"),
            ("file a seq x type i\n", "Invalid AOF manifest file format"),
            ("file ../a seq 1 type i\n", "File can't be a path"),
            (
                "file a seq 1 type b\nfile b seq 2 type b\n",
                "duplicate base",
            ),
            (
                "file a seq 2 type i\nfile b seq 1 type i\n",
                "non-monotonic",
            ),
            ("file a seq 1 type i\nfile a seq 2 type i\n", "named twice"),
            ("file a seq 1 type z\n", "Unknown AOF file type"),
            ("# only a comment\n", "names no base or incremental file"),
            ("file a seq 1 type h\n", "names no base or incremental file"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(why), "{text:?}: {err}");
            assert!(err.contains("restore it from a backup"), "{err}");
        }
        let long = format!("file {} seq 1 type i\n", "x".repeat(2000));
        assert!(parse(&long).unwrap_err().contains("too long line"));
    }

    #[test]
    fn missing_files_and_orphans_are_found() {
        let dir = std::env::temp_dir().join(format!("relay-manifest-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = Names::new("appendonly.aof");
        let m = Manifest::open_for_append(&dir, &names).unwrap();
        m.check_files(&names).unwrap();
        assert!(
            Manifest::orphans(&dir, &names).unwrap().is_empty(),
            "an empty file holds nothing"
        );
        std::fs::write(dir.join(names.incr(1)), b"data").unwrap();
        assert_eq!(
            Manifest::orphans(&dir, &names).unwrap(),
            vec![names.incr(1)]
        );
        std::fs::remove_file(dir.join(names.incr(1))).unwrap();
        let err = m.check_files(&names).unwrap_err().to_string();
        assert!(
            err.contains("appendonly.aof.1.incr.aof, which does not exist"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
