//! The full-screen terminal client (ratatui + crossterm): draws [`app::App`]
//! and feeds it keys and client events until the user quits (Esc, Ctrl-C),
//! `stop` is set by a signal, or the terminal goes away.
//!
//! The terminal is restored on every way out: normal exit, an error (a guard's
//! Drop), and a panic (ratatui's panic hook, installed by `try_init`).

mod app;
mod commands;
mod input;
mod room;
mod view;

use super::net::Client;
use super::request::Request;
use super::session::Settings;
use app::{Action, App};
use input::Input;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most client events applied between two frames (keeps keys responsive
/// during a flood of messages).
const EVENTS_PER_FRAME: usize = 2000;
/// Most keys handled between two frames (a paste arrives as a burst).
const KEYS_PER_FRAME: usize = 1024;
/// How long to wait for a key before looking at client events again.
const FRAME_WAIT: Duration = Duration::from_millis(50);
/// How often to check that the terminal still exists (a hang-up without
/// SIGHUP, e.g. when the signal is ignored).
const TTY_CHECK: Duration = Duration::from_secs(1);

/// Restores the terminal and stops the input reader when dropped.
struct Restore(Arc<AtomicBool>);

impl Drop for Restore {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        ratatui::restore();
    }
}

/// Why the loop ended.
enum End {
    Quit,
    Stopped,
    TerminalGone(String),
}

pub fn run(client: Client, s: &Settings, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let mut app = App::new(&s.rooms, s.name.clone(), s.max_unacked);
    // Poll the members of the room on view (the driver's queue is empty now).
    let _ = client.try_request(Request::View(app.room().map(|r| r.name.clone())));
    let mut terminal = ratatui::try_init()?;
    let done = Arc::new(AtomicBool::new(false));
    let restore = Restore(done.clone());
    let keys = input::spawn(done)?;
    let mut next_tty_check = Instant::now() + TTY_CHECK;
    let end = loop {
        if stop.load(Ordering::Relaxed) {
            break End::Stopped;
        }
        let size = terminal.size()?;
        app.view_height = view::message_lines(size.height);
        terminal.draw(|f| view::draw(f, &app))?;
        match handle_keys(&mut app, &client, &keys) {
            Ok(true) => break End::Quit,
            Ok(false) => {}
            Err(reason) => break End::TerminalGone(reason),
        }
        for ev in client.events.try_iter().take(EVENTS_PER_FRAME) {
            app.on_event(ev);
        }
        if Instant::now() >= next_tty_check {
            next_tty_check = Instant::now() + TTY_CHECK;
            if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
                break End::TerminalGone("the terminal hung up".into());
            }
        }
    };
    drop(restore);
    let unacked = app.unacked;
    client.quit();
    if let End::TerminalGone(reason) = &end {
        eprintln!("chorus client: {reason}");
    }
    if unacked > 0 {
        eprintln!("chorus client: {unacked} message(s) were not acknowledged before quitting");
    }
    Ok(match end {
        End::Quit | End::Stopped if unacked == 0 => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

/// Waits up to a frame for keys and handles them; Ok(true) when the user
/// quits, Err when the terminal cannot be read any more.
fn handle_keys(app: &mut App, client: &Client, keys: &Receiver<Input>) -> Result<bool, String> {
    let first = match keys.recv_timeout(FRAME_WAIT) {
        Ok(k) => k,
        Err(RecvTimeoutError::Timeout) => return Ok(false),
        Err(RecvTimeoutError::Disconnected) => return Err("the terminal input ended".into()),
    };
    for k in std::iter::once(first).chain(keys.try_iter().take(KEYS_PER_FRAME)) {
        let key = match k {
            Input::Key(key) => key,
            Input::Failed(reason) => return Err(format!("cannot read the terminal: {reason}")),
        };
        match app.on_key(key) {
            Action::Quit => return Ok(true),
            Action::Ask(requests) => {
                for r in requests {
                    if client.try_request(r.clone()).is_err() {
                        app.send_failed(r);
                        break;
                    }
                }
            }
            Action::None => {}
        }
    }
    Ok(false)
}
