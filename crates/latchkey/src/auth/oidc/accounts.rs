//! Which user a provider identity signs in as: the linked one, the logged-in user who is
//! linking, the one user whose email Latchkey verified and the provider vouches for (only when
//! configured), or a new user without a password whose username is derived from the
//! provider's claims.

use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::OAuthError;
use super::id_token::IdentityClaims;
use crate::auth::audit::{Actor, AuditEvent, Event};
use crate::auth::password::normalize_username;
use crate::auth::{AuthError, AuthService, LinkedIdentity};
use crate::store::{IdentityRecord, StoreError, UnlinkOutcome, UserRecord};

/// How many usernames are tried before giving up on a new account.
const USERNAME_ATTEMPTS: usize = 6;
/// Derived usernames are cut to this many characters before a suffix is added.
const USERNAME_BASE_CHARS: usize = 40;

/// Username stems from the claims, best first: `preferred_username`, the email's local part,
/// the name, and finally the provider's name.
fn username_stems(claims: &IdentityClaims, provider: &str) -> Vec<String> {
    let local = claims
        .email
        .as_deref()
        .and_then(|e| e.split('@').next())
        .map(str::to_owned);
    let name = claims.name.as_deref().map(|n| n.replace(' ', "."));
    [claims.preferred_username.clone(), local, name]
        .into_iter()
        .flatten()
        .map(|raw| {
            raw.nfkc()
                .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
                .take(USERNAME_BASE_CHARS)
                .collect::<String>()
                .trim_matches(['.', '_', '-'])
                .to_owned()
        })
        .filter(|s| s.chars().any(char::is_alphanumeric))
        .chain(std::iter::once(format!("{provider}-user")))
        .collect()
}

fn random_suffix() -> String {
    let mut bytes = [0u8; 3];
    let _ = crate::auth::fill_random(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl AuthService {
    pub(super) async fn resolve_oauth_user(
        &self,
        provider: &str,
        claims: &IdentityClaims,
        link_user: Option<Uuid>,
    ) -> Result<UserRecord, AuthError> {
        let identity = IdentityRecord {
            provider: provider.to_owned(),
            subject: claims.sub.clone(),
            user_id: link_user.unwrap_or_else(Uuid::now_v7),
            email: claims.email.clone(),
            created_at: self.now(),
        };
        let existing = self.store.find_identity(provider, &claims.sub).await?;
        if let Some(user_id) = link_user {
            match existing {
                Some(found) if found.user_id == user_id => {}
                Some(_) => return Err(OAuthError::IdentityTaken.into()),
                None => self.link(&identity).await?,
            }
            return self.active_user(user_id).await;
        }
        if let Some(found) = existing {
            return self.active_user(found.user_id).await;
        }
        let verified_email = claims.email.as_deref().filter(|_| claims.email_verified);
        if let Some(email) = verified_email {
            // Only an email that Latchkey verified itself names its owner: anyone can register
            // a password account with someone else's address (account pre-hijacking), so an
            // unverified local email neither receives the identity nor blocks its sign-up.
            let owners: Vec<UserRecord> = self
                .store
                .find_users_by_email(email, 20)
                .await?
                .into_iter()
                .filter(|u| u.email_verified)
                .take(2)
                .collect();
            match owners.as_slice() {
                [] => {}
                [owner] if self.config.oauth.auto_link_verified_email => {
                    let identity = IdentityRecord {
                        user_id: owner.id,
                        ..identity
                    };
                    self.link(&identity).await?;
                    tracing::info!(user.id = %owner.id, "identity linked by verified email");
                    return self.active_user(owner.id).await;
                }
                _ => return Err(OAuthError::AccountExists.into()),
            }
        }
        self.create_oauth_user(provider, claims, verified_email, identity)
            .await
    }

    async fn link(&self, identity: &IdentityRecord) -> Result<(), AuthError> {
        let linked = self.link_in_store(identity).await;
        self.identity_cache.remove(&identity.user_id);
        if linked.is_ok() {
            let user = identity.user_id;
            let event = Event::success(AuditEvent::IdentityLinked, Some(user), Actor::User(user))
                .with(serde_json::json!({ "provider": identity.provider }));
            self.record(None, event).await;
        }
        linked
    }

    async fn link_in_store(&self, identity: &IdentityRecord) -> Result<(), AuthError> {
        match self.store.link_identity(identity).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict) => {
                // A concurrent callback for the same account may have linked it just now.
                match self
                    .store
                    .find_identity(&identity.provider, &identity.subject)
                    .await?
                {
                    Some(found) if found.user_id == identity.user_id => Ok(()),
                    _ => Err(OAuthError::IdentityTaken.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn active_user(&self, user_id: Uuid) -> Result<UserRecord, AuthError> {
        match self.store.find_user_by_id(user_id).await? {
            Some(user) if !user.disabled => Ok(user),
            Some(_) => Err(OAuthError::AccountDisabled.into()),
            None => Err(AuthError::NotFound),
        }
    }

    async fn create_oauth_user(
        &self,
        provider: &str,
        claims: &IdentityClaims,
        verified_email: Option<&str>,
        identity: IdentityRecord,
    ) -> Result<UserRecord, AuthError> {
        let stems = username_stems(claims, provider);
        let mut names = stems.clone();
        for i in names.len()..USERNAME_ATTEMPTS {
            let stem = &stems[i % stems.len().max(1)];
            names.push(format!("{stem}-{}", random_suffix()));
        }
        for name in names.into_iter().take(USERNAME_ATTEMPTS) {
            let Ok(username) = normalize_username(&name) else {
                continue;
            };
            let user = UserRecord {
                id: identity.user_id,
                username: username.display,
                username_key: username.key,
                // Only an email the provider vouches for is taken into the account.
                email: verified_email.map(str::to_owned),
                password_hash: None,
                roles: Vec::new(),
                disabled: false,
                email_verified: false,
                generation: 0,
                created_at: identity.created_at,
            };
            match self.store.create_user_with_identity(&user, &identity).await {
                Ok(()) => {
                    tracing::info!(user.id = %user.id, "user created from provider identity");
                    let event =
                        Event::success(AuditEvent::Registered, Some(user.id), Actor::Client)
                            .with(serde_json::json!({ "provider": provider }));
                    self.record(None, event).await;
                    return Ok(user);
                }
                Err(StoreError::Conflict) => {
                    // Either the username is taken (try the next) or a concurrent callback
                    // created this identity's user (sign in as it).
                    if let Some(found) = self.store.find_identity(provider, &claims.sub).await? {
                        return self.active_user(found.user_id).await;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::Internal(
            "no free username could be derived for a new account".into(),
        ))
    }

    /// The provider accounts linked to the user.
    ///
    /// # Errors
    /// A store failure.
    pub async fn identities(&self, user_id: Uuid) -> Result<Vec<LinkedIdentity>, AuthError> {
        let found = self.identity_records(user_id).await?;
        Ok(found.iter().map(LinkedIdentity::from).collect())
    }

    async fn identity_records(&self, user_id: Uuid) -> Result<Arc<Vec<IdentityRecord>>, AuthError> {
        if let Some(found) = self.identity_cache.get(&user_id) {
            return Ok(found);
        }
        let found = Arc::new(self.store.list_identities(user_id).await?);
        let until = std::time::Instant::now() + super::super::USER_CACHE_TTL;
        self.identity_cache.insert(user_id, found.clone(), until);
        Ok(found)
    }

    /// Unlinks the user's account of `provider`.
    ///
    /// # Errors
    /// [`AuthError::NotFound`] when none is linked, [`AuthError::LastLoginMethod`] when it is
    /// the user's only way to log in, or a store failure.
    pub async fn unlink_identity(&self, user_id: Uuid, provider: &str) -> Result<(), AuthError> {
        let outcome = self.store.unlink_identity(user_id, provider).await?;
        self.identity_cache.remove(&user_id);
        match outcome {
            UnlinkOutcome::Unlinked => {
                tracing::info!(user.id = %user_id, provider, "provider account unlinked");
                let event = Event::success(
                    AuditEvent::IdentityUnlinked,
                    Some(user_id),
                    Actor::User(user_id),
                )
                .with(serde_json::json!({ "provider": provider }));
                self.record(None, event).await;
                Ok(())
            }
            UnlinkOutcome::NotLinked => Err(AuthError::NotFound),
            UnlinkOutcome::LastLoginMethod => Err(AuthError::LastLoginMethod),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(preferred: Option<&str>, email: Option<&str>, name: Option<&str>) -> IdentityClaims {
        IdentityClaims {
            sub: "1".into(),
            email: email.map(str::to_owned),
            email_verified: true,
            preferred_username: preferred.map(str::to_owned),
            name: name.map(str::to_owned),
        }
    }

    #[test]
    fn usernames_come_from_the_claims_best_first() {
        let stems = username_stems(
            &claims(
                Some("jane doe!"),
                Some("j.doe@example.com"),
                Some("Jane Doe"),
            ),
            "google",
        );
        assert_eq!(stems, ["janedoe", "j.doe", "Jane.Doe", "google-user"]);
        let stems = username_stems(&claims(None, None, Some("  ")), "corp");
        assert_eq!(stems, ["corp-user"]);
    }

    #[test]
    fn every_derived_username_is_acceptable() {
        let long = "x".repeat(200);
        for stem in username_stems(&claims(Some(&long), Some("ünïcödé@example.com"), None), "g")
        {
            assert!(normalize_username(&stem).is_ok(), "{stem}");
        }
    }
}
