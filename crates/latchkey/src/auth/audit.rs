//! The audit trail's domain side: the events, who acted, and how a record is made.
//!
//! Records are built here and handed to the store together with the change they describe
//! ([`crate::store::AuditStore::audited`]), so both are written in one transaction. A record
//! never holds a secret: details are reasons, roles, providers, counts.

use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AuthError, AuthService, ClientInfo, to_time};
use crate::store::{AuditOutcome, AuditQuery, AuditRecord, AuditedChange};

tokio::task_local! {
    /// The client of the request being served (set by the HTTP layer around every request),
    /// for the records of operations whose signature carries no client.
    pub static REQUEST_CLIENT: ClientInfo;
}

/// A security event. New events are new variants with a new name; names never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    /// A user registered (or was created by the CLI).
    Registered,
    /// A sign-in, successful or refused (`details.reason`: `bad_password`, `unknown_user`,
    /// `disabled`, `throttled`).
    Login,
    /// An old refresh token was presented: the family was revoked.
    RefreshReuseDetected,
    /// One login ended by its own token or cookie.
    Logout,
    /// Every login of the user ended (by the user).
    LogoutAll,
    /// The password was changed.
    PasswordChanged,
    /// One login was ended from the sessions list.
    SessionRevoked,
    /// An admin set the user's roles.
    RolesChanged,
    /// An admin ended every login of the user.
    LoginsRevoked,
    /// An admin disabled the user.
    Disabled,
    /// An admin enabled the user.
    Enabled,
    /// The signing keys were rotated.
    KeyRotated,
    /// An upstream identity was linked.
    IdentityLinked,
    /// An upstream identity was unlinked.
    IdentityUnlinked,
    /// The password was set with an emailed reset token (every login ended).
    PasswordReset,
    /// The account's email address was verified with an emailed token.
    EmailVerified,
    /// An admin marked the email address verified or not verified.
    EmailVerificationSet,
}

impl AuditEvent {
    /// Every event, for validating filters.
    pub const ALL: &'static [Self] = &[
        Self::Registered,
        Self::Login,
        Self::RefreshReuseDetected,
        Self::Logout,
        Self::LogoutAll,
        Self::PasswordChanged,
        Self::SessionRevoked,
        Self::RolesChanged,
        Self::LoginsRevoked,
        Self::Disabled,
        Self::Enabled,
        Self::KeyRotated,
        Self::IdentityLinked,
        Self::IdentityUnlinked,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::EmailVerificationSet,
    ];

    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "user.registered",
            Self::Login => "login",
            Self::RefreshReuseDetected => "refresh.reuse_detected",
            Self::Logout => "logout",
            Self::LogoutAll => "logout.all",
            Self::PasswordChanged => "password.changed",
            Self::SessionRevoked => "session.revoked",
            Self::RolesChanged => "admin.roles_changed",
            Self::LoginsRevoked => "admin.logins_revoked",
            Self::Disabled => "admin.user_disabled",
            Self::Enabled => "admin.user_enabled",
            Self::KeyRotated => "keys.rotated",
            Self::IdentityLinked => "identity.linked",
            Self::IdentityUnlinked => "identity.unlinked",
            Self::PasswordReset => "password.reset",
            Self::EmailVerified => "email.verified",
            Self::EmailVerificationSet => "admin.email_verification_set",
        }
    }

    /// The event with this name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == name)
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The user themselves.
    User(Uuid),
    /// An administrator acting on someone.
    Admin(Uuid),
    /// The server or its operator (CLI).
    System,
    /// An unauthenticated caller.
    Client,
}

impl Actor {
    fn text(self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::Admin(id) => format!("admin:{id}"),
            Self::System => "system".to_owned(),
            Self::Client => "client".to_owned(),
        }
    }
}

/// One event to record, before it gets its id, time and client.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub event: AuditEvent,
    /// To whom.
    pub user_id: Option<Uuid>,
    /// By whom.
    pub actor: Actor,
    /// Whether it succeeded.
    pub outcome: AuditOutcome,
    /// A small JSON object (never a secret).
    pub details: Value,
}

impl Event {
    /// A successful `event` on `user_id` by `actor`.
    #[must_use]
    pub fn success(event: AuditEvent, user_id: Option<Uuid>, actor: Actor) -> Self {
        Self {
            event,
            user_id,
            actor,
            outcome: AuditOutcome::Success,
            details: json!({}),
        }
    }

    /// The same with `details`.
    #[must_use]
    pub fn with(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The record for the audit API and the CLI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    /// The record's id (UUIDv7), also the webhook's deduplication key.
    pub id: Uuid,
    /// RFC 3339 time.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The event name.
    pub event: String,
    /// The account concerned.
    pub user_id: Option<Uuid>,
    /// Who acted.
    pub actor: String,
    /// The client address.
    pub ip: Option<String>,
    /// The client's User-Agent.
    pub user_agent: Option<String>,
    /// `success` or `failure`.
    pub outcome: &'static str,
    /// The details object.
    pub details: Value,
}

impl From<&AuditRecord> for AuditEntry {
    fn from(r: &AuditRecord) -> Self {
        Self {
            id: r.id,
            at: r.at,
            event: r.event.clone(),
            user_id: r.user_id,
            actor: r.actor.clone(),
            ip: r.ip.clone(),
            user_agent: r.user_agent.clone(),
            outcome: r.outcome.as_str(),
            details: serde_json::from_str(&r.details).unwrap_or_else(|_| json!({})),
        }
    }
}

/// The most records one page of the audit API holds.
pub const MAX_AUDIT_PAGE: u32 = 200;

impl AuthService {
    /// Whether events are recorded.
    #[must_use]
    pub fn audit_enabled(&self) -> bool {
        self.config.audit.enabled
    }

    /// The records of `events` (none when the audit trail is off), with the client of
    /// `client`, else of the request being served.
    pub(crate) fn audit_records(
        &self,
        client: Option<&ClientInfo>,
        events: impl IntoIterator<Item = Event>,
    ) -> Vec<AuditRecord> {
        if !self.config.audit.enabled {
            return Vec::new();
        }
        let now = self.now();
        let from_request = if client.is_none() {
            REQUEST_CLIENT.try_with(Clone::clone).ok()
        } else {
            None
        };
        let client = client.or(from_request.as_ref());
        let expires_at = now + to_time(self.config.audit.retention);
        let webhook_due = self.config.audit.webhook_url.as_ref().map(|_| now);
        events
            .into_iter()
            .map(|e| AuditRecord {
                id: Uuid::now_v7(),
                at: now,
                event: e.event.as_str().to_owned(),
                user_id: e.user_id,
                actor: e.actor.text(),
                ip: client.and_then(|c| c.ip.clone()),
                user_agent: client.and_then(|c| c.user_agent.clone()),
                outcome: e.outcome,
                details: e.details.to_string(),
                expires_at,
                webhook_due,
                webhook_attempts: 0,
            })
            .collect()
    }

    /// Applies `change` with the record of `event` in one transaction; returns the rows the
    /// change touched.
    pub(crate) async fn audited(
        &self,
        change: AuditedChange<'_>,
        client: Option<&ClientInfo>,
        event: Event,
    ) -> Result<u64, AuthError> {
        let records = self.audit_records(client, [event]);
        Ok(self.store.audited(change, &records).await?)
    }

    /// Records an event that changes nothing else (a refused login), or one whose change the
    /// store already made in its own atomic step (key rotation, identity links). A failure
    /// to record is logged, never turned into the caller's error.
    pub(crate) async fn record(&self, client: Option<&ClientInfo>, event: Event) {
        let records = self.audit_records(client, [event]);
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.store.audited(AuditedChange::Nothing, &records).await {
            tracing::error!(error = %e, "writing an audit record failed");
        }
    }

    /// Records matching `query` (the audit API, `audit tail`).
    ///
    /// # Errors
    /// A store failure.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, AuthError> {
        let records = self.store.list_audit(query).await?;
        Ok(records.iter().map(AuditEntry::from).collect())
    }

    /// The user's own recent sign-ins (successful and refused), newest first, for a "was
    /// this you?" page.
    ///
    /// # Errors
    /// A store failure.
    pub async fn activity(&self, user_id: Uuid, limit: u32) -> Result<Vec<AuditEntry>, AuthError> {
        let query = AuditQuery {
            user_id: Some(user_id),
            events: vec![AuditEvent::Login.as_str().to_owned()],
            after: None,
            limit: limit.clamp(1, MAX_AUDIT_PAGE),
            newest_first: true,
        };
        self.audit_entries(&query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = AuditEvent::ALL.iter().map(|e| e.as_str()).collect();
        for e in AuditEvent::ALL {
            assert_eq!(AuditEvent::parse(e.as_str()), Some(*e));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditEvent::ALL.len());
        assert_eq!(AuditEvent::parse("nope"), None);
    }

    #[test]
    fn actors_are_written_as_documented() {
        let id = Uuid::nil();
        assert_eq!(Actor::User(id).text(), format!("user:{id}"));
        assert_eq!(Actor::Admin(id).text(), format!("admin:{id}"));
        assert_eq!(Actor::System.text(), "system");
        assert_eq!(Actor::Client.text(), "client");
    }
}
