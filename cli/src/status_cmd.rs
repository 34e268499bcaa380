//! `chorus status --connect host:port,…`: one table of the cluster (node,
//! role, term, leader, commit, lag, sessions, uptime), coloured on a
//! terminal, or `--json`. Each address is asked `GET /status` on its HTTP
//! port; an address that answers no HTTP (a node's client port) is asked the
//! STATUS line instead (sessions and uptime then unknown).
//!
//! Exit status: 0 when every node answered and a leader is known; 1 when a
//! node cannot be reached or no reachable node is or knows a leader; 2 on a
//! usage error. Every request has a deadline (`--timeout-ms`).

use crate::client::probe;
use serde::{Deserialize, Serialize};
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Largest HTTP answer read from one node.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// Show the cluster as one table.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Nodes to ask, comma-separated: their HTTP ports (e.g.
    /// 127.0.0.1:8001,127.0.0.1:8002), or their client ports.
    #[arg(long, value_delimiter = ',', required = true)]
    pub connect: Vec<String>,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Deadline for each node's answer.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// The nodes use TLS: speak https to their HTTP ports (TLS to their
    /// client ports for the STATUS-line fallback), verifying them against
    /// this CA (`chorus up` prints it).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
}

/// What one node said about itself (`/status`; STATUS lacks the last three).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Row {
    pub node_id: u64,
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    /// Chats delivered (the client-visible seq_no).
    pub commit_seq: u64,
    /// The internal log index of the node's last entry.
    #[serde(default)]
    pub log_last: u64,
    #[serde(default)]
    pub client_sessions: Option<u64>,
    #[serde(default)]
    pub uptime_s: Option<u64>,
    #[serde(default)]
    pub ready: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Entry {
    addr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Entries behind the highest commit point reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    lag: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Report {
    nodes: Vec<Entry>,
    leader: Option<u64>,
    ok: bool,
}

/// `GET /status` over HTTP/1.1 (https when `tls`: the node's HTTP port
/// serves TLS with the certificate of its client port), parsed with httparse.
fn http_status(
    addr: &str,
    timeout: Duration,
    tls: &crate::tls_dial::ClientTls,
) -> Result<Result<Row, String>, String> {
    let mut s = crate::tls_dial::connect_str(addr, tls, timeout)?;
    s.tcp()
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.tcp()
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let req = format!("GET /status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let _ = s.take(MAX_ANSWER_BYTES).read_to_end(&mut raw);
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(&raw) {
        Ok(httparse::Status::Complete(n)) if resp.code == Some(200) => {
            Ok(serde_json::from_slice(&raw[n..])
                .map_err(|e| format!("{addr}: /status is not what chorus serves: {e}")))
        }
        Ok(httparse::Status::Complete(_)) => Ok(Err(format!(
            "{addr}: /status answered {}",
            resp.code.unwrap_or(0)
        ))),
        // Not HTTP: maybe a client port.
        _ => Err(format!("{addr}: no HTTP answer")),
    }
}

fn ask(addr: &str, timeout: Duration, tls: &crate::tls_dial::ClientTls) -> Result<Row, String> {
    match http_status(addr, timeout, tls) {
        Ok(answer) => answer,
        Err(http_err) => match probe::status(addr, timeout, tls) {
            Ok(s) => Ok(Row {
                node_id: s.node_id,
                role: s.role,
                term: s.term,
                leader: s.leader,
                commit_seq: s.commit_seq,
                log_last: s.log_last,
                client_sessions: None,
                uptime_s: None,
                ready: None,
            }),
            Err(e) => Err(format!("unreachable ({http_err}; STATUS: {e})")),
        },
    }
}

fn uptime(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The table, with ANSI colour when `colour`.
fn table(report: &Report, colour: bool) -> String {
    let paint = |code: &str, text: String| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut out = format!(
        "{:<22} {:<5} {:<10} {:>6} {:>7} {:>10} {:>7} {:>9} {:>8}\n",
        "ADDRESS", "NODE", "ROLE", "TERM", "LEADER", "COMMIT", "LAG", "SESSIONS", "UPTIME"
    );
    for e in &report.nodes {
        let Some(s) = &e.status else {
            let why = e.error.clone().unwrap_or_default();
            out.push_str(&format!("{:<22} {}\n", e.addr, paint("31", why)));
            continue;
        };
        let role = format!("{:<10}", s.role);
        let role = match s.role.as_str() {
            "leader" => paint("1;32", role),
            "candidate" => paint("33", role),
            _ => role,
        };
        let lag = e.lag.unwrap_or(0);
        let lag_text = format!("{lag:>7}");
        let lag_text = if lag > 0 {
            paint("33", lag_text)
        } else {
            lag_text
        };
        out.push_str(&format!(
            "{:<22} {:<5} {role} {:>6} {:>7} {:>10} {lag_text} {:>9} {:>8}\n",
            e.addr,
            format!("n{}", s.node_id),
            s.term,
            s.leader.map_or("-".into(), |l| format!("n{l}")),
            s.commit_seq,
            opt(s.client_sessions),
            s.uptime_s.map_or("-".into(), uptime),
        ));
    }
    let verdict = match (report.ok, report.leader) {
        (true, Some(l)) => paint("32", format!("ok: leader n{l}")),
        (false, Some(l)) => paint(
            "31",
            format!("degraded: leader n{l}, a node is unreachable"),
        ),
        (_, None) => paint("31", "no leader".to_string()),
    };
    out.push_str(&verdict);
    out.push('\n');
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let tls = crate::tls_dial::from_ca(args.ca.as_deref())?;
    let tls = &tls;
    // Ask every node at once: one slow node costs one deadline, not N.
    let answers: Vec<Result<Row, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = args
            .connect
            .iter()
            .map(|a| s.spawn(move || ask(a.trim(), timeout, tls)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("probe panicked".into())))
            .collect()
    });
    let top = answers
        .iter()
        .filter_map(|a| a.as_ref().ok().map(|s| s.commit_seq))
        .max()
        .unwrap_or(0);
    let leader = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .find(|s| s.role == "leader")
        .map(|s| s.node_id);
    let all_up = answers.iter().all(Result::is_ok);
    let nodes = args
        .connect
        .iter()
        .zip(answers)
        .map(|(addr, a)| match a {
            Ok(s) => Entry {
                addr: addr.trim().to_string(),
                lag: Some(top.saturating_sub(s.commit_seq)),
                status: Some(s),
                error: None,
            },
            Err(e) => Entry {
                addr: addr.trim().to_string(),
                status: None,
                error: Some(e),
                lag: None,
            },
        })
        .collect();
    let report = Report {
        nodes,
        leader,
        ok: all_up && leader.is_some(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", table(&report, colour));
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: u64, role: &str, commit: u64) -> Row {
        Row {
            node_id: id,
            role: role.into(),
            term: 2,
            leader: Some(1),
            commit_seq: commit,
            log_last: commit,
            client_sessions: Some(3),
            uptime_s: Some(3725),
            ready: Some(true),
        }
    }

    #[test]
    fn table_shows_rows_lag_and_verdict() {
        let report = Report {
            nodes: vec![
                Entry {
                    addr: "a:1".into(),
                    status: Some(row(1, "leader", 10)),
                    error: None,
                    lag: Some(0),
                },
                Entry {
                    addr: "b:2".into(),
                    status: Some(row(2, "follower", 7)),
                    error: None,
                    lag: Some(3),
                },
                Entry {
                    addr: "c:3".into(),
                    status: None,
                    error: Some("unreachable".into()),
                    lag: None,
                },
            ],
            leader: Some(1),
            ok: false,
        };
        let t = table(&report, false);
        assert!(
            t.contains("leader") && t.contains("1h02m") && t.contains("unreachable"),
            "{t}"
        );
        assert!(t.lines().nth(2).unwrap().contains("      3 "), "{t}");
        assert!(
            t.ends_with("degraded: leader n1, a node is unreachable\n"),
            "{t}"
        );
        assert!(!t.contains('\x1b'));
        assert!(table(&report, true).contains("\x1b[1;32mleader"));
    }
}
