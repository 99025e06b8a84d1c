//! The channel, pattern and shard-channel registry, and message fan-out.
//!
//! Invariants:
//! - A client appears at most once per channel / pattern / shard channel (the connection keeps
//!   its own sets and only calls in for real changes) and in subscription order.
//! - PUBLISH encodes each frame once per protocol actually needed and pushes reference-counted
//!   clones into receivers' output buffers; it never waits on a receiver.
//! - Patterns are indexed by their literal prefix (the bytes before the first glob
//!   metacharacter). A publish only tests patterns whose prefix is a prefix of the channel, so
//!   subscriptions that cannot match cost nothing; only the distinct prefix lengths in use are
//!   probed, one hash lookup each.
//! - The registry lock is held only for in-memory work, never across `.await`.

use crate::connection::client::ClientHandle;
use crate::connection::output::OutputLimits;
use crate::glob;
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

type Subscribers = Vec<Arc<ClientHandle>>;

struct PatternSubs {
    pattern: Bytes,
    subs: Subscribers,
}

#[derive(Default)]
struct PatternIndex {
    by_prefix: HashMap<Bytes, Vec<PatternSubs>>,
    /// Distinct prefix length → number of prefix groups of that length.
    prefix_lens: BTreeMap<usize, usize>,
    count: usize,
}

#[derive(Default)]
struct Registry {
    channels: HashMap<Bytes, Subscribers>,
    shard_channels: HashMap<Bytes, Subscribers>,
    patterns: PatternIndex,
}

#[derive(Default)]
pub struct PubSub {
    inner: RwLock<Registry>,
}

/// Which kind of subscription a call is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Channel,
    Shard,
}

fn remove_client(subs: &mut Subscribers, id: u64) {
    if let Some(pos) = subs.iter().position(|c| c.id == id) {
        subs.remove(pos);
    }
}

impl PubSub {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self, kind: Kind, client: &Arc<ClientHandle>, channel: Bytes) {
        let mut reg = self.write();
        let map = match kind {
            Kind::Channel => &mut reg.channels,
            Kind::Shard => &mut reg.shard_channels,
        };
        map.entry(channel).or_default().push(client.clone());
    }

    pub fn unsubscribe(&self, kind: Kind, client_id: u64, channel: &[u8]) {
        let mut reg = self.write();
        let map = match kind {
            Kind::Channel => &mut reg.channels,
            Kind::Shard => &mut reg.shard_channels,
        };
        if let Some(subs) = map.get_mut(channel) {
            remove_client(subs, client_id);
            if subs.is_empty() {
                map.remove(channel);
            }
        }
    }

    pub fn psubscribe(&self, client: &Arc<ClientHandle>, pattern: Bytes) {
        let mut reg = self.write();
        let idx = &mut reg.patterns;
        let prefix = Bytes::copy_from_slice(glob::literal_prefix(&pattern));
        let plen = prefix.len();
        let group = idx.by_prefix.entry(prefix).or_insert_with(|| {
            *idx.prefix_lens.entry(plen).or_insert(0) += 1;
            Vec::new()
        });
        match group.iter_mut().find(|p| p.pattern == pattern) {
            Some(p) => p.subs.push(client.clone()),
            None => {
                group.push(PatternSubs {
                    pattern,
                    subs: vec![client.clone()],
                });
                idx.count += 1;
            }
        }
    }

    pub fn punsubscribe(&self, client_id: u64, pattern: &[u8]) {
        let mut reg = self.write();
        let idx = &mut reg.patterns;
        let prefix = glob::literal_prefix(pattern);
        let Some(group) = idx.by_prefix.get_mut(prefix) else {
            return;
        };
        if let Some(pos) = group.iter().position(|p| p.pattern == pattern) {
            remove_client(&mut group[pos].subs, client_id);
            if group[pos].subs.is_empty() {
                group.remove(pos);
                idx.count -= 1;
            }
        }
        if group.is_empty() {
            idx.by_prefix.remove(prefix);
            if let Some(n) = idx.prefix_lens.get_mut(&prefix.len()) {
                *n -= 1;
                if *n == 0 {
                    idx.prefix_lens.remove(&prefix.len());
                }
            }
        }
    }

    /// PUBLISH: deliver to channel subscribers, then to matching pattern subscribers.
    /// Returns the number of deliveries (a client on the channel and a pattern counts twice).
    pub fn publish(&self, channel: &Bytes, message: &Bytes, limits: &OutputLimits) -> usize {
        let reg = self.read();
        let mut delivered = 0;
        let now = LazyNow::default();
        if let Some(subs) = reg.channels.get(channel) {
            let mut frames = Frames::new(|out, proto| {
                message_frame(out, b"message", None, channel, message, proto)
            });
            delivered += deliver_all(subs, &mut frames, limits, &now);
        }
        let idx = &reg.patterns;
        for &plen in idx.prefix_lens.keys() {
            if plen > channel.len() {
                break;
            }
            let Some(group) = idx.by_prefix.get(&channel[..plen]) else {
                continue;
            };
            for p in group {
                if !glob::matches(&p.pattern, channel) {
                    continue;
                }
                let mut frames = Frames::new(|out, proto| {
                    message_frame(out, b"pmessage", Some(&p.pattern), channel, message, proto)
                });
                delivered += deliver_all(&p.subs, &mut frames, limits, &now);
            }
        }
        delivered
    }

    /// SPUBLISH: deliver to shard-channel subscribers.
    pub fn spublish(&self, channel: &Bytes, message: &Bytes, limits: &OutputLimits) -> usize {
        let reg = self.read();
        let Some(subs) = reg.shard_channels.get(channel) else {
            return 0;
        };
        let now = LazyNow::default();
        let mut frames = Frames::new(|out, proto| {
            message_frame(out, b"smessage", None, channel, message, proto)
        });
        deliver_all(subs, &mut frames, limits, &now)
    }

    /// Active channels (at least one subscriber), optionally filtered by a glob.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let reg = self.read();
        let map = match kind {
            Kind::Channel => &reg.channels,
            Kind::Shard => &reg.shard_channels,
        };
        map.keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
            .cloned()
            .collect()
    }

    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        let reg = self.read();
        let map = match kind {
            Kind::Channel => &reg.channels,
            Kind::Shard => &reg.shard_channels,
        };
        map.get(channel).map_or(0, |subs| {
            subs.iter().filter(|c| !c.output.is_closing()).count()
        })
    }

    /// Number of distinct patterns subscribed by any client (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.read().patterns.count
    }

    /// Counts for INFO stats: channels, patterns, shard channels.
    pub fn counts(&self) -> (usize, usize, usize) {
        let reg = self.read();
        (
            reg.channels.len(),
            reg.patterns.count,
            reg.shard_channels.len(),
        )
    }
}

/// Push a frame to every live subscriber; returns how many received it. A client that is
/// closing (killed, over its limit) is already gone as far as publishers can tell, even
/// before its task has removed its subscriptions.
fn deliver_all<F: Fn(&mut BytesMut, u8)>(
    subs: &Subscribers,
    frames: &mut Frames<F>,
    limits: &OutputLimits,
    now: &LazyNow,
) -> usize {
    let mut n = 0;
    for sub in subs {
        if sub.output.is_closing() {
            continue;
        }
        limits.deliver(sub, frames.get(sub.resp()), now.get(limits));
        n += 1;
    }
    n
}

/// The clock, read once per publish and only if someone receives it.
#[derive(Default)]
struct LazyNow(std::cell::Cell<Option<u64>>);

impl LazyNow {
    fn get(&self, limits: &OutputLimits) -> u64 {
        match self.0.get() {
            Some(t) => t,
            None => {
                let t = limits.now_ms();
                self.0.set(Some(t));
                t
            }
        }
    }
}

/// A fan-out frame encoded lazily, at most once per protocol version.
struct Frames<F: Fn(&mut BytesMut, u8)> {
    encode: F,
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

impl<F: Fn(&mut BytesMut, u8)> Frames<F> {
    fn new(encode: F) -> Self {
        Frames {
            encode,
            resp2: None,
            resp3: None,
        }
    }

    fn get(&mut self, proto: u8) -> Bytes {
        let slot = if proto >= 3 {
            &mut self.resp3
        } else {
            &mut self.resp2
        };
        slot.get_or_insert_with(|| {
            let mut out = BytesMut::new();
            (self.encode)(&mut out, proto);
            out.freeze()
        })
        .clone()
    }
}

/// `*3 message channel payload` / `*4 pmessage pattern channel payload` (`>` in RESP3).
fn message_frame(
    out: &mut BytesMut,
    kind: &[u8],
    pattern: Option<&Bytes>,
    channel: &[u8],
    message: &[u8],
    proto: u8,
) {
    let n = if pattern.is_some() { 4 } else { 3 };
    out.reserve(channel.len() + message.len() + pattern.map_or(0, |p| p.len()) + 64);
    crate::reply::len_line(out, if proto >= 3 { b'>' } else { b'*' }, n);
    crate::reply::bulk(out, kind);
    if let Some(p) = pattern {
        crate::reply::bulk(out, p);
    }
    crate::reply::bulk(out, channel);
    crate::reply::bulk(out, message);
}
