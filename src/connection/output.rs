//! Per-client output buffer and `client-output-buffer-limit` enforcement.
//!
//! Everything a client is sent — its own replies and pub/sub deliveries pushed by other tasks —
//! goes through one ordered queue, so a subscribe confirmation always precedes the messages it
//! enables. Fan-out frames are encoded once per publish; a large one is shared (`Bytes`,
//! reference-counted per receiver), a small one is copied into the receiver's tail buffer, where
//! the client's own replies go too, since copying 50 bytes costs less than a reference and an
//! iovec of its own. `pending` counts every
//! byte queued or taken for writing and not yet written: that is the client's `omem`, the
//! number the limits are checked against. A publisher never waits: when a push takes a client
//! over its hard limit, or over its soft limit for longer than soft-seconds, the client is
//! marked closing, its queue is freed at once, and its task is woken to drop the connection.

use super::client::ClientHandle;
use crate::config::{ClientClass, ObufLimit};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// Frames up to this size are copied into the receiver's buffer; larger ones are shared.
pub const COPY_FRAME_MAX: usize = 512;

/// Pending output not counted against the limits (Redis's PROTO_REPLY_CHUNK_BYTES buffer).
pub const STATIC_ALLOWANCE: u64 = 16 * 1024;

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    tail: BytesMut,
}

#[derive(Default)]
pub struct OutputBuffer {
    queue: Mutex<Queue>,
    pending: AtomicUsize,
    /// Milliseconds (server clock) since the client went over its soft limit; 0 = under it.
    soft_since_ms: AtomicU64,
    closing: AtomicBool,
    /// Wakes the owning connection task: new output from another task, or a close.
    pub wake: Notify,
}

/// What a push found about the client's limits.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum LimitCheck {
    Within,
    /// Over the hard limit, or over the soft limit for soft-seconds: the client must go.
    Exceeded,
}

impl OutputBuffer {
    /// Bytes queued or in flight (CLIENT LIST `omem`).
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Frames queued (CLIENT LIST `oll`).
    pub fn queued_frames(&self) -> usize {
        self.queue.lock().map(|q| q.chunks.len()).unwrap_or(0)
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Append a pre-encoded frame from another task and wake the owner.
    pub fn push_frame(&self, frame: Bytes, limit: ObufLimit, now_ms: u64) -> LimitCheck {
        if self.is_closing() {
            return LimitCheck::Within;
        }
        let len = frame.len();
        {
            let Ok(mut q) = self.queue.lock() else {
                return LimitCheck::Within;
            };
            if len <= COPY_FRAME_MAX {
                // A small frame is cheaper copied than shared: it joins the tail, so a backlog
                // of small messages leaves in one contiguous write, not one iovec each.
                q.tail.extend_from_slice(&frame);
            } else {
                if !q.tail.is_empty() {
                    let tail = q.tail.split().freeze();
                    q.chunks.push_back(tail);
                }
                q.chunks.push_back(frame);
            }
        }
        let total = self.pending.fetch_add(len, Ordering::AcqRel) + len;
        self.wake.notify_one();
        self.check(total, limit, now_ms)
    }

    /// Append the owner's own encoded replies.
    pub fn push_own(
        &self,
        encode: impl FnOnce(&mut BytesMut),
        limit: ObufLimit,
        now_ms: u64,
    ) -> LimitCheck {
        if self.is_closing() {
            return LimitCheck::Within;
        }
        let added = {
            let Ok(mut q) = self.queue.lock() else {
                return LimitCheck::Within;
            };
            let before = q.tail.len();
            encode(&mut q.tail);
            q.tail.len() - before
        };
        if added == 0 {
            return LimitCheck::Within;
        }
        let total = self.pending.fetch_add(added, Ordering::AcqRel) + added;
        self.check(total, limit, now_ms)
    }

    fn check(&self, total: usize, limit: ObufLimit, now_ms: u64) -> LimitCheck {
        // Redis counts only output beyond a client's 16 KiB static reply buffer; so does Relay,
        // so that e.g. "normal 1 1 1" does not close a client on its first small reply.
        let total = (total as u64).saturating_sub(STATIC_ALLOWANCE);
        if limit.hard > 0 && total >= limit.hard {
            return LimitCheck::Exceeded;
        }
        if limit.soft > 0 && total >= limit.soft {
            let since = self.soft_since_ms.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_since_ms.store(now_ms.max(1), Ordering::Relaxed);
            } else if now_ms.saturating_sub(since) > limit.soft_seconds * 1000 {
                return LimitCheck::Exceeded;
            }
        } else {
            self.soft_since_ms.store(0, Ordering::Relaxed);
        }
        LimitCheck::Within
    }

    /// Move everything queued into `into` (the owner's in-flight list). Cheap when empty.
    pub fn take(&self, into: &mut VecDeque<Bytes>) {
        if self.pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        into.append(&mut q.chunks);
        if !q.tail.is_empty() {
            into.push_back(q.tail.split().freeze());
        }
        if q.tail.capacity() > 64 * 1024 {
            q.tail = BytesMut::new();
        }
    }

    /// The owner wrote `n` bytes to the socket.
    pub fn written(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::AcqRel);
        if self.pending.load(Ordering::Relaxed) == 0 {
            self.soft_since_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Mark the client closing and free its queue. Returns true for the caller that closed it.
    pub fn close(&self) -> bool {
        let first = !self.closing.swap(true, Ordering::AcqRel);
        if first {
            if let Ok(mut q) = self.queue.lock() {
                let freed: usize = q.chunks.iter().map(Bytes::len).sum::<usize>() + q.tail.len();
                q.chunks = VecDeque::new();
                q.tail = BytesMut::new();
                self.pending.fetch_sub(freed, Ordering::AcqRel);
            }
        }
        self.wake.notify_one();
        first
    }
}

/// The live `client-output-buffer-limit` settings and the enforcement every push goes through.
pub struct OutputLimits {
    classes: [[AtomicU64; 3]; 3],
    /// Clients closed for exceeding a limit (INFO `client_output_buffer_limit_disconnections`).
    pub disconnections: AtomicU64,
    epoch: std::time::Instant,
}

impl OutputLimits {
    pub fn new(limits: [ObufLimit; 3]) -> Self {
        let me = OutputLimits {
            classes: Default::default(),
            disconnections: AtomicU64::new(0),
            epoch: std::time::Instant::now(),
        };
        me.set(limits);
        me
    }

    pub fn set(&self, limits: [ObufLimit; 3]) {
        for (slot, l) in self.classes.iter().zip(limits) {
            slot[0].store(l.hard, Ordering::Relaxed);
            slot[1].store(l.soft, Ordering::Relaxed);
            slot[2].store(l.soft_seconds, Ordering::Relaxed);
        }
    }

    pub fn get(&self, class: ClientClass) -> ObufLimit {
        let slot = &self.classes[class as usize];
        ObufLimit {
            hard: slot[0].load(Ordering::Relaxed),
            soft: slot[1].load(Ordering::Relaxed),
            soft_seconds: slot[2].load(Ordering::Relaxed),
        }
    }

    /// Milliseconds since the server started (never 0 after the first millisecond).
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The `Instant` of a server-clock millisecond.
    pub fn instant_at(&self, ms: u64) -> std::time::Instant {
        self.epoch + std::time::Duration::from_millis(ms)
    }

    /// Close `client` if a push found it over its limit; logs and counts the first close.
    pub fn enforce(&self, client: &ClientHandle, check: LimitCheck) {
        if check == LimitCheck::Exceeded && client.output.close() {
            self.disconnections.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "Client id={} addr={} name={} closed for overcoming of output buffer limits.",
                client.id,
                client.addr,
                client.name()
            );
        }
    }

    /// Deliver a shared frame to `client`, enforcing its class's limit.
    pub fn deliver(&self, client: &ClientHandle, frame: Bytes, now_ms: u64) {
        let class = if client.is_pubsub() {
            ClientClass::Pubsub
        } else {
            ClientClass::Normal
        };
        let check = client.output.push_frame(frame, self.get(class), now_ms);
        self.enforce(client, check);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_limit_is_exceeded_at_the_push_that_crosses_it() {
        let ob = OutputBuffer::default();
        let limit = ObufLimit {
            hard: 100,
            soft: 0,
            soft_seconds: 0,
        };
        let allowance = STATIC_ALLOWANCE as usize;
        assert_eq!(
            ob.push_frame(Bytes::from(vec![0; allowance + 60]), limit, 1),
            LimitCheck::Within
        );
        assert_eq!(
            ob.push_frame(Bytes::from(vec![0; 60]), limit, 1),
            LimitCheck::Exceeded
        );
        assert!(ob.close());
        assert_eq!(ob.pending(), 0, "closing frees the queue");
        assert!(!ob.close(), "only the first close reports");
    }

    #[test]
    fn soft_limit_needs_to_last_longer_than_soft_seconds() {
        let ob = OutputBuffer::default();
        let limit = ObufLimit {
            hard: 0,
            soft: 10,
            soft_seconds: 2,
        };
        let allowance = STATIC_ALLOWANCE as usize;
        assert_eq!(
            ob.push_frame(Bytes::from(vec![0; allowance + 20]), limit, 1000),
            LimitCheck::Within
        );
        assert_eq!(
            ob.push_frame(Bytes::from(vec![0; 1]), limit, 2500),
            LimitCheck::Within
        );
        assert_eq!(
            ob.push_frame(Bytes::from(vec![0; 1]), limit, 3001),
            LimitCheck::Exceeded
        );
    }

    #[test]
    fn order_of_own_replies_and_frames_is_kept() {
        let ob = OutputBuffer::default();
        let l = ObufLimit::default();
        ob.push_own(|o| o.extend_from_slice(b"+OK\r\n"), l, 0);
        ob.push_frame(Bytes::from_static(b"F"), l, 0);
        ob.push_own(|o| o.extend_from_slice(b":1\r\n"), l, 0);
        let mut out = VecDeque::new();
        ob.take(&mut out);
        let joined: Vec<u8> = out.iter().flat_map(|b| b.iter().copied()).collect();
        assert_eq!(joined, b"+OK\r\nF:1\r\n");
    }
}
