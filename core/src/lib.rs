//! # chorus-core
//!
//! The whole chorus protocol as a pure, deterministic state machine: a sequencer
//! whose leader is chosen by the Bully algorithm (highest live id), made safe by
//! persisted terms, a majority sync before a new leader sequences, and quorum
//! commit. It contains no networking code, reads no clock and no OS randomness:
//! time is an argument of every call and the only randomness (timer jitter) comes
//! from a seeded ChaCha8 stream per node. The same code runs in the simulator
//! (`chorus-sim`) and the real runtime (`chorus-runtime-mio`).
//!
//! ```text
//! driver:  loop { out.clear(); node.step(now, input, &mut out); execute(out in order);
//!                 node.step(now, Input::Flush, ..); wait until node.next_deadline() }
//! ```
//!
//! Module map: `node` (state, dispatcher, timers), `election` (Bully + sync),
//! `failure` (heartbeats, step-down), `replication` (sequencing, quorum commit,
//! delivery), `catchup`, `membership`, `client`; `log` (metadata, the bounded
//! entry cache and the driver's `ColdLog`), `dedup` (msg_id fingerprints),
//! `numbering` (client-visible seq_no and room_seq, the per-room index);
//! `snapshot` (the folded state at a committed entry: compaction, restarts
//! and InstallSnapshot);
//! `record` (durable log format and `replay`), `recording` (the format of
//! `chorus node --record`), `gate` (what a driver holds back until it is
//! durable), `wire` (messages), `io`
//! (inputs, actions and their contract).
#![forbid(unsafe_code)]

pub mod accounts;
mod catchup;
mod client;
pub mod client_wire;
pub mod codec;
pub mod config;
pub mod crc;
mod dedup;
mod election;
pub mod entry;
mod failure;
pub mod gate;
mod gossip;
mod install;
pub mod io;
pub mod log;
mod membership;
pub mod node;
pub mod numbering;
mod pending;
pub mod presence;
pub mod record;
pub mod recording;
mod replication;
pub mod rooms;
pub mod snapshot;
pub mod types;
pub mod wire;

pub use accounts::{Account, Accounts};
pub use config::{Config, InjectedBug};
pub use entry::{Body, Chat, Entry, Event};
pub use io::{Action, Input, Role, Status};
pub use log::{ColdLog, Log};
pub use node::Node;
pub use numbering::{Numbering, Numbers};
pub use record::{replay, EntrySink, Record, Recovered, ReplayError, Replayed};
pub use snapshot::{Snapshot, SnapshotImage};
pub use types::{ClientId, Instant, NodeId, PeerInfo, Seq, Term};
pub use wire::{ClientReply, ClientRequest, ErrorCode, PeerMsg};
