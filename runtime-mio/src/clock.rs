//! The only clock of a node: monotonic milliseconds since the runtime started,
//! clamped so the core never sees time go backwards, plus wall-clock
//! milliseconds that enter the core only as data (a chat's `ts_ms`).

use chorus_core::Instant;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Monotonic, clamped time source.
#[derive(Debug)]
pub struct Clock {
    origin: std::time::Instant,
    last_ms: u64,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
            last_ms: 0,
        }
    }

    /// Now as core time; never less than a previous answer.
    pub fn now(&mut self) -> Instant {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms = self.last_ms.max(ms);
        Instant(self.last_ms)
    }

    /// The OS instant of core time `at`.
    pub fn at(&self, at: Instant) -> std::time::Instant {
        self.origin + Duration::from_millis(at.0)
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let mut c = Clock::new();
        let a = c.now();
        c.last_ms = a.0 + 10_000; // as if the OS clock had jumped back
        assert_eq!(c.now(), Instant(a.0 + 10_000));
        assert_eq!(c.at(Instant(5)), c.origin + Duration::from_millis(5));
    }
}
