//! The Redis 7 configuration names Relay knows but has no mechanism for: accepted by
//! CONFIG SET (and the file) with Redis's validation and exact errors, shown by CONFIG GET
//! with Redis's defaults, written by CONFIG REWRITE only when changed. Adding one is one
//! `ACCEPTED` entry. Immutable ones answer "can't set immutable config", as in Redis.

use super::*;

/// How an accepted config's value is parsed, checked and shown (Redis's `create*Config` types).
#[derive(Clone, Copy)]
pub enum Kind {
    /// `yes` / `no`, case-insensitive.
    Bool,
    /// An integer parsed like `string2ll`, then range-checked. `unsigned` types (uint, size_t,
    /// unsigned long long) compare as unsigned 64-bit, so `-1` is out of range, not unparsable.
    Int {
        min: i128,
        max: i128,
        unsigned: bool,
    },
    /// A memory value (`memtoull`: digits and a unit b/k/kb/m/mb/g/gb), then range-checked.
    Memory {
        min: i128,
        max: i128,
        unsigned: bool,
    },
    /// `maxmemory-clients`: a memory value or `N%` (N <= 100).
    MemoryOrPercent,
    /// One of these values, case-insensitive; shown as the first listed name with the same
    /// meaning (see [`ENUM_SYNONYMS`]).
    Enum(&'static [&'static str]),
    /// Space-separated flags (`shutdown-on-sigint`): the first value means "none".
    Flags(&'static [&'static str]),
    /// Any string.
    Str,
    /// A value with its own check; returns the value as CONFIG GET shows it.
    Custom(fn(&str) -> Result<String, String>),
}

/// A Redis 7 config that Relay accepts and reports but does not act on.
pub struct Accepted {
    pub name: &'static str,
    /// Redis's old name for it (`slave-read-only`); listed and settable under both names.
    pub alias: Option<&'static str>,
    pub kind: Kind,
    /// Redis's default, exactly as Redis's CONFIG GET prints it.
    pub default: &'static str,
    /// CONFIG SET always answers "can't set immutable config" (the TOML file and flags may set it).
    pub immutable: bool,
    /// CONFIG SET answers "can't set protected config" (Redis's `enable-protected-configs` is no).
    pub protected: bool,
    /// Found only by its exact name, never by a glob.
    pub hidden: bool,
}

const fn cfg(name: &'static str, kind: Kind, default: &'static str) -> Accepted {
    Accepted {
        name,
        alias: None,
        kind,
        default,
        immutable: false,
        protected: false,
        hidden: false,
    }
}

impl Accepted {
    const fn alias(mut self, alias: &'static str) -> Self {
        self.alias = Some(alias);
        self
    }
    const fn immutable(mut self) -> Self {
        self.immutable = true;
        self
    }
    const fn protected(mut self) -> Self {
        self.protected = true;
        self
    }
    const fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }
}

const INT_MIN: i128 = i32::MIN as i128;
const INT_MAX: i128 = i32::MAX as i128;
const LL_MAX: i128 = i64::MAX as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const ULL_MAX: i128 = u64::MAX as i128;
const B: Kind = Kind::Bool;
const S: Kind = Kind::Str;
/// Signed integer types: int, long, long long, time_t, off_t.
const fn int(min: i128, max: i128) -> Kind {
    Kind::Int {
        min,
        max,
        unsigned: false,
    }
}
/// Unsigned integer types: unsigned int, size_t, unsigned long long.
const fn uint(min: i128, max: i128) -> Kind {
    Kind::Int {
        min,
        max,
        unsigned: true,
    }
}
const fn mem(min: i128, max: i128) -> Kind {
    Kind::Memory {
        min,
        max,
        unsigned: false,
    }
}
const fn umem(min: i128, max: i128) -> Kind {
    Kind::Memory {
        min,
        max,
        unsigned: true,
    }
}
const TRISTATE: &[&str] = &["no", "yes", "local"];
const SHUTDOWN_FLAGS: &[&str] = &["default", "save", "nosave", "now", "force"];

/// Enum values that Redis shows under an earlier name with the same meaning:
/// (config, value, shown as).
const ENUM_SYNONYMS: &[(&str, &str, &str)] = &[("oom-score-adj", "relative", "yes")];

/// Every Redis 7.0 config that is not one of Relay's live [`OPTIONS`]: accepted, validated
/// with Redis's rules and error texts, reported by CONFIG GET, and otherwise without effect.
/// Defaults, ranges and flags are redis-server 7.0.15's. Adding a config is one line here.
pub const ACCEPTED: &[Accepted] = &[
    // Booleans.
    cfg("rdbchecksum", B, "yes").immutable(),
    cfg("daemonize", B, "no").immutable(),
    cfg("io-threads-do-reads", B, "no").immutable(),
    cfg("always-show-logo", B, "no").immutable(),
    cfg("protected-mode", B, "yes"),
    cfg("rdbcompression", B, "yes"),
    cfg("rdb-del-sync-files", B, "no"),
    cfg("activerehashing", B, "yes"),
    cfg("stop-writes-on-bgsave-error", B, "yes"),
    cfg("set-proc-title", B, "yes").immutable(),
    cfg("dynamic-hz", B, "yes"),
    cfg("lazyfree-lazy-eviction", B, "no"),
    cfg("lazyfree-lazy-expire", B, "no"),
    cfg("lazyfree-lazy-server-del", B, "no"),
    cfg("lazyfree-lazy-user-del", B, "no"),
    cfg("lazyfree-lazy-user-flush", B, "no"),
    cfg("repl-disable-tcp-nodelay", B, "no"),
    cfg("repl-diskless-sync", B, "yes"),
    cfg("aof-rewrite-incremental-fsync", B, "yes"),
    cfg("cluster-require-full-coverage", B, "yes"),
    cfg("rdb-save-incremental-fsync", B, "yes"),
    cfg("aof-use-rdb-preamble", B, "yes"),
    cfg("aof-timestamp-enabled", B, "no"),
    cfg("cluster-replica-no-failover", B, "no").alias("cluster-slave-no-failover"),
    cfg("replica-lazy-flush", B, "no").alias("slave-lazy-flush"),
    cfg("replica-serve-stale-data", B, "yes").alias("slave-serve-stale-data"),
    cfg("replica-read-only", B, "yes").alias("slave-read-only"),
    cfg("replica-ignore-maxmemory", B, "yes").alias("slave-ignore-maxmemory"),
    cfg("jemalloc-bg-thread", B, "yes"),
    cfg("activedefrag", Kind::Custom(set_activedefrag), "no"),
    cfg("syslog-enabled", B, "no").immutable(),
    cfg("cluster-enabled", B, "no").immutable(),
    cfg("cluster-allow-reads-when-down", B, "no"),
    cfg("cluster-allow-pubsubshard-when-down", B, "yes"),
    cfg("crash-log-enabled", B, "yes"),
    cfg("crash-memcheck-enabled", B, "yes"),
    cfg("use-exit-on-panic", B, "no").hidden(),
    cfg("disable-thp", B, "yes").immutable(),
    cfg("cluster-allow-replica-migration", B, "yes"),
    cfg("replica-announced", B, "yes"),
    cfg("latency-tracking", B, "yes"),
    cfg("aof-disable-auto-gc", B, "no"),
    cfg("replica-ignore-disk-write-errors", B, "no"),
    cfg("tls-cluster", B, "no"),
    cfg("tls-replication", B, "no"),
    cfg("tls-prefer-server-ciphers", B, "no"),
    cfg("tls-session-caching", B, "yes"),
    // Strings.
    cfg("aclfile", Kind::Custom(set_unsupported_if_set), "").immutable(),
    cfg("unixsocket", S, "").immutable(),
    cfg("pidfile", S, "").immutable(),
    cfg("replica-announce-ip", S, "").alias("slave-announce-ip"),
    cfg("masteruser", S, ""),
    cfg("cluster-announce-ip", S, ""),
    cfg("cluster-config-file", S, "nodes.conf").immutable(),
    cfg("cluster-announce-hostname", Kind::Custom(set_hostname), ""),
    cfg("syslog-ident", S, "redis").immutable(),
    cfg("dbfilename", S, "dump.rdb").protected(),
    cfg("server_cpulist", S, "").immutable(),
    cfg("bio_cpulist", S, "").immutable(),
    cfg("aof_rewrite_cpulist", S, "").immutable(),
    cfg("bgsave_cpulist", S, "").immutable(),
    cfg("ignore-warnings", S, ""),
    cfg(
        "proc-title-template",
        Kind::Custom(set_proc_title_template),
        "{title} {listen-addr} {server-mode}",
    ),
    cfg("bind-source-addr", S, ""),
    cfg("masterauth", S, ""),
    cfg("requirepass", Kind::Custom(set_unsupported_if_set), ""),
    cfg("tls-cert-file", S, ""),
    cfg("tls-key-file", S, ""),
    cfg("tls-key-file-pass", S, ""),
    cfg("tls-client-cert-file", S, ""),
    cfg("tls-client-key-file", S, ""),
    cfg("tls-client-key-file-pass", S, ""),
    cfg("tls-dh-params-file", S, ""),
    cfg("tls-ca-cert-file", S, ""),
    cfg("tls-ca-cert-dir", S, ""),
    cfg("tls-protocols", S, ""),
    cfg("tls-ciphers", S, ""),
    cfg("tls-ciphersuites", S, ""),
    cfg("replicaof", S, "").alias("slaveof").immutable(),
    // Enums.
    cfg(
        "supervised",
        Kind::Enum(&["upstart", "systemd", "auto", "no"]),
        "no",
    )
    .immutable(),
    cfg(
        "syslog-facility",
        Kind::Enum(&[
            "user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
        ]),
        "local0",
    )
    .immutable(),
    cfg(
        "repl-diskless-load",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
        "disabled",
    ),
    cfg(
        "maxmemory-policy",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
        "noeviction",
    ),
    cfg(
        "oom-score-adj",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
        "no",
    ),
    cfg(
        "acl-pubsub-default",
        Kind::Enum(&["allchannels", "resetchannels"]),
        "resetchannels",
    ),
    cfg(
        "sanitize-dump-payload",
        Kind::Enum(&["no", "yes", "clients"]),
        "no",
    ),
    cfg("enable-protected-configs", Kind::Enum(TRISTATE), "no").immutable(),
    cfg("enable-debug-command", Kind::Enum(TRISTATE), "no").immutable(),
    cfg("enable-module-command", Kind::Enum(TRISTATE), "no").immutable(),
    cfg(
        "cluster-preferred-endpoint-type",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
        "ip",
    ),
    cfg(
        "propagation-error-behavior",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
        "ignore",
    ),
    cfg("shutdown-on-sigint", Kind::Flags(SHUTDOWN_FLAGS), "default"),
    cfg(
        "shutdown-on-sigterm",
        Kind::Flags(SHUTDOWN_FLAGS),
        "default",
    ),
    cfg(
        "tls-auth-clients",
        Kind::Enum(&["no", "yes", "optional"]),
        "yes",
    ),
    // Integers.
    cfg("cluster-replica-validity-factor", int(0, INT_MAX), "10")
        .alias("cluster-slave-validity-factor"),
    cfg("list-max-listpack-size", int(INT_MIN, INT_MAX), "-2").alias("list-max-ziplist-size"),
    cfg("cluster-migration-barrier", int(0, INT_MAX), "1"),
    cfg("active-defrag-cycle-min", int(1, 99), "1"),
    cfg("active-defrag-cycle-max", int(1, 99), "25"),
    cfg("active-defrag-threshold-lower", int(0, 1000), "10"),
    cfg("active-defrag-threshold-upper", int(0, 1000), "100"),
    cfg("lfu-log-factor", int(0, INT_MAX), "10"),
    cfg("lfu-decay-time", int(0, INT_MAX), "1"),
    cfg("replica-priority", int(0, INT_MAX), "100").alias("slave-priority"),
    cfg("repl-diskless-sync-delay", int(0, INT_MAX), "5"),
    cfg("maxmemory-samples", int(1, INT_MAX), "5"),
    cfg("maxmemory-eviction-tenacity", int(0, 100), "10"),
    cfg("replica-announce-port", int(0, 65535), "0").alias("slave-announce-port"),
    cfg("tcp-backlog", int(0, INT_MAX), "511").immutable(),
    cfg("cluster-port", int(0, 65535), "0").immutable(),
    cfg("cluster-announce-bus-port", int(0, 65535), "0"),
    cfg("cluster-announce-port", int(0, 65535), "0"),
    cfg("cluster-announce-tls-port", int(0, 65535), "0"),
    cfg("repl-timeout", int(1, INT_MAX), "60"),
    cfg("repl-ping-replica-period", int(1, INT_MAX), "10").alias("repl-ping-slave-period"),
    cfg("list-compress-depth", int(0, INT_MAX), "0"),
    cfg("rdb-key-save-delay", int(INT_MIN, INT_MAX), "0").hidden(),
    cfg("key-load-delay", int(INT_MIN, INT_MAX), "0").hidden(),
    cfg("active-expire-effort", int(1, 10), "1"),
    cfg("hz", Kind::Custom(set_hz), "10"),
    cfg("min-replicas-to-write", int(0, INT_MAX), "0").alias("min-slaves-to-write"),
    cfg("min-replicas-max-lag", int(0, INT_MAX), "10").alias("min-slaves-max-lag"),
    cfg("watchdog-period", int(0, INT_MAX), "0").hidden(),
    cfg("shutdown-timeout", int(0, INT_MAX), "10"),
    cfg("repl-diskless-sync-max-replicas", int(0, INT_MAX), "0"),
    cfg("unixsocketperm", Kind::Custom(set_octal_perm), "0").immutable(),
    cfg("socket-mark-id", uint(0, UINT_MAX), "0").immutable(),
    cfg("active-defrag-max-scan-fields", int(1, LL_MAX), "1000"),
    cfg("slowlog-max-len", int(0, LL_MAX), "128"),
    cfg("acllog-max-len", int(0, LL_MAX), "128"),
    cfg("busy-reply-threshold", int(0, LL_MAX), "5000").alias("lua-time-limit"),
    cfg("cluster-node-timeout", int(0, LL_MAX), "15000"),
    cfg("slowlog-log-slower-than", int(-1, LL_MAX), "10000"),
    cfg("latency-monitor-threshold", int(0, LL_MAX), "0"),
    cfg("repl-backlog-size", mem(1, LL_MAX), "1048576"),
    cfg("cluster-link-sendbuf-limit", umem(0, ULL_MAX), "0"),
    cfg("hash-max-listpack-entries", uint(0, LL_MAX), "512").alias("hash-max-ziplist-entries"),
    cfg("set-max-intset-entries", uint(0, LL_MAX), "512"),
    cfg("zset-max-listpack-entries", uint(0, LL_MAX), "128").alias("zset-max-ziplist-entries"),
    cfg("active-defrag-ignore-bytes", umem(1, LL_MAX), "104857600"),
    cfg("hash-max-listpack-value", umem(0, LL_MAX), "64").alias("hash-max-ziplist-value"),
    cfg("zset-max-listpack-value", umem(0, LL_MAX), "64").alias("zset-max-ziplist-value"),
    cfg("hll-sparse-max-bytes", umem(0, LL_MAX), "3000"),
    cfg("tracking-table-max-keys", uint(0, LL_MAX), "1000000"),
    cfg("maxmemory-clients", Kind::MemoryOrPercent, "0"),
    cfg("repl-backlog-ttl", int(0, LL_MAX), "3600"),
    cfg(
        "loading-process-events-interval-bytes",
        int(1024, INT_MAX),
        "2097152",
    )
    .hidden(),
    cfg("tls-port", int(0, 65535), "0"),
    cfg("tls-session-cache-size", int(0, INT_MAX), "20480"),
    cfg("tls-session-cache-timeout", int(0, INT_MAX), "300"),
    // Lists.
    cfg(
        "oom-score-adj-values",
        Kind::Custom(set_oom_score_adj_values),
        "0 200 800",
    ),
    cfg(
        "latency-tracking-info-percentiles",
        Kind::Custom(set_percentiles),
        "50 99 99.9",
    ),
];

/// A config name as Redis registers it: an option's own name or an alias.
#[derive(Clone, Copy)]
pub enum Entry {
    Live(&'static OptionSpec),
    /// An accepted config, and the name it was found under (its own or its alias).
    Accepted(&'static Accepted, &'static str),
}

/// Live options that Redis protects (`enable-protected-configs`): CONFIG SET refuses any value.
const LIVE_PROTECTED: &[&str] = &["dir"];

impl Entry {
    /// The registered (lowercase) name: what globs print and set errors name. An alias and
    /// its primary are different entries, as in Redis.
    pub fn name(&self) -> &'static str {
        match self {
            Entry::Live(o) => o.name,
            Entry::Accepted(_, name) => name,
        }
    }

    pub fn immutable(&self) -> bool {
        match self {
            Entry::Live(o) => !o.mutable,
            Entry::Accepted(a, _) => a.immutable,
        }
    }

    pub fn protected(&self) -> bool {
        match self {
            Entry::Live(o) => LIVE_PROTECTED.contains(&o.name),
            Entry::Accepted(a, _) => a.protected,
        }
    }

    pub fn hidden(&self) -> bool {
        matches!(self, Entry::Accepted(a, _) if a.hidden)
    }

    pub fn get(&self, c: &Config) -> String {
        match self {
            Entry::Live(o) => (o.get)(c),
            Entry::Accepted(a, _) => c
                .accepted
                .get(a.name)
                .cloned()
                .unwrap_or_else(|| a.default.to_string()),
        }
    }

    /// Parse and store `value` (Redis's checks and error texts); immutability is the caller's.
    pub fn set(&self, c: &mut Config, value: &str) -> Result<(), String> {
        match self {
            Entry::Live(o) => (o.set)(c, value),
            Entry::Accepted(a, _) => {
                let shown = a.parse(value)?;
                if shown == a.default {
                    c.accepted.remove(a.name);
                } else {
                    c.accepted.insert(a.name, shown);
                }
                Ok(())
            }
        }
    }
}

/// Every registered name (options, accepted configs, aliases), for globs and listings.
pub fn entries() -> impl Iterator<Item = Entry> {
    OPTIONS
        .iter()
        .map(Entry::Live)
        .chain(ACCEPTED.iter().flat_map(|a| {
            std::iter::once(Entry::Accepted(a, a.name))
                .chain(a.alias.map(|al| Entry::Accepted(a, al)))
        }))
}

/// Look a name up case-insensitively among options, accepted configs and their aliases.
pub fn lookup(name: &str) -> Option<Entry> {
    if let Some(o) = find_option(name) {
        return Some(Entry::Live(o));
    }
    let lower = name.to_ascii_lowercase();
    ACCEPTED.iter().find_map(|a| {
        if a.name == lower {
            Some(Entry::Accepted(a, a.name))
        } else {
            a.alias
                .filter(|al| *al == lower)
                .map(|al| Entry::Accepted(a, al))
        }
    })
}

impl Accepted {
    /// The value as CONFIG GET will show it, or Redis's error text.
    pub fn parse(&self, v: &str) -> Result<String, String> {
        match self.kind {
            Kind::Bool => parse_bool(v).map(yes_no),
            Kind::Int { min, max, unsigned } => {
                let n = crate::resp::parse_i64(v.as_bytes())
                    .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
                let n = if unsigned {
                    n as u64 as i128
                } else {
                    n as i128
                };
                in_range(n, min, max)
            }
            Kind::Memory { min, max, unsigned } => {
                let n = parse_memory(v)?;
                let n = if unsigned {
                    n as i128
                } else {
                    n as i64 as i128
                };
                in_range(n, min, max)
            }
            Kind::MemoryOrPercent => parse_memory_or_percent(v),
            Kind::Enum(values) => {
                let lower = v.to_ascii_lowercase();
                if !values.contains(&lower.as_str()) {
                    return Err(one_of(values));
                }
                Ok(ENUM_SYNONYMS
                    .iter()
                    .find(|(name, value, _)| *name == self.name && *value == lower)
                    .map_or(lower, |(_, _, shown)| shown.to_string()))
            }
            Kind::Flags(values) => parse_flags(v, values),
            Kind::Str => Ok(v.to_string()),
            Kind::Custom(f) => f(v),
        }
    }
}

fn in_range(n: i128, min: i128, max: i128) -> Result<String, String> {
    if n < min || n > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(n.to_string())
}

fn one_of(values: &[&str]) -> String {
    format!(
        "argument(s) must be one of the following: {}",
        values.join(", ")
    )
}

/// Redis's multi-argument bit-flag enums: every space-separated word must be a value; the
/// first value (`default`) is no flag; shown in table order.
fn parse_flags(v: &str, values: &[&str]) -> Result<String, String> {
    let mut bits = 0u32;
    if v.is_empty() {
        return Err(one_of(values));
    }
    for word in v.split(' ') {
        let i = values
            .iter()
            .position(|f| f.eq_ignore_ascii_case(word))
            .ok_or_else(|| one_of(values))?;
        if i > 0 {
            bits |= 1 << i;
        }
    }
    if bits & 0b110 == 0b110 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    if bits == 0 {
        return Ok(values[0].to_string());
    }
    let names: Vec<&str> = (1..values.len())
        .filter(|i| bits & (1 << i) != 0)
        .map(|i| values[i])
        .collect();
    Ok(names.join(" "))
}

/// `maxmemory-clients`: bytes, or a percentage of maxmemory (`10%`, shown as written; `0%` is 0).
fn parse_memory_or_percent(v: &str) -> Result<String, String> {
    if let Ok(n) = parse_memory(v) {
        return in_range(n as i64 as i128, -100, LL_MAX);
    }
    let bad = || "argument must be a memory or percent value".to_string();
    let pct = v
        .strip_suffix('%')
        .and_then(|n| crate::resp::parse_i64(n.as_bytes()))
        .filter(|n| *n >= 0)
        .ok_or_else(bad)?;
    if pct > 100 {
        return Err("percentage argument must be less or equal to 100".into());
    }
    Ok(if pct == 0 {
        "0".into()
    } else {
        format!("{pct}%")
    })
}

/// `hz`: 0..INT_MAX accepted; Redis clamps what it uses (and shows) to 1..500.
fn set_hz(v: &str) -> Result<String, String> {
    let n = crate::resp::parse_i64(v.as_bytes())
        .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
    in_range(n as i128, 0, INT_MAX)?;
    Ok(n.clamp(1, 500).to_string())
}

/// Redis refuses `activedefrag yes` when built without its patched jemalloc, as Debian's
/// build is; Relay cannot defragment either.
fn set_activedefrag(v: &str) -> Result<String, String> {
    match parse_bool(v)? {
        false => Ok("no".into()),
        true => Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution".into()),
    }
}

/// Security settings Relay cannot enforce (`requirepass`, `aclfile`): accepting a value and
/// ignoring it would leave the server open while its operator believes it is closed.
fn set_unsupported_if_set(v: &str) -> Result<String, String> {
    if v.is_empty() {
        Ok(String::new())
    } else {
        Err("Relay does not support passwords or ACL files yet".into())
    }
}

fn set_hostname(v: &str) -> Result<String, String> {
    if v.len() >= 256 {
        return Err("Hostnames must be less than 256 characters".into());
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots".into());
    }
    Ok(v.to_string())
}

/// `proc-title-template`: `{variable}`s Redis knows (`{{` and `}}` are literal braces); the
/// expansion must not be blank.
fn set_proc_title_template(v: &str) -> Result<String, String> {
    const VARS: &[&str] = &[
        "title",
        "listen-addr",
        "server-mode",
        "config-file",
        "port",
        "tls-port",
        "unixsocket",
    ];
    let bad = || "template format is invalid or contains unknown variables".to_string();
    let mut expanded = String::new();
    let mut rest = v;
    while let Some(ch) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("{{").or_else(|| rest.strip_prefix("}}")) {
            expanded.push(ch);
            rest = after;
        } else if ch == '{' {
            let end = rest.find('}').ok_or_else(bad)?;
            if !VARS.contains(&&rest[1..end]) {
                return Err(bad());
            }
            expanded.push('x');
            rest = &rest[end + 1..];
        } else if ch == '}' {
            return Err(bad());
        } else {
            expanded.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    if expanded.trim_matches(' ').is_empty() {
        return Err(bad());
    }
    Ok(v.to_string())
}

fn set_octal_perm(v: &str) -> Result<String, String> {
    let n = u64::from_str_radix(v, 8)
        .map_err(|_| "argument couldn't be parsed as an octal number".to_string())?;
    if n > 0o777 {
        return Err("argument must be between 0 and 777 inclusive".into());
    }
    Ok(format!("{n:o}"))
}

/// `oom-score-adj-values`: three integers (strtoll) in -2000..2000.
fn set_oom_score_adj_values(v: &str) -> Result<String, String> {
    let words: Vec<&str> = v.split(' ').collect();
    if words.len() != 3 {
        return Err("wrong number of arguments".into());
    }
    let bad =
        || "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".to_string();
    let mut out = Vec::new();
    for w in words {
        let t = w.trim_start();
        let n: i64 = if t.is_empty() {
            0
        } else {
            t.parse().map_err(|_| bad())?
        };
        if !(-2000..=2000).contains(&n) {
            return Err(bad());
        }
        out.push(n.to_string());
    }
    Ok(out.join(" "))
}

/// `latency-tracking-info-percentiles`: numbers 0..100, shown with `%f` minus trailing zeros.
fn set_percentiles(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Ok(String::new());
    }
    let mut out = Vec::new();
    for w in v.split(' ') {
        let p: f64 = w
            .parse()
            .ok()
            .filter(|p: &f64| !p.is_nan())
            .ok_or_else(|| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
        if !(0.0..=100.0).contains(&p) {
            return Err(
                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]"
                    .into(),
            );
        }
        let s = format!("{p:.6}");
        out.push(s.trim_end_matches('0').trim_end_matches('.').to_string());
    }
    Ok(out.join(" "))
}
