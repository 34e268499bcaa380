//! Reads terminal events on their own thread and hands keys to the UI loop
//! over a bounded channel.
//!
//! Why a thread: crossterm 0.29's `event::poll` spins forever, ignoring its
//! timeout, once the terminal is gone (read returns 0 or EIO: crossterm issue
//! #793). With the reads here, the UI loop never blocks in crossterm, so it
//! still sees a signal's stop flag or a hung-up terminal and exits (the
//! process exit then ends this thread too).

use ratatui::crossterm::event::{self, Event, KeyEvent};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Keys buffered between the reader and the UI (a paste is a burst).
const KEY_QUEUE: usize = 4096;
/// How often the reader looks at `done`.
const POLL: Duration = Duration::from_millis(50);

/// What the terminal said.
#[derive(Debug)]
pub enum Input {
    Key(KeyEvent),
    /// The terminal cannot be read any more.
    Failed(String),
}

/// Starts the reader; it stops when `done` is set (or the UI is gone).
pub fn spawn(done: Arc<AtomicBool>) -> std::io::Result<Receiver<Input>> {
    let (tx, rx) = mpsc::sync_channel(KEY_QUEUE);
    thread::Builder::new()
        .name("chorus-tui-input".into())
        .spawn(move || read_loop(&tx, &done))?;
    Ok(rx)
}

fn read_loop(tx: &SyncSender<Input>, done: &AtomicBool) {
    while !done.load(Ordering::Relaxed) {
        let ready = match event::poll(POLL) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Input::Failed(e.to_string()));
                return;
            }
        };
        if !ready {
            continue;
        }
        match event::read() {
            Ok(Event::Key(k)) => {
                if tx.send(Input::Key(k)).is_err() {
                    return;
                }
            }
            // Resizes need no message: the UI redraws every frame and
            // ratatui re-measures the terminal on draw.
            Ok(_) => {}
            Err(e) => {
                let _ = tx.send(Input::Failed(e.to_string()));
                return;
            }
        }
    }
}
