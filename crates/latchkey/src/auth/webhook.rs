//! Delivery of audit records to `LATCHKEY_AUDIT_WEBHOOK_URL`, from the outbox kept on the
//! records themselves.
//!
//! A record written while a webhook is configured is due at once. The worker claims due
//! records with a lease ([`crate::store::AuditStore::claim_audit_deliveries`]: atomic, so two
//! instances never send one record at the same time), POSTs each one, and marks it delivered
//! on a 2xx answer; anything else (an error, a timeout, a receiver that is down) makes it due
//! again after an exponential backoff (1 s, 2 s, 4 s… at most 1 h), until the record's
//! retention ends. Delivery is **at least once**: a crash between the POST and the mark sends
//! the record again, with the same `id` (also in `Latchkey-Event-Id`) to deduplicate on.
//!
//! Each POST carries `Latchkey-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`, the MAC of
//! `"<t>.<body>"` under `LATCHKEY_AUDIT_WEBHOOK_SECRET`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use time::OffsetDateTime;

use super::audit::AuditEntry;
use super::{AuthError, AuthService, to_time};
use crate::store::AuditRecord;

/// How many records one claim takes.
const BATCH: u32 = 50;
/// How long a claimed record is left to its worker before another may take it.
const LEASE: Duration = Duration::from_secs(60);
/// How often the outbox is looked at when it was empty.
const POLL: Duration = Duration::from_millis(500);
/// The first retry's delay; each further one doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest delay between two attempts.
const MAX_RETRY: Duration = Duration::from_secs(3600);
/// The name of the signature header.
pub const SIGNATURE_HEADER: &str = "Latchkey-Signature";

/// The delay before attempt `attempts + 1`.
#[must_use]
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(12);
    (FIRST_RETRY * 2_u32.pow(exponent)).min(MAX_RETRY)
}

/// The `Latchkey-Signature` value for `body` sent at `t` (unix seconds).
#[must_use]
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    #[allow(clippy::expect_used)] // HMAC accepts keys of any length
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends due records to the webhook, for as long as the returned task runs; `None` when no
/// webhook is configured.
///
/// # Errors
/// [`AuthError::Internal`] when the HTTP client cannot be built.
pub fn spawn(auth: Arc<AuthService>) -> Result<Option<tokio::task::JoinHandle<()>>, AuthError> {
    let (Some(url), Some(secret)) = (
        auth.config.audit.webhook_url.clone(),
        auth.config.audit.webhook_secret.clone(),
    ) else {
        return Ok(None);
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::Internal(format!("HTTP client: {e}")))?;
    Ok(Some(tokio::spawn(async move {
        loop {
            let now = auth.now();
            let claimed = auth
                .store
                .claim_audit_deliveries(now, now + to_time(LEASE), BATCH)
                .await;
            let records = match claimed {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming audit webhook deliveries failed");
                    Vec::new()
                }
            };
            if records.is_empty() {
                tokio::time::sleep(POLL).await;
                continue;
            }
            for record in records {
                let delivered = deliver(&http, &url, secret.expose_secret(), &record, now).await;
                let due = if delivered {
                    None
                } else {
                    Some(auth.now() + to_time(backoff(record.webhook_attempts)))
                };
                if let Err(e) = auth.store.set_audit_delivery(record.id, due).await {
                    tracing::warn!(error = %e, "recording an audit webhook delivery failed");
                }
            }
        }
    })))
}

/// POSTs one record; true on a 2xx answer.
async fn deliver(
    http: &reqwest::Client,
    url: &url::Url,
    secret: &str,
    record: &AuditRecord,
    now: OffsetDateTime,
) -> bool {
    let Ok(body) = serde_json::to_vec(&AuditEntry::from(record)) else {
        return false;
    };
    let sent = http
        .post(url.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("Latchkey-Event-Id", record.id.to_string())
        .header(
            SIGNATURE_HEADER,
            signature(secret.as_bytes(), now.unix_timestamp(), &body),
        )
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => true,
        Ok(response) => {
            tracing::warn!(status = %response.status(), attempts = record.webhook_attempts, "the audit webhook refused a record; retrying later");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, attempts = record.webhook_attempts, "the audit webhook is unreachable; retrying later");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_RETRY);
    }

    #[test]
    fn the_signature_is_the_hmac_of_time_and_body() {
        // HMAC-SHA256("key", "1.{}"), computed independently.
        let sig = signature(b"key", 1, b"{}");
        assert!(sig.starts_with("t=1,v1="), "{sig}");
        assert_eq!(sig.len(), "t=1,v1=".len() + 64);
        assert_ne!(sig, signature(b"key", 2, b"{}"));
        assert_ne!(sig, signature(b"other", 1, b"{}"));
    }
}
