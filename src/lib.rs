//! Relay: a message broker that speaks the Redis protocol (RESP2 and RESP3).
//!
//! `Server::start(config)` is the entry point used by the binary and by the tests. The data
//! flow of one request: socket → connection task → RESP decode (`connection::codec`) →
//! dispatch through the command table (`command`) → handler → pub/sub registry (`pubsub`) or
//! keyspace (`store`) → `Reply` → encode for the client's protocol → output buffer with limits
//! (`connection::output`) → socket. See docs/architecture.md.

pub mod command;
pub mod config;
pub mod connection;
pub mod error;
pub mod events;
pub mod glob;
pub mod persist;
pub mod pubsub;
pub mod reply;
pub mod resp;
pub mod server;
pub mod store;

pub use config::Config;

// jemalloc, as in Redis: compact for many small allocations, and its statistics give INFO
// used_memory. Declared in the library so tests and benchmarks measure the same allocator.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
pub use server::{Server, ServerHandle};

/// The Redis version Relay reports (HELLO, INFO): the Redis release whose behaviour it follows.
pub const REDIS_COMPAT_VERSION: &str = "7.2.4";
/// Relay's own version (INFO server `relay_version`).
pub const RELAY_VERSION: &str = env!("CARGO_PKG_VERSION");
