//! Time as a dependency: the [`Clock`] every expiry check reads, the [`SystemClock`] used in
//! production and the [`TestClock`] that tests move forward instead of sleeping.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The source of "now" for expiry decisions (`exp`, `nbf`, `iat`, stored expiry times).
///
/// Monotonic timers (timeouts, rate windows measured with `Instant`) are not clock decisions
/// and keep using `Instant`.
pub trait Clock: Send + Sync + Debug + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// Whole seconds since the Unix epoch (0 for a clock set before 1970).
    fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock shared by everything that checks expiry.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// A [`SharedClock`] reading the system time.
    #[must_use]
    pub fn shared() -> SharedClock {
        Arc::new(Self)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The system time shifted by an offset that tests [`advance`](Self::advance): time still
/// flows, and a test jumps over an expiry instead of waiting for it.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    /// A clock that starts at the system time.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Moves the clock back by `by` (for "issued in the future" cases).
    pub fn rewind(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_sub(ms, Ordering::SeqCst);
    }

    /// How far this clock is ahead of the system time (negative when behind).
    #[must_use]
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        let offset = self.offset_ms.load(Ordering::SeqCst);
        let magnitude = Duration::from_millis(offset.unsigned_abs());
        let now = SystemTime::now();
        if offset >= 0 {
            now.checked_add(magnitude).unwrap_or(now)
        } else {
            now.checked_sub(magnitude).unwrap_or(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_forward_and_back_without_waiting() {
        let clock = TestClock::new();
        let before = SystemClock.unix_seconds();
        clock.advance(Duration::from_secs(3_600));
        let ahead = clock.unix_seconds();
        assert!(
            (3_600..3_610).contains(&(ahead - before)),
            "{ahead} vs {before}"
        );
        clock.rewind(Duration::from_secs(7_200));
        assert!(clock.unix_seconds() + 3_590 <= before);
        assert_eq!(clock.offset_ms(), -3_600_000);
    }
}
