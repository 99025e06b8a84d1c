//! Listeners, the accept loop, maxclients, and shutdown; `Shared`, the state every task sees.
//!
//! `Server::start` binds every `bind` address on `port` (0 picks a free port), then serves
//! until `shutdown` is requested (SIGINT/SIGTERM in the binary, the SHUTDOWN command, or
//! `ServerHandle::shutdown` in tests). Nothing here is global: tests start many servers in one
//! process.

use crate::config::Config;
use crate::connection::client::{ClientHandle, ClientRegistry};
use crate::connection::output::OutputLimits;
use crate::pubsub::PubSub;
use crate::store::Keyspace;
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Instantaneous rates, as Redis computes them: the mean of the last 16 samples taken every
/// 100 ms (INFO `instantaneous_ops_per_sec`, `instantaneous_input_kbps`, …).
#[derive(Default)]
pub struct RateSampler {
    last: Option<(Instant, [u64; 3])>,
    samples: std::collections::VecDeque<[f64; 3]>,
}

impl RateSampler {
    const SAMPLES: usize = 16;

    fn sample(&mut self, now: Instant, counters: [u64; 3]) {
        if let Some((at, prev)) = self.last {
            let secs = now.duration_since(at).as_secs_f64().max(1e-3);
            let rate = [0, 1, 2].map(|i| counters[i].saturating_sub(prev[i]) as f64 / secs);
            if self.samples.len() == Self::SAMPLES {
                self.samples.pop_front();
            }
            self.samples.push_back(rate);
        }
        self.last = Some((now, counters));
    }

    /// Mean rates: commands/s, input bytes/s, output bytes/s.
    pub fn rates(&self) -> [f64; 3] {
        let n = self.samples.len().max(1) as f64;
        [0, 1, 2].map(|i| self.samples.iter().map(|s| s[i]).sum::<f64>() / n)
    }
}

/// Counters behind INFO stats.
#[derive(Default)]
pub struct Stats {
    pub rates: std::sync::Mutex<RateSampler>,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands: AtomicU64,
    pub net_input: AtomicU64,
    pub net_output: AtomicU64,
    pub query_buffer_limit_disconnections: AtomicU64,
    pub keyspace_hits: AtomicU64,
    pub keyspace_misses: AtomicU64,
}

impl Stats {
    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [
            &self.connections_received,
            &self.rejected_connections,
            &self.commands,
            &self.net_input,
            &self.net_output,
            &self.query_buffer_limit_disconnections,
            &self.keyspace_hits,
            &self.keyspace_misses,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// Keyspace events (`notify-keyspace-events`) published through the ordinary pub/sub path,
/// so patterns, RESP3 pushes and output-buffer limits apply to them as to any message.
pub struct KeyspaceNotifier {
    flags: std::sync::atomic::AtomicU16,
    shared: std::sync::Weak<Shared>,
}

impl crate::store::Notify for KeyspaceNotifier {
    fn any(&self) -> bool {
        self.flags.load(Ordering::Relaxed) != 0
    }

    fn keyspace_event(&self, db: usize, key: &[u8], event: crate::events::Event) {
        use crate::events::class;
        let flags = self.flags.load(Ordering::Relaxed);
        if !crate::events::enabled(flags, event) {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut n = itoa::Buffer::new();
        let db = n.format(db).as_bytes();
        if flags & class::KEYSPACE != 0 {
            let mut channel = Vec::with_capacity(16 + db.len() + key.len());
            channel.extend_from_slice(b"__keyspace@");
            channel.extend_from_slice(db);
            channel.extend_from_slice(b"__:");
            channel.extend_from_slice(key);
            shared.pubsub.publish(
                &Bytes::from(channel),
                &Bytes::from_static(event.name.as_bytes()),
                &shared.limits,
            );
        }
        if flags & class::KEYEVENT != 0 {
            let mut channel = Vec::with_capacity(16 + db.len() + event.name.len());
            channel.extend_from_slice(b"__keyevent@");
            channel.extend_from_slice(db);
            channel.extend_from_slice(b"__:");
            channel.extend_from_slice(event.name.as_bytes());
            shared.pubsub.publish(
                &Bytes::from(channel),
                &Bytes::copy_from_slice(key),
                &shared.limits,
            );
        }
    }
}

/// Changes the log filter at run time (CONFIG SET loglevel); installed by the binary, which owns
/// the logger.
pub type LogHook = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// State shared by every connection of one server.
pub struct Shared {
    pub config: RwLock<Config>,
    pub limits: OutputLimits,
    pub proto_max_bulk_len: AtomicU64,
    pub query_buffer_limit: AtomicU64,
    pub maxclients: AtomicU64,
    pub timeout: AtomicU64,
    pub stream_node_max_entries: AtomicU64,
    pub stream_node_max_bytes: AtomicU64,
    pub stream_idmp_duration: AtomicU64,
    pub stream_idmp_maxsize: AtomicU64,
    pub clients: ClientRegistry,
    pub pubsub: PubSub,
    pub keyspace: Keyspace,
    pub blocking: Arc<crate::store::blocking::BlockingRegistry>,
    pub aof: Arc<crate::persist::Aof>,
    /// The append-only file is being replayed: commands without the `loading` flag get
    /// Redis's -LOADING error.
    pub loading: std::sync::atomic::AtomicBool,
    pub loading_total: AtomicU64,
    pub loading_done: AtomicU64,
    pub loading_started: AtomicU64,
    fatal: std::sync::Mutex<Option<String>>,
    pub stats: Stats,
    pub run_id: String,
    pub started: Instant,
    pub started_unix: u64,
    pub tcp_port: AtomicU64,
    shutdown_tx: watch::Sender<bool>,
    log_hook: std::sync::OnceLock<LogHook>,
    notifier: Arc<KeyspaceNotifier>,
    /// INFO commandstats and errorstats.
    pub cmdstats: crate::command::stats::CommandStats,
    /// More than one thread runs commands (`io-threads` > 1): commands hold `exec_gate`.
    pub multi_threaded: bool,
    /// EXEC holds it exclusively, every other command (and active expiry) shared, so a
    /// transaction runs with nothing in between when several threads serve clients.
    pub exec_gate: RwLock<()>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let shared = Arc::new_cyclic(|me| Shared::build(config, me.clone()));
        shared
            .keyspace
            .set_notifier(shared.notifier.clone() as Arc<dyn crate::store::Notify>);
        shared.apply_config();
        shared
    }

    fn build(config: Config, me: std::sync::Weak<Shared>) -> Shared {
        let (shutdown_tx, _) = watch::channel(false);
        let blocking = Arc::new(crate::store::blocking::BlockingRegistry::default());
        let aof = Arc::new(crate::persist::Aof::default());
        Shared {
            limits: OutputLimits::new(config.obuf),
            proto_max_bulk_len: AtomicU64::new(0),
            query_buffer_limit: AtomicU64::new(0),
            maxclients: AtomicU64::new(0),
            timeout: AtomicU64::new(0),
            stream_node_max_entries: AtomicU64::new(0),
            stream_node_max_bytes: AtomicU64::new(0),
            stream_idmp_duration: AtomicU64::new(0),
            stream_idmp_maxsize: AtomicU64::new(0),
            clients: ClientRegistry::default(),
            pubsub: PubSub::default(),
            keyspace: Keyspace::new(config.databases as usize, blocking.clone(), aof.clone()),
            aof,
            blocking,
            loading: std::sync::atomic::AtomicBool::new(false),
            loading_total: AtomicU64::new(0),
            loading_done: AtomicU64::new(0),
            loading_started: AtomicU64::new(0),
            fatal: std::sync::Mutex::new(None),
            stats: Stats::default(),
            run_id: make_run_id(),
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            tcp_port: AtomicU64::new(config.port as u64),
            config: RwLock::new(config),
            shutdown_tx,
            log_hook: std::sync::OnceLock::new(),
            notifier: Arc::new(KeyspaceNotifier {
                flags: std::sync::atomic::AtomicU16::new(0),
                shared: me,
            }),
            // What matters is whether tasks really run on several threads (the in-process
            // tests run servers on a multi-threaded runtime with io-threads 1).
            multi_threaded: tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread),
            exec_gate: RwLock::new(()),
            cmdstats: crate::command::stats::CommandStats::default(),
        }
    }

    pub fn config(&self) -> std::sync::RwLockReadGuard<'_, Config> {
        self.config.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config_mut(&self) -> std::sync::RwLockWriteGuard<'_, Config> {
        self.config.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Copy the settings read on hot paths into their atomics (after start and CONFIG SET).
    pub fn apply_config(&self) {
        let c = self.config();
        self.limits.set(c.obuf);
        self.proto_max_bulk_len
            .store(c.proto_max_bulk_len, Ordering::Relaxed);
        self.query_buffer_limit
            .store(c.client_query_buffer_limit, Ordering::Relaxed);
        self.maxclients.store(c.maxclients, Ordering::Relaxed);
        self.timeout.store(c.timeout, Ordering::Relaxed);
        self.stream_node_max_entries
            .store(c.stream_node_max_entries, Ordering::Relaxed);
        self.stream_node_max_bytes
            .store(c.stream_node_max_bytes, Ordering::Relaxed);
        if let Some(p) = crate::persist::Fsync::parse(&c.appendfsync) {
            self.aof.set_policy(p);
        }
        self.stream_idmp_duration
            .store(c.stream_idmp_duration, Ordering::Relaxed);
        self.stream_idmp_maxsize
            .store(c.stream_idmp_maxsize, Ordering::Relaxed);
        self.notifier
            .flags
            .store(c.notify_keyspace_events, Ordering::Relaxed);
        if let Some(hook) = self.log_hook.get() {
            if let Err(e) = hook(&c.loglevel) {
                tracing::warn!("cannot change the log level: {e}");
            }
        }
    }

    pub fn set_log_hook(&self, hook: LogHook) {
        let _ = self.log_hook.set(hook);
    }

    /// The node limits streams are appended with (stream-node-max-entries/-bytes).
    pub fn node_limits(&self) -> crate::store::stream::NodeLimits {
        crate::store::stream::NodeLimits {
            max_entries: self.stream_node_max_entries.load(Ordering::Relaxed),
            max_bytes: self.stream_node_max_bytes.load(Ordering::Relaxed),
        }
    }

    /// The idempotency limits a new stream starts with (stream-idmp-duration/-maxsize).
    pub fn idmp_limits(&self) -> (u64, u64) {
        (
            self.stream_idmp_duration.load(Ordering::Relaxed),
            self.stream_idmp_maxsize.load(Ordering::Relaxed),
        )
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    /// A shared hold on the execution gate for work outside a command that changes keys
    /// (active expiry, automatic compaction), when several threads serve clients.
    pub fn gate(&self) -> Option<std::sync::RwLockReadGuard<'_, ()>> {
        self.multi_threaded
            .then(|| self.exec_gate.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Whether a shutdown has been requested.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }

    /// Ask every listener and connection to stop.
    pub fn request_shutdown(&self) {
        self.shutdown_tx.send_replace(true);
        for client in self.clients.snapshot() {
            client.output.close();
        }
    }

    /// A failure that stops the server (a damaged AOF at start): recorded for the exit
    /// status, then a shutdown.
    pub fn fail(&self, why: String) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(why);
        }
        self.request_shutdown();
    }

    /// Why the server stopped, if it failed.
    pub fn failure(&self) -> Option<String> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}

fn make_run_id() -> String {
    use std::hash::{BuildHasher, RandomState};
    let mut id = String::with_capacity(40);
    for i in 0..3u64 {
        id.push_str(&format!("{:016x}", RandomState::new().hash_one(i)));
    }
    id.truncate(40);
    id
}

/// A running server.
pub struct ServerHandle {
    pub shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// The first bound address (tests connect here).
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn shutdown(&self) {
        self.shared.request_shutdown();
    }

    /// Wait until the server has stopped accepting (after a shutdown request), then write
    /// and fsync what the append-only file has left.
    pub async fn stopped(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        let aof = self.shared.aof.clone();
        let _ = tokio::task::spawn_blocking(move || aof.stop()).await;
    }
}

pub struct Server;

impl Server {
    /// Bind and start serving on the current tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<ServerHandle> {
        let bind = config.bind.clone();
        let port = config.port;
        let shared = Shared::new(config);
        let mut listeners = Vec::new();
        let mut chosen_port = port;
        for host in &bind {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let addr = format!(
                "{}:{}",
                if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                },
                chosen_port
            );
            let listener = TcpListener::bind(&addr).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("Could not create server TCP listening socket {addr}: {e}"),
                )
            })?;
            chosen_port = listener.local_addr()?.port();
            listeners.push(listener);
        }
        shared.tcp_port.store(chosen_port as u64, Ordering::Relaxed);
        let addrs = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect::<Vec<_>>();
        let (appendonly, aof_dir, names, truncated_ok, fsync) = {
            let c = shared.config();
            (
                c.appendonly,
                std::path::Path::new(&c.dir).join(&c.appenddirname),
                crate::persist::names(&c.appendfilename),
                c.aof_load_truncated,
                crate::persist::Fsync::parse(&c.appendfsync)
                    .unwrap_or(crate::persist::Fsync::EverySec),
            )
        };
        if appendonly {
            // Set before any listener runs: no command gets in ahead of the load, and no
            // key expires while the records are replayed.
            shared.loading.store(true, Ordering::Release);
            shared.keyspace.suspend_expiry(true);
        }
        let mut tasks: Vec<_> = listeners
            .into_iter()
            .map(|l| tokio::spawn(accept_loop(l, shared.clone())))
            .collect();
        tasks.push(tokio::spawn(sample_rates(shared.clone())));
        tasks.push(tokio::spawn(active_expire(shared.clone())));
        if appendonly {
            shared.aof.set_policy(fsync);
            // Replay on a blocking thread while the listeners answer -LOADING.
            let s = shared.clone();
            tokio::task::spawn_blocking(move || {
                // A panic in the loader (a bug reached by some file) must refuse the start
                // like any other load failure, not leave the server answering -LOADING.
                let load = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    crate::persist::load::load_all(&s, &aof_dir, &names, truncated_ok)
                }))
                .unwrap_or_else(|_| {
                    Err(format!(
                        "Loading the append only file in {} failed unexpectedly (see the panic above); `relay-server --check-aof {}/{}` checks the files",
                        aof_dir.display(),
                        aof_dir.display(),
                        names.manifest()
                    ))
                });
                let started = load.and_then(|loaded| {
                    s.aof.start(&aof_dir, &names, loaded).map_err(|e| {
                        format!(
                            "Can't open the append only file in {}: {e}",
                            aof_dir.display()
                        )
                    })
                });
                match started {
                    // Only a load that succeeded lets commands in; keys whose deadline
                    // passed while the server was down expire from now on (logged).
                    Ok(()) => {
                        s.keyspace.suspend_expiry(false);
                        s.loading.store(false, Ordering::Release);
                    }
                    // A failed one never does: `loading` stays set (every client keeps
                    // getting -LOADING) while the shutdown stops the listeners and closes
                    // the connections, whenever they started.
                    Err(e) => {
                        tracing::error!("{e}");
                        s.fail(e);
                    }
                }
            });
        }
        for a in &addrs {
            tracing::info!("Ready to accept connections tcp on {a}");
        }
        Ok(ServerHandle {
            shared,
            addrs,
            tasks,
        })
    }
}

/// Resolves once a shutdown has been requested — also when that happened before the
/// receiver was first polled (a load that fails before a loop's first turn): `changed()`
/// alone would miss it and leave the loop serving.
pub async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Sample the counters behind the instantaneous rates every 100 ms until shutdown.
async fn sample_rates(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wait_shutdown(&mut shutdown) => break,
        }
        let s = &shared.stats;
        let counters =
            [&s.commands, &s.net_input, &s.net_output].map(|c| c.load(Ordering::Relaxed));
        if let Ok(mut r) = s.rates.lock() {
            r.sample(Instant::now(), counters);
        }
    }
}

/// Active expiry: ten times a second (Redis's default hz), delete keys whose deadline has
/// passed even if nobody looks them up. A pass takes at most 200 keys from each shard and
/// runs again (after yielding to clients) while some shard had more, for at most 25 ms of
/// each 100 ms tick — Redis's 25% budget — so a mass expiry neither stalls clients nor
/// takes a core.
async fn active_expire(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = wait_shutdown(&mut shutdown) => break,
        }
        shared.keyspace.tick_lru_clock();
        {
            let _gate = shared.gate();
            auto_rewrite(&shared);
        }
        let started = Instant::now();
        loop {
            // Expiry changes keys: never in the middle of an EXEC.
            let more = {
                let _gate = shared.gate();
                shared.keyspace.active_expire(200)
            };
            if !more || started.elapsed() >= Duration::from_millis(25) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// auto-aof-rewrite-percentage / -min-size: compact the AOF once it has grown enough since
/// the last compaction (or the load).
fn auto_rewrite(shared: &Arc<Shared>) {
    let aof = &shared.aof;
    // A BGREWRITEAOF/BGSAVE that came inside EXEC starts now.
    if aof.stats.scheduled.load(Ordering::Relaxed) && !aof.stats.rewriting.load(Ordering::Relaxed) {
        aof.stats.scheduled.store(false, Ordering::Relaxed);
        if let Err(crate::persist::rewrite::NotStarted::Failed(e)) =
            crate::persist::rewrite::start(shared)
        {
            tracing::warn!("Scheduled AOF rewrite could not start: {e}");
        }
        return;
    }
    // After a failed compaction, automatic ones wait for a BGREWRITEAOF that succeeds
    // (retrying every tick would hammer a full or failing disk).
    if !aof.enabled()
        || aof.stats.rewriting.load(Ordering::Relaxed)
        || !aof.stats.last_rewrite_ok.load(Ordering::Relaxed)
    {
        return;
    }
    let (pct, min) = {
        let c = shared.config();
        (c.auto_aof_rewrite_percentage, c.auto_aof_rewrite_min_size)
    };
    let size = aof.stats.current_size.load(Ordering::Relaxed);
    let base = aof.stats.rewrite_base.load(Ordering::Relaxed).max(1);
    if pct == 0 || size < min || (size - base.min(size)) * 100 / base < pct {
        return;
    }
    tracing::info!(
        "Starting automatic rewriting of AOF on {}% growth",
        (size - base.min(size)) * 100 / base
    );
    if let Err(crate::persist::rewrite::NotStarted::Failed(e)) =
        crate::persist::rewrite::start(shared)
    {
        tracing::warn!("Automatic AOF rewrite could not start: {e}");
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = wait_shutdown(&mut shutdown) => break,
        };
        match accepted {
            Ok((stream, peer)) => accept(stream, peer, &shared),
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("Accepting client connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn accept(stream: TcpStream, peer: SocketAddr, shared: &Arc<Shared>) {
    if shared.shutting_down() {
        // Accepted in the same turn as the shutdown: its connection would outlive the
        // close of every client.
        return;
    }
    shared
        .stats
        .connections_received
        .fetch_add(1, Ordering::Relaxed);
    if shared.clients.len() as u64 >= shared.maxclients.load(Ordering::Relaxed) {
        shared
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "Error registering fd event for the new client: max number of clients reached ({peer})"
        );
        tokio::spawn(async move {
            let mut stream = stream;
            let _ = stream
                .write_all(b"-ERR max number of clients reached\r\n")
                .await;
            let _ = stream.shutdown().await;
        });
        return;
    }
    let _ = stream.set_nodelay(true);
    let keepalive = shared.config().tcp_keepalive;
    if keepalive > 0 {
        let ka = socket2::TcpKeepalive::new()
            .with_time(Duration::from_secs(keepalive))
            .with_interval(Duration::from_secs((keepalive / 3).max(1)));
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
    }
    let fd = fd_of(&stream);
    let id = shared.clients.next_id();
    let handle = Arc::new(ClientHandle::new(
        id,
        Some(peer),
        stream.local_addr().ok(),
        fd,
        shared.limits.now_ms(),
    ));
    shared.clients.insert(handle.clone());
    let (rd, wr) = stream.into_split();
    tokio::spawn(crate::connection::serve(rd, wr, handle, shared.clone()));
}

#[cfg(unix)]
fn fd_of(stream: &TcpStream) -> i64 {
    use std::os::fd::AsRawFd;
    stream.as_raw_fd() as i64
}

#[cfg(not(unix))]
fn fd_of(_: &TcpStream) -> i64 {
    -1
}
