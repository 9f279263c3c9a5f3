//! Keys from the issuer itself: its OpenID Connect discovery document names the JWKS, which
//! is fetched over HTTP and kept fresh in the background.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::{KeyFetchError, KeyRefreshTask, KeySource, Verifier, VerifierSettings};

/// The largest discovery document or key set accepted.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// How a [`RemoteVerifier`] talks to the issuer.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// The shortest time between two refetches caused by tokens naming an unknown `kid`
    /// (default 10 s). Made-up key ids cannot cause more issuer traffic than this.
    pub refetch_min_interval: Duration,
    /// The longest time between two background refreshes of the keys (default 5 minutes). The
    /// issuer's `Cache-Control: max-age` on the key set sets a shorter pace (Latchkey sends a
    /// third of its key publication delay), so a new key is known before it signs.
    pub refresh_interval: Duration,
    /// The shortest time between two background refreshes, whatever the max-age (default 1 s).
    pub min_refresh_interval: Duration,
    /// Time limit of each HTTP request to the issuer (default 5 s).
    pub timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            refetch_min_interval: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }
}

/// A [`KeySource`] that reads `{issuer}/.well-known/openid-configuration`, checks that it
/// names exactly the configured issuer, then fetches the key set at its `jwks_uri`.
///
/// Discovery is repeated on every fetch (fetches are rare), so a moved `jwks_uri` is followed.
pub struct RemoteKeys {
    client: reqwest::Client,
    issuer: String,
    discovery_url: Url,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl RemoteKeys {
    /// Keys of `issuer` (an http(s) URL), fetched with a time limit of `timeout` per request.
    ///
    /// # Errors
    /// [`KeyFetchError::InvalidIssuer`] for a URL that is not http(s), or carries a query or
    /// fragment; [`KeyFetchError::Http`] when the HTTP client cannot be built.
    pub fn new(issuer: &str, timeout: Duration) -> Result<Self, KeyFetchError> {
        let invalid = || KeyFetchError::InvalidIssuer(issuer.to_owned());
        let parsed = Url::parse(issuer).map_err(|_| invalid())?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return Err(invalid());
        }
        // OpenID Connect Discovery 1.0 section 4: strip a trailing slash, then append.
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery_url = Url::parse(&discovery).map_err(|_| invalid())?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| KeyFetchError::Http {
                url: discovery.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            client,
            issuer: issuer.to_owned(),
            discovery_url,
        })
    }

    /// Reads the discovery document and returns its `jwks_uri`.
    ///
    /// # Errors
    /// A [`KeyFetchError`], [`KeyFetchError::IssuerMismatch`] included.
    pub async fn discover(&self) -> Result<Url, KeyFetchError> {
        let (doc, _): (Discovery, _) = self.get_json(self.discovery_url.clone()).await?;
        if doc.issuer != self.issuer {
            return Err(KeyFetchError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: doc.issuer,
            });
        }
        let malformed = |message: &str| KeyFetchError::Malformed {
            url: self.discovery_url.to_string(),
            message: message.to_owned(),
        };
        let jwks_uri = Url::parse(&doc.jwks_uri).map_err(|_| malformed("jwks_uri is not a URL"))?;
        if !matches!(jwks_uri.scheme(), "http" | "https") {
            return Err(malformed("jwks_uri is not an http(s) URL"));
        }
        Ok(jwks_uri)
    }

    /// The JSON document at `url` and its `Cache-Control: max-age`, if any.
    async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
    ) -> Result<(T, Option<Duration>), KeyFetchError> {
        let name = url.to_string();
        let http = |e: reqwest::Error| KeyFetchError::Http {
            url: name.clone(),
            message: e.to_string(),
        };
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(http)?;
        if !response.status().is_success() {
            return Err(KeyFetchError::Status {
                url: name,
                status: response.status().as_u16(),
            });
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(KeyFetchError::Malformed {
                    url: name,
                    message: "document too large".into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let document = serde_json::from_slice(&body).map_err(|e| KeyFetchError::Malformed {
            url: name,
            message: e.to_string(),
        })?;
        Ok((document, max_age))
    }
}

/// The `max-age` of a `Cache-Control` value (`no-store` and `no-cache` count as 0).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        let seconds = lower.strip_prefix("max-age=")?.trim_matches('"');
        seconds.parse::<u64>().ok().map(Duration::from_secs)
    })
}

#[async_trait]
impl KeySource for RemoteKeys {
    async fn fetch(&self) -> Result<JwkSet, KeyFetchError> {
        Ok(self.fetch_with_lifetime().await?.0)
    }

    async fn fetch_with_lifetime(&self) -> Result<(JwkSet, Option<Duration>), KeyFetchError> {
        let jwks_uri = self.discover().await?;
        self.get_json(jwks_uri).await
    }
}

/// A [`Verifier`] for a remote issuer, with its background key refresh: what a resource
/// server needs, given only the issuer URL and its own audience.
pub struct RemoteVerifier {
    verifier: Arc<Verifier>,
    _refresh: KeyRefreshTask,
}

impl RemoteVerifier {
    /// Builds the verifier, fetches the keys once and starts the periodic refresh (on the key
    /// set's `max-age`, within the bounds of `options`). When the
    /// issuer cannot be reached yet, this still succeeds (with a warning): the keys are fetched
    /// by the first token that needs them, or by the next periodic refresh. Call
    /// [`Verifier::refresh_keys`] on [`RemoteVerifier::verifier`] to insist on keys at start.
    ///
    /// # Errors
    /// [`KeyFetchError::InvalidIssuer`] when `settings.issuer` is not an http(s) URL.
    pub async fn start(
        settings: VerifierSettings,
        options: &RemoteOptions,
    ) -> Result<Self, KeyFetchError> {
        let source = Arc::new(RemoteKeys::new(&settings.issuer, options.timeout)?);
        let verifier =
            Arc::new(Verifier::new(settings).with_key_source(source, options.refetch_min_interval));
        if let Err(error) = verifier.refresh_keys().await {
            tracing::warn!(%error, "the issuer's keys could not be fetched at start; retrying on demand");
        }
        let refresh = verifier
            .spawn_key_refresh_within(options.min_refresh_interval, options.refresh_interval);
        Ok(Self {
            verifier,
            _refresh: refresh,
        })
    }

    /// The verifier, for the application state (the extractors find it via `FromRef`).
    #[must_use]
    pub fn verifier(&self) -> Arc<Verifier> {
        self.verifier.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age("Max-Age=\"5\", public"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
