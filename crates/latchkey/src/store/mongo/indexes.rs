//! The indexes, created idempotently at open (or, when the server is unreachable then, by a
//! background task as soon as it answers).

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;

use super::Inner;
use super::driver::run;
use crate::store::StoreError;

fn index(keys: Document, name: &str, unique: bool) -> IndexModel {
    let mut options = IndexOptions::builder().name(name.to_owned()).build();
    if unique {
        options.unique = Some(true);
    }
    IndexModel::builder().keys(keys).options(options).build()
}

/// A TTL index on a date field: the server's TTL monitor deletes a document once that date
/// has passed (lazily, about once a minute), so reads still compare dates themselves.
fn expiry(field: &str) -> IndexModel {
    let mut options = IndexOptions::builder().name(format!("{field}_ttl")).build();
    options.expire_after = Some(Duration::ZERO);
    IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(options)
        .build()
}

impl Inner {
    /// Creates the indexes; a no-op when they exist with these options.
    pub(super) async fn ensure_indexes(&self) -> Result<(), StoreError> {
        let by_user = || {
            index(
                doc! { "user_id": 1, "created_at": -1 },
                "user_id_created_at",
                false,
            )
        };
        let mut identity = index(
            doc! { "identities.provider": 1, "identities.subject": 1 },
            "identity_unique",
            true,
        );
        // Only users with identities are indexed, so the others do not clash on "no identity".
        if let Some(options) = identity.options.as_mut() {
            options.partial_filter_expression =
                Some(doc! { "identities.provider": { "$exists": true } });
        }
        let users = [
            index(doc! { "username_key": 1 }, "username_key_unique", true),
            identity,
            index(doc! { "email_key": 1 }, "email_key", false),
        ];
        run(self.users.create_indexes(users)).await?;
        let families = [by_user(), expiry("token_expires_at"), expiry("expires_at")];
        run(self.families.create_indexes(families)).await?;
        let sessions = [
            index(doc! { "token_hash": 1 }, "token_hash_unique", true),
            by_user(),
            expiry("idle_expires_at"),
            expiry("absolute_expires_at"),
        ];
        run(self.sessions.create_indexes(sessions)).await?;
        run(self.throttle.create_indexes([expiry("window_ends_at")])).await?;
        run(self.oauth_states.create_indexes([expiry("expires_at")])).await?;
        let factors = [index(
            doc! { "user_id": 1, "kind": 1, "created_at": 1 },
            "user_id_kind",
            false,
        )];
        run(self.factors.create_indexes(factors)).await?;
        run(self.mfa_challenges.create_indexes([expiry("expires_at")])).await?;
        let passkeys = [
            index(doc! { "credential_id": 1 }, "credential_id_unique", true),
            index(
                doc! { "user_id": 1, "created_at": 1 },
                "user_id_created_at",
                false,
            ),
        ];
        run(self.passkeys.create_indexes(passkeys)).await?;
        run(self
            .webauthn_ceremonies
            .create_indexes([expiry("expires_at")]))
        .await?;
        let webhook = index(doc! { "webhook_due": 1 }, "webhook_due", false);
        let audit = [
            index(doc! { "user_id": 1, "_id": -1 }, "user_id_id", false),
            index(doc! { "event": 1, "_id": -1 }, "event_id", false),
            expiry("expires_at"),
            webhook,
        ];
        run(self.audit.create_indexes(audit)).await?;
        let email_tokens = [
            index(
                doc! { "user_id": 1, "purpose": 1 },
                "user_id_purpose",
                false,
            ),
            expiry("expires_at"),
        ];
        run(self.email_tokens.create_indexes(email_tokens)).await?;
        let outbox = [
            index(
                doc! { "next_attempt_at": 1, "_id": 1 },
                "next_attempt_at",
                false,
            ),
            expiry("expires_at"),
        ];
        run(self.outbox.create_indexes(outbox)).await?;
        self.indexes_ready.store(true, Ordering::Release);
        Ok(())
    }
}

/// Retries index creation until it succeeds or the store is dropped.
pub(super) async fn ensure_indexes_in_background(inner: Weak<Inner>) {
    let mut delay = Duration::from_millis(250);
    loop {
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.ensure_indexes().await {
            Ok(()) => {
                tracing::info!("MongoDB answered: indexes are in place");
                return;
            }
            Err(StoreError::Unavailable(e)) => {
                tracing::debug!(error = %e, "MongoDB still unreachable");
            }
            Err(e) => tracing::error!(error = %e, "creating MongoDB indexes failed"),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
