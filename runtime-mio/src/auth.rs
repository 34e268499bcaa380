//! Peer authentication: a mutual HMAC-SHA256 challenge over fresh nonces.
//!
//! ```text
//! dialer D                                   acceptor A
//!   HELLO     {node_id: D, nonce: nD}  ──▶     (a first line of type HELLO makes
//!                                               the connection a peer candidate)
//!             ◀──  CHALLENGE {node_id: A, nonce: nA, mac: HMAC(k, "acceptor"|D|A|nD|nA)}
//!   (D checks A knows k, answering D's fresh nD)
//!   AUTH      {mac: HMAC(k, "dialer"|D|A|nD|nA)} ──▶ (A checks D knows k, for A's fresh nA)
//!   peer messages ...                  ──▶
//! ```
//!
//! The secret never crosses the wire; each side's nonce makes the other's MAC
//! unique to this connection, so a recorded handshake cannot be replayed; the
//! role label stops a MAC from being reflected back. Nonces come from the OS
//! (allowed here, never in core). Any connection whose first line is not HELLO
//! is a client and never sees this exchange, so plain clients are unaffected.
//!
//! HELLO may also carry `http`, the dialer's HTTP address (`host:port`), so
//! every node can tell browser pages where the others serve `/ws` (STATUS
//! `http_members`). It is outside the MACs: it is trusted only once the
//! link authenticates, and it steers nothing but what pages are told (and the
//! default `/ws` Origin allow-list).

use chorus_core::NodeId;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Random bytes per nonce (sent as lowercase hex).
pub const NONCE_BYTES: usize = 16;

/// Line types of the handshake (clients may not send them).
pub const HANDSHAKE_TYPES: &[&str] = &["HELLO", "CHALLENGE", "AUTH"];

/// The handshake lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Handshake {
    Hello {
        node_id: NodeId,
        nonce: String,
        /// The dialer's HTTP address, when it serves HTTP.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http: Option<String>,
    },
    Challenge {
        node_id: NodeId,
        nonce: String,
        mac: String,
    },
    Auth {
        mac: String,
    },
}

/// Which side a MAC speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Acceptor,
    Dialer,
}

/// Who and which nonces one handshake is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transcript {
    pub dialer: NodeId,
    pub acceptor: NodeId,
    pub dialer_nonce: String,
    pub acceptor_nonce: String,
}

/// A fresh nonce from the OS random number generator, as hex.
pub fn fresh_nonce() -> String {
    let mut b = [0u8; NONCE_BYTES];
    getrandom::fill(&mut b).expect("the OS random number generator is unavailable");
    hex(&b)
}

/// True for a well-formed nonce (exact length, lowercase hex).
pub fn nonce_ok(n: &str) -> bool {
    n.len() == NONCE_BYTES * 2
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn mac_for(secret: &[u8], side: Side, t: &Transcript) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    let label = match side {
        Side::Acceptor => "acceptor",
        Side::Dialer => "dialer",
    };
    let msg = format!(
        "chorus-peer-auth-v1\n{label}\n{}\n{}\n{}\n{}",
        t.dialer.0, t.acceptor.0, t.dialer_nonce, t.acceptor_nonce
    );
    m.update(msg.as_bytes());
    m
}

/// The MAC `side` sends for transcript `t`, as hex.
pub fn prove(secret: &[u8], side: Side, t: &Transcript) -> String {
    hex(&mac_for(secret, side, t).finalize().into_bytes())
}

/// Checks `side`'s MAC (constant time).
pub fn verify(secret: &[u8], side: Side, t: &Transcript, mac_hex: &str) -> bool {
    match unhex(mac_hex) {
        Some(bytes) => mac_for(secret, side, t).verify_slice(&bytes).is_ok(),
        None => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    s.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? * 16 + digit(p[1])?) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript() -> Transcript {
        Transcript {
            dialer: NodeId(1),
            acceptor: NodeId(2),
            dialer_nonce: fresh_nonce(),
            acceptor_nonce: fresh_nonce(),
        }
    }

    #[test]
    fn good_secret_verifies_both_ways() {
        let t = transcript();
        let a = prove(b"s3cret", Side::Acceptor, &t);
        let d = prove(b"s3cret", Side::Dialer, &t);
        assert!(verify(b"s3cret", Side::Acceptor, &t, &a));
        assert!(verify(b"s3cret", Side::Dialer, &t, &d));
        assert_ne!(a, d, "a MAC cannot be reflected to the other side");
    }

    #[test]
    fn bad_secret_or_other_nonce_fails() {
        let t = transcript();
        let d = prove(b"wrong", Side::Dialer, &t);
        assert!(!verify(b"s3cret", Side::Dialer, &t, &d));
        let good = prove(b"s3cret", Side::Dialer, &t);
        let mut replayed = t.clone();
        replayed.acceptor_nonce = fresh_nonce();
        assert!(!verify(b"s3cret", Side::Dialer, &replayed, &good));
        assert!(!verify(b"s3cret", Side::Dialer, &t, "zz"));
        assert!(!verify(b"s3cret", Side::Dialer, &t, ""));
    }

    #[test]
    fn nonces_are_fresh_and_well_formed() {
        let (a, b) = (fresh_nonce(), fresh_nonce());
        assert!(nonce_ok(&a) && nonce_ok(&b));
        assert_ne!(a, b);
        assert!(!nonce_ok("abc"));
    }

    #[test]
    fn hello_wire_shape() {
        let h = Handshake::Hello {
            node_id: NodeId(3),
            nonce: "00".into(),
            http: None,
        };
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"type":"HELLO","node_id":3,"nonce":"00"}"#
        );
        let with_http = r#"{"type":"HELLO","node_id":3,"nonce":"00","http":"h:8003"}"#;
        assert!(matches!(
            serde_json::from_str(with_http),
            Ok(Handshake::Hello { http: Some(h), .. }) if h == "h:8003"
        ));
    }
}
