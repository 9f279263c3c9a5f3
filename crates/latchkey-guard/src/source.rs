//! Fresh keys for a [`Verifier`]: the [`KeySource`] trait, the refetch on an unknown `kid`
//! (at most once per interval), and the periodic background refresh.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;
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
        let jwks = refresher.source.fetch().await?;
        self.replace_keys(&jwks)?;
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
            if last.is_some_and(|t| t.elapsed() < refresher.min_interval) {
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
    /// lives and the returned handle is kept. Failures are logged and the cached keys stay.
    /// Needs a Tokio runtime.
    #[must_use = "dropping the handle stops the refresh"]
    pub fn spawn_key_refresh(self: &Arc<Self>, every: Duration) -> KeyRefreshTask {
        let verifier: Weak<Self> = Arc::downgrade(self);
        let every = every.max(Duration::from_secs(1));
        KeyRefreshTask(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(verifier) = verifier.upgrade() else {
                    break;
                };
                if let Err(error) = verifier.refresh_keys().await {
                    tracing::warn!(%error, "periodic key refresh failed; keeping the cached keys");
                }
            }
        }))
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
