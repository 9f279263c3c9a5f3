//! The audit trail: the record, the changes that are written together with their records,
//! and the [`AuditStore`] capability.
//!
//! An audit record is written **in the same transaction as the change it records**: the domain
//! hands the change (an [`AuditedChange`]) and its records to [`AuditStore::audited`], which
//! applies both or neither. A conditional change that touched nothing (a logout of a family
//! that is already gone, roles for a user that does not exist) writes no record, and a change
//! that fails (a taken username) rolls its records back with it. Events that change nothing
//! (a refused login) are [`AuditedChange::Nothing`]: the records alone.
//!
//! Webhook delivery state lives on the record itself (an outbox): `webhook_due` is set in the
//! same insert when a webhook is configured, and a worker claims due records with a lease
//! ([`AuditStore::claim_audit_deliveries`]).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{FamilyRecord, SessionRecord, StoreError, TokenHash, UserRecord};

/// Whether the recorded action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// It did.
    Success,
    /// It was refused or failed.
    Failure,
}

impl AuditOutcome {
    /// `success` or `failure`, as stored.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// The outcome stored as `text`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for anything else.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            other => Err(StoreError::Corrupt(format!("bad audit outcome `{other}`"))),
        }
    }
}

/// One security event as stored. Never holds a secret: no password, token, code or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// UUIDv7: records sort by creation.
    pub id: Uuid,
    /// When it happened.
    pub at: OffsetDateTime,
    /// The event name (`login.failure`, `user.roles_set`…; see `auth::audit::AuditEvent`).
    pub event: String,
    /// The account concerned, when there is one.
    pub user_id: Option<Uuid>,
    /// Who acted: `user:<id>`, `admin:<id>`, `system`, or `client` (an unauthenticated
    /// caller).
    pub actor: String,
    /// The client address.
    pub ip: Option<String>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// Success or failure.
    pub outcome: AuditOutcome,
    /// A small JSON object (reasons, roles…), as JSON text.
    pub details: String,
    /// When the record may be purged (the retention).
    pub expires_at: OffsetDateTime,
    /// When the webhook should next be tried; `None` when there is nothing to deliver.
    pub webhook_due: Option<OffsetDateTime>,
    /// Delivery attempts so far.
    pub webhook_attempts: u32,
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this user's records.
    pub user_id: Option<Uuid>,
    /// Only records of these events (any, when empty).
    pub events: Vec<String>,
    /// Only records past this id: older ones when `newest_first`, newer ones otherwise.
    pub after: Option<Uuid>,
    /// At most this many.
    pub limit: u32,
    /// Newest first (the admin API, the activity page) or oldest first (`audit tail`).
    pub newest_first: bool,
}

/// A change the store applies in one transaction with its audit records.
#[derive(Debug, Clone, Copy)]
pub enum AuditedChange<'a> {
    /// No change: the records alone (a refused login).
    Nothing,
    /// Inserts a user (registration); [`StoreError::Conflict`] when the name is taken.
    CreateUser(&'a UserRecord),
    /// Starts a refresh family (a login).
    CreateFamily(&'a FamilyRecord),
    /// Starts a server-side session (a login).
    CreateSession(&'a SessionRecord),
    /// Deletes a family (of `user_id`, when given).
    DeleteFamily {
        /// The family.
        id: Uuid,
        /// Its owner, when the caller must own it.
        user_id: Option<Uuid>,
    },
    /// Deletes one of the user's server-side sessions by its public id.
    DeleteSessionById {
        /// The session's public id.
        id: Uuid,
        /// Its owner.
        user_id: Uuid,
    },
    /// Deletes the server-side session whose cookie hashes to this.
    DeleteSession(TokenHash),
    /// Ends every login of a user: bumps the login generation, deletes the families and
    /// sessions but the kept ones. Touches nothing when the user does not exist.
    EndLogins {
        /// The user.
        user_id: Uuid,
        /// A family to keep.
        keep_family: Option<Uuid>,
        /// A session to keep.
        keep_session: Option<Uuid>,
    },
    /// Replaces a user's password hash and ends the other logins (as [`Self::EndLogins`]).
    SetPassword {
        /// The user.
        user_id: Uuid,
        /// The new PHC hash (never in a record).
        hash: &'a str,
        /// A family to keep.
        keep_family: Option<Uuid>,
        /// A session to keep.
        keep_session: Option<Uuid>,
    },
    /// Sets a user's roles.
    SetRoles {
        /// The user.
        user_id: Uuid,
        /// The roles.
        roles: &'a [String],
    },
    /// Disables (ending every login) or enables a user.
    SetDisabled {
        /// The user.
        user_id: Uuid,
        /// The new state.
        disabled: bool,
    },
}

impl AuditedChange<'_> {
    /// Whether the records are written even when the change touched no row (only for
    /// [`AuditedChange::Nothing`]).
    #[must_use]
    pub const fn records_always(&self) -> bool {
        matches!(self, Self::Nothing)
    }
}

/// The audit trail. Every method is one atomic operation.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Applies `change` and inserts `records` in one transaction. Returns how many rows the
    /// change touched; when that is 0 (and the change is not [`AuditedChange::Nothing`]), no
    /// record is written. A failure writes nothing at all. With no records it is the plain
    /// change.
    async fn audited(
        &self,
        change: AuditedChange<'_>,
        records: &[AuditRecord],
    ) -> Result<u64, StoreError>;
    /// Records matching `query`, in its order.
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
    /// Claims up to `limit` records whose webhook is due at `now`, oldest first: each one's
    /// `webhook_due` moves to `lease_until` and its attempts go up by one, atomically per
    /// record, so two workers never claim one record at once. Returns them after the claim.
    async fn claim_audit_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;
    /// Sets a record's next delivery time: `None` once delivered.
    async fn set_audit_delivery(
        &self,
        id: Uuid,
        due: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;
    /// Deletes the records whose retention ended at `now`; returns how many (part of
    /// [`super::Store::purge_expired`]).
    async fn purge_expired_audit(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
