//! Why a node cannot start or must stop. Every message says what to do next.
//! Storage failures are fatal by design: a node that cannot make a record
//! durable must not acknowledge anything after it.

use std::path::PathBuf;

/// A fatal runtime error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The listening address cannot be bound.
    #[error("cannot listen on {addr}: {err}{hint}")]
    Listen {
        addr: String,
        err: std::io::Error,
        hint: &'static str,
    },
    /// The log directory cannot be created, opened or written.
    #[error("log_dir {dir} is not usable ({what}: {err}); set log_dir to a writable directory")]
    LogDir {
        dir: PathBuf,
        what: &'static str,
        err: std::io::Error,
    },
    /// A log to inspect or repair cannot be read.
    #[error("cannot read {file}: {err} (give the log_dir of a node, or its chorus.log)")]
    Read { file: PathBuf, err: std::io::Error },
    /// Another process holds the log directory's lock.
    #[error("log_dir {dir} is in use by another chorus node{owner}; stop it or give this node its own log_dir")]
    Locked { dir: PathBuf, owner: String },
    /// The log has a damaged record with valid data after it.
    #[error(
        "{file} is corrupt at byte offset {offset}: {reason}. The node refuses to start on a \
         silently damaged log. Inspect it with `chorus log inspect {dir}`; \
         `chorus log repair {dir}` keeps a backup and cuts the log at that offset \
         (the cluster re-replicates committed entries to this node)"
    )]
    Corrupt {
        file: PathBuf,
        dir: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A write or fsync of the log failed.
    #[error(
        "fatal storage failure: {op} of {file} failed: {err}; the node stopped so that \
         nothing that is not durable gets acknowledged (fix the disk, then restart it)"
    )]
    Storage {
        file: PathBuf,
        op: &'static str,
        err: std::io::Error,
    },
    /// The TLS settings cannot be used (a file missing, unreadable or wrong).
    #[error("{0}; fix the [tls] settings (cert, key, ca) or remove them to run in plaintext")]
    Tls(String),
    /// The `[accounts]` settings cannot be used (argon2 parameters).
    #[error("{0}; fix the [accounts] settings")]
    Accounts(String),
    /// The event loop itself failed (poll, registration).
    #[error("event loop failure: {0}")]
    Poll(std::io::Error),
}

// Not `#[from]`: the message already carries the cause, and a `source` would
// print it twice in `{:#}` chains. Same reason for the `err` field names.
impl From<std::io::Error> for RuntimeError {
    fn from(e: std::io::Error) -> RuntimeError {
        RuntimeError::Poll(e)
    }
}
