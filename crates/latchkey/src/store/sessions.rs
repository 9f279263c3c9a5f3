//! Server-side (cookie) sessions: the record and the [`SessionStore`] capability.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TokenHash};

/// A server-side session as stored: the cookie's secret only as a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public id (shown in `/auth/sessions`), not the cookie value.
    pub id: Uuid,
    /// SHA-256 of the cookie's secret id.
    pub token_hash: TokenHash,
    /// Owner.
    pub user_id: Uuid,
    /// What the application keeps in the session (a JSON object).
    pub data: serde_json::Value,
    /// The synchronizer CSRF token of this session.
    pub csrf_token: String,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Last request.
    pub last_used_at: OffsetDateTime,
    /// End by inactivity (moves forward with use, never past the absolute end).
    pub idle_expires_at: OffsetDateTime,
    /// Absolute end.
    pub absolute_expires_at: OffsetDateTime,
    /// The browser's User-Agent at login.
    pub user_agent: Option<String>,
    /// The client address at login.
    pub ip: Option<String>,
    /// How the user authenticated at login (RFC 8176 values).
    pub amr: Vec<String>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("idle_expires_at", &self.idle_expires_at)
            .field("absolute_expires_at", &self.absolute_expires_at)
            .finish_non_exhaustive()
    }
}

/// Server-side (cookie) sessions.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new server-side session.
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// Finds the live session with this token hash and marks it used: `last_used_at = now`,
    /// idle end moved to `idle_expires_at` (capped at the absolute end). One atomic step.
    async fn use_session(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces the application data of a session; false when there is none.
    async fn set_session_data(
        &self,
        token_hash: TokenHash,
        data: &serde_json::Value,
    ) -> Result<bool, StoreError>;
    /// Deletes the session with this token hash; true when one was deleted.
    async fn delete_session(&self, token_hash: TokenHash) -> Result<bool, StoreError>;
    /// Deletes the session with this public id (of `user_id`); true when one was deleted.
    async fn delete_session_by_id(&self, id: Uuid, user_id: Uuid) -> Result<bool, StoreError>;
    /// Deletes all of a user's sessions but `except`; returns how many.
    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError>;
    /// A user's live sessions, newest first.
    async fn list_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// Deletes the sessions past their idle or absolute end at `now`; returns how many (part
    /// of [`Store::purge_expired`]).
    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
