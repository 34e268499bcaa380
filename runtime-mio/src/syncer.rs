//! The fsync thread: makes the log durable while the event loop goes on.
//!
//! The event loop writes records (`write`, into the page cache) and asks for
//! durability up to a byte offset; this thread runs `fdatasync` and publishes
//! the offset it covered, then wakes the loop. An fdatasync covers every
//! write that returned before it was called, so the published offset is
//! always one the loop had fully written before asking. Requests that arrive
//! during an fdatasync are served together by the next one (group commit
//! without stalling the loop: it keeps reading, sequencing and replicating
//! while the disk works).
//!
//! Invariants: `durable` only grows and never exceeds a requested offset; the
//! first failure is kept, published, and ends the thread (the node then stops
//! without performing anything that waited for durability).

use crate::storage::SyncTarget;
use mio::Waker;
use prometheus_client::metrics::histogram::Histogram;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

#[derive(Debug, Default)]
struct State {
    /// Highest offset the loop asked to make durable.
    requested: u64,
    /// Highest offset known durable.
    durable: u64,
    /// The first fdatasync failure; the thread stops after it.
    failed: Option<io::Error>,
    stop: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// The thread waits on it for requests.
    wake: Condvar,
    /// `wait_durable` waits on it for progress.
    progress: Condvar,
}

/// Handle owned by the event loop; stops and joins the thread when dropped.
#[derive(Debug)]
pub(crate) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic while holding this lock would be a bug in this file; the state
    // is plain numbers, so going on with it is sound.
    shared.state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Syncer {
    /// Starts the thread on `target` (the log's last segment, swapped by the
    /// writer when it starts a new one, after fsyncing the one before whole:
    /// so syncing the current one covers every offset written), durable up
    /// to `durable` already (the recovered log was fsynced at open).
    /// Each fdatasync's duration goes to `fsync_seconds`.
    pub(crate) fn start(
        target: SyncTarget,
        durable: u64,
        waker: Arc<Waker>,
        fsync_seconds: Histogram,
    ) -> io::Result<Syncer> {
        let shared = Arc::new(Shared::default());
        {
            let mut s = lock(&shared);
            s.requested = durable;
            s.durable = durable;
        }
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("chorus-fsync".into())
            .spawn(move || run(&theirs, &target, &waker, &fsync_seconds))?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Asks for everything written up to `offset` to become durable.
    pub(crate) fn request(&self, offset: u64) {
        let mut s = lock(&self.shared);
        if offset > s.requested {
            s.requested = offset;
            self.shared.wake.notify_one();
        }
    }

    /// Blocks until everything up to `offset` (already requested) is durable
    /// or the thread failed: the loop's backpressure when the disk falls far
    /// behind (`effects.rs`).
    pub(crate) fn wait_durable(&self, offset: u64) {
        let mut s = lock(&self.shared);
        while s.durable < offset && s.failed.is_none() && !s.stop {
            s = self
                .shared
                .progress
                .wait(s)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The durable offset, or the failure that stopped the thread.
    pub(crate) fn durable(&self) -> Result<u64, io::Error> {
        let mut s = lock(&self.shared);
        match s.failed.take() {
            // Keep reporting it: the caller turns it into a fatal error, but a
            // second look must not see the thread as healthy.
            Some(e) => {
                let again = io::Error::new(e.kind(), e.to_string());
                s.failed = Some(e);
                Err(again)
            }
            // A thread that ended without a failure (it cannot panic in
            // normal operation) would leave everything waiting forever.
            None if self.thread.as_ref().is_some_and(|t| t.is_finished()) => {
                Err(io::Error::other("the fsync thread stopped unexpectedly"))
            }
            None => Ok(s.durable),
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, segment: &SyncTarget, waker: &Waker, fsync_seconds: &Histogram) {
    loop {
        let target = {
            let mut s = lock(shared);
            while s.requested <= s.durable && !s.stop {
                s = shared.wake.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.stop {
                return;
            }
            s.requested
        };
        // Taken after `target` was read: a request past a new segment's
        // start was made after the writer swapped it in.
        let file = segment.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let began = std::time::Instant::now();
        let result = file.sync_data();
        fsync_seconds.observe(began.elapsed().as_secs_f64());
        let failed = result.is_err();
        {
            let mut s = lock(shared);
            match result {
                Ok(()) => s.durable = s.durable.max(target),
                Err(e) => s.failed = Some(e),
            }
        }
        shared.progress.notify_all();
        // The loop may be asleep in poll with effects waiting for this.
        let _ = waker.wake();
        if failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Poll, Token};
    use std::fs::File;
    use std::io::Write;

    #[test]
    fn requests_are_served_in_order_and_wake_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = File::create(dir.path().join("log")).unwrap();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(1)).unwrap());
        let target = Arc::new(Mutex::new(Arc::new(f.try_clone().unwrap())));
        let s = Syncer::start(target, 0, waker, Histogram::new([0.1])).unwrap();
        assert_eq!(s.durable().unwrap(), 0);
        for end in [10u64, 20, 30] {
            f.write_all(&[7u8; 10]).unwrap();
            s.request(end);
        }
        s.wait_durable(30);
        assert_eq!(s.durable().unwrap(), 30);
        // A request below what is durable is a no-op, never a regression.
        s.request(5);
        assert_eq!(s.durable().unwrap(), 30);
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(1)), "loop woken");
        drop(s); // stops and joins the thread
    }
}
