//! Configuration: one table of options behind the TOML file, the command line and CONFIG GET/SET.
//!
//! Every option is declared once in [`OPTIONS`] with its Redis name, default, whether CONFIG SET
//! may change it at run time, and its documentation. The TOML loader, the clap flags
//! (`--port 7000`), CONFIG GET (glob over names), CONFIG SET (several pairs, all or nothing) and
//! CONFIG REWRITE all go through that table, so an option cannot exist in one place and not in
//! another. Values are parsed with Redis's rules (memory units `kb`/`mb`/`gb`, `yes`/`no`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Output buffer limits for one client class (`client-output-buffer-limit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

/// Client classes as Redis names them in `client-output-buffer-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientClass {
    Normal = 0,
    Replica = 1,
    Pubsub = 2,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: Vec<String>,
    pub port: u16,
    pub maxclients: u64,
    pub io_threads: u64,
    pub timeout: u64,
    pub tcp_keepalive: u64,
    pub databases: u64,
    pub loglevel: String,
    pub logfile: String,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub obuf: [ObufLimit; 3],
    pub stream_node_max_entries: u64,
    pub stream_node_max_bytes: u64,
    pub stream_idmp_duration: u64,
    pub stream_idmp_maxsize: u64,
    pub save: String,
    pub appendonly: bool,
    pub dir: String,
    pub appendfilename: String,
    pub appenddirname: String,
    pub appendfsync: String,
    pub aof_load_truncated: bool,
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    pub no_appendfsync_on_rewrite: bool,
    pub maxmemory: u64,
    /// `notify-keyspace-events` as class bits (`events::class`).
    pub notify_keyspace_events: u16,
    /// The file this configuration was read from (CONFIG REWRITE writes it back).
    pub config_file: Option<PathBuf>,
    /// Values of [`ACCEPTED`] configs that differ from Redis's default, as CONFIG GET shows
    /// them, by primary name.
    pub accepted: BTreeMap<&'static str, String>,
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

/// One configuration option.
pub struct OptionSpec {
    pub name: &'static str,
    pub default: &'static str,
    /// CONFIG SET may change it while running.
    pub mutable: bool,
    pub doc: &'static str,
    pub get: Getter,
    pub set: Setter,
}

pub const OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "bind",
        default: "127.0.0.1",
        mutable: false,
        doc: "Addresses to listen on, separated by spaces (\"0.0.0.0\" for every IPv4 interface).",
        get: |c| c.bind.join(" "),
        set: |c, v| {
            let addrs: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            if addrs.is_empty() {
                return Err("Too many bind addresses specified.".into());
            }
            c.bind = addrs;
            Ok(())
        },
    },
    OptionSpec {
        name: "port",
        default: "6379",
        mutable: false,
        doc: "TCP port; 0 picks a free port (the log says which).",
        get: |c| c.port.to_string(),
        set: |c, v| {
            c.port = parse_int(v, 0, 65535)? as u16;
            Ok(())
        },
    },
    OptionSpec {
        name: "maxclients",
        default: "10000",
        mutable: true,
        doc: "Connections beyond this many are answered `-ERR max number of clients reached` and closed.",
        get: |c| c.maxclients.to_string(),
        set: |c, v| {
            c.maxclients = parse_int(v, 1, u32::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "io-threads",
        default: "1",
        mutable: false,
        doc: "Threads serving connections. 1 (as Redis) runs every connection on one thread, which is fastest when clients share the machine; more spread connections over that many cores.",
        get: |c| c.io_threads.to_string(),
        set: |c, v| {
            c.io_threads = parse_int(v, 1, 128)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "timeout",
        default: "0",
        mutable: true,
        doc: "Close a connection idle for this many seconds (0 = never). Subscribers are never closed for idleness.",
        get: |c| c.timeout.to_string(),
        set: |c, v| {
            c.timeout = parse_int(v, 0, i32::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "tcp-keepalive",
        default: "300",
        mutable: true,
        doc: "Seconds between TCP keepalive probes on client sockets (0 = off).",
        get: |c| c.tcp_keepalive.to_string(),
        set: |c, v| {
            c.tcp_keepalive = parse_int(v, 0, i32::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "databases",
        default: "16",
        mutable: false,
        doc: "Number of logical databases (SELECT 0..databases-1).",
        get: |c| c.databases.to_string(),
        set: |c, v| {
            c.databases = parse_int(v, 1, i32::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "loglevel",
        default: "notice",
        mutable: true,
        doc: "debug, verbose, notice or warning.",
        get: |c| c.loglevel.clone(),
        set: |c, v| {
            let v = v.to_ascii_lowercase();
            // Redis 7.2 adds "nothing"; 7.0 (the differential oracle) refuses it.
            if !["debug", "verbose", "notice", "warning"].contains(&v.as_str()) {
                return Err("argument(s) must be one of the following: debug, verbose, notice, warning".into());
            }
            c.loglevel = v;
            Ok(())
        },
    },
    OptionSpec {
        name: "logfile",
        default: "",
        mutable: false,
        doc: "Log to this file; empty logs to standard output.",
        get: |c| c.logfile.clone(),
        set: |c, v| {
            c.logfile = v.to_string();
            Ok(())
        },
    },
    OptionSpec {
        name: "proto-max-bulk-len",
        default: "512mb",
        mutable: true,
        doc: "Largest bulk string a request may carry.",
        get: |c| c.proto_max_bulk_len.to_string(),
        set: |c, v| {
            c.proto_max_bulk_len = memory_in_range(v, 1024 * 1024, i64::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "client-query-buffer-limit",
        default: "1gb",
        mutable: true,
        doc: "A client whose unparsed input exceeds this is disconnected.",
        get: |c| c.client_query_buffer_limit.to_string(),
        set: |c, v| {
            c.client_query_buffer_limit = memory_in_range(v, 1024 * 1024, i64::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "client-output-buffer-limit",
        default: "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        mutable: true,
        doc: "Per class (normal, replica, pubsub): hard limit, soft limit, soft seconds. A client over the hard limit, or over the soft limit for soft-seconds, is disconnected.",
        get: |c| {
            let [n, r, p] = c.obuf;
            format!(
                "normal {} {} {} slave {} {} {} pubsub {} {} {}",
                n.hard, n.soft, n.soft_seconds, r.hard, r.soft, r.soft_seconds, p.hard, p.soft, p.soft_seconds
            )
        },
        set: |c, v| {
            if v.is_empty() {
                return Ok(());
            }
            let words: Vec<&str> = v.split_whitespace().collect();
            if words.is_empty() || !words.len().is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut obuf = c.obuf;
            for chunk in words.chunks(4) {
                let class = match chunk[0].to_ascii_lowercase().as_str() {
                    "normal" => ClientClass::Normal,
                    "slave" | "replica" => ClientClass::Replica,
                    "pubsub" => ClientClass::Pubsub,
                    _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
                };
                let hard = parse_memory(chunk[1]).map_err(|_| "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string())?;
                let soft = parse_memory(chunk[2]).map_err(|_| "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string())?;
                let secs = parse_int(chunk[3], 0, i64::MAX as u64).map_err(|_| "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string())?;
                obuf[class as usize] = ObufLimit { hard, soft, soft_seconds: secs };
            }
            c.obuf = obuf;
            Ok(())
        },
    },
    OptionSpec {
        name: "stream-node-max-entries",
        default: "100",
        mutable: true,
        doc: "A stream node (chunk) holds at most this many entries, deleted ones included (0 = no limit). Approximate trimming removes whole nodes.",
        get: |c| c.stream_node_max_entries.to_string(),
        set: |c, v| {
            c.stream_node_max_entries = parse_int(v, 0, i64::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "stream-node-max-bytes",
        default: "4096",
        mutable: true,
        doc: "A stream node ends when its size in Redis's listpack encoding would reach this many bytes (0 = 1 GiB).",
        get: |c| c.stream_node_max_bytes.to_string(),
        set: |c, v| {
            c.stream_node_max_bytes = memory_in_range(v, 0, i64::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "stream-idmp-duration",
        default: "100",
        mutable: true,
        doc: "Seconds an idempotent producer's XADD IDMP/IDMPAUTO ID is remembered, for streams created from now on (XCFGSET changes one stream).",
        get: |c| c.stream_idmp_duration.to_string(),
        set: |c, v| {
            c.stream_idmp_duration = parse_int(v, 1, 86400)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "stream-idmp-maxsize",
        default: "100",
        mutable: true,
        doc: "Idempotent IDs remembered per producer, for streams created from now on (XCFGSET changes one stream).",
        get: |c| c.stream_idmp_maxsize.to_string(),
        set: |c, v| {
            c.stream_idmp_maxsize = parse_int(v, 1, 10000)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "save",
        default: "",
        mutable: true,
        doc: "Accepted for compatibility with tools that read it; Relay has no RDB snapshots.",
        get: |c| c.save.clone(),
        set: |c, v| {
            // Redis's check: pairs of "seconds changes", seconds >= 1, changes >= 0.
            if v.is_empty() {
                c.save.clear();
                return Ok(());
            }
            let words: Vec<&str> = v.split_whitespace().collect();
            let valid = !words.is_empty()
                && words.len().is_multiple_of(2)
                && words.iter().enumerate().all(|(i, w)| {
                    crate::resp::parse_i64(w.as_bytes()).is_some_and(|n| n >= if i % 2 == 0 { 1 } else { 0 })
                });
            if !valid {
                return Err("Invalid save parameters".into());
            }
            c.save = words.join(" ");
            Ok(())
        },
    },
    OptionSpec {
        name: "appendonly",
        default: "yes",
        mutable: true,
        doc: "Log every change to the append-only file in dir/appenddirname and replay it at start, so a restart loses nothing acknowledged (see appendfsync).",
        get: |c| yes_no(c.appendonly),
        set: |c, v| {
            c.appendonly = parse_bool(v)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "dir",
        default: "./data",
        mutable: true,
        doc: "The working directory: the append-only file's directory is created in it.",
        get: |c| c.dir.clone(),
        set: |c, v| {
            if v.is_empty() {
                return Err("dir must not be empty".into());
            }
            c.dir = v.to_string();
            Ok(())
        },
    },
    OptionSpec {
        name: "appendfilename",
        default: "appendonly.aof",
        mutable: false,
        doc: "The prefix of the append-only files' names (the manifest, base and incremental files).",
        get: |c| c.appendfilename.clone(),
        set: |c, v| {
            if v.is_empty() || v.contains('/') {
                return Err("appendfilename can't be a path, just a filename".into());
            }
            c.appendfilename = v.to_string();
            Ok(())
        },
    },
    OptionSpec {
        name: "appenddirname",
        default: "appendonlydir",
        mutable: false,
        doc: "The directory, inside dir, holding the append-only files.",
        get: |c| c.appenddirname.clone(),
        set: |c, v| {
            if v.is_empty() || v.contains('/') {
                return Err("appenddirname can't be a path, just a dirname".into());
            }
            c.appenddirname = v.to_string();
            Ok(())
        },
    },
    OptionSpec {
        name: "appendfsync",
        default: "everysec",
        mutable: true,
        doc: "always: a write's reply waits until it is on disk (writes arriving together share one fsync); everysec: fsync once a second, at most about a second of writes lost; no: the kernel decides.",
        get: |c| c.appendfsync.clone(),
        set: |c, v| match crate::persist::Fsync::parse(v) {
            Some(p) => {
                c.appendfsync = p.name().to_string();
                Ok(())
            }
            None => Err("argument(s) must be one of the following: everysec, always, no".into()),
        },
    },
    OptionSpec {
        name: "aof-load-truncated",
        default: "yes",
        mutable: true,
        doc: "A crash mid-write leaves a torn last batch: yes truncates it at start (logged), no refuses to start. Damage anywhere else always refuses.",
        get: |c| yes_no(c.aof_load_truncated),
        set: |c, v| {
            c.aof_load_truncated = parse_bool(v)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "auto-aof-rewrite-percentage",
        default: "100",
        mutable: true,
        doc: "Compact the append-only file when it has grown by this percentage since the last compaction (0 = never automatically).",
        get: |c| c.auto_aof_rewrite_percentage.to_string(),
        set: |c, v| {
            c.auto_aof_rewrite_percentage = parse_int(v, 0, i32::MAX as u64)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "auto-aof-rewrite-min-size",
        default: "64mb",
        mutable: true,
        doc: "No automatic compaction below this size.",
        get: |c| c.auto_aof_rewrite_min_size.to_string(),
        set: |c, v| {
            c.auto_aof_rewrite_min_size = parse_memory(v)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "no-appendfsync-on-rewrite",
        default: "no",
        mutable: true,
        doc: "yes: skip fsyncs while a compaction writes its base file (less latency, more risk).",
        get: |c| yes_no(c.no_appendfsync_on_rewrite),
        set: |c, v| {
            c.no_appendfsync_on_rewrite = parse_bool(v)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "maxmemory",
        default: "0",
        mutable: true,
        doc: "Accepted for compatibility; Relay does not evict (0 = no limit).",
        get: |c| c.maxmemory.to_string(),
        set: |c, v| {
            c.maxmemory = parse_memory(v)?;
            Ok(())
        },
    },
    OptionSpec {
        name: "notify-keyspace-events",
        default: "",
        mutable: true,
        doc: "Keyspace events to publish on __keyspace@<db>__:<key> (K) and __keyevent@<db>__:<event> (E): classes g (generic), $ (strings), l, s, h, z, x (expired), e (evicted), t (streams), m (key miss), d (module), n (new key), A (g$lshzxetd). Empty: off.",
        get: |c| crate::events::flags_to_string(c.notify_keyspace_events),
        set: |c, v| {
            c.notify_keyspace_events =
                crate::events::parse_flags(v).ok_or(crate::events::BAD_FLAGS)?;
            Ok(())
        },
    },
];

impl Default for Config {
    fn default() -> Self {
        let mut c = Config {
            bind: vec![],
            port: 0,
            maxclients: 0,
            io_threads: 1,
            timeout: 0,
            tcp_keepalive: 0,
            databases: 0,
            loglevel: String::new(),
            logfile: String::new(),
            proto_max_bulk_len: 0,
            client_query_buffer_limit: 0,
            obuf: [ObufLimit::default(); 3],
            stream_node_max_entries: 0,
            stream_node_max_bytes: 0,
            stream_idmp_duration: 0,
            stream_idmp_maxsize: 0,
            save: String::new(),
            appendonly: false,
            dir: String::new(),
            appendfilename: String::new(),
            appenddirname: String::new(),
            appendfsync: String::new(),
            aof_load_truncated: true,
            auto_aof_rewrite_percentage: 0,
            auto_aof_rewrite_min_size: 0,
            no_appendfsync_on_rewrite: false,
            maxmemory: 0,
            notify_keyspace_events: 0,
            config_file: None,
            accepted: BTreeMap::new(),
        };
        for opt in OPTIONS {
            // Defaults are literals in the table above; a failure is a bug caught by tests.
            if let Err(e) = (opt.set)(&mut c, opt.default) {
                panic!("bad default for {}: {e}", opt.name);
            }
        }
        c
    }
}

pub fn find_option(name: &str) -> Option<&'static OptionSpec> {
    let lower = name.to_ascii_lowercase();
    OPTIONS.iter().find(|o| o.name == lower)
}

impl Config {
    /// Set one option or accepted config by name (or alias), as the TOML file and the CLI do:
    /// immutable ones included. CONFIG SET checks immutability first.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let entry = lookup(name).ok_or_else(|| format!("Unknown option '{name}'"))?;
        entry.set(self, value)
    }

    pub fn get(&self, name: &str) -> Option<String> {
        lookup(name).map(|e| e.get(self))
    }

    /// Load a TOML file: each key is an option name; values may be strings, integers or booleans.
    pub fn load_file(&mut self, path: &std::path::Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        for (key, value) in table {
            let v = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => yes_no(b),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                other => {
                    return Err(format!(
                        "config file {}: option '{key}' has an unsupported value {other}",
                        path.display()
                    ))
                }
            };
            self.set(&key, &v)
                .map_err(|e| format!("config file {}: option '{key}': {e}", path.display()))?;
        }
        self.config_file = Some(path.to_path_buf());
        Ok(())
    }

    /// The file CONFIG REWRITE writes: every option, current value, with its documentation.
    pub fn render_toml(&self) -> String {
        let mut out = String::from("# Relay configuration (written by CONFIG REWRITE).\n");
        for opt in OPTIONS {
            out.push_str(&format!("\n# {}\n", opt.doc));
            let value = (opt.get)(self);
            out.push_str(&format!("{} = {}\n", opt.name, toml::Value::String(value)));
        }
        if !self.accepted.is_empty() {
            out.push_str("\n# Redis configs Relay accepts but does not act on, where changed from Redis's default.\n");
            for (name, value) in &self.accepted {
                out.push_str(&format!(
                    "{name} = {}\n",
                    toml::Value::String(value.clone())
                ));
            }
        }
        out
    }
}

pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// An integer option value, parsed as strictly as Redis's `string2ll` (no spaces, no `+`, no
/// leading zeros), then range-checked.
pub fn parse_int(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = crate::resp::parse_i64(v.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    if (n as i128) < min as i128 || (n as i128) > max as i128 {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n as u64)
}

fn memory_in_range(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = parse_memory(v)?;
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n)
}

/// Redis's `memtoull`: digits then an optional unit b, k, kb, m, mb, g, gb (case-insensitive).
/// Like Redis, no digits means 0, an overlong number saturates and the unit multiplication
/// wraps; anything else (spaces, signs) is an error.
pub fn parse_memory(v: &str) -> Result<u64, String> {
    let bad = || "argument must be a memory value".to_string();
    let split = v.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return Err(bad()),
    };
    if digits.len() >= 128 {
        return Err(bad());
    }
    let n = if digits.is_empty() {
        0
    } else {
        digits.parse::<u64>().unwrap_or(u64::MAX)
    };
    Ok(n.wrapping_mul(mul))
}

mod accepted;
pub use accepted::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_redis() {
        let c = Config::default();
        assert_eq!(c.port, 6379);
        assert_eq!(c.proto_max_bulk_len, 512 * 1024 * 1024);
        assert_eq!(
            c.obuf[ClientClass::Pubsub as usize],
            ObufLimit {
                hard: 32 << 20,
                soft: 8 << 20,
                soft_seconds: 60
            }
        );
    }

    #[test]
    fn shipped_config_file_lists_every_option_at_its_default() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/relay.toml");
        let mut from_file = Config::default();
        from_file.load_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let defaults = Config::default();
        for opt in OPTIONS {
            assert!(
                text.contains(&format!("\n{} = ", opt.name)),
                "config/relay.toml lacks {}",
                opt.name
            );
            assert_eq!(
                (opt.get)(&from_file),
                (opt.get)(&defaults),
                "{} differs from its default",
                opt.name
            );
        }
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("10kb").unwrap(), 10240);
        assert_eq!(parse_memory("10k").unwrap(), 10000);
        assert_eq!(parse_memory("1GB").unwrap(), 1 << 30);
        assert!(parse_memory("ten").is_err());
    }

    #[test]
    fn obuf_setting_changes_only_named_classes() {
        let mut c = Config::default();
        c.set("client-output-buffer-limit", "pubsub 1mb 0 0")
            .unwrap();
        assert_eq!(c.obuf[2].hard, 1 << 20);
        assert_eq!(c.obuf[0], ObufLimit::default());
        assert!(c.set("client-output-buffer-limit", "bogus 1 1 1").is_err());
    }
    #[test]
    fn accepted_defaults_read_back_as_themselves() {
        for a in ACCEPTED {
            if a.name == "activedefrag" || a.default.is_empty() && a.immutable {
                continue;
            }
            assert_eq!(a.parse(a.default).as_deref(), Ok(a.default), "{}", a.name);
        }
    }

    #[test]
    fn every_config_name_is_registered_once() {
        let names: Vec<&str> = entries().map(|e| e.name()).collect();
        let unique: std::collections::HashSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len());
        // Redis 7.0.15: 178 configs (TLS build, without Debian's hidden one) and 19 aliases,
        // plus Relay's two stream-idmp options.
        assert_eq!(names.len(), 178 + 19 + 2);
    }

    #[test]
    fn accepted_configs_are_set_by_alias_and_rewritten_only_when_changed() {
        let mut c = Config::default();
        assert_eq!(c.get("maxmemory-policy").as_deref(), Some("noeviction"));
        assert!(!c.render_toml().contains("hash-max-listpack-entries"));
        c.set("HASH-MAX-ZIPLIST-ENTRIES", "100").unwrap();
        assert_eq!(c.get("hash-max-listpack-entries").as_deref(), Some("100"));
        assert!(c
            .render_toml()
            .contains("\nhash-max-listpack-entries = \"100\"\n"));
        c.set("hash-max-listpack-entries", "512").unwrap();
        assert!(c.accepted.is_empty());
        assert_eq!(
            c.set("hash-max-listpack-entries", "-1"),
            Err("argument must be between 0 and 9223372036854775807 inclusive".into())
        );
        c.set("oom-score-adj", "RELATIVE").unwrap();
        assert_eq!(c.get("oom-score-adj").as_deref(), Some("yes"));
        c.set("shutdown-on-sigint", "now force nosave").unwrap();
        assert_eq!(
            c.get("shutdown-on-sigint").as_deref(),
            Some("nosave now force")
        );
        c.set("maxmemory-clients", "10%").unwrap();
        assert_eq!(c.get("maxmemory-clients").as_deref(), Some("10%"));
        c.set("hz", "1000").unwrap();
        assert_eq!(c.get("hz").as_deref(), Some("500"));
        c.set("latency-tracking-info-percentiles", "1e1 99.900")
            .unwrap();
        assert_eq!(
            c.get("latency-tracking-info-percentiles").as_deref(),
            Some("10 99.9")
        );
        // Immutable ones are set by the file and the flags (CONFIG SET refuses them).
        c.set("daemonize", "yes").unwrap();
        assert!(c.set("requirepass", "secret").is_err());
    }

    #[test]
    fn configuration_doc_lists_every_accepted_config() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
        let text = std::fs::read_to_string(path).unwrap();
        for a in ACCEPTED {
            assert!(
                text.contains(&format!("| `{}`", a.name)),
                "docs/configuration.md lacks {}",
                a.name
            );
        }
    }
}
