//! What the domain hands out about users and their logins: its own types, so the HTTP layer
//! never sees a store record.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{FamilyRecord, IdentityRecord, SessionRecord, UserRecord};

/// A user as callers may see it (no password hash, no login generation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The user id.
    pub id: Uuid,
    /// The username as registered.
    pub username: String,
    /// The email address, if any.
    pub email: Option<String>,
    /// Whether the email address was verified.
    pub email_verified: bool,
    /// The roles.
    pub roles: Vec<String>,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}

impl From<&UserRecord> for Profile {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            roles: user.roles.clone(),
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

/// A provider account linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentity {
    /// The provider's configured name.
    pub provider: String,
    /// The provider's `sub`.
    pub subject: String,
    /// The email the provider gave at the last sign-in, if any.
    pub email: Option<String>,
}

impl From<&IdentityRecord> for LinkedIdentity {
    fn from(identity: &IdentityRecord) -> Self {
        Self {
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
        }
    }
}

/// Which kind of login a [`Login`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// A refresh family: a Bearer client's chain of rotated refresh tokens.
    RefreshFamily,
    /// A cookie session kept in the store.
    CookieSession,
}

/// One live login of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The refresh family's or cookie session's id.
    pub id: Uuid,
    /// Which of the two it is.
    pub kind: LoginKind,
    /// When it started.
    pub created_at: OffsetDateTime,
    /// When it was last used.
    pub last_used_at: OffsetDateTime,
    /// When it ends at the latest.
    pub expires_at: OffsetDateTime,
    /// The User-Agent it started from.
    pub user_agent: Option<String>,
    /// The address it started from.
    pub ip: Option<String>,
}

impl From<FamilyRecord> for Login {
    fn from(family: FamilyRecord) -> Self {
        Self {
            id: family.id,
            kind: LoginKind::RefreshFamily,
            created_at: family.created_at,
            last_used_at: family.last_used_at,
            expires_at: family.expires_at,
            user_agent: family.user_agent,
            ip: family.ip,
        }
    }
}

impl From<SessionRecord> for Login {
    fn from(session: SessionRecord) -> Self {
        Self {
            id: session.id,
            kind: LoginKind::CookieSession,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.absolute_expires_at,
            user_agent: session.user_agent,
            ip: session.ip,
        }
    }
}
