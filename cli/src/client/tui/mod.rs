//! The full-screen terminal client (ratatui + crossterm): draws [`app::App`]
//! and feeds it keys and client events until the user quits (Esc, Ctrl-C) or
//! `stop` is set by a signal.
//!
//! The terminal is restored on every way out: normal exit, an error (a guard's
//! Drop), and a panic (ratatui's panic hook, installed by `try_init`).

mod app;
mod view;

use super::net::Client;
use super::session::Settings;
use app::{Action, App};
use ratatui::crossterm::event::{self, Event as TermEvent};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Most client events applied between two frames (keeps keys responsive
/// during a flood of messages).
const EVENTS_PER_FRAME: usize = 2000;
/// Most keys handled between two frames (a paste arrives as a burst).
const KEYS_PER_FRAME: usize = 1024;
/// How long to wait for a key before looking at client events again.
const FRAME_WAIT: Duration = Duration::from_millis(50);

/// Restores the terminal when dropped.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

pub fn run(client: Client, s: &Settings, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let me = s
        .name
        .clone()
        .unwrap_or_else(|| format!("#{}", s.sender_id));
    let mut app = App::new(s.room.clone(), me, s.max_unacked);
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    while !stop.load(Ordering::Relaxed) {
        terminal.draw(|f| view::draw(f, &app))?;
        if event::poll(FRAME_WAIT)? && handle_keys(&mut app, &client)? {
            break;
        }
        for ev in client.events.try_iter().take(EVENTS_PER_FRAME) {
            app.on_event(ev);
        }
    }
    drop(_restore);
    let unacked = app.unacked;
    client.quit();
    if unacked > 0 {
        eprintln!("chorus client: {unacked} message(s) were not acknowledged before quitting");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Handles the pending keys (at least one is ready); true when the user quits.
fn handle_keys(app: &mut App, client: &Client) -> anyhow::Result<bool> {
    for _ in 0..KEYS_PER_FRAME {
        if let TermEvent::Key(k) = event::read()? {
            match app.on_key(k) {
                Action::Quit => return Ok(true),
                Action::Send(text) => {
                    if client.try_submit(text.clone()).is_err() {
                        app.send_failed(text);
                    }
                }
                Action::None => {}
            }
        }
        if !event::poll(Duration::ZERO)? {
            break;
        }
    }
    Ok(false)
}
