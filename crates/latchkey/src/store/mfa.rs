//! Second factors and pending second-factor logins: the records and the [`MfaStore`]
//! capability.
//!
//! A factor is one row per credential, whatever its kind: a TOTP secret (`kind = "totp"`,
//! `secret` sealed with a server key, never stored in the clear), a recovery code
//! (`kind = "recovery_code"`, `secret` the SHA-256 of the code, usable once), and later a
//! WebAuthn credential (`kind = "webauthn"`, `secret` its public-key record). So a new kind
//! needs no new table.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TokenHash};

/// The factor kind of a TOTP authenticator (RFC 6238).
pub const KIND_TOTP: &str = "totp";
/// The factor kind of a single-use recovery code.
pub const KIND_RECOVERY_CODE: &str = "recovery_code";

/// A second factor as stored.
pub struct FactorRecord {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// [`KIND_TOTP`], [`KIND_RECOVERY_CODE`], ...
    pub kind: String,
    /// Sealed secret (TOTP) or hash (recovery code): never a usable secret in the clear.
    pub secret: SecretSlice<u8>,
    /// The last TOTP time step accepted (0: none): a code is accepted once.
    pub last_step: i64,
    /// When enrolment was confirmed; `None` while pending (a pending factor never signs in).
    pub confirmed_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last successful use (for a recovery code: when it was spent).
    pub last_used_at: Option<OffsetDateTime>,
}

impl Clone for FactorRecord {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            user_id: self.user_id,
            kind: self.kind.clone(),
            secret: SecretSlice::from(self.secret.expose_secret().to_vec()),
            last_step: self.last_step,
            confirmed_at: self.confirmed_at,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

impl PartialEq for FactorRecord {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.user_id == other.user_id
            && self.kind == other.kind
            && self.secret.expose_secret() == other.secret.expose_secret()
            && self.last_step == other.last_step
            && self.confirmed_at == other.confirmed_at
            && self.created_at == other.created_at
            && self.last_used_at == other.last_used_at
    }
}

impl std::fmt::Debug for FactorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactorRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("last_step", &self.last_step)
            .field("confirmed_at", &self.confirmed_at)
            .field("created_at", &self.created_at)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// A login waiting for its second factor (the `mfa_token`): single use, short-lived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaChallengeRecord {
    /// SHA-256 of the `mfa_token` (the key).
    pub token_hash: TokenHash,
    /// The user whose password was checked.
    pub user_id: Uuid,
    /// Which login started it (`token` for `/auth/login`, `session` for `/session/login`):
    /// the second step answers like the first would have.
    pub endpoint: String,
    /// The methods the first step already proved (`pwd`).
    pub amr: Vec<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this, the record is as good as absent.
    pub expires_at: OffsetDateTime,
}

/// Second factors and pending second-factor logins. Every method is one atomic operation.
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    /// Inserts factors (all of them, in one transaction where the store has them).
    async fn add_factors(&self, factors: &[FactorRecord]) -> Result<(), StoreError>;
    /// The user's factors of `kind` (all kinds when `None`), pending ones included, in
    /// creation order.
    async fn list_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
    ) -> Result<Vec<FactorRecord>, StoreError>;
    /// Deletes the user's factors of `kind` (all kinds when `None`); `pending_only` keeps the
    /// confirmed ones. Returns how many went.
    async fn delete_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
        pending_only: bool,
    ) -> Result<u64, StoreError>;
    /// Confirms the pending factor `id` of `user_id`: `confirmed_at` = `last_used_at` = now,
    /// `last_step` = `step`. False when there is no such pending factor.
    async fn confirm_factor(
        &self,
        user_id: Uuid,
        id: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Accepts TOTP time step `step` for the confirmed factor `id`: only when `step` is
    /// greater than its `last_step` (one conditional write, so of two instances given one
    /// code exactly one accepts it). Sets `last_step` and `last_used_at`.
    async fn accept_factor_step(
        &self,
        id: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Spends the confirmed, unused factor of `user_id` and `kind` whose `secret` equals
    /// `secret` (a recovery code's hash): `last_used_at` = now. False when there is none.
    async fn use_factor_once(
        &self,
        user_id: Uuid,
        kind: &str,
        secret: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Stores a pending second-factor login.
    async fn create_mfa_challenge(&self, challenge: &MfaChallengeRecord) -> Result<(), StoreError>;
    /// The live pending login with this token hash.
    async fn find_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError>;
    /// Deletes and returns the live pending login with this token hash, in one atomic step, so
    /// it completes once only.
    async fn take_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError>;
    /// Deletes the pending logins expired at `now` (part of [`super::Store::purge_expired`]).
    async fn purge_expired_mfa_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    /// Up to `limit` factors with ids greater than `after`, in id order (`latchkey store copy`).
    async fn list_all_factors(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<FactorRecord>, StoreError>;
    /// Writes a factor copied from another store, overwriting the one with its id.
    async fn import_factor(&self, factor: &FactorRecord) -> Result<(), StoreError>;
}
