//! Passkeys (WebAuthn credentials) and their pending ceremonies: the records and the
//! [`PasskeyStore`] capability.
//!
//! A ceremony (a registration or a sign-in started and not yet finished) is kept here, not in
//! the process, so a ceremony started on one instance finishes on another. Its id is a secret
//! handed to the client; only its SHA-256 is stored, and taking it deletes it (single use).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TokenHash};

/// A registered passkey.
#[derive(Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Public id (the `{id}` of `/auth/passkeys/{id}`).
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// The WebAuthn credential id (unique across users).
    pub credential_id: Vec<u8>,
    /// The credential's public key and static extensions, in the WebAuthn library's encoding.
    pub public_key: Vec<u8>,
    /// The library's encoding of the state that changes with use (sign count, backup flags,
    /// user verification, attachment).
    pub state: Vec<u8>,
    /// The last signature counter seen.
    pub sign_count: u32,
    /// The authenticator's transports (`internal`, `hybrid`, `usb`, …).
    pub transports: Vec<String>,
    /// Backup eligible (BE) at the last use.
    pub backup_eligible: bool,
    /// Backed up (BS) at the last use.
    pub backup_state: bool,
    /// The user's name for it.
    pub name: String,
    /// Registration time.
    pub created_at: OffsetDateTime,
    /// Last sign-in with it.
    pub last_used_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for PasskeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("sign_count", &self.sign_count)
            .field("backup_eligible", &self.backup_eligible)
            .field("backup_state", &self.backup_state)
            .finish_non_exhaustive()
    }
}

/// What a successful sign-in changes on a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// The new encoded dynamic state.
    pub state: Vec<u8>,
    /// The new signature counter.
    pub sign_count: u32,
    /// BE as just seen.
    pub backup_eligible: bool,
    /// BS as just seen.
    pub backup_state: bool,
    /// When.
    pub used_at: OffsetDateTime,
}

/// A started, unfinished ceremony.
#[derive(Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// SHA-256 of the ceremony id given to the client.
    pub id_hash: TokenHash,
    /// `register`, `login` or `mfa`: a ceremony is only finished as what it was started as.
    pub kind: String,
    /// The user it belongs to (registration, second factor); `None` for a passwordless
    /// sign-in, where the credential names the user.
    pub user_id: Option<Uuid>,
    /// The library's encoding of the server-side ceremony state (challenge, options).
    pub state: Vec<u8>,
    /// After this it cannot be finished.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for CeremonyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyRecord")
            .field("kind", &self.kind)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Passkeys and pending WebAuthn ceremonies.
#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Stores a started ceremony.
    async fn create_ceremony(&self, ceremony: &CeremonyRecord) -> Result<(), StoreError>;
    /// Deletes the ceremony with this id hash and returns it when it was still live at `now`:
    /// one atomic step, so of two concurrent finishes only one gets it, and never again.
    async fn take_ceremony(
        &self,
        id_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<CeremonyRecord>, StoreError>;
    /// Deletes the ceremonies expired at `now`; returns how many (part of
    /// [`Store::purge_expired`]).
    async fn purge_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Stores a new passkey; [`StoreError::Conflict`] when its credential id (or id) is taken.
    async fn create_passkey(&self, passkey: &PasskeyRecord) -> Result<(), StoreError>;
    /// The passkey with this credential id, whoever owns it.
    async fn find_passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, StoreError>;
    /// A user's passkeys, oldest first.
    async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, StoreError>;
    /// Renames the passkey `id` of `user_id`; false when there is none.
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str)
    -> Result<bool, StoreError>;
    /// Deletes the passkey `id` of `user_id`; false when there is none.
    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError>;
    /// Deletes every passkey of a user; returns how many.
    async fn delete_user_passkeys(&self, user_id: Uuid) -> Result<u64, StoreError>;
    /// Records a sign-in with passkey `id` when its counter is still `expected_sign_count`
    /// (compare-and-set: of two concurrent sign-ins with one counter value, one records);
    /// false otherwise.
    async fn record_passkey_use(
        &self,
        id: Uuid,
        expected_sign_count: u32,
        update: &PasskeyUse,
    ) -> Result<bool, StoreError>;
}
