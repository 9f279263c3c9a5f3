//! The keys area as operators see it (`latchkey keys list | rotate`): the stored signing keys
//! with their state at the injected clock's time, and rotation.

use time::OffsetDateTime;

use super::rollover::{KeyState, Rotation, key_states, rotate_at};
use crate::auth::audit::{Actor, AuditEvent, Event};
use crate::auth::{AuthError, AuthService, to_time};
use crate::config::SigningAlg;

/// One signing key as `keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyView {
    /// The key id (`kid`).
    pub kid: String,
    /// Its algorithm.
    pub alg: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it signs (or signed) from.
    pub activates_at: OffsetDateTime,
    /// Where it is in its life now.
    pub state: KeyState,
}

/// The signing keys of a service: see [`AuthService::signing_keys`].
pub struct SigningKeys<'a> {
    service: &'a AuthService,
}

impl AuthService {
    /// The keys area: listing and rotating the stored signing keys.
    #[must_use]
    pub fn signing_keys(&self) -> SigningKeys<'_> {
        SigningKeys { service: self }
    }
}

impl SigningKeys<'_> {
    /// The stored keys in creation order, each with its state now.
    ///
    /// # Errors
    /// A store failure.
    pub async fn list(&self) -> Result<Vec<KeyView>, AuthError> {
        let service = self.service;
        let records = service.store.signing_keys().await?;
        let publish_for = to_time(service.config.access_token_ttl + service.config.token_leeway);
        let states = key_states(&records, service.now(), publish_for);
        let mut listed: Vec<KeyView> = records
            .into_iter()
            .zip(states)
            .map(|(key, state)| KeyView {
                kid: key.kid,
                alg: key.alg,
                created_at: key.created_at,
                activates_at: key.activates_at,
                state,
            })
            .collect();
        listed.sort_by_key(|key| key.created_at);
        Ok(listed)
    }

    /// Stores a new key of the configured algorithm, signing after the configured publication
    /// delay, or at once (withdrawing every other key) with `at_once`.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] under HS256 (whose key is configured, not generated), or a
    /// store failure.
    pub async fn rotate(&self, at_once: bool) -> Result<Rotation, AuthError> {
        let config = &self.service.config;
        if config.signing_alg == SigningAlg::HS256 {
            return Err(AuthError::InvalidInput(
                "LATCHKEY_SIGNING_ALG=HS256 uses LATCHKEY_HS256_SECRET; change that secret to \
                 rotate"
                    .into(),
            ));
        }
        let rotation = rotate_at(
            &*self.service.store,
            config.signing_alg,
            config.key_publish_ahead,
            self.service.now(),
            at_once,
        )
        .await?;
        let event = Event::success(AuditEvent::KeyRotated, None, Actor::System)
            .with(serde_json::json!({ "at_once": at_once }));
        self.service.record(None, event).await;
        Ok(rotation)
    }
}
