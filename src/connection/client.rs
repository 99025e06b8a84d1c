//! The client registry: the part of each client other tasks may see.
//!
//! A connection task owns its socket and session; what CLIENT LIST, CLIENT KILL, INFO clients
//! and pub/sub fan-out need from it lives in a shared `ClientHandle`: identity, the output
//! buffer, and counters the owner updates with relaxed atomics (no lock on the command path
//! except the name/library strings, which change rarely).

use super::output::OutputBuffer;
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub struct ClientNames {
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub user: String,
}

pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    /// Server-clock milliseconds at connect.
    pub created_ms: u64,
    pub output: OutputBuffer,
    pub names: Mutex<ClientNames>,
    pub last_interaction_ms: AtomicU64,
    pub db: AtomicU32,
    pub resp: AtomicU8,
    pub subs: AtomicU32,
    pub psubs: AtomicU32,
    pub ssubs: AtomicU32,
    /// Index of the last command in the command table (CLIENT LIST `cmd`).
    pub last_cmd: AtomicU32,
    pub qbuf: AtomicUsize,
    /// Room left in the read buffer (CLIENT LIST `qbuf-free`).
    pub qbuf_free: AtomicUsize,
    /// Bytes of the arguments of the command being run (CLIENT LIST `argv-mem`).
    pub argv_mem: AtomicUsize,
    /// Bytes of the commands queued by MULTI (CLIENT LIST `multi-mem`).
    pub multi_mem: AtomicUsize,
    pub no_evict: AtomicBool,
    pub no_touch: AtomicBool,
    /// Blocked in XREAD BLOCK (CLIENT UNBLOCK, INFO blocked_clients, CLIENT LIST flag `b`).
    pub blocked: AtomicBool,
    /// CLIENT UNBLOCK asked this client to stop waiting: 1 = as a timeout, 2 = with an error.
    pub unblock: AtomicU8,
    /// Commands queued in a transaction; -1 outside MULTI (CLIENT LIST `multi`, flag `x`).
    pub multi: std::sync::atomic::AtomicI64,
    /// WATCH: marked dirty when a watched key changes (CLIENT LIST flag `d`).
    pub watcher: Arc<crate::store::watch::Watcher>,
}

impl ClientHandle {
    pub fn new(
        id: u64,
        peer: Option<SocketAddr>,
        local: Option<SocketAddr>,
        fd: i64,
        now_ms: u64,
    ) -> Self {
        ClientHandle {
            id,
            addr: peer.map(|a| a.to_string()).unwrap_or_default(),
            laddr: local.map(|a| a.to_string()).unwrap_or_default(),
            fd,
            created_ms: now_ms,
            output: OutputBuffer::default(),
            names: Mutex::new(ClientNames {
                user: "default".into(),
                ..Default::default()
            }),
            last_interaction_ms: AtomicU64::new(now_ms),
            db: AtomicU32::new(0),
            resp: AtomicU8::new(2),
            subs: AtomicU32::new(0),
            psubs: AtomicU32::new(0),
            ssubs: AtomicU32::new(0),
            last_cmd: AtomicU32::new(u32::MAX),
            qbuf: AtomicUsize::new(0),
            qbuf_free: AtomicUsize::new(0),
            argv_mem: AtomicUsize::new(0),
            multi_mem: AtomicUsize::new(0),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            unblock: AtomicU8::new(0),
            multi: std::sync::atomic::AtomicI64::new(-1),
            watcher: crate::store::watch::Watcher::new(id),
        }
    }

    pub fn resp(&self) -> u8 {
        self.resp.load(Ordering::Relaxed)
    }

    /// Subscribed to anything: the client is in the pubsub class for output limits.
    pub fn is_pubsub(&self) -> bool {
        self.subs.load(Ordering::Relaxed)
            + self.psubs.load(Ordering::Relaxed)
            + self.ssubs.load(Ordering::Relaxed)
            > 0
    }

    pub fn names(&self) -> ClientNames {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    pub fn name(&self) -> String {
        self.names
            .lock()
            .map(|n| n.name.clone())
            .unwrap_or_default()
    }
}

/// Every connected client by id.
#[derive(Default)]
pub struct ClientRegistry {
    clients: DashMap<u64, Arc<ClientHandle>>,
    next_id: AtomicU64,
}

impl ClientRegistry {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn insert(&self, handle: Arc<ClientHandle>) {
        self.clients.insert(handle.id, handle);
    }

    pub fn remove(&self, id: u64) {
        self.clients.remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.clients
            .get(&id)
            .map(|e| e.value().clone())
            .filter(|c| !c.output.is_closing())
    }

    /// All live clients in connection order (ids increase). A client that is closing (killed,
    /// over a limit) is already gone, as in Redis, which frees it on the spot, even if its task
    /// has not finished tearing it down.
    pub fn snapshot(&self) -> Vec<Arc<ClientHandle>> {
        let mut all: Vec<_> = self
            .clients
            .iter()
            .filter(|e| !e.value().output.is_closing())
            .map(|e| e.value().clone())
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }
}
