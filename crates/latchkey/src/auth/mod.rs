//! The domain: registration, login, refresh rotation, logout, sessions, password changes and
//! sign-in with upstream OpenID Connect providers.
//! No HTTP types and no database driver types live here; everything goes through [`Store`].

pub mod admin;
pub mod audit;
pub mod email;
mod error;
pub mod import;
pub mod keys;
pub mod legacy_hash;
pub mod mfa;
pub mod oidc;
pub mod passkeys;
pub mod password;
mod reauth;
pub mod refresh;
pub mod sessions;
mod startup;
pub mod throttle;
mod views;
pub mod webhook;

#[cfg(test)]
mod clock_tests;
#[cfg(test)]
mod passkey_tests;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use latchkey_guard::jsonwebtoken::jwk::JwkSet;
use latchkey_guard::{AccessClaims, Clock, TtlCache, Verifier};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

pub use error::{AuthError, StoreError};
use keys::KeyRing;
use password::{PasswordHasherPool, check_new_password, normalize_username};
use refresh::hash_token;
use startup::Secrets;
pub use startup::verifier_for;
pub use views::{LinkedIdentity, Login, LoginKind, Profile};

use crate::config::Config;
use crate::metrics::RefreshOutcome;
use crate::store::{
    AuditOutcome, AuditedChange, FamilyRecord, RotateOutcome, RotateRequest, Store, UserRecord,
};
use audit::{Actor, AuditEvent, Event};

const REFRESH_KEY_NAME: &str = "refresh_token_hmac_v1";
/// How long `/auth/me` may answer from the in-process user cache.
const USER_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Fills `buf` from the operating system's CSPRNG (`getrandom`).
///
/// Used rather than aws-lc's generator for secrets and ids: aws-lc seeds its generator from
/// CPU jitter entropy on first use, which costs tens of milliseconds at start-up.
///
/// # Errors
/// [`AuthError::Internal`] when the OS has no randomness to give.
pub fn fill_random(buf: &mut [u8]) -> Result<(), AuthError> {
    getrandom::fill(buf).map_err(|e| AuthError::Internal(format!("randomness: {e}")))
}

/// Who is calling, as far as the network tells.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client address: the TCP peer, or what a trusted proxy says it is (decided once per
    /// request by `http::request_context`).
    pub ip: Option<String>,
    /// The User-Agent header, truncated.
    pub user_agent: Option<String>,
    /// The refresh cookie the browser sent along, if any: a live one of the account being
    /// logged in to marks a known device, which others' failures do not lock out.
    pub refresh_token: Option<SecretString>,
}

/// A freshly issued pair: the access token for the body, the refresh token for the cookie.
#[derive(Debug)]
pub struct Issued {
    /// The signed access token.
    pub access_token: SecretString,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The refresh token for the cookie.
    pub refresh_token: SecretString,
    /// Seconds until the refresh token expires (the cookie's Max-Age).
    pub refresh_max_age: u64,
    /// The user it was issued to.
    pub user: Profile,
}

/// The login to keep when others are ended (the caller's own).
#[derive(Debug, Clone, Copy, Default)]
pub struct Keep {
    /// A refresh family (Bearer callers).
    pub refresh_family: Option<Uuid>,
    /// A cookie session kept in the store (session callers).
    pub cookie_session: Option<Uuid>,
}

/// Registration input.
#[derive(Debug)]
pub struct Registration {
    /// Raw username.
    pub username: String,
    /// Password.
    pub password: SecretString,
    /// Optional email.
    pub email: Option<String>,
    /// Roles (the CLI only; the public endpoint registers without roles), checked like the
    /// admin API's.
    pub roles: Vec<String>,
}

/// The authentication service: one per server, shared by all handlers.
///
/// It needs keys from the store before it can issue or check tokens: the signing keys, the
/// refresh-token key and the session-cookie key. Until [`AuthService::load`] has fetched them
/// (the store may be unreachable at start) it is not [ready](AuthService::is_ready) and those
/// operations answer [`StoreError::Unavailable`].
pub struct AuthService {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    passwords: PasswordHasherPool,
    keys: KeyRing,
    secrets: OnceLock<Secrets>,
    verifier: Arc<Verifier>,
    users: TtlCache<Uuid, Arc<UserRecord>>,
    identity_cache: TtlCache<Uuid, Arc<Vec<crate::store::IdentityRecord>>>,
    /// Whether a user has a second factor, for `/auth/me` (logins always ask the store).
    mfa_cache: TtlCache<Uuid, bool>,
    oidc: oidc::Providers,
    metrics: crate::metrics::Metrics,
    /// Wakes the outbox worker after a message was enqueued.
    mail_wake: Arc<tokio::sync::Notify>,
    /// Bounds the forgotten-password lookups running after their answers were sent.
    mail_jobs: Arc<tokio::sync::Semaphore>,
}

/// The time on `clock` at the stores' precision (milliseconds), so that what is returned at
/// creation equals what is read back later.
#[must_use]
pub fn now_on(clock: &dyn Clock) -> OffsetDateTime {
    let t = OffsetDateTime::from(clock.now());
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

fn seconds_until(t: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((t - now).whole_seconds()).unwrap_or(0)
}

fn to_time(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

impl AuthService {
    /// "Now" on the injected clock ([`Config::clock`]), at the stores' precision.
    fn now(&self) -> OffsetDateTime {
        now_on(&*self.config.clock)
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The verifier of this server's own access tokens.
    #[must_use]
    pub fn verifier(&self) -> &Arc<Verifier> {
        &self.verifier
    }

    /// The published JWKS, serialized.
    #[must_use]
    pub fn jwks_json(&self) -> Arc<[u8]> {
        self.keys.jwks_json()
    }

    /// The published JWKS.
    #[must_use]
    pub fn jwks(&self) -> JwkSet {
        self.keys.jwks()
    }

    /// Re-reads signing keys from the store (loads everything when not yet ready).
    ///
    /// # Errors
    /// A store failure.
    pub async fn reload_keys(&self) -> Result<(), AuthError> {
        if self.is_ready() {
            self.keys.reload(&*self.store).await
        } else {
            self.load().await
        }
    }

    /// Registers a user. A `client` (a public registration) is throttled per address and
    /// globally before any hashing; `None` is the operator (the CLI), never throttled.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`], [`AuthError::UsernameTaken`], or a store failure.
    pub async fn register(
        &self,
        input: Registration,
        client: Option<&ClientInfo>,
    ) -> Result<Profile, AuthError> {
        // A full queue refuses at once: before the password is scored (zxcvbn costs about a
        // millisecond) and before any throttle counter is written, so a flood is cheap to turn
        // away.
        if client.is_some() && !self.passwords.has_room(password::Priority::Registration) {
            return Err(AuthError::Overloaded { retry_after: 1 });
        }
        let username = normalize_username(&input.username)?;
        let email = match input
            .email
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
        {
            Some(e) if e.len() > 254 || !e.contains('@') || e.chars().any(char::is_whitespace) => {
                return Err(AuthError::InvalidInput(
                    "email is not a valid address".into(),
                ));
            }
            other => other,
        };
        check_new_password(
            input.password.expose_secret(),
            self.config.password_min_length,
            &username.display,
        )?;
        if let Some(client) = client {
            self.take_rate("register", self.config.limits.register, client)
                .await?;
        }
        let password_hash = self.passwords.hash(input.password).await?;
        let user = UserRecord {
            id: Uuid::now_v7(),
            username: username.display,
            username_key: username.key,
            email,
            password_hash: Some(password_hash),
            roles: admin::validate_roles(input.roles)?,
            disabled: false,
            email_verified: false,
            generation: 0,
            created_at: self.now(),
        };
        let actor = if client.is_some() {
            Actor::Client
        } else {
            Actor::System
        };
        let event = Event::success(AuditEvent::Registered, Some(user.id), actor);
        match self
            .audited(AuditedChange::CreateUser(&user), client, event)
            .await
        {
            Ok(_) => Ok(Profile::from(&user)),
            Err(AuthError::Store(crate::store::StoreError::Conflict)) => {
                Err(AuthError::UsernameTaken)
            }
            Err(e) => Err(e),
        }
    }

    /// Logs in with a password and starts a refresh family, or, when the account has a
    /// second factor, answers a pending login instead (nothing issued).
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] (unknown user, wrong password, disabled: one answer),
    /// [`AuthError::TooManyAttempts`], or a store failure.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        client: ClientInfo,
    ) -> Result<mfa::LoginStep<Issued>, AuthError> {
        self.codec()?; // not ready: fail before counting anything
        let user = self
            .authenticate_password(username, password, &client)
            .await?;
        if let Some(challenge) = self
            .second_factor_challenge(&user, mfa::ENDPOINT_TOKEN)
            .await?
        {
            return Ok(mfa::LoginStep::SecondFactor(challenge));
        }
        let issued = self
            .start_family(Arc::new(user), client, vec!["pwd".to_owned()], "password")
            .await?;
        Ok(mfa::LoginStep::Done(issued))
    }

    /// Checks a username and password, with throttling of failures per account and per
    /// client address, equal time for unknown users, and a rehash when parameters changed.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`], [`AuthError::TooManyAttempts`], or a store failure.
    pub async fn authenticate_password(
        &self,
        username: &str,
        password: SecretString,
        client: &ClientInfo,
    ) -> Result<UserRecord, AuthError> {
        let key = normalize_username(username).map(|u| u.key).ok();
        let user = match &key {
            Some(k) => self.store.find_user_by_username(k).await?,
            None => None,
        };
        let attempt = match self
            .begin_password_attempt(key.as_deref(), user.as_ref(), client)
            .await
        {
            Ok(attempt) => attempt,
            Err(e) => {
                if matches!(e, AuthError::TooManyAttempts { .. }) {
                    tracing::warn!(
                        username = key.as_deref().unwrap_or("-"),
                        client.ip = client.ip.as_deref().unwrap_or("-"),
                        "login throttled"
                    );
                    self.record_login_failure(user.as_ref(), client, "throttled")
                        .await;
                }
                return Err(e);
            }
        };
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = self.passwords.verify(password.clone(), stored).await?;
        let user = match user {
            Some(user) if verified.matches && !user.disabled => user,
            user => {
                tracing::info!(
                    username = key.as_deref().unwrap_or("-"),
                    client.ip = client.ip.as_deref().unwrap_or("-"),
                    "login refused"
                );
                let reason = match &user {
                    None => "unknown_user",
                    Some(u) if verified.matches && u.disabled => "disabled",
                    Some(_) => "bad_password",
                };
                self.record_login_failure(user.as_ref(), client, reason)
                    .await;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.succeed_password_attempt(attempt).await?;
        self.require_verified_email(&user)?;
        if verified.needs_rehash {
            // A rehash is an improvement, not a requirement: when the queue is full it waits
            // for the next login.
            match self.passwords.hash(password).await {
                Ok(hash) => {
                    self.store.set_password_hash(user.id, &hash).await?;
                }
                Err(AuthError::Overloaded { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        tracing::info!(user.id = %user.id, client.ip = client.ip.as_deref().unwrap_or("-"), "login");
        Ok(user)
    }

    /// Records a refused sign-in (the records alone: nothing else changed).
    async fn record_login_failure(
        &self,
        user: Option<&UserRecord>,
        client: &ClientInfo,
        reason: &str,
    ) {
        let event = Event {
            event: AuditEvent::Login,
            user_id: user.map(|u| u.id),
            actor: Actor::Client,
            outcome: AuditOutcome::Failure,
            details: serde_json::json!({ "method": "password", "reason": reason }),
        };
        self.record(Some(client), event).await;
    }

    /// The record of a successful sign-in by `method`.
    fn login_event(user_id: Uuid, method: &str) -> Event {
        Event::success(AuditEvent::Login, Some(user_id), Actor::User(user_id))
            .with(serde_json::json!({ "method": method }))
    }

    async fn start_family(
        &self,
        user: Arc<UserRecord>,
        client: ClientInfo,
        amr: Vec<String>,
        method: &str,
    ) -> Result<Issued, AuthError> {
        let records = self.audit_records(Some(&client), [Self::login_event(user.id, method)]);
        let now = self.now();
        let family_id = Uuid::new_v4();
        let (token, hash) = self.codec()?.mint(family_id, 0);
        let expires_at = now + to_time(self.config.session_max_lifetime);
        let token_expires_at = (now + to_time(self.config.refresh_token_ttl)).min(expires_at);
        let family = FamilyRecord {
            id: family_id,
            user_id: user.id,
            current_hash: hash,
            previous_hash: None,
            generation: 0,
            rotated_at: None,
            token_expires_at,
            expires_at,
            created_at: now,
            last_used_at: now,
            user_agent: client.user_agent,
            ip: client.ip,
            amr,
        };
        self.store
            .audited(AuditedChange::CreateFamily(&family), &records)
            .await?;
        self.issue(user, &family, token, now)
    }

    fn issue(
        &self,
        user: Arc<UserRecord>,
        family: &FamilyRecord,
        refresh_token: String,
        now: OffsetDateTime,
    ) -> Result<Issued, AuthError> {
        let ttl = self.config.access_token_ttl.as_secs();
        let iat = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            sub: user.id.to_string(),
            aud: latchkey_guard::Audience::One(self.config.audience.clone()),
            exp: iat + ttl,
            iat,
            jti: Uuid::new_v4().to_string(),
            client_id: self.config.audience.clone(),
            roles: user.roles.clone(),
            sid: family.id.to_string(),
            auth_time: u64::try_from(family.created_at.unix_timestamp()).ok(),
            amr: family.amr.clone(),
        };
        let access_token = SecretString::from(self.keys.sign(&claims)?);
        Ok(Issued {
            access_token,
            expires_in: ttl,
            refresh_token: SecretString::from(refresh_token),
            refresh_max_age: seconds_until(family.token_expires_at, now),
            user: Profile::from(&*user),
        })
    }

    /// Rotates a refresh token: the presented one is revoked and a successor issued. The
    /// immediate predecessor within the reuse interval gets the current token again; anything
    /// older revokes the whole family.
    ///
    /// # Errors
    /// [`AuthError::InvalidRefreshToken`], [`AuthError::RefreshTokenReused`], or a store failure.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, token: &str) -> Result<Issued, AuthError> {
        let codec = self.codec()?;
        let Some(parsed) = codec.parse(token) else {
            self.metrics.refresh(RefreshOutcome::Refused);
            return Err(AuthError::InvalidRefreshToken);
        };
        let now = self.now();
        let (_, successor) = codec.mint(parsed.family_id, parsed.generation.saturating_add(1));
        let request = RotateRequest {
            family_id: parsed.family_id,
            presented: hash_token(token),
            successor,
            now,
            successor_expires_at: now + to_time(self.config.refresh_token_ttl),
            reuse_interval: to_time(self.config.refresh_reuse_interval),
        };
        let reuse = Event {
            event: AuditEvent::RefreshReuseDetected,
            user_id: None,
            actor: Actor::Client,
            outcome: AuditOutcome::Failure,
            details: serde_json::json!({ "family_id": parsed.family_id }),
        };
        let reuse_record = self.audit_records(None, [reuse]).pop();
        let outcome = self
            .store
            .rotate_refresh_audited(&request, reuse_record)
            .await;
        self.metrics.refresh(match &outcome {
            Ok(RotateOutcome::Rotated(_)) => RefreshOutcome::Rotated,
            Ok(RotateOutcome::Reissued(_)) => RefreshOutcome::Reissued,
            Ok(RotateOutcome::Reused { .. }) => RefreshOutcome::ReuseDetected,
            Ok(RotateOutcome::Invalid) => RefreshOutcome::Refused,
            Err(_) => RefreshOutcome::Error,
        });
        let family = match outcome? {
            RotateOutcome::Rotated(f) | RotateOutcome::Reissued(f) => f,
            RotateOutcome::Reused { user_id } => {
                tracing::warn!(user.id = %user_id, family.id = %parsed.family_id, "refresh token reuse: family revoked");
                return Err(AuthError::RefreshTokenReused);
            }
            RotateOutcome::Invalid => return Err(AuthError::InvalidRefreshToken),
        };
        let user = match self.store.find_user_by_id(family.user_id).await? {
            Some(user) if !user.disabled => Arc::new(user),
            _ => {
                self.store.delete_family(family.id, None).await?;
                return Err(AuthError::InvalidRefreshToken);
            }
        };
        self.users
            .insert(user.id, user.clone(), Instant::now() + USER_CACHE_TTL);
        let (current, _) = codec.mint(family.id, family.generation);
        self.issue(user, &family, current, now)
    }

    /// Ends the login the refresh token belongs to. Unknown or forged tokens are ignored.
    ///
    /// # Errors
    /// A store failure.
    pub async fn logout(&self, token: &str) -> Result<(), AuthError> {
        if let Some(parsed) = self.codec()?.parse(token) {
            // The owner is known only from the family: read it for the record.
            let owner = match self.audit_enabled() {
                true => self
                    .store
                    .find_family(parsed.family_id, self.now())
                    .await?
                    .map(|f| f.user_id),
                false => None,
            };
            let event = Event::success(
                AuditEvent::Logout,
                owner,
                owner.map_or(Actor::Client, Actor::User),
            )
            .with(serde_json::json!({ "family_id": parsed.family_id }));
            let change = AuditedChange::DeleteFamily {
                id: parsed.family_id,
                user_id: owner,
            };
            self.audited(change, None, event).await?;
        }
        Ok(())
    }

    /// Ends every login of the user, with its audit record in the same transaction; 1 when
    /// the user exists, else 0.
    ///
    /// # Errors
    /// A store failure.
    pub async fn logout_all(&self, user_id: Uuid) -> Result<u64, AuthError> {
        // One transaction: the generation (stateless session cookies die with it), every
        // family and session, and the record.
        let event = Event::success(AuditEvent::LogoutAll, Some(user_id), Actor::User(user_id));
        let change = AuditedChange::EndLogins {
            user_id,
            keep_family: None,
            keep_session: None,
        };
        let done = self.audited(change, None, event).await?;
        self.users.remove(&user_id);
        Ok(done)
    }

    /// The user's profile, from a short-lived in-process cache when possible.
    ///
    /// # Errors
    /// [`AuthError::NotFound`] when the user no longer exists, or a store failure.
    pub async fn profile(&self, user_id: Uuid) -> Result<Profile, AuthError> {
        Ok(Profile::from(&*self.user(user_id).await?))
    }

    /// The user, from a short-lived in-process cache when possible.
    pub(crate) async fn user(&self, user_id: Uuid) -> Result<Arc<UserRecord>, AuthError> {
        if let Some(user) = self.users.get(&user_id) {
            return Ok(user);
        }
        let user = Arc::new(
            self.store
                .find_user_by_id(user_id)
                .await?
                .ok_or(AuthError::NotFound)?,
        );
        self.users
            .insert(user_id, user.clone(), Instant::now() + USER_CACHE_TTL);
        Ok(user)
    }

    /// The user's live logins: refresh families, then cookie sessions kept in the store, each
    /// newest first.
    ///
    /// # Errors
    /// A store failure.
    pub async fn logins(&self, user_id: Uuid) -> Result<Vec<Login>, AuthError> {
        let now = self.now();
        let families = self.store.list_families(user_id, now).await?;
        let sessions = self.store.list_sessions(user_id, now).await?;
        let mut logins: Vec<Login> = families.into_iter().map(Login::from).collect();
        logins.extend(sessions.into_iter().map(Login::from));
        Ok(logins)
    }

    /// Ends one of the user's logins (a refresh family or a cookie session).
    ///
    /// # Errors
    /// [`AuthError::NotFound`] when the user has no such login, or a store failure.
    pub async fn end_login(&self, user_id: Uuid, id: Uuid) -> Result<(), AuthError> {
        let event = || {
            Event::success(
                AuditEvent::SessionRevoked,
                Some(user_id),
                Actor::User(user_id),
            )
            .with(serde_json::json!({ "login_id": id }))
        };
        let family = AuditedChange::DeleteFamily {
            id,
            user_id: Some(user_id),
        };
        let session = AuditedChange::DeleteSessionById { id, user_id };
        if self.audited(family, None, event()).await? > 0
            || self.audited(session, None, event()).await? > 0
        {
            Ok(())
        } else {
            Err(AuthError::NotFound)
        }
    }

    /// Whether the store answers (for `/readyz`).
    ///
    /// # Errors
    /// The store's failure.
    pub async fn ping_store(&self) -> Result<(), AuthError> {
        Ok(self.store.ping().await?)
    }

    /// Changes the password and ends every other login of the user.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for a wrong current password,
    /// [`AuthError::InvalidInput`] for a weak new one, or a store failure.
    pub async fn change_password(
        &self,
        user_id: Uuid,
        keep: Keep,
        current: SecretString,
        new: SecretString,
    ) -> Result<(), AuthError> {
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        self.verify_current_password(&user, current).await?;
        check_new_password(
            new.expose_secret(),
            self.config.password_min_length,
            &user.username,
        )?;
        let hash = self.passwords.hash(new).await?;
        // One transaction: the hash, the generation, the other logins and the record.
        let event = Event::success(
            AuditEvent::PasswordChanged,
            Some(user_id),
            Actor::User(user_id),
        );
        let change = AuditedChange::SetPassword {
            user_id,
            hash: &hash,
            keep_family: keep.refresh_family,
            keep_session: keep.cookie_session,
        };
        self.audited(change, None, event).await?;
        self.users.remove(&user_id);
        tracing::info!(user.id = %user_id, "password changed");
        Ok(())
    }

    /// Removes expired families and throttle windows.
    ///
    /// # Errors
    /// A store failure.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        Ok(self.store.purge_expired(self.now()).await?)
    }
}
