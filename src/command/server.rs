//! Server commands: INFO, CONFIG, DBSIZE, TIME, FLUSHDB, FLUSHALL, SHUTDOWN.

use super::flags::*;
use super::{help_reply, CommandSpec, Ctx};
use crate::config;
use crate::error;
use crate::glob;
use crate::reply::Reply;
use crate::server::Shared;
use bytes::Bytes;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

const ADMIN_SLOW: &[&str] = &["admin", "slow", "dangerous"];
const KEYSPACE_WRITE: &[&str] = &["keyspace", "write", "slow", "dangerous"];

const CONFIG_SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        ADMIN_SLOW,
        config_get,
    )
    .doc(
        "server",
        "2.0.0",
        "Returns the effective values of configuration parameters.",
    )
    .complexity("O(N) when N is the number of configuration parameters provided")
    .usage("parameter ..."),
    CommandSpec::new(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        ADMIN_SLOW,
        config_set,
    )
    .doc(
        "server",
        "2.0.0",
        "Sets configuration parameters in-flight.",
    )
    .complexity("O(N) when N is the number of configuration parameters provided")
    .usage("(parameter value) ..."),
    CommandSpec::new(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        ADMIN_SLOW,
        config_resetstat,
    )
    .doc("server", "2.0.0", "Resets the server's statistics."),
    CommandSpec::new(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        ADMIN_SLOW,
        config_rewrite,
    )
    .doc(
        "server",
        "2.8.0",
        "Persists the effective configuration to file.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, &["slow"], config_help).doc(
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("info", -1, LOADING | STALE | SENTINEL, &["slow", "dangerous"], info)
        .doc("server", "1.0.0", "Returns information and statistics about the server.")
        .usage("[section ...]"),
    CommandSpec::container("config", &["slow"], CONFIG_SUBS).doc("server", "2.0.0", "A container for server configuration commands."),
    CommandSpec::new("dbsize", 1, READONLY | FAST, &["keyspace", "read", "fast"], dbsize)
        .doc("server", "1.0.0", "Returns the number of keys in the database."),
    CommandSpec::new("time", 1, LOADING | STALE | FAST, &["fast"], time)
        .doc("server", "2.6.0", "Returns the server time."),
    CommandSpec::new("flushdb", -1, WRITE, KEYSPACE_WRITE, flushdb)
        .doc("server", "1.0.0", "Removes all keys from the current database.")
        .complexity("O(N) where N is the number of keys in the selected database")
        .usage("[ASYNC|SYNC]"),
    CommandSpec::new("flushall", -1, WRITE, KEYSPACE_WRITE, flushall)
        .doc("server", "1.0.0", "Removes all keys from all databases.")
        .complexity("O(N) where N is the total number of keys in all databases")
        .usage("[ASYNC|SYNC]"),
    CommandSpec::new("shutdown", -1, ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | SENTINEL | ALLOW_BUSY, ADMIN_SLOW, shutdown)
        .doc("server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server.")
        .complexity("O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)")
        .usage("[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]"),
];

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / 1024.0 / 1024.0)
    } else {
        format!("{:.2}G", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// Heap bytes in use, from the allocator's own statistics.
pub fn used_memory() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64
}

/// Resident set size of this process.
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn cpu_seconds() -> (f64, f64) {
    // Fields 14 and 15 of /proc/self/stat: user and system time in clock ticks (100 Hz).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(11), tick(12))
}

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
];
const ALL_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "cluster",
    "keyspace",
];

fn section(shared: &Shared, name: &str, out: &mut String) {
    if !out.is_empty() {
        out.push_str("\r\n");
    }
    let mut s = Section(out);
    match name {
        "server" => {
            let up = shared.uptime().as_secs();
            let cfg = shared.config();
            s.header("Server");
            s.line("redis_version", crate::REDIS_COMPAT_VERSION.into());
            s.line("redis_git_sha1", "00000000".into());
            s.line("redis_git_dirty", "0".into());
            s.line("redis_build_id", "0".into());
            s.line("redis_mode", "standalone".into());
            s.line("relay_version", crate::RELAY_VERSION.into());
            s.line(
                "os",
                format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            );
            s.line("arch_bits", (usize::BITS).to_string());
            s.line("multiplexing_api", "epoll".into());
            s.line("process_id", std::process::id().to_string());
            s.line("process_supervised", "no".into());
            s.line("run_id", shared.run_id.clone());
            s.line(
                "tcp_port",
                shared.tcp_port.load(Ordering::Relaxed).to_string(),
            );
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            s.line("server_time_usec", now.as_micros().to_string());
            s.line("uptime_in_seconds", up.to_string());
            s.line("uptime_in_days", (up / 86400).to_string());
            s.line("hz", "10".into());
            s.line("configured_hz", "10".into());
            s.line(
                "executable",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            s.line(
                "config_file",
                cfg.config_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
            s.line("io_threads_active", "0".into());
        }
        "clients" => {
            let all = shared.clients.snapshot();
            let pubsub = all.iter().filter(|c| c.is_pubsub()).count();
            let max_out = all.iter().map(|c| c.output.pending()).max().unwrap_or(0);
            let max_in = all
                .iter()
                .map(|c| c.qbuf.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0);
            s.header("Clients");
            s.line("connected_clients", all.len().to_string());
            s.line("cluster_connections", "0".into());
            s.line(
                "maxclients",
                shared.maxclients.load(Ordering::Relaxed).to_string(),
            );
            s.line("client_recent_max_input_buffer", max_in.to_string());
            s.line("client_recent_max_output_buffer", max_out.to_string());
            let blocked = all
                .iter()
                .filter(|c| c.blocked.load(Ordering::Relaxed))
                .count();
            s.line("blocked_clients", blocked.to_string());
            s.line("tracking_clients", "0".into());
            s.line("pubsub_clients", pubsub.to_string());
            s.line("clients_in_timeout_table", "0".into());
            s.line("total_blocking_keys", "0".into());
        }
        "memory" => {
            let used = used_memory();
            let rss = rss();
            let maxmemory = shared.config().maxmemory;
            s.header("Memory");
            s.line("used_memory", used.to_string());
            s.line("used_memory_human", human(used));
            s.line("used_memory_rss", rss.to_string());
            s.line("used_memory_rss_human", human(rss));
            s.line("maxmemory", maxmemory.to_string());
            s.line("maxmemory_human", human(maxmemory));
            // What CONFIG SET maxmemory-policy said (Relay does not evict whatever it is);
            // job-queue libraries read it here and warn unless it is noeviction.
            let policy = shared
                .config()
                .get("maxmemory-policy")
                .unwrap_or_else(|| "noeviction".into());
            s.line("maxmemory_policy", policy);
            s.line(
                "mem_fragmentation_ratio",
                format!("{:.2}", rss as f64 / used.max(1) as f64),
            );
            s.line("mem_allocator", "jemalloc".into());
        }
        "persistence" => {
            s.header("Persistence");
            let loading = shared.loading.load(Ordering::Relaxed);
            let aof = &shared.aof;
            let flag = |b: bool| if b { "1" } else { "0" }.to_string();
            s.line("loading", flag(loading));
            s.line("async_loading", "0".into());
            if loading {
                let total = shared.loading_total.load(Ordering::Relaxed);
                let done = shared.loading_done.load(Ordering::Relaxed);
                s.line("loading_total_bytes", total.to_string());
                s.line("loading_loaded_bytes", done.to_string());
                s.line(
                    "loading_loaded_perc",
                    format!("{:.2}", done as f64 * 100.0 / total.max(1) as f64),
                );
            }
            s.line("rdb_changes_since_last_save", "0".into());
            s.line("rdb_bgsave_in_progress", "0".into());
            let st = &aof.stats;
            s.line(
                "rdb_last_save_time",
                st.last_save
                    .load(Ordering::Relaxed)
                    .max(shared.started_unix)
                    .to_string(),
            );
            s.line("aof_enabled", flag(aof.enabled() || loading));
            s.line(
                "aof_rewrite_in_progress",
                flag(st.rewriting.load(Ordering::Relaxed)),
            );
            s.line(
                "aof_rewrite_scheduled",
                (shared.aof.stats.scheduled.load(Ordering::Relaxed) as u8).to_string(),
            );
            s.line(
                "aof_last_rewrite_time_sec",
                st.last_rewrite_secs.load(Ordering::Relaxed).to_string(),
            );
            s.line("aof_current_rewrite_time_sec", "-1".into());
            let ok = |b: bool| if b { "ok" } else { "err" }.to_string();
            s.line(
                "aof_last_bgrewrite_status",
                ok(st.last_rewrite_ok.load(Ordering::Relaxed)),
            );
            let write_ok = aof.stats.last_write_ok.load(Ordering::Relaxed);
            s.line(
                "aof_last_write_status",
                if write_ok { "ok" } else { "err" }.into(),
            );
            if aof.enabled() {
                let st = &aof.stats;
                s.line(
                    "aof_current_size",
                    st.current_size.load(Ordering::Relaxed).to_string(),
                );
                s.line(
                    "aof_base_size",
                    st.base_size.load(Ordering::Relaxed).to_string(),
                );
                s.line("aof_pending_rewrite", "0".into());
                let pending = aof.appended().saturating_sub(aof.durable());
                s.line("aof_buffer_length", pending.to_string());
                s.line("aof_pending_bio_fsync", "0".into());
                s.line(
                    "aof_delayed_fsync",
                    st.delayed_fsync.load(Ordering::Relaxed).to_string(),
                );
                s.line("aof_fsync_policy", aof.policy().name().into());
                s.line("aof_fsyncs", st.fsyncs.load(Ordering::Relaxed).to_string());
            }
        }
        "stats" => {
            let st = &shared.stats;
            let (channels, patterns, shard) = shared.pubsub.counts();
            let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed).to_string();
            s.header("Stats");
            s.line("total_connections_received", get(&st.connections_received));
            s.line("total_commands_processed", get(&st.commands));
            let [ops, input, output] = st.rates.lock().map(|r| r.rates()).unwrap_or_default();
            s.line(
                "instantaneous_ops_per_sec",
                format!("{}", ops.round() as u64),
            );
            s.line("total_net_input_bytes", get(&st.net_input));
            s.line("total_net_output_bytes", get(&st.net_output));
            s.line("instantaneous_input_kbps", format!("{:.2}", input / 1024.0));
            s.line(
                "instantaneous_output_kbps",
                format!("{:.2}", output / 1024.0),
            );
            s.line("rejected_connections", get(&st.rejected_connections));
            s.line(
                "expired_keys",
                shared
                    .keyspace
                    .expired_keys
                    .load(Ordering::Relaxed)
                    .to_string(),
            );
            s.line("evicted_keys", "0".into());
            s.line("keyspace_hits", get(&st.keyspace_hits));
            s.line("keyspace_misses", get(&st.keyspace_misses));
            s.line("pubsub_channels", channels.to_string());
            s.line("pubsub_patterns", patterns.to_string());
            s.line("pubsub_shardchannels", shard.to_string());
            s.line(
                "client_query_buffer_limit_disconnections",
                get(&st.query_buffer_limit_disconnections),
            );
            s.line(
                "client_output_buffer_limit_disconnections",
                get(&shared.limits.disconnections),
            );
            s.line("total_error_replies", get(&shared.cmdstats.total_errors));
        }
        "replication" => {
            s.header("Replication");
            s.line("role", "master".into());
            s.line("connected_slaves", "0".into());
            s.line("master_repl_offset", "0".into());
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            s.header("CPU");
            s.line("used_cpu_sys", format!("{sys:.6}"));
            s.line("used_cpu_user", format!("{user:.6}"));
        }
        "modules" => s.header("Modules"),
        "commandstats" => {
            s.header("Commandstats");
            shared.cmdstats.commandstats(s.0);
        }
        "errorstats" => {
            s.header("Errorstats");
            shared.cmdstats.errorstats(s.0);
        }
        "cluster" => {
            s.header("Cluster");
            s.line("cluster_enabled", "0".into());
        }
        "keyspace" => {
            s.header("Keyspace");
            for db in 0..shared.keyspace.databases() {
                let n = shared.keyspace.len(db);
                if n > 0 {
                    let (expires, avg_ttl) = shared.keyspace.expires(db);
                    s.line(
                        &format!("db{db}"),
                        format!("keys={n},expires={expires},avg_ttl={avg_ttl}"),
                    );
                }
            }
        }
        _ => {}
    }
}

/// Writer for one INFO section: a `# Title` header, then `field:value` lines.
struct Section<'a>(&'a mut String);

impl Section<'_> {
    fn header(&mut self, title: &str) {
        let _ = write!(self.0, "# {title}\r\n");
    }

    fn line(&mut self, key: &str, value: String) {
        let _ = write!(self.0, "{key}:{value}\r\n");
    }
}

/// INFO [section ...]: Redis's text format, sections in Redis's order.
fn info(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let mut wanted: Vec<&str> = Vec::new();
    if args.len() == 1 {
        wanted.extend(DEFAULT_SECTIONS);
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS),
            "all" | "everything" => wanted.extend(ALL_SECTIONS),
            other => {
                if let Some(s) = ALL_SECTIONS.iter().find(|s| **s == other) {
                    wanted.push(s);
                }
            }
        }
    }
    let mut out = String::new();
    for s in ALL_SECTIONS {
        if wanted.contains(s) {
            section(ctx.shared, s, &mut out);
        }
    }
    Reply::Verbatim("txt", Bytes::from(out))
}

/// CONFIG GET pattern ...: name/value pairs for every option matching any pattern.
fn config_get(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let cfg = ctx.shared.config();
    // Redis: an exact name (hidden configs included) is echoed as typed; a glob adds the
    // registered lowercase names, aliases included, hidden configs skipped; each name once.
    let mut found: Vec<(config::Entry, Bytes)> = Vec::new();
    let seen = |found: &[(config::Entry, Bytes)], e: &config::Entry| {
        found.iter().any(|(f, _)| f.name() == e.name())
    };
    for p in &args[2..] {
        let is_glob = p.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        if !is_glob {
            if let Some(entry) = config::lookup(&String::from_utf8_lossy(p)) {
                if !seen(&found, &entry) {
                    found.push((entry, p.clone()));
                }
            }
            continue;
        }
        for entry in config::entries() {
            if !entry.hidden()
                && glob::matches_nocase(p, entry.name().as_bytes())
                && !seen(&found, &entry)
            {
                found.push((entry, Bytes::from_static(entry.name().as_bytes())));
            }
        }
    }
    let pairs = found
        .into_iter()
        .map(|(entry, shown)| (Reply::Bulk(shown), Reply::bulk(entry.get(&cfg))))
        .collect();
    Reply::Map(pairs)
}

/// Options Redis can change at run time that Relay fixes at start (they would need a new
/// listener): a bad value gets Redis's error, setting the value they already have is
/// accepted, any other gets "can't set immutable config".
const FIXED_AT_START: &[&str] = &["port", "bind"];

/// CONFIG SET name value [name value ...]: all or nothing, errors in Redis's precedence
/// (the first unknown, immutable, protected or duplicated name, as typed; then the first bad
/// value, under the registered name).
fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if !args.len().is_multiple_of(2) {
        return Reply::error(error::SYNTAX);
    }
    let mut unknown: Option<&Bytes> = None;
    let mut refused: Option<(&Bytes, &str)> = None;
    let mut pending: Vec<(config::Entry, String)> = Vec::new();
    for pair in args[2..].chunks(2) {
        let Some(entry) = config::lookup(&String::from_utf8_lossy(&pair[0])) else {
            if refused.is_none() {
                unknown.get_or_insert(&pair[0]);
            }
            continue;
        };
        if unknown.is_some() || refused.is_some() {
            continue;
        }
        if entry.immutable() && !FIXED_AT_START.contains(&entry.name()) {
            refused = Some((&pair[0], "can't set immutable config"));
        } else if entry.protected() {
            refused = Some((&pair[0], "can't set protected config"));
        } else if pending.iter().any(|(e, _)| e.name() == entry.name()) {
            // An alias and its primary are different names: not a duplicate (Redis's rule).
            refused = Some((&pair[0], "duplicate parameter"));
        } else {
            pending.push((entry, String::from_utf8_lossy(&pair[1]).into_owned()));
        }
    }
    if let Some(name) = unknown {
        return error::with_arg(
            "ERR Unknown option or number of arguments for CONFIG SET - '",
            name,
            "'",
        );
    }
    if let Some((name, why)) = refused {
        return set_failed(name, why);
    }
    let aof_was = ctx.shared.config().appendonly;
    let before = ctx.shared.config().clone();
    {
        let mut cfg = ctx.shared.config_mut();
        let mut candidate = cfg.clone();
        for (entry, value) in &pending {
            let name = entry.name().as_bytes();
            if let Err(e) = entry.set(&mut candidate, value) {
                return set_failed(name, &e);
            }
            if FIXED_AT_START.contains(&entry.name()) && entry.get(&candidate) != entry.get(&cfg) {
                return set_failed(name, "can't set immutable config");
            }
        }
        *cfg = candidate;
    }
    ctx.shared.apply_config();
    let aof_now = ctx.shared.config().appendonly;
    if aof_now != aof_was {
        // appendonly at run time: on starts an AOF whose base is the current state (written
        // in the background, as Redis does); off writes and fsyncs what is pending and stops.
        if aof_now {
            if let Err(e) = crate::persist::rewrite::enable(ctx.shared) {
                // An apply that fails undoes the whole CONFIG SET, every pair of it, as
                // Redis restores all values when an apply function fails.
                *ctx.shared.config_mut() = before;
                ctx.shared.apply_config();
                return set_failed(b"appendonly", &e);
            }
        } else {
            ctx.shared.aof.stop();
        }
    }
    Reply::ok()
}

fn set_failed(name: &[u8], why: &str) -> Reply {
    error::with_arg(
        "ERR CONFIG SET failed (possibly related to argument '",
        name,
        &format!("') - {why}"),
    )
}

fn config_resetstat(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    ctx.shared.stats.reset();
    ctx.shared.cmdstats.reset();
    ctx.shared.keyspace.expired_keys.store(0, Ordering::Relaxed);
    ctx.shared.limits.disconnections.store(0, Ordering::Relaxed);
    Reply::ok()
}

fn config_rewrite(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    let cfg = ctx.shared.config();
    let Some(path) = cfg.config_file.clone() else {
        return Reply::error("ERR The server is running without a config file");
    };
    let text = cfg.render_toml();
    drop(cfg);
    let tmp = path.with_extension("toml.rewrite-tmp");
    let result = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &path));
    match result {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Reply::ok()
        }
        Err(e) => Reply::Error(error::sanitize(&format!("ERR Rewriting config file: {e}")).into()),
    }
}

fn config_help(_: &mut Ctx, _: &[Bytes]) -> Reply {
    help_reply(
        "config",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    )
}

fn dbsize(ctx: &mut Ctx, _: &[Bytes]) -> Reply {
    Reply::Integer(ctx.shared.keyspace.len(ctx.session.db) as i64)
}

fn time(_: &mut Ctx, _: &[Bytes]) -> Reply {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::bulk(now.as_secs().to_string()),
        Reply::bulk(now.subsec_micros().to_string()),
    ])
}

fn flush_mode_ok(args: &[Bytes]) -> bool {
    match args.len() {
        1 => true,
        2 => args[1].eq_ignore_ascii_case(b"async") || args[1].eq_ignore_ascii_case(b"sync"),
        _ => false,
    }
}

fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return Reply::error(error::SYNTAX);
    }
    ctx.shared.keyspace.flush(ctx.session.db);
    Reply::ok()
}

fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    if !flush_mode_ok(args) {
        return Reply::error(error::SYNTAX);
    }
    for db in 0..ctx.shared.keyspace.databases() {
        ctx.shared.keyspace.flush(db);
    }
    // One FLUSHDB per database is logged by flush; FLUSHALL replays the same.
    Reply::ok()
}

/// SHUTDOWN: stop accepting, close every connection, exit. The caller gets no reply.
fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> Reply {
    let (mut nosave, mut save, mut abort, mut other) = (false, false, false, false);
    for a in &args[1..] {
        let a = a.to_ascii_lowercase();
        match a.as_slice() {
            b"nosave" => nosave = true,
            b"save" => save = true,
            b"now" | b"force" => other = true,
            b"abort" => abort = true,
            _ => return Reply::error(error::SYNTAX),
        }
    }
    if (abort && (nosave || save || other)) || (nosave && save) {
        return Reply::error(error::SYNTAX);
    }
    if abort {
        return Reply::error("ERR No shutdown in progress.");
    }
    tracing::warn!("User requested shutdown...");
    ctx.shared.request_shutdown();
    ctx.session.close_after_reply = true;
    Reply::None
}
