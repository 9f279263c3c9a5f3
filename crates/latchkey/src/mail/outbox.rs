//! The outbox worker: claims due messages from the store with a lease, sends them, deletes
//! what went out, and puts back what failed for a later attempt (exponential backoff, up to
//! `LATCHKEY_MAIL_MAX_ATTEMPTS`). Every instance runs one; the lease keeps two from sending
//! one message, and what an instance left claimed when it stopped is claimed again once its
//! lease ends.

use std::sync::Arc;
use std::time::Duration;

use latchkey_guard::SharedClock;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Mailer, SendError};
use crate::auth::now_on;
use crate::store::{Store, StoreError};

/// How long a claim holds its messages: far longer than a batch takes to send
/// (`SMTP_TIMEOUT` per message), so no other instance takes them meanwhile.
const LEASE: Duration = Duration::from_secs(10 * 60);
/// Messages per claim.
const BATCH: u32 = 10;
/// The wait after the first failure; it doubles with every further one.
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// The longest wait between attempts.
const MAX_RETRY: Duration = Duration::from_secs(3_600);

/// The wait before attempt `failures + 1`, after `failures` (at least 1) failed ones:
/// 30 s, 1 min, 2 min, ... up to an hour.
#[must_use]
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY
        .saturating_mul(1_u32 << doublings)
        .min(MAX_RETRY)
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Sends what the outbox holds.
pub struct OutboxWorker {
    store: Arc<dyn Store>,
    mailer: Arc<Mailer>,
    clock: SharedClock,
    wake: Arc<Notify>,
    poll: Duration,
    max_attempts: u32,
}

impl OutboxWorker {
    /// A worker on `store`, woken by `wake` (the domain notifies it after enqueueing) or every
    /// `poll` interval.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<Mailer>,
        clock: SharedClock,
        wake: Arc<Notify>,
        poll: Duration,
        max_attempts: u32,
    ) -> Self {
        Self {
            store,
            mailer,
            clock,
            wake,
            poll,
            max_attempts,
        }
    }

    /// Claims one batch of due messages and sends it; returns how many were claimed.
    ///
    /// # Errors
    /// A store failure (the messages stay in the outbox for the next round).
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = now_on(&*self.clock);
        let claim = Uuid::new_v4();
        let claimed = self
            .store
            .claim_mail(now, claim, now + to_time(LEASE), BATCH)
            .await?;
        for message in &claimed {
            if message.expires_at <= now {
                self.store.delete_mail(message.id).await?;
                tracing::warn!(mail.id = %message.id, attempts = message.attempts, "mail dropped unsent: its link expired");
                continue;
            }
            match self.mailer.send(message).await {
                Ok(()) => {
                    self.store.delete_mail(message.id).await?;
                    tracing::info!(mail.id = %message.id, attempts = message.attempts + 1, "mail sent");
                }
                Err(SendError::Permanent(e)) => {
                    self.store.delete_mail(message.id).await?;
                    tracing::error!(mail.id = %message.id, error = %e, "mail refused for good: dropped");
                }
                Err(SendError::Temporary(e)) => {
                    let failures = message.attempts.saturating_add(1);
                    if failures >= self.max_attempts {
                        self.store.delete_mail(message.id).await?;
                        tracing::error!(mail.id = %message.id, failures, error = %e, "mail given up after the last attempt");
                    } else {
                        let wait = backoff(failures);
                        let at = now_on(&*self.clock) + to_time(wait);
                        self.store
                            .retry_mail(message.id, claim, failures, at)
                            .await?;
                        tracing::warn!(mail.id = %message.id, failures, retry_in_s = wait.as_secs(), error = %e, "sending mail failed; will retry");
                    }
                }
            }
        }
        Ok(claimed.len())
    }

    /// Runs until aborted: a batch whenever woken or every poll interval, batches back to back
    /// while full ones come.
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                loop {
                    match self.run_once().await {
                        Ok(n) if n == BATCH as usize => {}
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "the outbox could not be read; retrying later");
                            break;
                        }
                    }
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(self.poll) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_30_s_up_to_an_hour() {
        let waits: Vec<u64> = (1..=9).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1_920, 3_600, 3_600]);
        assert_eq!(backoff(0).as_secs(), 30);
        assert_eq!(backoff(u32::MAX).as_secs(), 3_600);
    }
}
