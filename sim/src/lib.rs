//! # chorus-sim
//!
//! A deterministic simulator for the chorus core: the real `chorus_core::Node`
//! state machines, driven in virtual time over a simulated network and
//! simulated disks, with every effect checked against a canonical committed
//! history. A run is a pure function of its seed: no clock, no OS randomness,
//! no hash-ordered iteration reaching output.
//!
//! Module map (the engine, then what drives it):
//! - `cluster` — virtual time, the event queue, the per-node driver loop;
//! - `effects` — executing actions (persist, send, deliver, reply);
//! - `faults` — crashes (also mid-batch), restarts, partitions, clients;
//! - `net`, `storage`, `workload`, `queue`, `seed` — the simulated world;
//! - `checker`, `liveness`, `coverage` — what must hold and what was reached;
//! - `trace` — the human-readable trace and the determinism digest;
//! - `scenario` — scripted TOML scenarios with expectations;
//! - `replay` — a real node's recording (`chorus node --record`) redone and checked;
//! - `explore` — the random swarm (safety phase, then heal and liveness).
#![forbid(unsafe_code)]

pub mod checker;
pub mod cluster;
pub mod coverage;
mod effects;
pub mod explore;
mod faults;
mod liveness;
pub mod net;
pub mod options;
mod people;
pub mod queue;
pub mod replay;
pub mod scenario;
pub mod seed;
pub mod storage;
pub mod trace;
pub mod workload;

pub use checker::Violation;
pub use cluster::Sim;
pub use coverage::Coverage;
pub use net::NetOptions;
pub use options::SimOptions;
