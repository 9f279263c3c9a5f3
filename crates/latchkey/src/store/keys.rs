//! Signing keys and server secrets: the records and the [`KeyStore`] capability.

use async_trait::async_trait;
use secrecy::SecretSlice;
use time::OffsetDateTime;

use super::StoreError;

/// A signing key as stored. The private half is secret.
pub struct SigningKeyRecord {
    /// Key id (`kid`).
    pub kid: String,
    /// JOSE algorithm name.
    pub alg: String,
    /// PKCS#8 DER of the private key.
    pub private_der: SecretSlice<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When it starts signing. A key is published from its creation, so `keys rotate` sets
    /// this a publication delay ahead: resource servers know the key before any token uses it.
    pub activates_at: OffsetDateTime,
    /// When a newer key takes over signing (the newer key's `activates_at`). Informational:
    /// the state of every key is derived from all keys' `activates_at` and `revoked_at`.
    pub retired_at: Option<OffsetDateTime>,
    /// When it was withdrawn at once (`keys rotate --now`, a compromised key): no longer
    /// published, so the tokens it signed stop verifying.
    pub revoked_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A named server secret as stored (the refresh-token key, for one). The value is secret.
pub struct SecretRecord {
    /// The secret's name.
    pub name: String,
    /// Its bytes.
    pub value: SecretSlice<u8>,
    /// When it was first stored.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Signing keys and named server secrets.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Every stored signing key, in (`activates_at`, `kid`) order.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Adds a key and sets `retired_at` (to the new key's `activates_at`) on every key that has
    /// none and activates earlier, in one transaction where the store has them.
    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Withdraws every key but `keep` that is not withdrawn yet: `revoked_at` becomes `at`
    /// (and `retired_at` too where it is unset or later). Returns how many were withdrawn.
    async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError>;
    /// The named server secret; `candidate` is stored first (created at `now`) if there is
    /// none, so concurrent first starts agree on one value.
    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StoreError>;
}
