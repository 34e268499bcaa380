//! # chorus-runtime-mio
//!
//! Binds the sans-IO `chorus-core` to the real world: one single-threaded mio
//! event loop per node, one TCP port serving peers and clients
//! (newline-delimited JSON, bounded lines), the durable log with group commit,
//! and the clock. The core decides; this crate only performs, in the order of
//! the action contract (`effects.rs`).
//!
//! Module map: `runtime` (the loop), `net` (sockets, framing dispatch),
//! `links` (peer dialing and the HMAC handshake of `auth`), `clients` (the
//! client protocol), `streams` (history and subscriptions), `effects` (group
//! commit), `syncer` (the fsync thread), `storage` (the log file, retention),
//! `segments` (its segment files and indexes), `snapshots` (the snapshot
//! files), `cold`
//! (reading evicted entries back from it), `framing` (bounded line I/O), `peers`
//! (backoff), `recorder` (`--record`: inputs for replay), `observe` (logs),
//! `http` (the HTTP port: /metrics, /healthz, /readyz, /status), `metrics`
//! (the counters it exports), `tls` (certificates into rustls configs),
//! `transport` (plain TCP, TLS or a WebSocket under the line framing), `ws`
//! (a WebSocket's text frames as lines, for `/ws`), `limits`
//! (per-connection CHAT rate, connections per source address), `irc` (the IRC
//! gateway: an adapter onto the session layer of `clients`/`sessions`/`streams`),
//! `clock`,
//! `options`, `error`.
#![forbid(unsafe_code)]

pub mod auth;
mod clients;
pub mod clock;
mod cold;
mod conn;
mod effects;
mod error;
pub mod framing;
mod http;
mod irc;
mod limits;
mod links;
pub mod login;
mod metrics;
mod net;
mod observe;
mod options;
pub mod password;
mod peers;
pub mod recorder;
mod recover;
pub mod rooms;
mod runtime;
pub mod segments;
mod sessions;
pub mod snapshots;
pub mod storage;
mod streams;
mod syncer;
pub mod tls;
pub mod transport;
pub mod ws;

pub use clients::{HISTORY_LIMIT_MAX, MAX_ID_BYTES};
pub use error::RuntimeError;
pub use options::{
    unsafe_ack_from_env, unsafe_skip_fsync_from_env, AccountOptions, HttpOptions, IrcOptions,
    Limits, NodeOptions, Registration, DEFAULT_CLUSTER_SECRET, UNSAFE_ACK_ENV,
    UNSAFE_SKIP_FSYNC_ENV,
};
pub use recorder::RecordOptions;
pub use runtime::{ReloadHandle, Runtime, ShutdownHandle};
pub use tls::{TlsContext, TlsPaths};

/// Runs one node until a fatal error.
pub fn run_node(opts: NodeOptions) -> Result<(), RuntimeError> {
    Runtime::start(opts)?.run()
}
