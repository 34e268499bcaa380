//! `chorus client`: a chat client (rooms, names, presence) that survives node
//! failures.
//!
//! Layers, each in its own file: `session` (the protocol logic: subscribe,
//! dedupe, resend, failover decisions; no I/O), `joined`, `outbox` and
//! `addrs` (its bounded stores), `request` and `wire` (what it asks and the
//! rooms lines on the wire), `net` (runs a session over TCP on a thread), and two UIs on
//! top of `net`'s events: `tui` (full screen) and `plain` (stdin/stdout lines).

mod addrs;
mod format;
mod joined;
mod net;
mod outbox;
mod plain;
pub mod probe;
mod request;
mod session;
mod tui;
mod wire;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const AFTER_HELP: &str = "\
Full-screen mode: Enter sends to the room on view, Esc or Ctrl-C quits.
  Alt-1..Alt-9     switch to room 1..9 (the numbers in the room bar)
  Ctrl-N / Ctrl-P  next / previous room (also Tab / Shift-Tab)
  PageUp/PageDown  scroll; scrolling past the oldest line loaded asks the
                   node for the page before it
The room bar shows each joined room with its unread count, e.g.
`2 #random (3)`; the line below it the room's topic. With 100 columns or
more, the room's members are listed on the right (● online, ○ away).
Commands (also in /help):
  /join #room   join (and switch to) a room     /part         leave this room
  /rooms        list the cluster's rooms        /who          list members
  /nick NAME    change your name                /topic TEXT   set the topic
  /help         this list                       /quit         quit
Messages show as `#room_seq HH:MM:SS name: text` (times in UTC); your own
are marked `…` while waiting for the cluster and `✓` once acknowledged.

Plain mode (--plain, or automatic when stdin or stdout is not a terminal):
joins --room; every stdin line is sent there as one message. stdout gets
only that room's messages, one per line (N is the room's number, room_seq):
    [#general 12] alice: hello
stderr gets one line per event, script-friendly:
    sent <msg_id> <text>        a line was accepted for sending
    ack <msg_id> seq=<n>        it is committed at (global) seq_no n
    info: ...                   connections and failovers
    warn: ...                   errors from the node, refused lines
On stdin EOF the client waits (at most --drain-secs) until every sent
message is acknowledged and delivered, then exits 0; it exits 1 if some
message was never acknowledged or was refused.

Names are not authenticated yet: anyone can take any name.

Failover: when the node dies or stops acknowledging, the client connects
to another one (--peers, plus the members the nodes report), says HELLO
with its name, subscribes its rooms again from where each left off, and
resends every unacknowledged message and room command with the same msg_id
(the cluster applies it once).";

/// Chat in rooms through any node; fails over to the others.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Host of the node to connect to first.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the node to connect to first.
    #[arg(long, default_value_t = 5001)]
    pub port: u16,
    /// Other nodes to fail over to, as host:port,host:port (members that the
    /// nodes report are added automatically).
    #[arg(long, value_delimiter = ',')]
    pub peers: Vec<String>,
    /// Your name as shown to others [default: $USER, else guest<sender id>].
    #[arg(long)]
    pub name: Option<String>,
    /// The room to join first (plain mode: the only room it reads and writes).
    #[arg(long, default_value = "general")]
    pub room: String,
    /// Line mode for scripts and pipes (see below).
    #[arg(long)]
    pub plain: bool,
    /// Most messages waiting for acknowledgement; the TUI refuses input
    /// beyond it, the plain mode stops reading stdin until acks arrive.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_unacked: u64,
    /// Resend a message (same msg_id) after this many milliseconds without
    /// acknowledgement.
    #[arg(long, default_value_t = 3000)]
    pub retry_ms: u64,
    /// Plain mode: after stdin EOF, wait at most this many seconds for
    /// acknowledgements.
    #[arg(long, default_value_t = 10)]
    pub drain_secs: u64,
    /// Plain mode: once done, keep printing delivered messages this many
    /// milliseconds longer (e.g. to collect other clients' messages).
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// Connect with TLS and verify the nodes against this CA certificate
    /// (PEM; `chorus certs init` writes ca.pem). Without it: plaintext.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
}

impl Args {
    /// Defaults for a client of `host:port` (used by `chorus up`).
    pub fn for_node(host: &str, port: u16, peers: Vec<String>) -> Args {
        Args {
            host: host.to_string(),
            port,
            peers,
            name: None,
            room: "general".into(),
            plain: false,
            max_unacked: 1000,
            retry_ms: 3000,
            drain_secs: 10,
            linger_ms: 0,
            ca: None,
        }
    }
}

/// `chorus client`: stops on SIGINT, SIGTERM or SIGHUP.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = crate::signals::stop_flag()?;
    run_until(args, &stop)
}

/// Runs the client until the user quits, stdin ends (plain mode) or `stop`
/// is set (by a signal handler of the caller).
pub fn run_until(args: Args, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let sender_id = sender_id();
    let name = match args.name.clone().or_else(default_name) {
        Some(n) => wire::name(&n).map_err(|e| anyhow::anyhow!("--name {n:?}: {e}"))?,
        None => format!("guest{sender_id}"),
    };
    let room = wire::room_id(&args.room).map_err(|e| anyhow::anyhow!("--room: {e}"))?;
    let mut settings = session::Settings::new(vec![room], name, sender_id);
    settings.max_unacked = args.max_unacked as usize;
    settings.retry_after = Duration::from_millis(args.retry_ms.max(100));
    let first = format!("{}:{}", args.host, args.port);
    let book = addrs::AddrBook::new(first, args.peers.iter().cloned());
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let tls = crate::tls_dial::from_ca(args.ca.as_deref())?;
    let full_screen = !args.plain && interactive;
    if full_screen {
        // The first screenful of a room, and of each page back: two
        // screens' worth, so that the first PageUp needs no round trip.
        let rows = ratatui::crossterm::terminal::size().map_or(40, |(_, h)| h as u64);
        settings.page = (rows * 2).clamp(20, 200);
    }
    let client = net::Client::start(session::Session::new(settings.clone(), book), tls);
    if !full_screen {
        Ok(plain::run(client, &args, stop))
    } else {
        tui::run(client, &settings, stop)
    }
}

/// $USER, so that people in a room see names without typing --name (if it
/// is a valid name: a name has no spaces).
fn default_name() -> Option<String> {
    std::env::var("USER").ok().filter(|u| wire::name(u).is_ok())
}

/// A random id for this client process (shown when it has no name); six
/// digits so people can tell senders apart at a glance.
fn sender_id() -> u64 {
    100_000 + (uuid::Uuid::new_v4().as_u128() % 900_000) as u64
}
