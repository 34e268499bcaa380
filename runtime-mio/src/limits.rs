//! Per-client limits of the runtime: a token bucket for the message rate of
//! one session, and the count of open connections per source address.
//!
//! Both are plain counters driven by the loop's clock (core milliseconds), so
//! they cost nothing per message beyond an add and a compare. Overflow
//! behaviour: a CHAT over the rate gets ERROR `rate_limited` (nothing is
//! logged; the client may retry the same msg_id later) and the connection
//! stays open; a connection over the per-address bound is closed at accept.

use std::collections::HashMap;
use std::net::IpAddr;

/// A token bucket: `rate` tokens per second, at most `burst` saved up.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_ms: u64,
    rate_per_ms: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket at `now_ms`.
    pub fn new(rate_per_sec: u32, burst: u32, now_ms: u64) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            last_ms: now_ms,
            rate_per_ms: f64::from(rate_per_sec) / 1000.0,
            burst: f64::from(burst),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed * self.rate_per_ms).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open connections per source address (looked up, never iterated).
#[derive(Debug, Default)]
pub struct PerAddress {
    open: HashMap<IpAddr, usize>,
}

impl PerAddress {
    /// Counts a new connection from `ip` unless it already has `max`.
    pub fn admit(&mut self, ip: IpAddr, max: usize) -> bool {
        let n = self.open.entry(ip).or_insert(0);
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let mut b = TokenBucket::new(10, 5, 0);
        assert_eq!((0..8).filter(|_| b.take(0)).count(), 5);
        assert!(!b.take(50)); // half a token
        assert!(b.take(100));
        assert!(!b.take(100));
        // Idle for long: refills to the burst, not beyond.
        assert_eq!((0..20).filter(|_| b.take(100_000)).count(), 5);
    }

    #[test]
    fn per_address_counts_and_releases() {
        let mut p = PerAddress::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(p.admit(a, 2) && p.admit(a, 2));
        assert!(!p.admit(a, 2));
        assert!(p.admit("127.0.0.3".parse().unwrap(), 2));
        p.release(a);
        assert!(p.admit(a, 2));
    }
}
