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

/// Failed logins per key (an account name or a source address) with growing
/// delays: after `free` failures, the next attempt must wait `base · 2^k`
/// ms (k = failures past `free`, capped at `max`) after the last failure.
/// Bounded: at most `MAX_KEYS` keys; past it the oldest-failing keys whose
/// wait is over are forgotten first (an attacker cannot grow it without
/// bound, and forgetting a key only ever lets its owner in sooner).
#[derive(Debug, Default)]
pub struct LoginFailures {
    by_key: HashMap<String, (u32, u64)>,
}

/// Keys `LoginFailures` remembers at most.
pub const MAX_LOGIN_KEYS: usize = 100_000;

impl LoginFailures {
    /// Milliseconds left before `key` may try again (0: now).
    pub fn wait_ms(&self, key: &str, now_ms: u64, free: u32, base: u64, max: u64) -> u64 {
        let Some(&(fails, last)) = self.by_key.get(key) else {
            return 0;
        };
        if fails < free {
            return 0;
        }
        let delay = delay_ms(fails - free, base, max);
        (last + delay).saturating_sub(now_ms)
    }

    pub fn fail(&mut self, key: &str, now_ms: u64) {
        if self.by_key.len() >= MAX_LOGIN_KEYS && !self.by_key.contains_key(key) {
            // Forget every key idle for a minute or more (rare: only under
            // attack); if none is, forget this failure.
            self.by_key
                .retain(|_, (_, last)| now_ms.saturating_sub(*last) < 60_000);
            if self.by_key.len() >= MAX_LOGIN_KEYS {
                return;
            }
        }
        let e = self.by_key.entry(key.to_string()).or_insert((0, now_ms));
        e.0 = e.0.saturating_add(1);
        e.1 = now_ms;
    }

    pub fn clear(&mut self, key: &str) {
        self.by_key.remove(key);
    }
}

/// `base · 2^k`, at most `max`.
pub fn delay_ms(k: u32, base: u64, max: u64) -> u64 {
    base.saturating_mul(1u64 << k.min(40)).min(max)
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn failures_past_the_free_ones_double_the_wait() {
        let mut f = LoginFailures::default();
        for t in [0, 10, 20] {
            assert_eq!(f.wait_ms("ann", t, 3, 500, 30_000), 0);
            f.fail("ann", t);
        }
        assert_eq!(f.wait_ms("ann", 20, 3, 500, 30_000), 500);
        assert_eq!(f.wait_ms("ann", 520, 3, 500, 30_000), 0);
        f.fail("ann", 520);
        assert_eq!(f.wait_ms("ann", 520, 3, 500, 30_000), 1000);
        for _ in 0..20 {
            f.fail("ann", 600);
        }
        assert_eq!(f.wait_ms("ann", 600, 3, 500, 30_000), 30_000);
        assert_eq!(f.wait_ms("bob", 600, 3, 500, 30_000), 0);
        f.clear("ann");
        assert_eq!(f.wait_ms("ann", 600, 3, 500, 30_000), 0);
    }
}
