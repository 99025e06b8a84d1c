//! One task per client connection: it owns the socket, the read buffer, the parser and the
//! session, and is the only writer to its socket.
//!
//! The loop waits on four things at once: input (parsed and executed in order, every complete
//! request of a read before the next read), room to write (queued output goes out with
//! vectored writes, many replies per syscall), a wake-up from another task (pub/sub output or a
//! close), and the idle timeout. Replies are appended to the shared output buffer as each
//! command finishes, so they interleave correctly with deliveries pushed by publishers. The
//! read buffer is released whenever it is drained, so an idle subscriber costs a few hundred
//! bytes of buffers, not tens of kilobytes.

pub mod client;
pub mod codec;
pub mod output;

use crate::command::{self, Ctx};
use crate::config::ClientClass;
use crate::reply::Reply;
use crate::server::Shared;
use bytes::{Buf, Bytes, BytesMut};
use client::ClientHandle;
use codec::{ParserLimits, RequestParser};
use std::collections::{HashSet, VecDeque};
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Smallest and largest read the connection asks the socket for.
const READ_MIN: usize = 4096;
const READ_MAX: usize = 16 * 1024;
const MAX_IOV: usize = 64;

/// Per-client state owned by the connection task.
pub struct Session {
    pub handle: Arc<ClientHandle>,
    pub resp: u8,
    pub db: usize,
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    /// The same patterns in the order they were subscribed (PUNSUBSCRIBE without arguments
    /// answers in that order, as Redis does).
    pub pattern_order: Vec<Bytes>,
    pub shard_channels: HashSet<Bytes>,
    /// CLIENT REPLY OFF.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP was the last command: suppress the next reply.
    pub skip_next: bool,
    /// The reply of the command being executed is suppressed (by SKIP); CLIENT REPLY ON
    /// clears it.
    pub skip_current: bool,
    /// Close once the queued output is written (QUIT, protocol errors, CLIENT KILL of self).
    pub close_after_reply: bool,
    /// Waiting for data on keys (XREAD BLOCK).
    pub blocked: Option<Blocked>,
    /// The append-only file's replay at start (exempt from -LOADING).
    pub replaying: bool,
    /// Under `appendfsync always`: output waits until the AOF is durable up to here.
    pub durable_wait: u64,
    /// MULTI was sent: commands are queued until EXEC or DISCARD.
    pub multi: Option<crate::command::transactions::Multi>,
    /// EXEC is running the queue (blocking commands do not block).
    pub in_exec: bool,
    /// The (database, key) pairs this client WATCHes (its watcher is `handle.watcher`).
    pub watched: Vec<(usize, Bytes)>,
    /// Where the next command's time starts (INFO commandstats `usec`): the end of the
    /// previous command of the batch, or the batch's start.
    pub tick: std::time::Instant,
}

/// A client waiting for data: the command to re-run when a key it waits on changes.
pub struct Blocked {
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// `None` waits forever (BLOCK 0).
    pub deadline: Option<std::time::Instant>,
    /// Re-run the command at this time even if no key changed (XREADGROUP … CLAIM: a pending
    /// entry becomes idle enough to claim).
    pub recheck: Option<std::time::Instant>,
    pub retry: Vec<Bytes>,
}

impl Session {
    /// Block on `keys` until `timeout` (None = forever); `retry` is re-run on every wake-up.
    /// Re-blocking from a retry keeps the original deadline.
    pub fn block_on(
        &mut self,
        shared: &Shared,
        keys: Vec<Bytes>,
        timeout: Option<std::time::Duration>,
        retry: Vec<Bytes>,
    ) {
        let first = self.blocked.is_none();
        let deadline = match &self.blocked {
            Some(b) => b.deadline,
            None => timeout.map(|t| std::time::Instant::now() + t),
        };
        shared.blocking.register(self.db, &keys, &self.handle);
        self.handle.blocked.store(true, Ordering::Relaxed);
        self.blocked = Some(Blocked {
            db: self.db,
            keys,
            deadline,
            recheck: None,
            retry,
        });
        // With several threads a write can land between the command's look at its keys
        // and this registration, and nobody would wake us for it: look once more now that
        // we are registered (a recheck, which does not pass the turn to other waiters).
        // With one thread nothing runs in between.
        if first && shared.multi_threaded {
            self.recheck_at(std::time::Instant::now());
        }
    }

    /// Also re-run the blocked command at `at` (before its deadline, if it has one).
    pub fn recheck_at(&mut self, at: std::time::Instant) {
        if let Some(b) = &mut self.blocked {
            if b.deadline.is_none_or(|d| at < d) {
                b.recheck = Some(b.recheck.map_or(at, |r| r.min(at)));
            }
        }
    }

    /// Stop waiting (data served, timeout, CLIENT UNBLOCK or disconnect); the next waiter on
    /// the same keys gets its turn.
    pub fn unblock(&mut self, shared: &Shared) {
        if let Some(b) = self.blocked.take() {
            shared.blocking.pass_on(b.db, &b.keys, self.handle.id);
            shared.blocking.unregister(b.db, &b.keys, self.handle.id);
        }
        self.handle.blocked.store(false, Ordering::Relaxed);
        self.handle.unblock.store(0, Ordering::Relaxed);
    }
}

impl Session {
    pub fn new(handle: Arc<ClientHandle>) -> Self {
        Session {
            handle,
            resp: 2,
            db: 0,
            channels: HashSet::new(),
            patterns: HashSet::new(),
            pattern_order: Vec::new(),
            shard_channels: HashSet::new(),
            reply_off: false,
            skip_next: false,
            skip_current: false,
            close_after_reply: false,
            blocked: None,
            replaying: false,
            durable_wait: 0,
            multi: None,
            in_exec: false,
            watched: Vec::new(),
            tick: std::time::Instant::now(),
        }
    }

    /// Output-limit class: pubsub while subscribed to anything.
    pub fn class(&self) -> ClientClass {
        if self.handle.is_pubsub() {
            ClientClass::Pubsub
        } else {
            ClientClass::Normal
        }
    }

    /// Update the counters other tasks read (CLIENT LIST sub/psub/ssub, output class).
    pub fn publish_subscription_counts(&self) {
        let h = &self.handle;
        h.subs.store(self.channels.len() as u32, Ordering::Relaxed);
        h.psubs.store(self.patterns.len() as u32, Ordering::Relaxed);
        h.ssubs
            .store(self.shard_channels.len() as u32, Ordering::Relaxed);
    }
}

enum Event {
    Wake,
    Wrote(std::io::Result<usize>),
    Read(std::io::Result<usize>),
    IdleTimeout,
    BlockTimeout,
}

/// A blocked client was woken (or its timer fired): serve it if it can be served now.
/// `signalled`: a key it waits on changed, and if it still cannot be served the next waiter
/// gets the turn; a recheck (its own timer) wakes nobody else.
fn resume_blocked(shared: &Arc<Shared>, session: &mut Session, timed_out: bool, signalled: bool) {
    let Some(blocked) = &session.blocked else {
        return;
    };
    let now = shared.limits.now_ms();
    let reply = match session.handle.unblock.load(Ordering::Relaxed) {
        1 => Reply::NullArray,
        2 => Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
        _ if timed_out => Reply::NullArray,
        _ => {
            let retry = blocked.retry.clone();
            let logged_before = shared.aof.appended();
            session.tick = std::time::Instant::now();
            let reply = command::dispatch(&mut Ctx { shared, session }, &retry);
            // A served group read changed the PEL: under always, its reply waits for that.
            let logged = shared.aof.appended();
            if logged > logged_before
                && shared.aof.enabled()
                && shared.aof.policy() == crate::persist::Fsync::Always
            {
                session.durable_wait = session.durable_wait.max(logged);
            }
            if matches!(reply, Reply::None) {
                // Still waiting: let the next waiter look.
                if let (Some(b), true) = (&session.blocked, signalled) {
                    shared.blocking.pass_on(b.db, &b.keys, session.handle.id);
                }
                return;
            }
            reply
        }
    };
    session.unblock(shared);
    send_at(shared, session, &reply, now);
}

/// Point `iov` at the first `MAX_IOV` queued chunks; returns how many.
fn fill_iov<'a>(inflight: &'a VecDeque<Bytes>, iov: &mut [IoSlice<'a>; MAX_IOV]) -> usize {
    inflight
        .iter()
        .zip(iov.iter_mut())
        .map(|(b, s)| *s = IoSlice::new(b))
        .count()
}

/// One non-blocking vectored write attempt; `None` if the socket is not writable now.
fn write_now<W: AsyncWrite + Unpin>(
    wr: &mut W,
    inflight: &VecDeque<Bytes>,
) -> Option<std::io::Result<usize>> {
    let mut iov = [IoSlice::new(&[]); MAX_IOV];
    let n_iov = fill_iov(inflight, &mut iov);
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(wr).poll_write_vectored(&mut cx, &iov[..n_iov]) {
        std::task::Poll::Ready(r) => Some(r),
        std::task::Poll::Pending => None,
    }
}

/// `n` bytes of `inflight` reached the socket.
fn consumed(shared: &Shared, handle: &ClientHandle, inflight: &mut VecDeque<Bytes>, mut n: usize) {
    handle.output.written(n);
    shared
        .stats
        .net_output
        .fetch_add(n as u64, Ordering::Relaxed);
    while n > 0 {
        let Some(front) = inflight.front_mut() else {
            break;
        };
        if front.len() <= n {
            n -= front.len();
            inflight.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
}

/// Serve one client until it disconnects, is killed, or the server shuts down.
pub async fn serve<R, W>(mut rd: R, mut wr: W, handle: Arc<ClientHandle>, shared: Arc<Shared>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut session = Session::new(handle.clone());
    let mut rbuf = BytesMut::new();
    let mut parser = RequestParser::default();
    let mut inflight: VecDeque<Bytes> = VecDeque::new();
    let mut read_hint = READ_MIN;
    // Both stay registered across iterations: no re-registration cost per request.
    let mut wake = std::pin::pin!(handle.output.wake.notified());
    let mut idle = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let mut idle_deadline = None;
    let mut block_timer = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    let mut block_deadline = None;

    loop {
        if handle.output.is_closing() {
            break;
        }
        if session.durable_wait > 0 {
            // appendfsync always: nothing leaves before this client's writes are on disk.
            if shared.aof.durable() < session.durable_wait {
                shared.aof.wait_durable(session.durable_wait).await;
            }
            session.durable_wait = 0;
        }
        handle.output.take(&mut inflight);
        // Most replies fit in the socket buffer: write them now instead of in another turn.
        while !inflight.is_empty() {
            match write_now(&mut wr, &inflight) {
                Some(Ok(n)) if n > 0 => consumed(&shared, &handle, &mut inflight, n),
                Some(_) => {
                    handle.output.close();
                    break;
                }
                None => break,
            }
        }
        if handle.output.is_closing() || (inflight.is_empty() && session.close_after_reply) {
            break;
        }
        let reading = !session.close_after_reply;
        if reading {
            let big = parser.wanted(&rbuf);
            let spare = rbuf.capacity() - rbuf.len();
            if spare < READ_MIN.min(read_hint) || spare < big {
                rbuf.reserve(big.max(read_hint));
            }
        }
        let idle_secs = shared.timeout.load(Ordering::Relaxed);
        let idle_applies = idle_secs > 0 && !handle.is_pubsub() && session.blocked.is_none();
        let block_until = session
            .blocked
            .as_ref()
            .and_then(|b| match (b.deadline, b.recheck) {
                (Some(d), Some(r)) => Some(d.min(r)),
                (d, r) => d.or(r),
            });
        if let Some(at) = block_until {
            if block_deadline != Some(at) {
                block_timer
                    .as_mut()
                    .reset(tokio::time::Instant::from_std(at));
                block_deadline = Some(at);
            }
        }
        if idle_applies {
            let last = handle.last_interaction_ms.load(Ordering::Relaxed);
            let at =
                tokio::time::Instant::from_std(shared.limits.instant_at(last + idle_secs * 1000));
            if idle_deadline != Some(at) {
                idle.as_mut().reset(at);
                idle_deadline = Some(at);
            }
        }

        let event = {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n_iov = fill_iov(&inflight, &mut iov);
            tokio::select! {
                biased;
                _ = &mut wake => Event::Wake,
                r = wr.write_vectored(&iov[..n_iov]), if n_iov > 0 => Event::Wrote(r),
                r = rd.read_buf(&mut rbuf), if reading => Event::Read(r),
                _ = &mut idle, if idle_applies => Event::IdleTimeout,
                _ = &mut block_timer, if block_until.is_some() => Event::BlockTimeout,
            }
        };

        match event {
            Event::Wake => {
                wake.set(handle.output.wake.notified());
                if session.blocked.is_some() {
                    // Served at once, in the order the key's waiters were woken (FIFO).
                    resume_blocked(&shared, &mut session, false, true);
                    if session.blocked.is_none() && !rbuf.is_empty() {
                        process_input(&shared, &mut session, &mut parser, &mut rbuf);
                    }
                } else {
                    // Let the publishers that are ready run first: their messages then leave
                    // in this client's next write instead of one write each.
                    tokio::task::yield_now().await;
                }
            }
            Event::BlockTimeout => {
                // A recheck re-runs the command; only the deadline times it out.
                let timed_out = session
                    .blocked
                    .as_ref()
                    .is_some_and(|b| b.deadline.is_some_and(|d| std::time::Instant::now() >= d));
                if let Some(b) = &mut session.blocked {
                    b.recheck = None;
                }
                block_deadline = None;
                resume_blocked(&shared, &mut session, timed_out, false);
                if !rbuf.is_empty() {
                    process_input(&shared, &mut session, &mut parser, &mut rbuf);
                }
            }
            Event::IdleTimeout => {
                tracing::debug!("Closing idle client id={}", handle.id);
                break;
            }
            Event::Wrote(Ok(0)) | Event::Wrote(Err(_)) => break,
            Event::Wrote(Ok(n)) => consumed(&shared, &handle, &mut inflight, n),
            Event::Read(Ok(0)) | Event::Read(Err(_)) => break,
            Event::Read(Ok(n)) => {
                shared
                    .stats
                    .net_input
                    .fetch_add(n as u64, Ordering::Relaxed);
                read_hint = if n >= read_hint {
                    (read_hint * 2).min(READ_MAX)
                } else {
                    READ_MIN.max(n)
                };
                if session.blocked.is_some() {
                    // A blocked client's input waits (as in Redis), within the query limit.
                    if rbuf.len() as u64 > shared.query_buffer_limit.load(Ordering::Relaxed) {
                        handle.output.close();
                    }
                } else {
                    process_input(&shared, &mut session, &mut parser, &mut rbuf);
                }
                if rbuf.is_empty() && parser.held() == 0 && rbuf.capacity() > READ_MAX {
                    // Release a buffer a large request grew; a small one is kept for the next
                    // request instead of being allocated anew every time.
                    rbuf = BytesMut::new();
                }
                handle
                    .qbuf
                    .store(rbuf.len() + parser.held(), Ordering::Relaxed);
                handle
                    .qbuf_free
                    .store(rbuf.capacity() - rbuf.len(), Ordering::Relaxed);
            }
        }
    }

    // Drain what can still be written cheaply (QUIT's +OK, a protocol error) before closing.
    if !handle.output.is_closing() {
        handle.output.take(&mut inflight);
        for chunk in inflight.drain(..) {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = wr.flush().await;
    }
    let _ = wr.shutdown().await;
    disconnect(&shared, &mut session);
}

/// Execute every complete request in `rbuf`.
fn process_input(
    shared: &Arc<Shared>,
    session: &mut Session,
    parser: &mut RequestParser,
    rbuf: &mut BytesMut,
) {
    let limits = ParserLimits {
        max_bulk_len: shared.proto_max_bulk_len.load(Ordering::Relaxed),
        query_buffer_limit: shared.query_buffer_limit.load(Ordering::Relaxed),
    };
    // One clock read per batch of requests: they arrived together.
    let now = shared.limits.now_ms();
    // Under appendfsync always, the replies to a batch that wrote wait for its records to
    // be on disk (the whole batch shares the fsync).
    let always = shared.aof.enabled() && shared.aof.policy() == crate::persist::Fsync::Always;
    let logged_before = if always { shared.aof.appended() } else { 0 };
    session
        .handle
        .last_interaction_ms
        .store(now, Ordering::Relaxed);
    session.tick = std::time::Instant::now();
    while !session.close_after_reply
        && !session.handle.output.is_closing()
        && session.blocked.is_none()
    {
        let before = rbuf.len() + parser.held();
        match parser.parse(rbuf, &limits) {
            Ok(Some(args)) => {
                if args.is_empty() {
                    continue;
                }
                session.skip_current = std::mem::take(&mut session.skip_next);
                // While the command runs, CLIENT LIST shows it as Redis does: still in the
                // query buffer (`qbuf`), its arguments in `argv-mem`.
                let h = &session.handle;
                h.qbuf.store(before, Ordering::Relaxed);
                h.argv_mem
                    .store(args.iter().map(|a| a.len()).sum(), Ordering::Relaxed);
                let reply = command::dispatch(&mut Ctx { shared, session }, &args);
                let h = &session.handle;
                h.qbuf.store(rbuf.len() + parser.held(), Ordering::Relaxed);
                h.argv_mem.store(0, Ordering::Relaxed);
                // Pub/sub confirmations are pushes: CLIENT REPLY OFF/SKIP do not silence them.
                if !(session.reply_off || session.skip_current) || reply.is_push() {
                    send_at(shared, session, &reply, now);
                }
            }
            Ok(None) => break,
            Err(e) => {
                match e.reply_text() {
                    Some(text) => {
                        tracing::info!(
                            "Protocol error ({text}) from client id={} addr={}",
                            session.handle.id,
                            session.handle.addr
                        );
                        send_at(shared, session, &Reply::Error(text.into()), now);
                    }
                    None => {
                        shared
                            .stats
                            .query_buffer_limit_disconnections
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(
                            "Closing client that reached max query buffer length: id={} addr={}",
                            session.handle.id,
                            session.handle.addr
                        );
                        session.handle.output.close();
                    }
                }
                session.close_after_reply = true;
                rbuf.clear();
            }
        }
    }
    if always {
        let logged = shared.aof.appended();
        if logged > logged_before {
            session.durable_wait = session.durable_wait.max(logged);
        }
    }
}

/// Queue one reply for this client, enforcing its output limit (`now_ms` on the server clock).
fn send_at(shared: &Shared, session: &Session, reply: &Reply, now_ms: u64) {
    if matches!(reply, Reply::None) {
        return;
    }
    let limit = shared.limits.get(session.class());
    let check =
        session
            .handle
            .output
            .push_own(|out| reply.encode(session.resp, out), limit, now_ms);
    shared.limits.enforce(&session.handle, check);
}

/// Forget a departed client everywhere.
fn disconnect(shared: &Arc<Shared>, session: &mut Session) {
    session.unblock(shared);
    crate::command::transactions::unwatch_all(&mut Ctx { shared, session });
    let id = session.handle.id;
    for ch in session.channels.drain() {
        shared
            .pubsub
            .unsubscribe(crate::pubsub::Kind::Channel, id, &ch);
    }
    for ch in session.shard_channels.drain() {
        shared
            .pubsub
            .unsubscribe(crate::pubsub::Kind::Shard, id, &ch);
    }
    session.pattern_order.clear();
    for p in session.patterns.drain() {
        shared.pubsub.punsubscribe(id, &p);
    }
    session.publish_subscription_counts();
    shared.clients.remove(id);
    tracing::debug!(
        "Client closed connection id={} addr={}",
        id,
        session.handle.addr
    );
}
