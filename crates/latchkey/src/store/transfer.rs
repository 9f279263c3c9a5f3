//! Copying between stores: the counts compared and the [`TransferStore`] capability.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{FamilyRecord, SecretRecord, SessionRecord, SigningKeyRecord, StoreError, UserRecord};

/// How many records of each kind a store holds: what `latchkey store copy` compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Users.
    pub users: u64,
    /// Live refresh families (neither the family nor its current token expired).
    pub families: u64,
    /// Live server-side sessions.
    pub sessions: u64,
    /// Linked OAuth identities.
    pub identities: u64,
    /// Signing keys, current and retired.
    pub signing_keys: u64,
    /// Server secrets.
    pub server_secrets: u64,
}

impl StoreCounts {
    /// Whether the store holds nothing worth keeping (throttle counters do not count).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Copying between stores (`latchkey store copy`): bulk reads in id order, and writes that
/// keep every field of the record as given (ids, times, retirement) instead of minting.
#[async_trait]
pub trait TransferStore: Send + Sync + 'static {
    /// How many users, live families and sessions, identities, signing keys and server secrets
    /// there are.
    async fn counts(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError>;
    /// Up to `limit` live families (as [`RefreshStore::list_families`] sees them) with ids
    /// greater than `after`, in id order.
    async fn list_live_families(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError>;
    /// Up to `limit` live sessions with ids greater than `after`, in id order.
    async fn list_live_sessions(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// Every server secret, in name order.
    async fn server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError>;
    /// Writes a user copied from another store: inserted, or overwriting the user with its id;
    /// [`StoreError::Conflict`] when another user holds its username key.
    async fn import_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// Writes a family copied from another store, inserted or overwriting the one with its id.
    async fn import_family(&self, family: &FamilyRecord) -> Result<(), StoreError>;
    /// Writes a session copied from another store, inserted or overwriting the one with its id.
    async fn import_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// Writes a signing key as given (its retirement included), overwriting one with its kid.
    async fn import_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Writes a server secret as given, overwriting one with its name.
    async fn import_server_secret(&self, secret: &SecretRecord) -> Result<(), StoreError>;
}
