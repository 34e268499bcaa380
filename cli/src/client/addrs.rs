//! The nodes a client may connect to: the one it was told (`--host/--port`),
//! `--peers`, and every member a node reported in STATUS.
//!
//! Invariants: no duplicates; at most `MAX_ADDRS` entries (a node cannot grow
//! the list without bound); failover walks the list round-robin starting after
//! the node that just failed, so every known node gets its turn.

/// Most addresses remembered; learned members beyond this are ignored.
pub const MAX_ADDRS: usize = 64;

#[derive(Debug, Clone)]
pub struct AddrBook {
    addrs: Vec<String>,
    /// Index of the next address to try.
    next: usize,
}

impl AddrBook {
    /// `first` is tried first; then `others` in the given order.
    pub fn new(first: String, others: impl IntoIterator<Item = String>) -> AddrBook {
        let mut book = AddrBook {
            addrs: Vec::new(),
            next: 0,
        };
        book.learn(first);
        for a in others {
            book.learn(a);
        }
        book
    }

    /// Remembers an address (trimmed; empty and duplicates ignored). Returns
    /// whether it was new.
    pub fn learn(&mut self, addr: String) -> bool {
        let addr = addr.trim().to_string();
        if addr.is_empty() || self.addrs.len() >= MAX_ADDRS || self.addrs.contains(&addr) {
            return false;
        }
        self.addrs.push(addr);
        true
    }

    /// The address to try now; advances the cursor.
    pub fn next_addr(&mut self) -> &str {
        let i = self.next % self.addrs.len();
        self.next = (i + 1) % self.addrs.len();
        &self.addrs[i]
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    #[cfg(test)]
    pub fn all(&self) -> &[String] {
        &self.addrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_with_learned_members() {
        let mut b = AddrBook::new("a:1".into(), ["b:2".to_string(), "a:1".to_string()]);
        assert_eq!(b.len(), 2);
        assert_eq!(b.next_addr(), "a:1");
        assert!(b.learn("c:3".into()));
        assert!(!b.learn(" c:3 ".into()));
        assert_eq!(b.next_addr(), "b:2");
        assert_eq!(b.next_addr(), "c:3");
        assert_eq!(b.next_addr(), "a:1");
    }

    #[test]
    fn bounded() {
        let mut b = AddrBook::new("x:0".into(), []);
        for i in 0..1000 {
            b.learn(format!("h:{i}"));
        }
        assert_eq!(b.len(), MAX_ADDRS);
    }
}
