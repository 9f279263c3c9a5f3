//! Pending OAuth sign-ins and linked identities: the records and the [`OAuthStore`]
//! capability.

use async_trait::async_trait;
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TokenHash, UserRecord};

/// A pending OAuth sign-in, from `/authorize` to `/callback`: single use, short-lived.
pub struct OAuthStateRecord {
    /// SHA-256 of the `state` sent to the provider (the key).
    pub state_hash: TokenHash,
    /// The provider's configured name.
    pub provider: String,
    /// SHA-256 of the value of the browser-binding cookie set by `/authorize`.
    pub binding_hash: TokenHash,
    /// The OpenID Connect `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE `code_verifier` (RFC 7636).
    pub pkce_verifier: SecretString,
    /// Where to send the browser afterwards (checked against the allow-list).
    pub redirect_to: String,
    /// Set when a logged-in user started the flow to link an identity to this account.
    pub link_user_id: Option<Uuid>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this, the record is as good as absent.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for OAuthStateRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthStateRecord")
            .field("provider", &self.provider)
            .field("redirect_to", &self.redirect_to)
            .field("link_user_id", &self.link_user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A provider account linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The provider's configured name.
    pub provider: String,
    /// The provider's `sub` for this account (unique per provider).
    pub subject: String,
    /// The user it signs in as.
    pub user_id: Uuid,
    /// The email the provider gave at the last sign-in, if any.
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: OffsetDateTime,
}

/// What an attempt to unlink an identity came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    /// The identity is gone.
    Unlinked,
    /// The user has no identity of this provider.
    NotLinked,
    /// Refused: it is the user's only way to log in (no password, no other identity).
    LastLoginMethod,
}

/// Pending OAuth sign-ins and the provider identities linked to users.
#[async_trait]
pub trait OAuthStore: Send + Sync + 'static {
    /// Stores a pending OAuth sign-in.
    async fn save_oauth_state(&self, state: &OAuthStateRecord) -> Result<(), StoreError>;
    /// Deletes and returns the pending sign-in with this state hash, in one atomic step, so a
    /// state can be used once only; an expired one is deleted and reported as `None`.
    async fn take_oauth_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError>;
    /// Deletes the pending sign-ins expired at `now`; returns how many (part of
    /// [`Store::purge_expired`]).
    async fn purge_expired_oauth_states(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    /// The identity with this (provider, subject).
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError>;
    /// Links an identity to an existing user; [`StoreError::Conflict`] when the
    /// (provider, subject) is linked already, or the user has an identity of this provider.
    async fn link_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError>;
    /// Removes the user's identity of `provider`, unless it is the user's last way to log in
    /// (no password and no other identity): the check and the delete are one atomic step.
    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError>;
    /// The user's identities, oldest first (ties by provider).
    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError>;
    /// Creates a user and links an identity to it, both or neither (one transaction);
    /// [`StoreError::Conflict`] when the username key or the identity is taken.
    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError>;
}
