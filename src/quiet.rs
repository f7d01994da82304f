//! A warning that a lasting state repeats at request rate (a full disk, a
//! lost database, Redis gone) is logged at most once per window, however
//! many requests meet it.

use std::sync::atomic::{AtomicI64, Ordering};

/// When its warning was last let through (unix seconds; 0: never).
#[derive(Debug, Default)]
pub struct Quiet {
    last: AtomicI64,
}

impl Quiet {
    pub const fn new() -> Quiet {
        Quiet {
            last: AtomicI64::new(0),
        }
    }

    /// True for the first caller in each window of `secs` seconds from
    /// the last one let through, at `now` (unix seconds); racing callers
    /// agree on one.
    pub fn speak(&self, now: i64, secs: i64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        now >= last + secs
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_window() {
        let q = Quiet::new();
        assert!(q.speak(1000, 10));
        assert!(!q.speak(1000, 10));
        assert!(!q.speak(1009, 10));
        assert!(q.speak(1010, 10));
        assert!(!q.speak(1011, 10));
    }
}
