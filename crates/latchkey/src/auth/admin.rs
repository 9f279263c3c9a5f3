//! Administration: listing users page by page, setting roles, revoking a user's logins,
//! disabling and enabling accounts, marking an email verified. Every operation first checks, against the store, that the
//! caller is still an enabled administrator: a demoted or disabled admin loses these powers at
//! once, not when their access token expires.

use uuid::Uuid;

use super::audit::{Actor, AuditEvent, Event};
use super::{AuthError, AuthService, Profile};
use crate::store::{AuditQuery, AuditedChange};

/// The role that may use the admin API.
pub const ADMIN_ROLE: &str = "admin";
/// Page size when the caller names none.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// The largest page size; larger requests are clamped to it.
pub const MAX_PAGE_SIZE: u32 = 200;
/// The most roles one user may hold.
pub const MAX_ROLES: usize = 32;
const MAX_ROLE_LEN: usize = 64;

/// One page of users.
#[derive(Debug)]
pub struct UserPage {
    /// The users, in id (creation) order.
    pub users: Vec<Profile>,
    /// The `after` value of the next page, when there is one.
    pub next: Option<Uuid>,
}

/// Checks and normalizes a role list: each role 1-64 characters of `a-z 0-9 _ : -`, at most
/// 32 roles; duplicates are dropped, order is kept.
///
/// # Errors
/// [`AuthError::InvalidInput`] naming the first unacceptable role.
pub fn validate_roles(roles: Vec<String>) -> Result<Vec<String>, AuthError> {
    let mut out: Vec<String> = Vec::with_capacity(roles.len());
    for role in roles {
        let ok = (1..=MAX_ROLE_LEN).contains(&role.len())
            && role
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b':' | b'-'));
        if !ok {
            return Err(AuthError::InvalidInput(format!(
                "roles are 1 to {MAX_ROLE_LEN} characters of a-z, 0-9, `_`, `:` and `-`"
            )));
        }
        if !out.contains(&role) {
            out.push(role);
        }
    }
    if out.len() > MAX_ROLES {
        return Err(AuthError::InvalidInput(format!(
            "a user holds at most {MAX_ROLES} roles"
        )));
    }
    Ok(out)
}

/// The admin area: what a caller holding the admin role may do to other users. Every call
/// re-reads the caller from the store first ([`Admin::check_admin`]).
pub struct Admin<'a> {
    auth: &'a AuthService,
}

impl AuthService {
    /// The admin area.
    #[must_use]
    pub fn admin(&self) -> Admin<'_> {
        Admin { auth: self }
    }
}

impl Admin<'_> {
    async fn check_admin(&self, caller: Uuid) -> Result<(), AuthError> {
        // The database, never the user cache: a demoted or disabled admin loses these
        // powers on the next request, on every instance.
        match self.auth.store.find_user_by_id(caller).await? {
            Some(user) if !user.disabled && user.roles.iter().any(|r| r == ADMIN_ROLE) => Ok(()),
            _ => Err(AuthError::Forbidden),
        }
    }

    /// Up to `limit` users (clamped to 1..=200) with ids after `after`.
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] when `caller` is no longer an enabled admin, or a store failure.
    pub async fn list_users(
        &self,
        caller: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<UserPage, AuthError> {
        self.check_admin(caller).await?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        // One extra row tells whether there is a next page without a second query.
        let mut users = self.auth.store.list_users(after, limit + 1).await?;
        let next = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| u.id)
        } else {
            None
        };
        Ok(UserPage {
            users: users.iter().map(Profile::from).collect(),
            next,
        })
    }

    /// Replaces the roles of user `id`; they reach access tokens at the user's next refresh.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for unacceptable roles, [`AuthError::NotFound`],
    /// [`AuthError::Forbidden`], or a store failure.
    pub async fn set_roles(
        &self,
        caller: Uuid,
        id: Uuid,
        roles: Vec<String>,
    ) -> Result<Profile, AuthError> {
        self.check_admin(caller).await?;
        let roles = validate_roles(roles)?;
        let event = Event::success(AuditEvent::RolesChanged, Some(id), Actor::Admin(caller))
            .with(serde_json::json!({ "roles": roles }));
        let change = AuditedChange::SetRoles {
            user_id: id,
            roles: &roles,
        };
        if self.auth.audited(change, None, event).await? == 0 {
            return Err(AuthError::NotFound);
        }
        self.auth.users.remove(&id);
        tracing::info!(admin.id = %caller, user.id = %id, ?roles, "roles set");
        self.auth
            .store
            .find_user_by_id(id)
            .await?
            .map(|user| Profile::from(&user))
            .ok_or(AuthError::NotFound)
    }

    /// Ends every login of user `id` (refresh families and cookie sessions): their refresh
    /// tokens stop working now. Returns 1 (the user whose logins ended).
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::Forbidden`], or a store failure.
    pub async fn end_logins(&self, caller: Uuid, id: Uuid) -> Result<u64, AuthError> {
        self.check_admin(caller).await?;
        let event = Event::success(AuditEvent::LoginsRevoked, Some(id), Actor::Admin(caller));
        let change = AuditedChange::EndLogins {
            user_id: id,
            keep_family: None,
            keep_session: None,
        };
        // One transaction: the generation, every family and session, and the record.
        let revoked = self.auth.audited(change, None, event).await?;
        if revoked == 0 {
            return Err(AuthError::NotFound);
        }
        self.auth.users.remove(&id);
        tracing::info!(admin.id = %caller, user.id = %id, revoked, "sessions revoked");
        Ok(revoked)
    }

    /// Marks user `id`'s email address verified (or not), as if the user had followed a
    /// verification link.
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::InvalidInput`] when the account has no address to
    /// verify, [`AuthError::Forbidden`], or a store failure.
    pub async fn set_email_verified(
        &self,
        caller: Uuid,
        id: Uuid,
        verified: bool,
    ) -> Result<Profile, AuthError> {
        self.check_admin(caller).await?;
        let user = self
            .auth
            .store
            .find_user_by_id(id)
            .await?
            .ok_or(AuthError::NotFound)?;
        let profile = self.auth.set_email_verified(user, verified).await?;
        tracing::info!(admin.id = %caller, user.id = %id, verified, "email verification set");
        let event = Event::success(
            AuditEvent::EmailVerificationSet,
            Some(id),
            Actor::Admin(caller),
        )
        .with(serde_json::json!({ "verified": verified }));
        self.auth.record(None, event).await;
        Ok(profile)
    }

    /// Disables (and ends every login of) or enables user `id`. A disabled user can neither
    /// log in nor refresh.
    ///
    /// # Errors
    /// [`AuthError::NotFound`], [`AuthError::Forbidden`], or a store failure.
    pub async fn set_disabled(
        &self,
        caller: Uuid,
        id: Uuid,
        disabled: bool,
    ) -> Result<(), AuthError> {
        self.check_admin(caller).await?;
        let kind = if disabled {
            AuditEvent::Disabled
        } else {
            AuditEvent::Enabled
        };
        let event = Event::success(kind, Some(id), Actor::Admin(caller));
        // One transaction: the flag, (when disabling) every login, and the record. A refresh
        // racing with this sees the disabled flag (it reads the user after rotating) or finds
        // its family gone.
        let change = AuditedChange::SetDisabled {
            user_id: id,
            disabled,
        };
        if self.auth.audited(change, None, event).await? == 0 {
            return Err(AuthError::NotFound);
        }
        self.auth.users.remove(&id);
        tracing::info!(admin.id = %caller, user.id = %id, disabled, "account state changed");
        Ok(())
    }
}

impl Admin<'_> {
    /// Up to `limit` audit records (clamped to 1..=200) matching `query`, newest first;
    /// `next` is the `after` of the following page.
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] when `caller` is no longer an enabled admin, or a store failure.
    pub async fn audit(
        &self,
        caller: Uuid,
        mut query: AuditQuery,
    ) -> Result<(Vec<super::audit::AuditEntry>, Option<Uuid>), AuthError> {
        self.check_admin(caller).await?;
        let limit = query.limit.clamp(1, super::audit::MAX_AUDIT_PAGE);
        query.limit = limit + 1;
        query.newest_first = true;
        let mut entries = self.auth.audit_entries(&query).await?;
        let next = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.id)
        } else {
            None
        };
        Ok((entries, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn valid_roles_are_kept_in_order_without_duplicates() {
        let roles = validate_roles(strings(&["admin", "files:write", "a-b_c", "admin"])).unwrap();
        assert_eq!(roles, strings(&["admin", "files:write", "a-b_c"]));
        assert_eq!(validate_roles(Vec::new()).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn malformed_roles_are_refused() {
        for bad in ["", "Admin", "has space", "é", &"x".repeat(65)] {
            assert!(
                matches!(
                    validate_roles(strings(&[bad])),
                    Err(AuthError::InvalidInput(_))
                ),
                "{bad:?}"
            );
        }
        assert!(validate_roles(strings(&[&"x".repeat(64)])).is_ok());
    }

    #[test]
    fn more_than_32_distinct_roles_are_refused() {
        let many: Vec<String> = (0..33).map(|i| format!("r{i}")).collect();
        assert!(validate_roles(many.clone()).is_err());
        assert!(validate_roles(many[..32].to_vec()).is_ok());
    }
}
