//! Failed-login counters: the record and the [`ThrottleStore`] capability.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::StoreError;

/// A failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleCount {
    /// Failures in the current window.
    pub failures: u32,
    /// When the window closes.
    pub window_ends_at: OffsetDateTime,
}

/// Failed-login counters, one fixed window per key.
#[async_trait]
pub trait ThrottleStore: Send + Sync + 'static {
    /// Counts one failed login for `key`, opening a new window when the last one closed.
    async fn throttle_hit(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError>;
    /// The open window's counter for `key`.
    async fn throttle_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ThrottleCount>, StoreError>;
    /// Forgets `key`'s failures.
    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError>;
    /// Takes back one count of `key`'s open window (never below zero): an attempt counted
    /// before it was checked that turned out to succeed.
    async fn throttle_release(&self, key: &str) -> Result<(), StoreError>;
    /// Deletes the windows closed at `now`; returns how many (part of
    /// [`Store::purge_expired`]).
    async fn purge_expired_windows(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
