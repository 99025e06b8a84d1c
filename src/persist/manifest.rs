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

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Manifest {
    /// Read the manifest in `dir`; `None` if there is none.
    pub fn read(dir: &Path, names: &Names) -> io::Result<Option<Manifest>> {
        let path = dir.join(names.manifest());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut m = Manifest {
            dir: dir.to_path_buf(),
            base: None,
            incrs: vec![],
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let field = |k: &str| {
                words
                    .chunks(2)
                    .find(|p| p.first() == Some(&k))
                    .and_then(|p| p.get(1).copied())
            };
            let (Some(file), Some(seq), Some(kind)) = (field("file"), field("seq"), field("type"))
            else {
                return Err(bad(format!(
                    "Invalid AOF manifest {} line {}: {line}",
                    path.display(),
                    n + 1
                )));
            };
            let seq: u64 = seq.parse().map_err(|_| {
                bad(format!(
                    "Invalid seq in AOF manifest {} line {}",
                    path.display(),
                    n + 1
                ))
            })?;
            if file.contains('/') {
                return Err(bad(format!(
                    "AOF manifest {} names a path: {file}",
                    path.display()
                )));
            }
            match kind {
                "b" => m.base = Some((file.to_string(), seq)),
                "i" => m.incrs.push((file.to_string(), seq)),
                "h" => {}
                other => {
                    return Err(bad(format!(
                        "Unknown file type {other} in AOF manifest {}",
                        path.display()
                    )))
                }
            }
        }
        m.incrs.sort_by_key(|(_, seq)| *seq);
        Ok(Some(m))
    }

    /// The manifest to append with: the existing one, or a new one with one empty
    /// incremental file (creating the directory).
    pub fn open_for_append(dir: &Path, names: &Names) -> io::Result<Manifest> {
        if let Some(m) = Manifest::read(dir, names)? {
            if !m.incrs.is_empty() {
                return Ok(m);
            }
            let mut m = m;
            let seq = m.base.as_ref().map_or(1, |(_, s)| *s);
            m.incrs.push((names.incr(seq), seq));
            m.write_atomic(names)?;
            return Ok(m);
        }
        std::fs::create_dir_all(dir)?;
        let m = Manifest {
            dir: dir.to_path_buf(),
            base: None,
            incrs: vec![(names.incr(1), 1)],
        };
        m.write_atomic(names)?;
        Ok(m)
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
}
