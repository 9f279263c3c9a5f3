//! Key rollover, decided from the stored keys alone so that every instance agrees without
//! talking to the others: a key is published from its creation, signs from its
//! `activates_at` until the next key activates, and stays published for the lifetime of the
//! tokens it signed (`publish_for`); `keys rotate --now` withdraws the old keys at once.

use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};

use super::generate_key;
use crate::auth::AuthError;
use crate::config::SigningAlg;
use crate::store::{SigningKeyRecord, Store};

/// The longest `Cache-Control: max-age` of the JWKS answer, in seconds.
pub const JWKS_MAX_AGE_CAP: u64 = 300;

/// Where a key is in its life at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, signing from `activates_at` on.
    Pending,
    /// Published and signing new tokens.
    Current,
    /// No longer signing; published until `until` so the tokens it signed still verify.
    Retiring {
        /// When it leaves the key set.
        until: OffsetDateTime,
    },
    /// Not published: its tokens are refused.
    Retired {
        /// Since when.
        since: OffsetDateTime,
    },
}

impl KeyState {
    /// Whether the key is in the published key set.
    #[must_use]
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Retired { .. })
    }
}

/// The state of each of `records` at `now` (same order). Withdrawn keys are retired; of the
/// others, ordered by `activates_at` (then `kid`), each signs until the next one activates.
#[must_use]
pub fn key_states(
    records: &[SigningKeyRecord],
    now: OffsetDateTime,
    publish_for: Duration,
) -> Vec<KeyState> {
    let withdrawn = |r: &SigningKeyRecord| r.revoked_at.filter(|t| *t <= now);
    let mut live: Vec<&SigningKeyRecord> =
        records.iter().filter(|r| withdrawn(r).is_none()).collect();
    live.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
    records
        .iter()
        .map(|record| {
            if let Some(since) = withdrawn(record) {
                return KeyState::Retired { since };
            }
            if record.activates_at > now {
                return KeyState::Pending;
            }
            let stops = live
                .iter()
                .map(|r| r.activates_at)
                .find(|t| *t > record.activates_at)
                .filter(|t| *t <= now);
            // Two keys activating at the same instant: the greater kid signs (as `signs_at`).
            let tied_later = live.iter().any(|r| {
                r.activates_at == record.activates_at && r.kid > record.kid && r.activates_at <= now
            });
            match stops {
                None if !tied_later => KeyState::Current,
                stopped => {
                    let end = stopped.unwrap_or(record.activates_at) + publish_for;
                    if end > now {
                        KeyState::Retiring { until: end }
                    } else {
                        KeyState::Retired { since: end }
                    }
                }
            }
        })
        .collect()
}

/// The JWKS `max-age` for a publication delay: a third of it, between 1 s and 5 minutes, so a
/// client that refreshes on that schedule knows a new key well before it signs.
#[must_use]
pub fn jwks_max_age(publish_ahead: StdDuration) -> u64 {
    (publish_ahead.as_secs() / 3).clamp(1, JWKS_MAX_AGE_CAP)
}

/// What [`rotate`] did.
#[derive(Debug)]
pub struct Rotation {
    /// The new key's id.
    pub kid: String,
    /// Its algorithm.
    pub alg: String,
    /// When it starts signing.
    pub activates_at: OffsetDateTime,
    /// How many old keys were withdrawn (only with `at_once`).
    pub withdrawn: u64,
}

/// [`rotate_at`] on the system clock.
///
/// # Errors
/// As [`rotate_at`].
pub async fn rotate(
    store: &dyn Store,
    alg: SigningAlg,
    publish_ahead: StdDuration,
    at_once: bool,
) -> Result<Rotation, AuthError> {
    let now = crate::auth::now_on(&latchkey_guard::SystemClock);
    rotate_at(store, alg, publish_ahead, now, at_once).await
}

/// `latchkey keys rotate`: stores a new key of `alg`, created at `now`, that is published at
/// once and signs `publish_ahead` later. With `at_once` (a compromised key) it signs at once
/// and every other key is withdrawn from the key set, so the tokens they signed stop verifying.
///
/// # Errors
/// A store failure, or HS256 (whose key is configured, not generated).
pub async fn rotate_at(
    store: &dyn Store,
    alg: SigningAlg,
    publish_ahead: StdDuration,
    now: OffsetDateTime,
    at_once: bool,
) -> Result<Rotation, AuthError> {
    let created = now;
    let mut key = generate_key(alg, created)?;
    if !at_once {
        let ahead = Duration::try_from(publish_ahead)
            .map_err(|e| AuthError::Internal(format!("publication delay: {e}")))?;
        key.activates_at = created + ahead;
    }
    store.add_signing_key(&key).await?;
    let withdrawn = if at_once {
        store.revoke_signing_keys(&key.kid, created).await?
    } else {
        0
    };
    Ok(Rotation {
        kid: key.kid,
        alg: key.alg,
        activates_at: key.activates_at,
        withdrawn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, activates_at: OffsetDateTime) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.to_owned(),
            alg: "EdDSA".into(),
            private_der: vec![1u8; 4].into(),
            created_at: activates_at - Duration::minutes(15),
            activates_at,
            retired_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_key_is_pending_then_current_then_retiring_then_retired() {
        let t = OffsetDateTime::now_utc();
        let ttl = Duration::minutes(10);
        let keys = vec![key("a", t), key("b", t + Duration::minutes(15))];
        let at = |m: i64| key_states(&keys, t + Duration::minutes(m), ttl);
        assert_eq!(at(1), vec![KeyState::Current, KeyState::Pending]);
        let until = t + Duration::minutes(25);
        assert_eq!(
            at(16),
            vec![KeyState::Retiring { until }, KeyState::Current]
        );
        assert_eq!(
            at(26),
            vec![KeyState::Retired { since: until }, KeyState::Current]
        );
    }

    #[test]
    fn a_withdrawn_key_is_retired_at_once_and_the_newest_active_key_signs() {
        let t = OffsetDateTime::now_utc();
        let mut old = key("a", t - Duration::hours(1));
        old.revoked_at = Some(t);
        let keys = vec![old, key("b", t), key("c", t)];
        assert_eq!(
            key_states(&keys, t, Duration::minutes(10)),
            vec![
                KeyState::Retired { since: t },
                KeyState::Retiring {
                    until: t + Duration::minutes(10)
                },
                KeyState::Current
            ]
        );
    }

    #[test]
    fn the_max_age_stays_below_the_publication_delay() {
        assert_eq!(jwks_max_age(StdDuration::from_secs(900)), 300);
        assert_eq!(jwks_max_age(StdDuration::from_secs(600)), 200);
        assert_eq!(jwks_max_age(StdDuration::from_secs(2)), 1);
        assert_eq!(jwks_max_age(StdDuration::from_secs(3_600)), 300);
    }
}
