//! Issue 9: a compaction followed by a restart reproduces the exact stream state — every
//! field and counter of XINFO STREAM FULL, XINFO GROUPS, XINFO CONSUMERS and XPENDING.
//!
//! A property test: for each seed, a random sequence of stream commands (XADD with explicit
//! and auto IDs, trimming, KEEPREF/DELREF/ACKED, IDMP/IDMPAUTO producers and their retries,
//! XDEL of middle entries, groups, reads, claims, XNACK, XSETID, XCFGSET, and CONFIG SET
//! stream-node-max-entries between appends so chunk boundaries depend on history) runs on the
//! built relay-server, then the whole state is captured before and after:
//!
//! * BGREWRITEAOF, in the same process (a compaction must not change live state);
//! * a restart after SHUTDOWN (seeds ≡ 0, 1 mod 4) or after SIGKILL under
//!   `appendfsync always` (seeds ≡ 2, 3 mod 4).
//!
//! Odd seeds also run more commands after the compaction (so a load is base + incremental
//! file), then start a second server on a copy of the files and run the same deterministic
//! "probe" commands (appends at explicit IDs, an approximate trim, CLAIM reads) on both: that
//! is where chunk boundaries and deleted entries inside chunks (tombstones), which no reply
//! shows directly, make a difference.
//!
//! Times that are "ms since" something (XINFO CONSUMERS idle/inactive, XPENDING's idle) are
//! replaced by a marker in the comparison and checked on their own: after a reload they must
//! have grown by the wall-clock time between the two captures. Absolute times (seen-time,
//! active-time, delivery times in XINFO STREAM FULL) are compared exactly — except consumers'
//! times after a load that replays the incremental file, which are the replay's (as in
//! Redis; see `mask_consumer_times`).
//!
//! Every difference is collected; the test fails at the end with a summary per field (seeds,
//! stages, one example). Replay one seed with `RELAY_STATE_SEED=7`; run more with
//! `RELAY_STATE_SEEDS=40`.

mod common;

use common::persist::{kill9, shutdown, start, temp_dir};
use common::{render, RawConn, Resp};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DEFAULT_SEEDS: u64 = 24;
/// The server starts with small chunks, so that even a few hundred entries make many.
const NODE_MAX_AT_START: u64 = 7;
/// What a "ms since" value is replaced by before two captures are compared.
const MS_SINCE: &str = "<ms since>";
/// Clock granularity allowed between the server's and the test's millisecond clocks.
const CLOCK_SLACK_MS: i64 = 3;

/// splitmix64: small, deterministic, good enough to pick commands.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn parse_id(s: &str) -> Option<(u64, u64)> {
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn is_id(r: &Resp) -> bool {
    matches!(r, Resp::Bulk(b) if parse_id(&String::from_utf8_lossy(b)).is_some())
}

/// The elements of an aggregate; nothing for anything else.
fn list(r: &Resp) -> Vec<Resp> {
    match r {
        Resp::Array(_) | Resp::Set(_) | Resp::Push(_) | Resp::Map(_) => r.items(),
        _ => vec![],
    }
}

/// `name`'s value in a RESP3 map.
fn field<'a>(r: &'a Resp, name: &str) -> Option<&'a Resp> {
    match r {
        Resp::Map(m) => m.iter().find(|(k, _)| k.text() == name).map(|(_, v)| v),
        _ => None,
    }
}

fn int_field(r: &Resp, name: &str) -> i64 {
    match field(r, name) {
        Some(Resp::Int(n)) => *n,
        _ => 0,
    }
}

async fn send(c: &mut RawConn, args: &[String], seed: u64) -> Resp {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    c.try_cmd(&refs)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: no reply to {args:?} (did the server die?)"))
}

fn args_str(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// The random workload

/// What the test knows about a key, to pick IDs that exist or are pending.
#[derive(Default)]
struct KeyModel {
    last: (u64, u64),
    ids: Vec<String>,
    delivered: Vec<String>,
    /// Groups known to exist (picked most of the time, so that reads and claims find one).
    groups: Vec<String>,
}

const GROUPS: &[&str] = &["g0", "g1", "g2"];
const CONSUMERS: &[&str] = &["c0", "c1", "c2", "c3"];
const POLICIES: &[&str] = &["KEEPREF", "DELREF", "ACKED"];

struct Workload {
    seed: u64,
    rng: Rng,
    keys: Vec<String>,
    model: HashMap<String, KeyModel>,
    /// stream-node-max-entries as the running server has it now.
    node_max: u64,
    errors: BTreeMap<String, usize>,
}

impl Workload {
    fn new(seed: u64) -> Workload {
        let mut rng = Rng::new(seed);
        let keys: Vec<String> = (0..2 + rng.below(2)).map(|i| format!("s{i}")).collect();
        let model = keys
            .iter()
            .map(|k| (k.clone(), KeyModel::default()))
            .collect();
        Workload {
            seed,
            rng,
            keys,
            model,
            node_max: NODE_MAX_AT_START,
            errors: BTreeMap::new(),
        }
    }

    async fn run(&mut self, c: &mut RawConn, n: usize, allow_config: bool) {
        for _ in 0..n {
            let args = self.next_command(allow_config);
            let reply = send(c, &args, self.seed).await;
            self.observe(&args, &reply);
        }
    }

    fn key(&mut self) -> String {
        self.keys[self.rng.below(self.keys.len() as u64) as usize].clone()
    }

    /// Any ID the key had (deleted ones included), now and then one that never existed.
    fn any_id(&mut self, key: &str) -> String {
        let n = self.model[key].ids.len() as u64;
        if n == 0 || self.rng.chance(4) {
            return format!("{}-{}", self.rng.below(3), self.rng.below(3));
        }
        let i = self.rng.below(n) as usize;
        self.model[key].ids[i].clone()
    }

    /// An ID from the middle half of the key's history: deleting it leaves a hole inside a
    /// chunk rather than emptying one at an end.
    fn middle_id(&mut self, key: &str) -> String {
        let n = self.model[key].ids.len() as u64;
        if n < 4 {
            return self.any_id(key);
        }
        let i = n / 4 + self.rng.below(n / 2);
        self.model[key].ids[i as usize].clone()
    }

    /// Mostly an ID a group delivered (so it is likely pending).
    fn pending_id(&mut self, key: &str) -> String {
        let n = self.model[key].delivered.len() as u64;
        if n == 0 || self.rng.chance(25) {
            return self.any_id(key);
        }
        // Recent deliveries are likelier to be still pending.
        let i = n - 1 - self.rng.below(n.min(30));
        self.model[key].delivered[i as usize].clone()
    }

    fn ids(&mut self, key: &str, pending: bool) -> Vec<String> {
        let k = 1 + self.rng.below(3);
        (0..k)
            .map(|_| {
                if pending {
                    self.pending_id(key)
                } else {
                    self.middle_id(key)
                }
            })
            .collect()
    }

    fn group(&mut self, key: &str) -> String {
        let n = self.model[key].groups.len() as u64;
        if n > 0 && self.rng.chance(85) {
            let i = self.rng.below(n) as usize;
            return self.model[key].groups[i].clone();
        }
        self.rng.pick(GROUPS).to_string()
    }

    fn consumer(&mut self) -> String {
        self.rng.pick(CONSUMERS).to_string()
    }

    /// `MAXLEN|MINID [=|~] threshold [LIMIT n]`.
    fn trim_args(&mut self, key: &str, a: &mut Vec<String>) {
        let maxlen = self.rng.chance(65);
        a.push(if maxlen { "MAXLEN" } else { "MINID" }.into());
        let op = match self.rng.below(10) {
            0..=3 => "=",
            4..=7 => "~",
            _ => "",
        };
        if !op.is_empty() {
            a.push(op.into());
        }
        a.push(if maxlen {
            (5 + self.rng.below(60)).to_string()
        } else {
            self.middle_id(key)
        });
        if op == "~" && self.rng.chance(30) {
            a.extend(["LIMIT".into(), (1 + self.rng.below(10)).to_string()]);
        }
    }

    fn xadd(&mut self, key: &str) -> Vec<String> {
        let mut a = strings(&["XADD", key]);
        if self.rng.chance(3) {
            a.push("NOMKSTREAM".into());
        }
        let (ms, seq) = self.model[key].last;
        let id = match self.rng.below(100) {
            0..=59 => "*".to_string(),
            60..=87 => {
                let dms = self.rng.below(3);
                let seq = if dms == 0 {
                    seq + 1 + self.rng.below(3)
                } else {
                    self.rng.below(4)
                };
                format!("{}-{seq}", ms + dms)
            }
            88..=95 => format!("{}-*", ms + self.rng.below(2)),
            // Not greater than the last ID: an error.
            _ => format!("{}-{seq}", ms.saturating_sub(1)),
        };
        let mut auto_fields = false;
        if id == "*" {
            match self.rng.below(100) {
                // A small pool of idempotent IDs: retries are frequent.
                0..=24 => a.extend([
                    "IDMP".into(),
                    format!("p{}", self.rng.below(2)),
                    format!("i{}", self.rng.below(12)),
                ]),
                25..=32 => {
                    a.extend(["IDMPAUTO".into(), format!("p{}", self.rng.below(2))]);
                    auto_fields = true;
                }
                _ => {}
            }
        }
        if self.rng.chance(15) {
            self.trim_args(key, &mut a);
        }
        if self.rng.chance(15) {
            a.push(self.rng.pick(POLICIES).into());
        }
        a.push(id);
        if auto_fields {
            // Few distinct bodies, so IDMPAUTO sees the same one again.
            match self.rng.below(3) {
                0 => a.extend(strings(&["f", "a"])),
                1 => a.extend(strings(&["f", "b"])),
                _ => a.extend(strings(&["f", "a", "g", "x"])),
            }
        } else {
            let v = format!("v{}", self.rng.below(50));
            match self.rng.below(20) {
                0..=13 => a.extend(["f".into(), v]),
                14..=16 => a.extend(["f".into(), v, "g".into(), self.rng.below(1000).to_string()]),
                _ => a.extend(["h".into(), v]),
            }
        }
        a
    }

    fn next_command(&mut self, allow_config: bool) -> Vec<String> {
        let key = self.key();
        let k = key.as_str();
        let roll = self.rng.below(1000);
        match roll {
            0..=349 => self.xadd(k),
            350..=419 => {
                let mut a = strings(&["XDEL", k]);
                a.extend(self.ids(k, false));
                a
            }
            420..=439 => {
                let mut a = strings(&["XDELEX", k]);
                if self.rng.chance(70) {
                    a.push(self.rng.pick(POLICIES).into());
                }
                let ids = self.ids(k, false);
                a.extend(["IDS".into(), ids.len().to_string()]);
                a.extend(ids);
                a
            }
            440..=459 => {
                let mut a = strings(&["XTRIM", k]);
                self.trim_args(k, &mut a);
                if self.rng.chance(30) {
                    a.push(self.rng.pick(POLICIES).into());
                }
                a
            }
            460..=479 => self.xadd(k),
            480..=524 => {
                let g = self.rng.pick(GROUPS);
                let mut a = strings(&["XGROUP", "CREATE", k, g]);
                a.push(match self.rng.below(10) {
                    0..=3 => "0".into(),
                    4..=6 => "$".into(),
                    _ => self.any_id(k),
                });
                if self.rng.chance(20) {
                    a.push("MKSTREAM".into());
                }
                if self.rng.chance(30) {
                    let n = self.model[k].ids.len() as u64;
                    a.extend(["ENTRIESREAD".into(), self.rng.below(n + 3).to_string()]);
                }
                a
            }
            525..=544 => {
                let (g, c) = (self.group(k), self.consumer());
                strings(&["XGROUP", "CREATECONSUMER", k, &g, &c])
            }
            545..=554 => {
                let (g, c) = (self.group(k), self.consumer());
                strings(&["XGROUP", "DELCONSUMER", k, &g, &c])
            }
            555..=574 => {
                let g = self.group(k);
                let mut a = strings(&["XGROUP", "SETID", k, &g]);
                a.push(match self.rng.below(10) {
                    0..=2 => "0".into(),
                    3..=5 => "$".into(),
                    _ => self.any_id(k),
                });
                if self.rng.chance(30) {
                    let n = self.model[k].ids.len() as u64;
                    a.extend(["ENTRIESREAD".into(), self.rng.below(n + 3).to_string()]);
                }
                a
            }
            575..=578 => {
                let g = self.group(k);
                strings(&["XGROUP", "DESTROY", k, &g])
            }
            579..=719 => {
                let (g, c) = (self.group(k), self.consumer());
                let mut a = strings(&["XREADGROUP", "GROUP", &g, &c]);
                if self.rng.chance(80) {
                    a.extend(["COUNT".into(), (1 + self.rng.below(6)).to_string()]);
                }
                if self.rng.chance(5) {
                    a.push("NOACK".into());
                }
                if self.rng.chance(8) {
                    let idle = if self.rng.chance(50) { "0" } else { "3600000" };
                    a.extend(["CLAIM".into(), idle.into()]);
                }
                let from = if self.rng.chance(80) { ">" } else { "0" };
                let mut keys = vec![key.clone()];
                if self.rng.chance(10) {
                    let other = self.key();
                    if other != key {
                        keys.push(other);
                    }
                }
                a.push("STREAMS".into());
                a.extend(keys.iter().cloned());
                a.extend(keys.iter().map(|_| from.to_string()));
                a
            }
            720..=789 => {
                let g = self.group(k);
                let mut a = strings(&["XACK", k, &g]);
                a.extend(self.ids(k, true));
                a
            }
            790..=799 => {
                let g = self.group(k);
                let mut a = strings(&["XACKDEL", k, &g]);
                if self.rng.chance(70) {
                    a.push(self.rng.pick(POLICIES).into());
                }
                let ids = self.ids(k, true);
                a.extend(["IDS".into(), ids.len().to_string()]);
                a.extend(ids);
                a
            }
            800..=859 => {
                let (g, c) = (self.group(k), self.consumer());
                let min_idle = if self.rng.chance(85) { 0 } else { 1000 };
                let mut a = strings(&["XCLAIM", k, &g, &c, &min_idle.to_string()]);
                a.extend(self.ids(k, true));
                if self.rng.chance(25) {
                    a.extend(["IDLE".into(), self.rng.below(1_000_000).to_string()]);
                } else if self.rng.chance(20) {
                    // In the past: a future TIME would be clamped to now.
                    let t = now_ms() - 1000 - self.rng.below(1_000_000) as i64;
                    a.extend(["TIME".into(), t.to_string()]);
                }
                if self.rng.chance(25) {
                    a.extend(["RETRYCOUNT".into(), self.rng.below(6).to_string()]);
                }
                if self.rng.chance(20) {
                    a.push("FORCE".into());
                }
                if self.rng.chance(30) {
                    a.push("JUSTID".into());
                }
                if self.rng.chance(8) {
                    a.extend(["LASTID".into(), self.any_id(k)]);
                }
                a
            }
            860..=889 => {
                let (g, c) = (self.group(k), self.consumer());
                let start = if self.rng.chance(60) {
                    "0-0".to_string()
                } else {
                    self.any_id(k)
                };
                let mut a = strings(&["XAUTOCLAIM", k, &g, &c, "0", &start]);
                if self.rng.chance(70) {
                    a.extend(["COUNT".into(), (1 + self.rng.below(8)).to_string()]);
                }
                if self.rng.chance(30) {
                    a.push("JUSTID".into());
                }
                a
            }
            890..=939 => {
                let g = self.group(k);
                let mode = self.rng.pick(&["SILENT", "FAIL", "FATAL"]);
                let mut a = strings(&["XNACK", k, &g, mode]);
                if self.rng.chance(15) {
                    a.push("FORCE".into());
                }
                let ids = self.ids(k, true);
                a.extend(["IDS".into(), ids.len().to_string()]);
                a.extend(ids);
                if self.rng.chance(20) {
                    a.extend(["RETRYCOUNT".into(), self.rng.below(9).to_string()]);
                }
                a
            }
            940..=959 => {
                // Durations stay far above the test's run time: an idempotent ID expiring
                // between two captures would be a difference the test made, not the server.
                let mut a = strings(&["XCFGSET", k]);
                let both = self.rng.chance(30);
                if both || self.rng.chance(50) {
                    let d = self.rng.pick(&["100", "300", "3600"]);
                    a.extend(["IDMP-DURATION".into(), d.into()]);
                }
                if both || a.len() == 2 {
                    let m = self.rng.pick(&["2", "5", "50"]);
                    a.extend(["IDMP-MAXSIZE".into(), m.into()]);
                }
                a
            }
            960..=979 => {
                let (ms, seq) = self.model[k].last;
                let id = format!("{}-{}", ms + self.rng.below(20), seq + self.rng.below(3));
                let mut a = strings(&["XSETID", k, &id]);
                if self.rng.chance(40) {
                    let n = self.model[k].ids.len() as u64 + self.rng.below(5);
                    a.extend(["ENTRIESADDED".into(), n.to_string()]);
                    if self.rng.chance(60) {
                        a.extend(["MAXDELETEDID".into(), self.any_id(k)]);
                    }
                }
                a
            }
            _ if allow_config => {
                let n = self.rng.pick(&["5", "7", "10", "100"]);
                strings(&["CONFIG", "SET", "stream-node-max-entries", n])
            }
            _ => self.xadd(k),
        }
    }

    /// Learn IDs from replies.
    fn observe(&mut self, args: &[String], reply: &Resp) {
        let name = args[0].as_str();
        if let (["XGROUP", "CREATE", key, g, ..], Resp::Error(e)) = (&args_str(args)[..], reply) {
            // BUSYGROUP: it exists.
            if e.starts_with("BUSYGROUP") {
                if let Some(m) = self.model.get_mut(*key) {
                    if !m.groups.iter().any(|x| x == g) {
                        m.groups.push(g.to_string());
                    }
                }
            }
        }
        if let Resp::Error(e) = reply {
            let what = if name == "XGROUP" {
                format!("XGROUP {}", args[1])
            } else {
                name.to_string()
            };
            if std::env::var_os("RELAY_STATE_VERBOSE").is_some() {
                eprintln!("seed {}: {args:?} -> -{e}", self.seed);
            }
            *self.errors.entry(what).or_default() += 1;
            return;
        }
        let note = |m: &mut KeyModel, r: &Resp| {
            let id = match r {
                Resp::Array(e) if !e.is_empty() => e[0].text(),
                Resp::Bulk(_) => r.text(),
                _ => return,
            };
            m.delivered.push(id);
        };
        match name {
            "XADD" => {
                let id = reply.text();
                if let (Some(parsed), Some(m)) = (parse_id(&id), self.model.get_mut(&args[1])) {
                    m.last = m.last.max(parsed);
                    if !m.ids.contains(&id) {
                        m.ids.push(id);
                    }
                }
            }
            "XSETID" => {
                if let (Some(parsed), Some(m)) = (parse_id(&args[2]), self.model.get_mut(&args[1]))
                {
                    m.last = parsed;
                }
            }
            "XREADGROUP" => {
                for per_key in list(reply) {
                    let parts = list(&per_key);
                    if parts.len() != 2 {
                        continue;
                    }
                    if let Some(m) = self.model.get_mut(&parts[0].text()) {
                        for e in list(&parts[1]) {
                            note(m, &e);
                        }
                    }
                }
            }
            "XCLAIM" => {
                if let Some(m) = self.model.get_mut(&args[1]) {
                    for e in list(reply) {
                        note(m, &e);
                    }
                }
            }
            "XAUTOCLAIM" => {
                if let (Some(m), Some(claimed)) =
                    (self.model.get_mut(&args[1]), list(reply).get(1).cloned())
                {
                    for e in list(&claimed) {
                        note(m, &e);
                    }
                }
            }
            "CONFIG" => self.node_max = args[3].parse().unwrap(),
            "XGROUP" => {
                if let Some(m) = self.model.get_mut(&args[2]) {
                    let g = &args[3];
                    match (args[1].as_str(), reply) {
                        ("CREATE", _) if !m.groups.contains(g) => m.groups.push(g.clone()),
                        ("DESTROY", Resp::Int(1)) => m.groups.retain(|x| x != g),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Capturing and comparing the state

/// One reply of a capture.
struct Item {
    /// The command, e.g. `XPENDING s0 g1 - + 1000000`: what is compared with what.
    what: String,
    /// The command without key and group, e.g. `XPENDING (extended)`: for the summary.
    kind: &'static str,
    reply: Resp,
}

/// A "ms since" value taken out of a reply.
struct Relative {
    /// The reply it is in, and where in it.
    what: String,
    path: String,
    class: String,
    ms: i64,
}

struct Capture {
    items: Vec<Item>,
    relative: BTreeMap<String, Relative>,
    /// Wall-clock time (unix ms) when the capture started and ended.
    from_ms: i64,
    to_ms: i64,
}

async fn capture(addr: SocketAddr, keys: &[String], seed: u64) -> Capture {
    let mut c = RawConn::connect(addr).await;
    let hello = send(&mut c, &strings(&["HELLO", "3"]), seed).await;
    assert!(
        matches!(hello, Resp::Map(_)),
        "seed {seed}: HELLO 3: {}",
        render(&hello)
    );
    let from_ms = now_ms();
    let mut plan: Vec<(&'static str, Vec<String>)> = vec![("DBSIZE", strings(&["DBSIZE"]))];
    for key in keys {
        let k = key.as_str();
        plan.extend([
            ("TYPE", strings(&["TYPE", k])),
            ("XLEN", strings(&["XLEN", k])),
            ("XRANGE", strings(&["XRANGE", k, "-", "+"])),
            ("XINFO STREAM", strings(&["XINFO", "STREAM", k])),
            (
                "XINFO STREAM FULL",
                strings(&["XINFO", "STREAM", k, "FULL", "COUNT", "0"]),
            ),
            ("XINFO GROUPS", strings(&["XINFO", "GROUPS", k])),
        ]);
    }
    let mut items = Vec::new();
    for (kind, args) in plan {
        let reply = send(&mut c, &args, seed).await;
        let groups: Vec<String> = match kind {
            "XINFO GROUPS" => list(&reply)
                .iter()
                .filter_map(|g| field(g, "name").map(Resp::text))
                .collect(),
            _ => vec![],
        };
        items.push(Item {
            what: args.join(" "),
            kind,
            reply,
        });
        let key = args.get(2).map_or("", String::as_str);
        for g in &groups {
            for (kind, args) in [
                ("XINFO CONSUMERS", strings(&["XINFO", "CONSUMERS", key, g])),
                ("XPENDING (summary)", strings(&["XPENDING", key, g])),
                (
                    "XPENDING (extended)",
                    strings(&["XPENDING", key, g, "-", "+", "1000000"]),
                ),
            ] {
                let reply = send(&mut c, &args, seed).await;
                items.push(Item {
                    what: args.join(" "),
                    kind,
                    reply,
                });
            }
        }
    }
    let to_ms = now_ms();
    let mut relative = BTreeMap::new();
    for item in &mut items {
        take_relative_times(item, &mut relative);
    }
    Capture {
        items,
        relative,
        from_ms,
        to_ms,
    }
}

fn marker() -> Resp {
    Resp::Simple(MS_SINCE.into())
}

/// Replace "ms since" values by a marker, keeping them aside. -1 ("never", or "released by
/// XNACK") is a state, not a time, and stays.
fn take_relative_times(item: &mut Item, out: &mut BTreeMap<String, Relative>) {
    let what = item.what.clone();
    match item.kind {
        "XINFO CONSUMERS" => {
            if let Resp::Array(consumers) = &mut item.reply {
                for c in consumers {
                    let name = field(c, "name").map(Resp::text).unwrap_or_default();
                    if let Resp::Map(m) = c {
                        for (k, v) in m.iter_mut() {
                            let k = k.text();
                            if let (true, Resp::Int(ms)) = (k == "idle" || k == "inactive", &*v) {
                                if *ms == -1 {
                                    continue;
                                }
                                let path = format!("[{name}].{k}");
                                out.insert(
                                    format!("{what} {path}"),
                                    Relative {
                                        what: what.clone(),
                                        path,
                                        class: format!("XINFO CONSUMERS: [].{k}"),
                                        ms: *ms,
                                    },
                                );
                                *v = marker();
                            }
                        }
                    }
                }
            }
        }
        "XPENDING (extended)" => {
            if let Resp::Array(entries) = &mut item.reply {
                for e in entries {
                    if let Resp::Array(p) = e {
                        if let (4, Resp::Int(ms)) = (p.len(), &p[2]) {
                            if *ms == -1 {
                                continue;
                            }
                            let path = format!("[{}].idle", p[0].text());
                            out.insert(
                                format!("{what} {path}"),
                                Relative {
                                    what: what.clone(),
                                    path,
                                    class: "XPENDING (extended): [].idle".into(),
                                    ms: *ms,
                                },
                            );
                            p[2] = marker();
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// One differing value: where, which field in general, and both sides.
#[derive(Clone)]
struct Diff {
    path: String,
    class: String,
    before: String,
    after: String,
}

/// The differences between two captures of one command's reply.
struct Finding {
    seed: u64,
    stage: &'static str,
    what: String,
    diffs: Vec<Diff>,
}

fn short(r: &Resp) -> String {
    let s = render(r);
    if s.chars().count() > 240 {
        format!("{}…", s.chars().take(240).collect::<String>())
    } else {
        s
    }
}

/// How a list element is named in a path: a map by its `name`, an entry by its ID.
fn label(e: &Resp) -> Option<String> {
    match e {
        Resp::Map(_) => field(e, "name").map(Resp::text),
        Resp::Array(v) if !v.is_empty() && is_id(&v[0]) => Some(v[0].text()),
        _ => None,
    }
}

/// Every difference between `a` and `b`; `path` names the place (`groups[g0].lag`),
/// `class` the field in general (`groups[].lag`).
fn diff(path: &str, class: &str, a: &Resp, b: &Resp, out: &mut Vec<Diff>) {
    let join = |p: &str, k: &str| {
        if p.is_empty() {
            k.to_string()
        } else {
            format!("{p}.{k}")
        }
    };
    match (a, b) {
        (Resp::Map(x), Resp::Map(y)) => {
            for (k, va) in x {
                let name = k.text();
                match y.iter().find(|(kb, _)| kb == k) {
                    Some((_, vb)) => diff(&join(path, &name), &join(class, &name), va, vb, out),
                    None => out.push(Diff {
                        path: join(path, &name),
                        class: join(class, &format!("{name} (field only before)")),
                        before: short(va),
                        after: "(no such field)".into(),
                    }),
                }
            }
            for (k, vb) in y {
                if !x.iter().any(|(ka, _)| ka == k) {
                    let name = k.text();
                    out.push(Diff {
                        path: join(path, &name),
                        class: join(class, &format!("{name} (field only after)")),
                        before: "(no such field)".into(),
                        after: short(vb),
                    });
                }
            }
        }
        (Resp::Array(x), Resp::Array(y)) | (Resp::Set(x), Resp::Set(y)) => {
            diff_list(path, class, x, y, out)
        }
        _ if a == b => {}
        _ => out.push(Diff {
            path: if path.is_empty() {
                "(reply)".into()
            } else {
                path.into()
            },
            class: if class.is_empty() {
                "(reply)".into()
            } else {
                class.into()
            },
            before: short(a),
            after: short(b),
        }),
    }
}

fn diff_list(path: &str, class: &str, x: &[Resp], y: &[Resp], out: &mut Vec<Diff>) {
    let cls = format!("{class}[]");
    let labels = |v: &[Resp]| -> Option<Vec<String>> {
        let l: Option<Vec<String>> = v.iter().map(label).collect();
        let l = l?;
        let unique: BTreeSet<&String> = l.iter().collect();
        (unique.len() == l.len()).then_some(l)
    };
    if let (Some(lx), Some(ly)) = (labels(x), labels(y)) {
        // Named elements (groups, consumers, entries, pending entries): matched by name, so
        // one missing entry reads as that, not as every later entry differing.
        for (i, l) in lx.iter().enumerate() {
            let p = format!("{path}[{l}]");
            match ly.iter().position(|m| m == l) {
                Some(j) => diff(&p, &cls, &x[i], &y[j], out),
                None => out.push(Diff {
                    path: p,
                    class: format!("{cls} (element only before)"),
                    before: short(&x[i]),
                    after: "(absent)".into(),
                }),
            }
        }
        for (j, l) in ly.iter().enumerate() {
            if !lx.contains(l) {
                out.push(Diff {
                    path: format!("{path}[{l}]"),
                    class: format!("{cls} (element only after)"),
                    before: "(absent)".into(),
                    after: short(&y[j]),
                });
            }
        }
        let common_x: Vec<&String> = lx.iter().filter(|l| ly.contains(l)).collect();
        let common_y: Vec<&String> = ly.iter().filter(|l| lx.contains(l)).collect();
        if common_x != common_y {
            out.push(Diff {
                path: format!("{path}(order)"),
                class: format!("{cls} (order)"),
                before: format!("{common_x:?}"),
                after: format!("{common_y:?}"),
            });
        }
        return;
    }
    for (i, (a, b)) in x.iter().zip(y).enumerate() {
        diff(&format!("{path}[{i}]"), &cls, a, b, out);
    }
    if x.len() != y.len() {
        let n = x.len().min(y.len());
        out.push(Diff {
            path: format!("{path}(length)"),
            class: format!("{cls} (length)"),
            before: format!(
                "{} elements{}",
                x.len(),
                x.get(n)
                    .map_or(String::new(), |e| format!(", first extra: {}", short(e)))
            ),
            after: format!(
                "{} elements{}",
                y.len(),
                y.get(n)
                    .map_or(String::new(), |e| format!(", first extra: {}", short(e)))
            ),
        });
    }
}

fn compare(seed: u64, stage: &'static str, before: &Capture, after: &Capture) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |what: &str, diffs: Vec<Diff>| {
        if !diffs.is_empty() {
            findings.push(Finding {
                seed,
                stage,
                what: what.to_string(),
                diffs,
            });
        }
    };
    for a in &before.items {
        let mut diffs = Vec::new();
        match after.items.iter().find(|b| b.what == a.what) {
            Some(b) => diff("", a.kind, &a.reply, &b.reply, &mut diffs),
            None => diffs.push(Diff {
                path: "(reply)".into(),
                class: format!("{} (captured only before)", a.kind),
                before: short(&a.reply),
                after: "(not captured: the group is gone)".into(),
            }),
        }
        push(&a.what, diffs);
    }
    for b in &after.items {
        if !before.items.iter().any(|a| a.what == b.what) {
            let d = Diff {
                path: "(reply)".into(),
                class: format!("{} (captured only after)", b.kind),
                before: "(not captured: no such group)".into(),
                after: short(&b.reply),
            };
            push(&b.what, vec![d]);
        }
    }
    // A "ms since" value grows with the clock: by at least the time between the end of the
    // first capture and the start of the second, at most by the time from the start of the
    // first to the end of the second.
    let lo = after.from_ms - before.to_ms - CLOCK_SLACK_MS;
    let hi = after.to_ms - before.from_ms + CLOCK_SLACK_MS;
    for (name, rb) in &before.relative {
        let Some(ra) = after.relative.get(name) else {
            continue; // the structural comparison reports it
        };
        let grew = ra.ms - rb.ms;
        if grew < lo || grew > hi {
            let d = Diff {
                path: rb.path.clone(),
                class: format!("{} (ms since: did not grow with the clock)", rb.class),
                before: format!("{} ms", rb.ms),
                after: format!(
                    "{} ms (expected {}..={} ms: +{lo}..+{hi} ms of wall clock between the captures)",
                    ra.ms,
                    rb.ms + lo,
                    rb.ms + hi
                ),
            };
            push(&rb.what, vec![d]);
        }
    }
    findings
}

/// Hide consumers' times (XINFO STREAM FULL seen-time/active-time, XINFO CONSUMERS
/// idle/inactive) from a capture. Used for loads that replay the incremental file: there, as
/// in Redis, the records of a group read or claim set a consumer's times to the replay's
/// clock, and reads that deliver nothing (they only move seen-time) are not logged at all —
/// logging every empty poll would turn reads into disk writes. A compaction's base carries
/// the times exactly, so base-only loads compare them.
fn mask_consumer_times(c: &mut Capture) {
    fn walk(r: &mut Resp, keys: &[&str]) {
        match r {
            Resp::Map(m) => {
                for (k, v) in m.iter_mut() {
                    if keys.contains(&k.text().as_str()) {
                        *v = marker();
                    } else {
                        walk(v, keys);
                    }
                }
            }
            Resp::Array(v) | Resp::Set(v) | Resp::Push(v) => {
                v.iter_mut().for_each(|x| walk(x, keys))
            }
            _ => {}
        }
    }
    for item in &mut c.items {
        match item.kind {
            "XINFO STREAM FULL" => walk(&mut item.reply, &["seen-time", "active-time"]),
            "XINFO CONSUMERS" => walk(&mut item.reply, &["idle", "inactive"]),
            _ => {}
        }
    }
    c.relative
        .retain(|_, r| !r.class.starts_with("XINFO CONSUMERS"));
}

// ---------------------------------------------------------------------------------------
// The probe: the same commands on the original and on a reload of its files

/// Mask the idle time of XREADGROUP … CLAIM entries (`[id, fields, idle, count]`).
fn mask_claim_idle(r: &mut Resp) {
    match r {
        Resp::Array(v) if v.len() == 4 && is_id(&v[0]) && matches!(v[2], Resp::Int(_)) => {
            v[2] = marker();
        }
        Resp::Array(v) | Resp::Set(v) | Resp::Push(v) => v.iter_mut().for_each(mask_claim_idle),
        Resp::Map(m) => m.iter_mut().for_each(|(_, v)| mask_claim_idle(v)),
        _ => {}
    }
}

struct Pair<'a> {
    x: &'a mut RawConn,
    y: &'a mut RawConn,
    seed: u64,
    stage: &'static str,
    findings: &'a mut Vec<Finding>,
}

impl Pair<'_> {
    /// Run `args` on both servers; record a finding if the replies differ; the original's
    /// reply.
    async fn both(&mut self, args: Vec<String>) -> Resp {
        let mut a = send(self.x, &args, self.seed).await;
        let mut b = send(self.y, &args, self.seed).await;
        mask_claim_idle(&mut a);
        mask_claim_idle(&mut b);
        let kind = match args[0].as_str() {
            "XINFO" => format!("probe {} {}", args[0], args[1]),
            other => format!("probe {other}"),
        };
        let mut diffs = Vec::new();
        diff("", &kind, &a, &b, &mut diffs);
        if !diffs.is_empty() {
            self.findings.push(Finding {
                seed: self.seed,
                stage: self.stage,
                what: args.join(" "),
                diffs,
            });
        }
        a
    }
}

/// Commands whose results depend on chunk boundaries, deleted entries inside chunks and the
/// XNACK queue order, none of which a reply shows directly: appends at explicit IDs (where
/// does a chunk end?), an approximate trim (whole chunks only), a CLAIM read (released
/// entries first, in their order). Replies must be the same on both servers.
async fn probe(
    seed: u64,
    original: SocketAddr,
    reloaded: SocketAddr,
    keys: &[String],
    stage: &'static str,
) -> Vec<Finding> {
    let mut x = RawConn::connect(original).await;
    let mut y = RawConn::connect(reloaded).await;
    send(&mut x, &strings(&["HELLO", "3"]), seed).await;
    send(&mut y, &strings(&["HELLO", "3"]), seed).await;
    let mut findings = Vec::new();
    let mut p = Pair {
        x: &mut x,
        y: &mut y,
        seed,
        stage,
        findings: &mut findings,
    };
    for key in keys {
        let k = key.as_str();
        let info = p.both(strings(&["XINFO", "STREAM", k])).await;
        let Some((ms, _)) = field(&info, "last-generated-id").and_then(|id| parse_id(&id.text()))
        else {
            continue;
        };
        for i in 1..=12 {
            let id = format!("{}-{i}", ms + 1);
            p.both(strings(&["XADD", k, &id, "f", &format!("probe{i}")]))
                .await;
        }
        let info = p.both(strings(&["XINFO", "STREAM", k])).await;
        let half = (int_field(&info, "length") / 2).to_string();
        p.both(strings(&["XTRIM", k, "MAXLEN", "~", &half])).await;
        p.both(strings(&["XINFO", "STREAM", k])).await;
        p.both(strings(&["XRANGE", k, "-", "+"])).await;
        let groups = p.both(strings(&["XINFO", "GROUPS", k])).await;
        for g in list(&groups) {
            let Some(name) = field(&g, "name").map(Resp::text) else {
                continue;
            };
            let read = strings(&[
                "XREADGROUP",
                "GROUP",
                &name,
                "probe",
                "COUNT",
                "1000",
                "CLAIM",
                "100000000000",
                "STREAMS",
                k,
                ">",
            ]);
            p.both(read).await;
            p.both(strings(&["XPENDING", k, &name])).await;
        }
        p.both(strings(&["XINFO", "GROUPS", k])).await;
    }
    findings
}

// ---------------------------------------------------------------------------------------
// One seed

fn manifest(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap_or_default()
}

/// BGREWRITEAOF, then wait until it is over and check that it succeeded.
async fn rewrite(c: &mut RawConn, dir: &Path, seed: u64) {
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        Resp::Simple("Background append only file rewriting started".into()),
        "seed {seed}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = c.cmd(&["INFO", "persistence"]).await.text();
        let has = |line: &str| info.lines().any(|l| l.trim() == line);
        if has("aof_rewrite_in_progress:0") && has("aof_rewrite_scheduled:0") {
            assert!(
                has("aof_last_bgrewrite_status:ok"),
                "seed {seed}: the rewrite failed:\n{info}"
            );
            assert!(
                manifest(dir).contains("type b"),
                "seed {seed}: no base file after the rewrite:\n{}",
                manifest(dir)
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "seed {seed}: the rewrite did not finish in 30 s:\n{info}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn copy_aof(from: &Path, to: &Path) {
    let (src, dst) = (from.join("appendonlydir"), to.join("appendonlydir"));
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// What the workload reached, summed over keys: to show (and check) that the states are rich.
#[derive(Default, Debug)]
struct Reached {
    entries: i64,
    chunks: i64,
    groups: i64,
    pending: i64,
    nacked: i64,
    consumers: i64,
    iids_added: i64,
    iids_duplicates: i64,
    with_deletions: i64,
}

fn reached(c: &Capture) -> Reached {
    let mut r = Reached::default();
    for item in c.items.iter().filter(|i| i.kind == "XINFO STREAM FULL") {
        let s = &item.reply;
        r.entries += int_field(s, "length");
        r.chunks += int_field(s, "radix-tree-keys");
        r.iids_added += int_field(s, "iids-added");
        r.iids_duplicates += int_field(s, "iids-duplicates");
        if field(s, "max-deleted-entry-id").is_some_and(|id| id.text() != "0-0") {
            r.with_deletions += 1;
        }
        for g in list(field(s, "groups").unwrap_or(&Resp::Null)) {
            r.groups += 1;
            r.pending += int_field(&g, "pel-count");
            r.nacked += int_field(&g, "nacked-count");
            r.consumers += list(field(&g, "consumers").unwrap_or(&Resp::Null)).len() as i64;
        }
    }
    r
}

async fn run_seed(seed: u64, findings: &mut Vec<Finding>, total: &mut Reached) {
    let started = Instant::now();
    let incremental = seed % 2 == 1;
    let kill = seed % 4 >= 2;
    let fsync = if kill { "always" } else { "everysec" };
    let args = |node_max: u64| -> Vec<String> {
        strings(&[
            "--appendfsync",
            fsync,
            "--stream-node-max-entries",
            &node_max.to_string(),
        ])
    };
    let dir = temp_dir(&format!("state-{seed}"));
    let start_args = args(NODE_MAX_AT_START);
    let start_refs: Vec<&str> = start_args.iter().map(String::as_str).collect();
    let server = start(&dir, &start_refs).await;
    let mut c = RawConn::connect(server.addr).await;
    let mut w = Workload::new(seed);
    let n1 = 150 + w.rng.below(251) as usize;
    w.run(&mut c, n1, true).await;
    let first = capture(server.addr, &w.keys, seed).await;
    let r = reached(&first);

    rewrite(&mut c, &dir, seed).await;
    let rewritten = capture(server.addr, &w.keys, seed).await;
    findings.extend(compare(
        seed,
        "BGREWRITEAOF (same process)",
        &first,
        &rewritten,
    ));

    let mut n2 = 0;
    let mut reference = first;
    // The restart gets the stream-node-max-entries the server runs with now, as an operator
    // who had CONFIG REWRITE would: replaying the incremental file with another value would
    // make other chunks, and that would be the test's doing.
    let restart_args = args(w.node_max);
    let restart_refs: Vec<&str> = restart_args.iter().map(String::as_str).collect();
    if incremental {
        n2 = 50 + w.rng.below(101) as usize;
        w.run(&mut c, n2, false).await;
        let mut live = capture(server.addr, &w.keys, seed).await;
        mask_consumer_times(&mut live);
        assert_eq!(
            c.cmd(&["SAVE"]).await,
            Resp::Simple("OK".into()),
            "seed {seed}"
        );
        let twin_dir = temp_dir(&format!("state-{seed}-copy"));
        copy_aof(&dir, &twin_dir);
        let twin = start(&twin_dir, &restart_refs).await;
        let mut reloaded = capture(twin.addr, &w.keys, seed).await;
        mask_consumer_times(&mut reloaded);
        let differences = compare(
            seed,
            "reload of a copy of the files (base + incremental)",
            &live,
            &reloaded,
        );
        let stage = if !differences.is_empty() {
            // Then the probe's differences may only be consequences of those.
            "probe, same commands on original and reloaded copy (their states already differed)"
        } else {
            "probe, same commands on original and reloaded copy (their states were equal)"
        };
        findings.extend(differences);
        findings.extend(probe(seed, server.addr, twin.addr, &w.keys, stage).await);
        drop(twin);
        let _ = std::fs::remove_dir_all(&twin_dir);
        reference = capture(server.addr, &w.keys, seed).await;
        mask_consumer_times(&mut reference);
    }

    let stage = if kill {
        let mut server = server;
        kill9(&mut server);
        "restart after SIGKILL (appendfsync always)"
    } else {
        shutdown(server).await;
        "restart after SHUTDOWN"
    };
    let restarted = start(&dir, &restart_refs).await;
    let mut after = capture(restarted.addr, &w.keys, seed).await;
    if incremental {
        mask_consumer_times(&mut after);
    }
    findings.extend(compare(seed, stage, &reference, &after));
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);

    let errors: usize = w.errors.values().sum();
    eprintln!(
        "seed {seed} ({}{}): {n1}{} commands, {errors} error replies {:?}; reached {r:?}; {:.1} s",
        if incremental { "incremental, " } else { "" },
        if kill { "SIGKILL" } else { "SHUTDOWN" },
        if n2 > 0 {
            format!("+{n2}")
        } else {
            String::new()
        },
        w.errors,
        started.elapsed().as_secs_f64()
    );
    total.entries += r.entries;
    total.chunks += r.chunks;
    total.groups += r.groups;
    total.pending += r.pending;
    total.nacked += r.nacked;
    total.consumers += r.consumers;
    total.iids_added += r.iids_added;
    total.iids_duplicates += r.iids_duplicates;
    total.with_deletions += r.with_deletions;
}

fn report(findings: &[Finding]) -> String {
    // Per field: the seeds and stages it differs in, and the first example.
    let mut by_class: BTreeMap<String, (BTreeSet<u64>, BTreeSet<&str>, String)> = BTreeMap::new();
    for f in findings {
        for d in &f.diffs {
            let e = by_class.entry(d.class.clone()).or_insert_with(|| {
                (
                    BTreeSet::new(),
                    BTreeSet::new(),
                    format!(
                        "seed {} [{}] {}: {}: before {} / after {}",
                        f.seed, f.stage, f.what, d.path, d.before, d.after
                    ),
                )
            });
            e.0.insert(f.seed);
            e.1.insert(f.stage);
        }
    }
    let mut out = format!(
        "{} differing fields ({} replies differ); replay one seed with RELAY_STATE_SEED=<seed>\n",
        by_class.len(),
        findings.len()
    );
    for (class, (seeds, stages, example)) in &by_class {
        out.push_str(&format!(
            "\n* {class}\n    seeds {seeds:?}; stages {stages:?}\n    e.g. {example}\n"
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_and_a_restart_reproduce_the_exact_stream_state() {
    let seeds: Vec<u64> = match std::env::var("RELAY_STATE_SEED") {
        Ok(s) => vec![s.parse().expect("RELAY_STATE_SEED is a number")],
        Err(_) => {
            let n = std::env::var("RELAY_STATE_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(DEFAULT_SEEDS);
            (1..=n).collect()
        }
    };
    let started = Instant::now();
    let mut findings = Vec::new();
    let mut total = Reached::default();
    for &seed in &seeds {
        run_seed(seed, &mut findings, &mut total).await;
    }
    eprintln!(
        "{} seeds in {:.1} s; reached in total {total:?}",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    // The workload must reach the states the comparison is about; a command whose syntax
    // the test gets wrong would otherwise make the test pass by testing less.
    if seeds.len() >= 4 {
        for (what, n) in [
            ("entries", total.entries),
            ("groups", total.groups),
            ("pending entries", total.pending),
            ("XNACKed entries", total.nacked),
            ("consumers", total.consumers),
            ("idempotent IDs", total.iids_added),
            ("idempotent duplicates", total.iids_duplicates),
            ("streams with deletions", total.with_deletions),
        ] {
            assert!(n > 0, "the workload reached no {what}: {total:?}");
        }
        assert!(total.chunks > total.entries / 20, "few chunks: {total:?}");
    }
    if findings.is_empty() {
        return;
    }
    // Details: the first difference of each reply that differs, a few replies per stage.
    const PER_STAGE: usize = 6;
    let mut shown: BTreeMap<(u64, &str), usize> = BTreeMap::new();
    for f in &findings {
        let n = shown.entry((f.seed, f.stage)).or_default();
        *n += 1;
        if *n > PER_STAGE {
            continue;
        }
        let d = &f.diffs[0];
        let more = match f.diffs.len() - 1 {
            0 => String::new(),
            n => format!(" (+{n} more in this reply)"),
        };
        eprintln!(
            "seed {} [{}] {}\n    {}: before {} / after {}{more}",
            f.seed, f.stage, f.what, d.path, d.before, d.after
        );
    }
    for ((seed, stage), n) in shown.into_iter().filter(|(_, n)| *n > PER_STAGE) {
        eprintln!(
            "seed {seed} [{stage}]: {} more replies differ",
            n - PER_STAGE
        );
    }
    let summary = report(&findings);
    panic!("the state differs after a compaction or a restart: {summary}");
}
