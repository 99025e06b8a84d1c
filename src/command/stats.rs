//! INFO commandstats and errorstats: per command (subcommands apart, as `client|list`)
//! calls, time, calls rejected before running and calls that answered an error; per error
//! code (the first word of the error: `ERR`, `WRONGTYPE`, `NOGROUP`, …) the errors sent.
//! Counted in one place, `dispatch`, for every command a client or EXEC runs.

use super::table;
use crate::reply::Reply;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
struct CmdStat {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
}

/// Redis stops tracking new error codes past this many (a client inventing error codes
/// must not grow the table without bound).
const MAX_ERROR_CODES: usize = 128;

pub struct CommandStats {
    per: Vec<CmdStat>,
    errors: Mutex<BTreeMap<String, u64>>,
    /// Error replies of any code (INFO stats `total_error_replies`).
    pub total_errors: AtomicU64,
}

impl Default for CommandStats {
    fn default() -> Self {
        let n = table().len();
        CommandStats {
            per: (0..n).map(|_| CmdStat::default()).collect(),
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
        }
    }
}

/// The error code of an error reply, if `reply` is one.
fn error_code(reply: &Reply) -> Option<String> {
    let text: &[u8] = match reply {
        Reply::Error(t) => t.as_bytes(),
        Reply::ErrorBytes(b) => b,
        _ => return None,
    };
    let code = text.split(|&c| c == b' ').next().unwrap_or(b"ERR");
    Some(String::from_utf8_lossy(code).into_owned())
}

impl CommandStats {
    /// Command `id` ran for `usec` microseconds and answered `reply`.
    pub fn called(&self, id: usize, usec: u64, reply: &Reply) {
        if let Some(s) = self.per.get(id) {
            s.calls.fetch_add(1, Ordering::Relaxed);
            s.usec.fetch_add(usec, Ordering::Relaxed);
            if reply.is_error() {
                s.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.error(reply);
    }

    /// Command `id` (when known) was refused before running with `reply`.
    pub fn rejected(&self, id: Option<usize>, reply: &Reply) {
        if let Some(s) = id.and_then(|id| self.per.get(id)) {
            s.rejected.fetch_add(1, Ordering::Relaxed);
        }
        self.error(reply);
    }

    /// Count an error reply by its code.
    pub fn error(&self, reply: &Reply) {
        let Some(code) = error_code(reply) else {
            return;
        };
        self.total_errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.errors.lock() {
            if e.len() < MAX_ERROR_CODES || e.contains_key(&code) {
                *e.entry(code).or_default() += 1;
            }
        }
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for s in &self.per {
            for c in [&s.calls, &s.usec, &s.rejected, &s.failed] {
                c.store(0, Ordering::Relaxed);
            }
        }
        if let Ok(mut e) = self.errors.lock() {
            e.clear();
        }
        self.total_errors.store(0, Ordering::Relaxed);
    }

    /// INFO commandstats lines: commands that were called or rejected, by name.
    pub fn commandstats(&self, out: &mut String) {
        let t = table();
        let mut lines: Vec<(String, String)> = Vec::new();
        for (id, s) in self.per.iter().enumerate() {
            let (calls, rejected) = (
                s.calls.load(Ordering::Relaxed),
                s.rejected.load(Ordering::Relaxed),
            );
            if calls == 0 && rejected == 0 {
                continue;
            }
            let usec = s.usec.load(Ordering::Relaxed);
            let per_call = if calls > 0 {
                usec as f64 / calls as f64
            } else {
                0.0
            };
            lines.push((
                t.fullname(id).to_string(),
                format!(
                    "calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={}",
                    s.failed.load(Ordering::Relaxed)
                ),
            ));
        }
        lines.sort();
        for (name, value) in lines {
            let _ = write!(out, "cmdstat_{name}:{value}\r\n");
        }
    }

    /// INFO errorstats lines.
    pub fn errorstats(&self, out: &mut String) {
        if let Ok(e) = self.errors.lock() {
            for (code, n) in e.iter() {
                let _ = write!(out, "errorstat_{code}:count={n}\r\n");
            }
        }
    }
}
