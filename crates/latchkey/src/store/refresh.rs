//! Refresh families: the records, the [`RefreshStore`] capability, and the refresh-reuse rule
//! ([`decide_not_current`]), written once here for every backend.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, TokenHash};

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
    /// How the user authenticated at login (RFC 8176 values: `pwd`, `otp`, `mfa`, ...),
    /// carried into every access token of the family.
    pub amr: Vec<String>,
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
/// refresh-reuse rule, written once here and applied for every backend (by
/// [`RefreshStore::rotate_refresh`]) after the backend's atomic
/// [`RefreshStore::rotate_if_current`] found nothing to rotate.
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

/// The second step of [`RefreshStore::rotate_refresh`], after the backend's atomic
/// [`RefreshStore::rotate_if_current`] found nothing to rotate: reads the family and applies
/// [`decide_not_current`], deleting the family on reuse.
///
/// # Errors
/// A store failure.
pub async fn settle_not_current<S: RefreshStore + ?Sized>(
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

/// Refresh families: one login's chain of refresh tokens, rotated atomically.
#[async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    /// Starts a refresh family.
    async fn create_family(&self, family: &FamilyRecord) -> Result<(), StoreError>;
    /// The first step of [`RefreshStore::rotate_refresh`], the backend's one atomic
    /// conditional write: when the family `request.family_id` is alive (`expires_at` and
    /// `token_expires_at` after `request.now`) and its current hash is `request.presented`,
    /// installs the successor (previous = current, current = successor, generation + 1,
    /// `rotated_at` = `last_used_at` = now, `token_expires_at` = the smaller of
    /// `successor_expires_at` and the family's end) and returns the family after the write;
    /// otherwise changes nothing and returns `None`. Of two concurrent calls with one token,
    /// exactly one may succeed.
    async fn rotate_if_current(
        &self,
        request: &RotateRequest,
    ) -> Result<Option<FamilyRecord>, StoreError>;
    /// Rotates, re-issues or detects reuse (see [`RotateOutcome`]): the backend's
    /// [`RefreshStore::rotate_if_current`], then the reuse rule of [`settle_not_current`].
    /// Backends do not override it.
    async fn rotate_refresh(&self, request: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        match self.rotate_if_current(request).await? {
            Some(family) => Ok(RotateOutcome::Rotated(family)),
            None => settle_not_current(self, request).await,
        }
    }
    /// The live family with this id (only the family's own end counts, not its token's).
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
    /// A user's live families (family and current token alive), newest first.
    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError>;
    /// Deletes the families that ended or whose current token expired at `now`; returns how
    /// many (part of [`Store::purge_expired`]).
    async fn purge_expired_families(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}
