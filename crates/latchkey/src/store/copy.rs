//! Copying what a store holds into another (`latchkey store copy`): server secrets, signing
//! keys, users with their linked OAuth identities and passkeys, live refresh families, live
//! server-side sessions and second factors, verified by counts at the end (factors and
//! passkeys apart). Expired ones, throttle counters and pending OAuth
//! sign-ins are left behind.

use time::OffsetDateTime;

use super::{IdentityRecord, PasskeyRecord, Store, StoreCounts, StoreError};

/// Records read and written per round trip.
const PAGE: u32 = 500;

/// Why a copy did not complete.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target holds data and `force` was not given.
    #[error(
        "the target is not empty ({} users, {} identities, {} refresh families, {} sessions, \
         {} signing keys, {} server secrets); pass --force to copy into it anyway",
        .0.users, .0.identities, .0.families, .0.sessions, .0.signing_keys, .0.server_secrets
    )]
    TargetNotEmpty(StoreCounts),
    /// Reading or writing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target's counts do not match what was copied.
    #[error("verification failed: copied {copied:?}, but the target holds {target:?}")]
    Mismatch {
        /// What was written.
        copied: StoreCounts,
        /// What the target holds afterwards.
        target: StoreCounts,
    },
}

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyReport {
    /// Records written, by kind.
    pub copied: StoreCounts,
    /// The target's counts afterwards.
    pub target: StoreCounts,
}

/// Links `identity` in `to`, or finds it linked to the same user already (a forced copy).
async fn copy_identity(to: &dyn Store, identity: &IdentityRecord) -> Result<(), StoreError> {
    match to.link_identity(identity).await {
        Err(StoreError::Conflict) => {
            let there = to
                .find_identity(&identity.provider, &identity.subject)
                .await?;
            match there {
                Some(linked) if linked.user_id == identity.user_id => Ok(()),
                _ => Err(StoreError::Conflict),
            }
        }
        other => other,
    }
}

/// Writes `passkey` in `to`, or finds it there already (a forced copy). Passkeys are not in
/// [`StoreCounts`]; they travel with their user.
async fn copy_passkey(to: &dyn Store, passkey: &PasskeyRecord) -> Result<(), StoreError> {
    match to.create_passkey(passkey).await {
        Err(StoreError::Conflict) => {
            let there = to
                .find_passkey_by_credential(&passkey.credential_id)
                .await?;
            match there {
                Some(p) if p.id == passkey.id && p.user_id == passkey.user_id => Ok(()),
                _ => Err(StoreError::Conflict),
            }
        }
        other => other,
    }
}

/// Copies `from` into `to`: what is live at `now` (the caller's clock; stores never read one).
/// The target must be empty unless `force`, in which case records with the same ids are
/// overwritten and others kept.
///
/// # Errors
/// [`CopyError::TargetNotEmpty`], a store failure (a username taken by another user in a
/// forced target is [`StoreError::Conflict`]), or [`CopyError::Mismatch`] when the target's
/// counts afterwards do not account for what was copied.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    force: bool,
    now: OffsetDateTime,
) -> Result<CopyReport, CopyError> {
    let before = to.counts(now).await?;
    if !before.is_empty() && !force {
        return Err(CopyError::TargetNotEmpty(before));
    }
    let mut copied = StoreCounts::default();
    for secret in from.server_secrets().await? {
        to.import_server_secret(&secret).await?;
        copied.server_secrets += 1;
    }
    for key in from.signing_keys().await? {
        to.import_signing_key(&key).await?;
        copied.signing_keys += 1;
    }
    let mut after = None;
    loop {
        let page = from.list_users(after, PAGE).await?;
        for user in &page {
            to.import_user(user).await?;
            for identity in from.list_identities(user.id).await? {
                copy_identity(to, &identity).await?;
                copied.identities += 1;
            }
            for passkey in from.list_passkeys(user.id).await? {
                copy_passkey(to, &passkey).await?;
            }
        }
        copied.users += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id),
            _ => break,
        }
    }
    // Second factors (TOTP secrets stay sealed: the target needs the same `mfa_secret_key_v1`
    // server secret, copied above). Not part of the counts.
    let mut after = None;
    loop {
        let page = from.list_all_factors(after, PAGE).await?;
        for factor in &page {
            to.import_factor(factor).await?;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id),
            _ => break,
        }
    }
    let mut after = None;
    loop {
        let page = from.list_live_families(after, PAGE, now).await?;
        for family in &page {
            to.import_family(family).await?;
        }
        copied.families += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id),
            _ => break,
        }
    }
    let mut after = None;
    loop {
        let page = from.list_live_sessions(after, PAGE, now).await?;
        for session in &page {
            to.import_session(session).await?;
        }
        copied.sessions += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id),
            _ => break,
        }
    }
    // Counted at the same `now` as the families were read, so none has expired in between.
    let target = to.counts(now).await?;
    let accounted = if before.is_empty() {
        target == copied
    } else {
        target.users >= copied.users
            && target.families >= copied.families
            && target.sessions >= copied.sessions
            && target.identities >= copied.identities
            && target.signing_keys >= copied.signing_keys
            && target.server_secrets >= copied.server_secrets
    };
    if accounted {
        Ok(CopyReport { copied, target })
    } else {
        Err(CopyError::Mismatch { copied, target })
    }
}
