//! A stop flag raised by SIGINT, SIGTERM or SIGHUP, shared by the long-running
//! interactive commands (`client`, `up`) so they shut down cleanly (restoring the
//! terminal, stopping the nodes they started) instead of dying mid-way.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// A flag that becomes true on SIGINT, SIGTERM or SIGHUP.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    Ok(stop)
}
