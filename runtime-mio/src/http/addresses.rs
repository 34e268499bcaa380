//! Where every node serves HTTP: this node's address as others should use it
//! (its advertised host with its HTTP port) and the peers' addresses, learned
//! from their HELLO once their link authenticates (`links.rs`).
//!
//! Two things read them: STATUS `http_members` (a web page fails over to
//! these nodes' `/ws`) and the default `/ws` Origin allow-list (a page loaded
//! from one node may open `/ws` on any other node of the cluster).
//!
//! Bounded: at most `MAX_PEER_HTTP` peers are remembered (only authenticated
//! peers add entries, so this is a guard, not a limit a cluster meets), and
//! an address longer than `MAX_HTTP_ADDR_BYTES` or not `host:port` is ignored.

use crate::runtime::Runtime;
use chorus_core::NodeId;
use tracing::{debug, warn};

/// Peers whose HTTP address is remembered.
pub(crate) const MAX_PEER_HTTP: usize = 256;
/// Longest HTTP address accepted from a peer.
pub(crate) const MAX_HTTP_ADDR_BYTES: usize = 256;

/// `host:port` with a non-empty host (an IPv6 host in brackets), a port
/// 1..=65535, and nothing a URL would read differently (no `/`, `@`,
/// whitespace or control characters).
pub(crate) fn valid_http_addr(addr: &str) -> bool {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return false;
    };
    addr.len() <= MAX_HTTP_ADDR_BYTES
        && !host.is_empty()
        && port.parse::<u16>().is_ok_and(|p| p > 0)
        && !addr
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/@?#\\\"'<>".contains(c))
        && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')))
}

/// `host:port`, bracketing an IPv6 host.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host:port` (the host keeps its brackets).
pub(crate) fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

fn is_wildcard(host: &str) -> bool {
    matches!(host, "" | "0.0.0.0" | "::" | "[::]")
}

impl Runtime {
    /// This node's HTTP address as other nodes and pages should use it: the
    /// HTTP bind host, or the advertised host when HTTP listens on every
    /// interface; `None` without an HTTP port.
    pub(crate) fn own_http_addr(&self) -> Option<String> {
        let h = self.http.as_ref()?;
        let port = h.local_addr().port();
        let host = if is_wildcard(&h.opts.host) {
            self.advertised.rsplit_once(':').map_or("", |(h, _)| h)
        } else {
            h.opts.host.as_str()
        };
        (!is_wildcard(host)).then(|| join_host_port(host, port))
    }

    /// Remembers an authenticated peer's HTTP address (or forgets it: a
    /// restarted peer may have turned HTTP off).
    pub(crate) fn note_peer_http(&mut self, peer: NodeId, http: Option<String>) {
        match http {
            Some(a) if valid_http_addr(&a) => {
                let full = self.peer_http.len() >= MAX_PEER_HTTP;
                if full && !self.peer_http.contains_key(&peer) {
                    return warn!("n{}: HTTP address not kept ({MAX_PEER_HTTP} known)", peer.0);
                }
                debug!("n{} serves HTTP at {a}", peer.0);
                self.peer_http.insert(peer, a);
            }
            Some(a) => warn!("n{} sent an unusable HTTP address {a:?}: ignored", peer.0),
            None => {
                self.peer_http.remove(&peer);
            }
        }
    }

    /// Every known HTTP address: this node's first, then the peers' by id.
    pub(crate) fn http_members(&self) -> Vec<String> {
        let own = self.own_http_addr();
        own.iter()
            .cloned()
            .chain(
                self.peer_http
                    .values()
                    .filter(|a| Some(*a) != own.as_ref())
                    .cloned(),
            )
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_addresses() {
        assert!(valid_http_addr("127.0.0.1:8001"));
        assert!(valid_http_addr("chorus-0.chorus-peers:8001"));
        assert!(valid_http_addr("[::1]:8001"));
        assert!(!valid_http_addr("::1:8001"), "IPv6 needs brackets");
        assert!(!valid_http_addr("127.0.0.1"));
        assert!(!valid_http_addr(":8001"));
        assert!(!valid_http_addr("h:0"));
        assert!(!valid_http_addr("h:99999"));
        assert!(!valid_http_addr("evil.example/x:80"));
        assert!(!valid_http_addr("a b:80"));
        assert!(!valid_http_addr(&format!("{}:80", "h".repeat(300))));
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
        assert_eq!(join_host_port("h", 80), "h:80");
        assert_eq!(split_host_port("[::1]:80"), Some(("[::1]", 80)));
    }
}
