//! The one place where a request's path chooses what answers it. Routes only
//! read the node (`Status`, counters): operations never steer.
//!
//! The web chat page's files (`/`, `/app.js`, …) come from `assets.rs`; `/ws`
//! is answered before routing (`upgrade.rs`), since it takes the connection
//! over (`HttpConn::into_parts`).

use super::assets;
use crate::conn::Role;
use crate::runtime::Runtime;
use chorus_core::client_wire::NodeStatus;
use serde::Serialize;

/// An HTTP response, written by `http/mod.rs`.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra header lines, each without CRLF (e.g. `Allow: GET, HEAD`).
    pub headers: Vec<String>,
    /// `Cache-Control`: `no-store` for what reads the node, `no-cache`
    /// (revalidate by `etag`) for the page's files.
    pub cache_control: &'static str,
    /// Quoted entity tag of a static file (`If-None-Match` → 304).
    pub etag: Option<String>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into().into_bytes(),
            headers: Vec::new(),
            cache_control: "no-store",
            etag: None,
        }
    }

    fn json(status: u16, value: &impl Serialize) -> Response {
        let mut body = serde_json::to_vec(value).expect("status always serializes");
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            body,
            headers: Vec::new(),
            cache_control: "no-store",
            etag: None,
        }
    }
}

/// What a request leads to.
#[derive(Debug)]
pub(crate) enum Routed {
    Reply(Response),
}

/// `/status`: what STATUS says, plus what an operator's table shows.
#[derive(Debug, Serialize)]
pub(crate) struct StatusJson {
    #[serde(flatten)]
    pub status: NodeStatus,
    /// Highest seq this node knows committed (`commit_seq` is what it delivered).
    pub known_commit_seq: u64,
    pub uptime_s: u64,
    pub client_sessions: usize,
    pub peer_links_up: usize,
    pub ready: bool,
}

pub(crate) const METRICS_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

impl Runtime {
    /// Answers a GET (or HEAD) of `path` (query string already removed).
    pub(crate) fn route(&mut self, path: &str) -> Routed {
        Routed::Reply(match path {
            "/metrics" => Response {
                status: 200,
                content_type: METRICS_TYPE,
                body: self.scrape().into_bytes(),
                headers: Vec::new(),
                cache_control: "no-store",
                etag: None,
            },
            "/healthz" => Response::text(200, "ok\n"),
            "/readyz" => match self.not_ready() {
                None => Response::text(200, "ready\n"),
                Some(why) => Response::text(503, format!("not ready: {why}\n")),
            },
            "/status" => Response::json(200, &self.status_json()),
            _ => match assets::find(path) {
                Some(a) => Response {
                    status: 200,
                    content_type: a.content_type,
                    body: a.body.to_vec(),
                    headers: a.headers.iter().map(|h| h.to_string()).collect(),
                    cache_control: "no-cache",
                    etag: Some(a.etag),
                },
                None => Response::text(
                    404,
                    "not found; try / (the chat page), /metrics, /healthz, /readyz or /status\n",
                ),
            },
        })
    }

    /// Client connections and authenticated outgoing links, counted now.
    fn sessions_and_links(&self) -> (usize, usize) {
        let clients = self
            .conns
            .values()
            .filter(|c| matches!(c.role, Role::Client(_) | Role::Fresh))
            .count();
        let links = self
            .conns
            .values()
            .filter(|c| c.up_peer().is_some())
            .count();
        (clients, links)
    }

    /// Why `/readyz` says no, or None when ready.
    pub(crate) fn not_ready(&self) -> Option<String> {
        let s = self.node.status();
        let Some(http) = &self.http else {
            return Some("no HTTP options".into());
        };
        if s.leader.is_none() {
            return Some("no leader known".into());
        }
        let lag = s.commit_seq.0.saturating_sub(self.delivered.0);
        if lag > http.opts.ready_max_lag {
            return Some(format!(
                "delivered {} entries short of the commit point (ready_max_lag {})",
                lag, http.opts.ready_max_lag
            ));
        }
        None
    }

    fn status_json(&self) -> StatusJson {
        let (client_sessions, peer_links_up) = self.sessions_and_links();
        StatusJson {
            status: self.node_status(),
            known_commit_seq: self.node.status().commit_seq.0,
            uptime_s: self
                .http
                .as_ref()
                .map_or(0, |h| h.started.elapsed().as_secs()),
            client_sessions,
            peer_links_up,
            ready: self.not_ready().is_none(),
        }
    }

    /// Sets the gauges from the node's state, then encodes every metric.
    fn scrape(&self) -> String {
        let s = self.node.status();
        let m = &self.metrics;
        m.set_role(s.role);
        m.term.set(s.term.0 as i64);
        m.leader_id.set(s.leader.map_or(0, |l| l.0 as i64));
        m.commit_seq.set(s.commit_seq.0 as i64);
        m.last_seq.set(s.last_seq.0 as i64);
        m.delivered_seq.set(self.delivered.0 as i64);
        m.first_seq.set(s.first_seq.0 as i64);
        m.snapshot_seq.set(s.snapshot_seq.0 as i64);
        m.snapshot_installs.set(s.installs as i64);
        let (clients, links) = self.sessions_and_links();
        m.client_sessions.set(clients as i64);
        m.peer_links_up.set(links as i64);
        m.encode()
    }
}
