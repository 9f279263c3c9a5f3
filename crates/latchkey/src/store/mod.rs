//! Persistence: the store's capabilities, each a trait of whole atomic operations, and the
//! backends that implement them.
//!
//! The domain (`auth`) never reads and then writes: every method here is one atomic step in
//! the database, so several server instances on one database stay correct. No store reads the
//! clock either: every time it needs (expiry checks, creation times) is passed in by the caller.
//!
//! # Capabilities
//! | trait | holds | module |
//! | --- | --- | --- |
//! | [`UserStore`] | users | `users` |
//! | [`RefreshStore`] | refresh families and their rotation | `refresh` |
//! | [`SessionStore`] | server-side (cookie) sessions | `sessions` |
//! | [`KeyStore`] | signing keys and server secrets | `keys` |
//! | [`ThrottleStore`] | failed-login counters | `throttle` |
//! | [`OAuthStore`] | pending OAuth sign-ins and linked identities | `oauth` |
//! | [`MfaStore`] | second factors and pending second-factor logins | `mfa` |
//! | [`PasskeyStore`] | passkeys and pending WebAuthn ceremonies | `passkeys` |
//! | [`MailStore`] | email tokens (verification, reset) and the outbox | `mail` |
//! | [`TransferStore`] | bulk reads and verbatim writes for `latchkey store copy` | `transfer` |
//! | [`AuditStore`] | the audit trail and its webhook outbox | `audit` |
//!
//! # Audited operations
//! The changes an audit record describes are written with their records in one transaction,
//! through [`AuditStore::audited`] and its [`AuditedChange`]s: registration
//! ([`AuditedChange::CreateUser`]), a login ([`AuditedChange::CreateFamily`],
//! [`AuditedChange::CreateSession`]), logout and a revoked session
//! ([`AuditedChange::DeleteFamily`], [`AuditedChange::DeleteSession`],
//! [`AuditedChange::DeleteSessionById`]), logout-all and an admin's end of every login
//! ([`AuditedChange::EndLogins`]), a password change ([`AuditedChange::SetPassword`]), roles
//! ([`AuditedChange::SetRoles`]) and disable / enable ([`AuditedChange::SetDisabled`]); the
//! reuse revocation of a refresh family goes through [`Store::revoke_reused_family`] (the
//! reuse rule's delete with its record). Events that change nothing (a refused login) are
//! [`AuditedChange::Nothing`]. Key rotation and OIDC link / unlink are recorded right after
//! their (already atomic, multi-step) change succeeded: never for a change that did not
//! happen, but a crash between the two would lose that record.
//!
//! [`Store`] is their umbrella (`Arc<dyn Store>` is what the domain holds): every capability,
//! plus [`Store::ping`] and [`Store::purge_expired`]. The rules every backend shares are
//! written once here, as provided methods and pure functions, and backends do not override
//! them: the refresh-reuse decision ([`decide_not_current`], applied by
//! [`RefreshStore::rotate_refresh`] after the backend's atomic
//! [`RefreshStore::rotate_if_current`]) and the purge ([`Store::purge_expired`], the sum of
//! each capability's `purge_expired_*`).
//!
//! Methods called on a `dyn Store` (or a generic `S: Store`) need no import; on a concrete
//! backend type they need the traits in scope: `use crate::store::prelude::*;`.
//!
//! # Adding a backend
//! A backend is a folder of files, the same in every backend (see `sqlite/` and `mongo/`):
//! - `mod.rs`: the store type, `open` (connect, create the schema), the shared helpers (row or
//!   document conversions, error mapping) and `impl Store` (`ping` only);
//! - `users.rs`, `refresh.rs`, `sessions.rs`, `keys.rs`, `throttle.rs`, `oauth.rs`, `mail.rs`,
//!   `audit.rs`, `transfer.rs`: one `impl <Capability> for <Backend>` each, with the trait's
//!   method names and the atomicity each method's documentation asks for.
//!
//! Then three lines outside the folder: `mod <backend>;` and a scheme arm in [`open`] below
//! (both behind a cargo feature when the backend brings a driver, as `mongo` does),
//! and one line at the end of `conformance.rs`, `store_suite!(<backend>, make_<backend>())`,
//! where `make_<backend>()` opens a fresh, empty store (`None` skips the suite when the
//! backend's server is not installed). The conformance suite then runs every case against it,
//! and nothing of the backend counts as done until it passes.

mod audit;
#[cfg(test)]
mod conformance;
pub mod copy;
mod keys;
mod mail;
mod mfa;
#[cfg(feature = "mongodb")]
pub mod mongo;
mod oauth;
mod passkeys;
pub mod postgres;
mod refresh;
mod sessions;
pub mod sqlite;
mod throttle;
mod transfer;
mod users;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use self::audit::{AuditOutcome, AuditQuery, AuditRecord, AuditStore, AuditedChange};
pub use self::keys::{KeyStore, SecretRecord, SigningKeyRecord};
pub use self::mail::{EmailPurpose, EmailTokenRecord, MailStore, OutboxMessage};
pub use self::mfa::{FactorRecord, KIND_RECOVERY_CODE, KIND_TOTP, MfaChallengeRecord, MfaStore};
pub use self::oauth::{IdentityRecord, OAuthStateRecord, OAuthStore, UnlinkOutcome};
pub use self::passkeys::{CeremonyRecord, PasskeyRecord, PasskeyStore, PasskeyUse};
pub use self::refresh::{
    FamilyRecord, NotCurrent, RefreshStore, RotateOutcome, RotateRequest, decide_not_current,
    settle_not_current,
};
pub use self::sessions::{SessionRecord, SessionStore};
pub use self::throttle::{ThrottleCount, ThrottleStore};
pub use self::transfer::{StoreCounts, TransferStore};
pub use self::users::{UserRecord, UserStore};
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

/// Everything Latchkey keeps: every capability, and the operations on the store as a whole.
/// Every method of every capability is one atomic operation.
#[async_trait]
pub trait Store:
    UserStore
    + RefreshStore
    + SessionStore
    + KeyStore
    + ThrottleStore
    + OAuthStore
    + MfaStore
    + PasskeyStore
    + MailStore
    + TransferStore
    + AuditStore
{
    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Deletes expired families, sessions, throttle windows, OAuth states, email tokens,
    /// unsent messages whose token expired and audit records; returns how many records went.
    /// Backends do not override it.
    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.purge_expired_families(now).await?
            + self.purge_expired_windows(now).await?
            + self.purge_expired_sessions(now).await?
            + self.purge_expired_oauth_states(now).await?
            + self.purge_expired_mfa_challenges(now).await?
            + self.purge_expired_ceremonies(now).await?
            + self.purge_expired_mail(now).await?
            + self.purge_expired_audit(now).await?)
    }

    /// [`RefreshStore::rotate_refresh`] with the reuse revocation audited: when reuse is
    /// detected, the family is deleted together with `reuse_record` (its `user_id` set to the
    /// family's owner) in one transaction. Backends do not override it.
    async fn rotate_refresh_audited(
        &self,
        request: &RotateRequest,
        reuse_record: Option<AuditRecord>,
    ) -> Result<RotateOutcome, StoreError> {
        let Some(mut record) = reuse_record else {
            return self.rotate_refresh(request).await;
        };
        if let Some(family) = self.rotate_if_current(request).await? {
            return Ok(RotateOutcome::Rotated(family));
        }
        let family = self.find_family(request.family_id, request.now).await?;
        match decide_not_current(family, request) {
            NotCurrent::Invalid => Ok(RotateOutcome::Invalid),
            NotCurrent::Reissue(family) => Ok(RotateOutcome::Reissued(family)),
            NotCurrent::Revoke(family) => {
                record.user_id = Some(family.user_id);
                self.revoke_reused_family(&family, record).await?;
                Ok(RotateOutcome::Reused {
                    user_id: family.user_id,
                })
            }
        }
    }

    /// The reuse rule's revocation: deletes `family` with its audit `record`, in one
    /// transaction. Backends do not override it.
    async fn revoke_reused_family(
        &self,
        family: &FamilyRecord,
        record: AuditRecord,
    ) -> Result<(), StoreError> {
        self.audited(
            AuditedChange::DeleteFamily {
                id: family.id,
                user_id: None,
            },
            &[record],
        )
        .await?;
        Ok(())
    }
}

/// The store traits, for callers: `use crate::store::prelude::*;` puts every capability's
/// methods in scope (needed on a concrete backend type; a `dyn Store` has them anyway).
pub mod prelude {
    pub use super::{
        AuditStore, KeyStore, MailStore, MfaStore, OAuthStore, PasskeyStore, RefreshStore,
        SessionStore, Store, ThrottleStore, TransferStore, UserStore,
    };
}

/// Opens the store named by `url`, creating its schema if needed.
///
/// A SQLite file must open now. A MongoDB client and a PostgreSQL pool connect lazily: when
/// the server cannot be reached yet, the store still opens, its operations answer
/// [`StoreError::Unavailable`] and its indexes (MongoDB) or migrations (PostgreSQL) are
/// applied in the background as soon as the server answers.
///
/// # Errors
/// [`StoreError::Unavailable`] when it cannot be opened, [`StoreError::Corrupt`] for a URL or
/// an existing schema this version cannot use.
pub async fn open(url: &DatabaseUrl) -> Result<Arc<dyn Store>, StoreError> {
    match url.scheme() {
        "sqlite" => Ok(Arc::new(sqlite::SqliteStore::open(url.expose()).await?)),
        #[cfg(feature = "mongodb")]
        "mongodb" | "mongodb+srv" => Ok(Arc::new(mongo::MongoStore::open(url.expose()).await?)),
        "postgres" | "postgresql" => {
            Ok(Arc::new(postgres::PostgresStore::open(url.expose()).await?))
        }
        #[cfg(not(feature = "mongodb"))]
        "mongodb" | "mongodb+srv" => Err(StoreError::Unavailable(
            "MongoDB is not in this build: build latchkey with the `mongodb` cargo feature \
             (on by default)"
                .to_owned(),
        )),
        other => Err(StoreError::Unavailable(format!(
            "the `{other}` backend is not available in this build"
        ))),
    }
}
