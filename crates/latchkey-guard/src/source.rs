//! Fresh keys for a [`Verifier`]: the [`KeySource`] trait, the refetch on an unknown `kid`
//! (at most once per interval, and once more when the interval has passed), and the periodic
//! background refresh on the issuer's `Cache-Control: max-age` schedule.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

use crate::{AccessClaims, Verifier, VerifyError};

/// Why fresh keys could not be had. The verifier keeps its current keys meanwhile.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeyFetchError {
    /// The configured issuer is not an absolute http(s) URL.
    #[error("the issuer `{0}` is not an http(s) URL")]
    InvalidIssuer(String),
    /// The request failed (connection, timeout, TLS).
    #[error("fetching {url} failed: {message}")]
    Http {
        /// What was fetched.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// The issuer answered with a non-success status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// What was fetched.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The document is not what it should be (bad JSON, too large, missing fields).
    #[error("{url} returned an unusable document: {message}")]
    Malformed {
        /// What was fetched.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The discovery document names another issuer (OpenID Connect Discovery 1.0 section 4.3).
    #[error("the discovery document names issuer `{found}`, not the configured `{expected}`")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The key set holds a key that cannot be used.
    #[error(transparent)]
    BadKey(#[from] VerifyError),
}

/// Somewhere a [`Verifier`] can get the issuer's current key set from.
///
/// [`crate::RemoteKeys`] reads it over HTTP from the issuer's discovery document; tests and
/// embedded uses can implement it over anything.
#[async_trait]
pub trait KeySource: Send + Sync + 'static {
    /// The issuer's current public keys.
    ///
    /// # Errors
    /// A [`KeyFetchError`] when they cannot be had right now.
    async fn fetch(&self) -> Result<JwkSet, KeyFetchError>;

    /// The key set and how long it may be cached (the answer's `Cache-Control: max-age`), which
    /// sets the pace of the periodic refresh. By default [`KeySource::fetch`] and no lifetime.
    ///
    /// # Errors
    /// A [`KeyFetchError`] when they cannot be had right now.
    async fn fetch_with_lifetime(&self) -> Result<(JwkSet, Option<Duration>), KeyFetchError> {
        Ok((self.fetch().await?, None))
    }
}

/// A verifier's link to its [`KeySource`].
pub(crate) struct Refresher {
    source: Arc<dyn KeySource>,
    min_interval: Duration,
    /// When the last refetch triggered by an unknown `kid` started. Holding this lock during
    /// the fetch makes concurrent requests with the new `kid` wait for one fetch, not start
    /// their own.
    last_on_demand: Mutex<Option<Instant>>,
    /// Serializes fetches (periodic and on demand).
    fetching: Mutex<()>,
    /// The lifetime the source gave with the last key set.
    lifetime: parking_lot::Mutex<Option<Duration>>,
    /// Set when an unknown `kid` met the cooldown, to when it ends: the refresh task
    /// refetches then (besides, never instead of, its periodic refresh).
    deferred: parking_lot::Mutex<Option<Instant>>,
    wake: Arc<Notify>,
}

impl Verifier {
    /// Attaches `source`: a token naming an unknown `kid` makes [`Verifier::authenticate`]
    /// refetch the keys, at most once per `min_refetch_interval`, so that tokens with made-up
    /// key ids cannot make the verifier hammer the issuer.
    #[must_use]
    pub fn with_key_source(
        mut self,
        source: Arc<dyn KeySource>,
        min_refetch_interval: Duration,
    ) -> Self {
        self.refresher = Some(Refresher {
            source,
            min_interval: min_refetch_interval,
            last_on_demand: Mutex::new(None),
            fetching: Mutex::new(()),
            lifetime: parking_lot::Mutex::new(None),
            deferred: parking_lot::Mutex::new(None),
            wake: Arc::new(Notify::new()),
        });
        self
    }

    /// Fetches the keys from the attached source now and installs them. Without a source this
    /// does nothing.
    ///
    /// # Errors
    /// A [`KeyFetchError`]; the current keys stay in use.
    pub async fn refresh_keys(&self) -> Result<(), KeyFetchError> {
        let Some(refresher) = &self.refresher else {
            return Ok(());
        };
        let _one_at_a_time = refresher.fetching.lock().await;
        let (jwks, lifetime) = refresher.source.fetch_with_lifetime().await?;
        self.replace_keys(&jwks)?;
        *refresher.lifetime.lock() = lifetime;
        Ok(())
    }

    /// Verifies `token` like [`Verifier::verify`]; when it names a key this verifier does not
    /// know and a [`KeySource`] is attached, refetches the keys first (rate-limited) and tries
    /// once more. This is what the extractors call.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the token is refused.
    pub async fn authenticate(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        match self.verify(token) {
            Err(VerifyError::UnknownKey) => {}
            other => return other,
        }
        let Some(refresher) = &self.refresher else {
            return Err(VerifyError::UnknownKey);
        };
        let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid) else {
            return Err(VerifyError::UnknownKey);
        };
        let mut last = refresher.last_on_demand.lock().await;
        if !self.knows_kid(&kid) {
            if let Some(t) = *last
                && t.elapsed() < refresher.min_interval
            {
                // Refused now, but the refresh task fetches once the cooldown ends: a stream of
                // made-up kids can delay a real new key by one interval at most.
                let mut deferred = refresher.deferred.lock();
                if deferred.is_none() {
                    *deferred = Some(t + refresher.min_interval);
                    refresher.wake.notify_one();
                }
                return Err(VerifyError::UnknownKey);
            }
            *last = Some(Instant::now());
            if let Err(error) = self.refresh_keys().await {
                tracing::warn!(%error, "refetching keys for an unknown kid failed; keeping the cached keys");
                return Err(VerifyError::UnknownKey);
            }
        }
        drop(last);
        self.verify(token)
    }

    /// Refreshes the keys every `every` in a background task, for as long as the verifier
    /// lives and the returned handle is kept. Same as [`Verifier::spawn_key_refresh_within`]
    /// with a floor of 1 s and `every` as the ceiling.
    #[must_use = "dropping the handle stops the refresh"]
    pub fn spawn_key_refresh(self: &Arc<Self>, every: Duration) -> KeyRefreshTask {
        self.spawn_key_refresh_within(Duration::from_secs(1), every)
    }

    /// Refreshes the keys in a background task, for as long as the verifier lives and the
    /// returned handle is kept: after the lifetime the source gave with the last key set (the
    /// issuer's `Cache-Control: max-age`) kept within `[floor, ceiling]`, or after `ceiling`
    /// when it gave none. Also refetches when an unknown `kid` was refused during the refetch
    /// cooldown, as soon as that cooldown ends. Failures are logged and the cached keys stay.
    /// Needs a Tokio runtime.
    #[must_use = "dropping the handle stops the refresh"]
    pub fn spawn_key_refresh_within(
        self: &Arc<Self>,
        floor: Duration,
        ceiling: Duration,
    ) -> KeyRefreshTask {
        let verifier: Weak<Self> = Arc::downgrade(self);
        let floor = floor.max(Duration::from_millis(100));
        let ceiling = ceiling.max(floor);
        KeyRefreshTask(tokio::spawn(async move {
            while let Some(wait) = verifier.upgrade().map(|v| v.refresh_wait(floor, ceiling)) {
                let periodic_at = tokio::time::Instant::now() + wait;
                let deferred = loop {
                    let Some(strong) = verifier.upgrade() else {
                        return;
                    };
                    let Some(refresher) = &strong.refresher else {
                        return;
                    };
                    // Wait without keeping the verifier alive. A wake-up sent meanwhile is not
                    // lost: `notify_one` leaves a permit for the next `notified`.
                    let wake = refresher.wake.clone();
                    let deferred_at = refresher.deferred.lock().map(tokio::time::Instant::from);
                    drop(strong);
                    let next = deferred_at.map_or(periodic_at, |d| d.min(periodic_at));
                    tokio::select! {
                        () = tokio::time::sleep_until(next) => break next < periodic_at,
                        () = wake.notified() => {}
                    }
                };
                let Some(verifier) = verifier.upgrade() else {
                    break;
                };
                if deferred {
                    verifier.refetch_after_cooldown().await;
                } else {
                    if let Some(refresher) = &verifier.refresher {
                        // This fetch also answers any refetch asked for so far.
                        *refresher.deferred.lock() = None;
                    }
                    if let Err(error) = verifier.refresh_keys().await {
                        tracing::warn!(%error, "periodic key refresh failed; keeping the cached keys");
                    }
                }
            }
        }))
    }

    /// How long the periodic refresh waits next.
    fn refresh_wait(&self, floor: Duration, ceiling: Duration) -> Duration {
        self.refresher
            .as_ref()
            .and_then(|r| *r.lifetime.lock())
            .map_or(ceiling, |lifetime| lifetime.clamp(floor, ceiling))
    }

    /// The refetch an unknown `kid` asked for during the cooldown, now that it has ended. It
    /// counts as an on-demand fetch, so the rate limit holds.
    async fn refetch_after_cooldown(&self) {
        let Some(refresher) = &self.refresher else {
            return;
        };
        let mut last = refresher.last_on_demand.lock().await;
        *refresher.deferred.lock() = None;
        *last = Some(Instant::now());
        if let Err(error) = self.refresh_keys().await {
            tracing::warn!(%error, "refetching keys for an unknown kid failed; keeping the cached keys");
        }
    }
}

/// The periodic refresh started by [`Verifier::spawn_key_refresh`]; stops when dropped.
#[derive(Debug)]
pub struct KeyRefreshTask(JoinHandle<()>);

impl Drop for KeyRefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
