//! Persistence: the [`Store`] trait, made of whole atomic operations, and its backends.
//!
//! The domain (`auth`) never reads and then writes: every method here is one atomic step in
//! the database, so several server instances on one database stay correct.

#[cfg(test)]
mod conformance;
pub mod copy;
pub mod mongo;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{SecretSlice, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::DatabaseUrl;

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write (a taken username, a duplicate id).
    #[error("conflict with an existing record")]
    Conflict,
    /// The database could not be reached or timed out.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The database answered something this version cannot understand.
    #[error("the store returned corrupt data: {0}")]
    Corrupt(String),
}

/// A SHA-256 digest of a token, the only form in which tokens are stored.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// The name as registered (NFKC-normalized).
    pub username: String,
    /// The case-folded name that uniqueness is checked on.
    pub username_key: String,
    /// Optional email address.
    pub email: Option<String>,
    /// PHC string of the Argon2id hash; `None` for accounts without a password.
    pub password_hash: Option<String>,
    /// Roles, carried into access tokens.
    pub roles: Vec<String>,
    /// A disabled user can neither log in nor refresh.
    pub disabled: bool,
    /// Whether Latchkey itself verified `email` (a provider's word does not count): only such
    /// an email is ever matched for auto-linking a provider sign-in.
    pub email_verified: bool,
    /// The login generation, bumped by password changes and logout-all; stateless session
    /// cookies carry it and die when it moves on.
    pub generation: u64,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A refresh family: one login's chain of refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    /// Family id, also the access token's `sid`.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Hash of the current refresh token.
    pub current_hash: TokenHash,
    /// Hash of the token it replaced, for the reuse interval.
    pub previous_hash: Option<TokenHash>,
    /// How many rotations happened (the current token's generation).
    pub generation: u64,
    /// When the current token was minted by a rotation.
    pub rotated_at: Option<OffsetDateTime>,
    /// When the current token expires.
    pub token_expires_at: OffsetDateTime,
    /// Absolute end of the family.
    pub expires_at: OffsetDateTime,
    /// Login time.
    pub created_at: OffsetDateTime,
    /// Last successful refresh (or login).
    pub last_used_at: OffsetDateTime,
    /// The browser's User-Agent at login.
    pub user_agent: Option<String>,
    /// The client address at login.
    pub ip: Option<String>,
}

/// One rotation attempt, decided atomically by the store.
#[derive(Debug, Clone)]
pub struct RotateRequest {
    /// The family named by the presented token.
    pub family_id: Uuid,
    /// Hash of the presented token.
    pub presented: TokenHash,
    /// Hash of the successor to install if the presented token is current.
    pub successor: TokenHash,
    /// The time of the request.
    pub now: OffsetDateTime,
    /// Expiry of the successor (already capped at the family's end).
    pub successor_expires_at: OffsetDateTime,
    /// How long the predecessor may still be answered with the current token.
    pub reuse_interval: time::Duration,
}

/// What a rotation attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The presented token was current: the successor is installed.
    Rotated(FamilyRecord),
    /// The presented token is the immediate predecessor, within the reuse interval: the
    /// current token is handed out again and nothing changes.
    Reissued(FamilyRecord),
    /// An older token was presented: the family has been deleted.
    Reused {
        /// The owner of the revoked family.
        user_id: Uuid,
    },
    /// No such live family, or the presented token expired.
    Invalid,
}

/// What to do with a family whose current token was not the one presented: the
/// refresh-reuse rule, written once here and applied by every backend after its atomic
/// "rotate if current" step found nothing to rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCurrent {
    /// Answer [`RotateOutcome::Invalid`] and change nothing (no live family, or the presented
    /// token is the current one but has expired).
    Invalid,
    /// Hand the current token out again: the presented token is the immediate predecessor,
    /// presented within the reuse interval after its rotation (an interval of zero grants no
    /// grace at all, not even in the same millisecond), and the current token is alive.
    Reissue(FamilyRecord),
    /// Reuse: delete the family (answer [`RotateOutcome::Reused`]).
    Revoke(FamilyRecord),
}

/// Decides the refresh-reuse rule for `family` as read after the conditional update failed.
///
/// The decision only ever moves a family towards "revoked", so a concurrent change between
/// the update and this read cannot make it unsafe.
#[must_use]
pub fn decide_not_current(family: Option<FamilyRecord>, r: &RotateRequest) -> NotCurrent {
    let Some(family) = family else {
        return NotCurrent::Invalid;
    };
    if family.current_hash == r.presented {
        return NotCurrent::Invalid; // current but expired
    }
    let within_interval = !r.reuse_interval.is_zero()
        && family
            .rotated_at
            .is_some_and(|t| r.now - t <= r.reuse_interval);
    if family.previous_hash == Some(r.presented)
        && within_interval
        && family.token_expires_at > r.now
    {
        NotCurrent::Reissue(family)
    } else {
        NotCurrent::Revoke(family)
    }
}

/// The second step of every backend's `rotate_refresh`, after its atomic "rotate if current"
/// step found nothing to rotate: reads the family and applies [`decide_not_current`],
/// deleting the family on reuse.
///
/// # Errors
/// A store failure.
pub async fn settle_not_current<S: Store + ?Sized>(
    store: &S,
    r: &RotateRequest,
) -> Result<RotateOutcome, StoreError> {
    let family = store.find_family(r.family_id, r.now).await?;
    match decide_not_current(family, r) {
        NotCurrent::Invalid => Ok(RotateOutcome::Invalid),
        NotCurrent::Reissue(family) => Ok(RotateOutcome::Reissued(family)),
        NotCurrent::Revoke(family) => {
            store.delete_family(family.id, None).await?;
            Ok(RotateOutcome::Reused {
                user_id: family.user_id,
            })
        }
    }
}

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

/// A failed-login counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleCount {
    /// Failures in the current window.
    pub failures: u32,
    /// When the window closes.
    pub window_ends_at: OffsetDateTime,
}

/// A pending OAuth sign-in, from `/authorize` to `/callback`: single use, short-lived.
pub struct OAuthStateRecord {
    /// SHA-256 of the `state` sent to the provider (the key).
    pub state_hash: TokenHash,
    /// The provider's configured name.
    pub provider: String,
    /// SHA-256 of the value of the browser-binding cookie set by `/authorize`.
    pub binding_hash: TokenHash,
    /// The OpenID Connect `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE `code_verifier` (RFC 7636).
    pub pkce_verifier: SecretString,
    /// Where to send the browser afterwards (checked against the allow-list).
    pub redirect_to: String,
    /// Set when a logged-in user started the flow to link an identity to this account.
    pub link_user_id: Option<Uuid>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this, the record is as good as absent.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for OAuthStateRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthStateRecord")
            .field("provider", &self.provider)
            .field("redirect_to", &self.redirect_to)
            .field("link_user_id", &self.link_user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A provider account linked to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    /// The provider's configured name.
    pub provider: String,
    /// The provider's `sub` for this account (unique per provider).
    pub subject: String,
    /// The user it signs in as.
    pub user_id: Uuid,
    /// The email the provider gave at the last sign-in, if any.
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: OffsetDateTime,
}

/// What an attempt to unlink an identity came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlinkOutcome {
    /// The identity is gone.
    Unlinked,
    /// The user has no identity of this provider.
    NotLinked,
    /// Refused: it is the user's only way to log in (no password, no other identity).
    LastLoginMethod,
}

/// Everything Latchkey keeps. Every method is one atomic operation.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts a user; [`StoreError::Conflict`] when the username key is taken.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// The user with this case-folded username.
    async fn find_user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this id.
    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    /// Replaces a user's password hash; false when the user does not exist.
    async fn set_password_hash(&self, id: Uuid, hash: &str) -> Result<bool, StoreError>;
    /// Sets a user's roles; false when the user does not exist.
    async fn set_roles(&self, id: Uuid, roles: &[String]) -> Result<bool, StoreError>;
    /// How many users there are.
    async fn count_users(&self) -> Result<u64, StoreError>;
    /// Up to `limit` users with ids greater than `after`, in id (creation) order.
    async fn list_users(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;
    /// Adds one to the user's login generation; false when the user does not exist.
    async fn bump_generation(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Disables or enables a user; false when the user does not exist.
    async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<bool, StoreError>;

    /// Starts a refresh family.
    async fn create_family(&self, family: &FamilyRecord) -> Result<(), StoreError>;
    /// Rotates, re-issues or detects reuse, atomically (see [`RotateOutcome`]).
    async fn rotate_refresh(&self, request: &RotateRequest) -> Result<RotateOutcome, StoreError>;
    /// The live family with this id.
    async fn find_family(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<FamilyRecord>, StoreError>;
    /// Deletes a family (of `user_id`, when given); true when one was deleted.
    async fn delete_family(&self, id: Uuid, user_id: Option<Uuid>) -> Result<bool, StoreError>;
    /// Deletes all of a user's families but `except`; returns how many.
    async fn delete_user_families(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError>;
    /// A user's live families, newest first.
    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError>;

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
    /// Replaces the application data of a live session; false when there is none.
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

    /// Every stored signing key.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Adds a key and sets `retired_at` (to the new key's `activates_at`) on every key that has
    /// none and activates earlier, in one transaction where the store has them.
    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
    /// Withdraws every key but `keep` that is not withdrawn yet: `revoked_at` becomes `at`
    /// (and `retired_at` too where it is unset or later). Returns how many were withdrawn.
    async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError>;
    /// The named server secret; `candidate` is stored first if there is none, so concurrent
    /// first starts agree on one value.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Counts one failed login for `key`, opening a new window when the last one closed.
    async fn throttle_hit(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError>;
    /// The open window's counter for `key`.
    async fn throttle_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ThrottleCount>, StoreError>;
    /// Forgets `key`'s failures.
    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError>;
    /// Takes back one count of `key`'s open window (never below zero): an attempt counted
    /// before it was checked that turned out to succeed.
    async fn throttle_release(&self, key: &str) -> Result<(), StoreError>;

    /// Stores a pending OAuth sign-in.
    async fn save_oauth_state(&self, state: &OAuthStateRecord) -> Result<(), StoreError>;
    /// Deletes and returns the pending sign-in with this state hash, in one atomic step, so a
    /// state can be used once only; an expired one is deleted and reported as `None`.
    async fn take_oauth_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError>;
    /// The identity with this (provider, subject).
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError>;
    /// Links an identity to an existing user; [`StoreError::Conflict`] when the
    /// (provider, subject) is linked already, or the user has an identity of this provider.
    async fn link_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError>;
    /// Removes the user's identity of `provider`, unless it is the user's last way to log in
    /// (no password and no other identity): the check and the delete are one atomic step.
    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError>;
    /// The user's identities, oldest first.
    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError>;
    /// Creates a user and links an identity to it, both or neither (one transaction);
    /// [`StoreError::Conflict`] when the username key or the identity is taken.
    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError>;
    /// Up to `limit` users whose email equals `email` without regard to ASCII case.
    async fn find_users_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// Deletes expired families, sessions, throttle windows and OAuth states; returns how
    /// many rows went.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    // Copying between stores (`latchkey store copy`): bulk reads in id order, and writes that
    // keep every field of the record as given (ids, times, retirement) instead of minting.

    /// How many users, live families and sessions, identities, signing keys and server secrets
    /// there are.
    async fn counts(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError>;
    /// Up to `limit` live families (as [`Store::list_families`] sees them) with ids greater
    /// than `after`, in id order.
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
    /// Every server secret.
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

/// Opens the store named by `url`, creating its schema if needed.
///
/// A SQLite file must open now. A MongoDB client connects lazily: when the server cannot be
/// reached yet, the store still opens, its operations answer [`StoreError::Unavailable`] and
/// its indexes are created in the background as soon as the server answers.
///
/// # Errors
/// [`StoreError::Unavailable`] when it cannot be opened, [`StoreError::Corrupt`] for a URL or
/// an existing schema this version cannot use.
pub async fn open(url: &DatabaseUrl) -> Result<Arc<dyn Store>, StoreError> {
    match url.scheme() {
        "sqlite" => Ok(Arc::new(sqlite::SqliteStore::open(url.expose()).await?)),
        "mongodb" | "mongodb+srv" => Ok(Arc::new(mongo::MongoStore::open(url.expose()).await?)),
        other => Err(StoreError::Unavailable(format!(
            "the `{other}` backend is not available in this build"
        ))),
    }
}
