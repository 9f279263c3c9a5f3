//! Talking to one upstream provider: its discovery document (cached), its JWKS (cached,
//! refetched on an unknown `kid`), the token endpoint and the userinfo endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::OAuthError;
use super::id_token::ProviderKeys;
use crate::config::OAuthProviderConfig;

/// How long a discovery document is trusted before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long a JWKS is trusted before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the JWKS at most this often.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
/// The largest provider response read.
const MAX_BODY: usize = 1 << 20;

/// The parts of an OpenID Provider's discovery document that sign-in uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// Must equal the configured issuer exactly (OpenID Connect Discovery section 4.3).
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The provider's signing keys.
    pub jwks_uri: String,
    /// Claims about the user, for providers that keep them out of the ID token.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// How the client authenticates at the token endpoint (default `client_secret_basic`).
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207: when true, the authorization response always carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// What the token endpoint answered.
#[derive(Deserialize)]
pub struct TokenResponse {
    /// The ID token (a JWS).
    #[serde(default)]
    pub id_token: Option<String>,
    /// An access token for the userinfo endpoint.
    #[serde(default)]
    pub access_token: Option<String>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: String,
}

struct Cached<T> {
    value: Arc<T>,
    fetched: Instant,
}

/// One configured provider and what is known about it.
pub struct ProviderClient {
    /// Its configuration.
    pub config: OAuthProviderConfig,
    http: reqwest::Client,
    metadata: RwLock<Option<Cached<Metadata>>>,
    keys: RwLock<Option<Cached<ProviderKeys>>>,
    fetching: tokio::sync::Mutex<()>,
    min_refetch: Duration,
}

fn unavailable(e: impl std::fmt::Display) -> OAuthError {
    OAuthError::ProviderUnavailable(e.to_string())
}

/// Reads at most [`MAX_BODY`] bytes of a response and parses them as JSON.
async fn read_json<T: DeserializeOwned>(mut response: reqwest::Response) -> Result<T, OAuthError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(unavailable("the provider's answer is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| unavailable(format!("unexpected answer: {e}")))
}

impl ProviderClient {
    /// A client for `config`, sharing `http`. Nothing is fetched until first use.
    #[must_use]
    pub fn new(config: OAuthProviderConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            metadata: RwLock::new(None),
            keys: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
            min_refetch: JWKS_MIN_REFETCH,
        }
    }

    /// The discovery document, from the cache when fresh; a stale copy is used when the
    /// provider cannot be reached.
    ///
    /// # Errors
    /// [`OAuthError::ProviderUnavailable`] when it cannot be fetched (or names another issuer)
    /// and no copy is cached.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, OAuthError> {
        let cached = self
            .metadata
            .read()
            .as_ref()
            .map(|c| (c.value.clone(), c.fetched.elapsed() < DISCOVERY_TTL));
        if let Some((value, true)) = &cached {
            return Ok(value.clone());
        }
        match self.fetch_metadata().await {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *self.metadata.write() = Some(Cached {
                    value: fresh.clone(),
                    fetched: Instant::now(),
                });
                Ok(fresh)
            }
            Err(e) => match cached {
                Some((stale, _)) => {
                    tracing::warn!(provider = %self.config.name, error = %e, "discovery failed; using the cached document");
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    async fn fetch_metadata(&self) -> Result<Metadata, OAuthError> {
        let issuer = &self.config.issuer;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let response = self.http.get(&url).send().await.map_err(unavailable)?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "discovery answered {}",
                response.status()
            )));
        }
        let metadata: Metadata = read_json(response).await?;
        if metadata.issuer != *issuer {
            return Err(unavailable(format!(
                "the discovery document names issuer `{}`, not `{issuer}`",
                metadata.issuer
            )));
        }
        let https = issuer.starts_with("https://");
        for endpoint in [
            Some(&metadata.authorization_endpoint),
            Some(&metadata.token_endpoint),
            Some(&metadata.jwks_uri),
            metadata.userinfo_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let ok = url::Url::parse(endpoint)
                .is_ok_and(|u| u.scheme() == "https" || (!https && u.scheme() == "http"));
            if !ok {
                return Err(unavailable(format!("bad endpoint `{endpoint}`")));
            }
        }
        Ok(metadata)
    }

    /// The provider's signing keys. With `kid` given and unknown, the JWKS is fetched again
    /// (at most every 10 s), so a key rotation at the provider is picked up at once.
    ///
    /// # Errors
    /// [`OAuthError::ProviderUnavailable`] when the keys cannot be fetched.
    pub async fn keys(&self, kid: Option<&str>) -> Result<Arc<ProviderKeys>, OAuthError> {
        let lookup = |keys: &RwLock<Option<Cached<ProviderKeys>>>| {
            keys.read().as_ref().map(|c| {
                let fresh = c.fetched.elapsed() < JWKS_TTL;
                let knows = kid.is_none_or(|k| c.value.knows(k));
                let may_refetch = c.fetched.elapsed() >= self.min_refetch;
                (c.value.clone(), fresh && (knows || !may_refetch))
            })
        };
        if let Some((keys, true)) = lookup(&self.keys) {
            return Ok(keys);
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another request may have refreshed the keys while this one waited.
        let cached = lookup(&self.keys);
        if let Some((keys, true)) = &cached {
            return Ok(keys.clone());
        }
        let metadata = self.metadata().await?;
        let fetched = async {
            let response = self
                .http
                .get(&metadata.jwks_uri)
                .send()
                .await
                .map_err(unavailable)?;
            if !response.status().is_success() {
                return Err(unavailable(format!("JWKS answered {}", response.status())));
            }
            let set: RawJwks = read_json(response).await?;
            Ok(ProviderKeys::from_jwks(&set.keys))
        }
        .await;
        match fetched {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self.keys.write() = Some(Cached {
                    value: keys.clone(),
                    fetched: Instant::now(),
                });
                Ok(keys)
            }
            Err(e) => match cached {
                Some((stale, _)) => {
                    tracing::warn!(provider = %self.config.name, error = %e, "JWKS fetch failed; using the cached keys");
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    /// Exchanges an authorization code (RFC 6749 section 4.1.3, with the PKCE verifier of
    /// RFC 7636 section 4.5), authenticating with the client secret as the provider asks:
    /// `client_secret_basic` unless only `client_secret_post` is offered.
    ///
    /// # Errors
    /// [`OAuthError::ProviderUnavailable`] when the provider cannot be reached or fails,
    /// [`OAuthError::TokenExchange`] when it refuses the code.
    pub async fn exchange_code(
        &self,
        metadata: &Metadata,
        code: &str,
        redirect_uri: &str,
        verifier: &SecretString,
    ) -> Result<TokenResponse, OAuthError> {
        let c = &self.config;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose_secret()),
        ];
        let methods = metadata.token_endpoint_auth_methods_supported.as_deref();
        let post_only = methods.is_some_and(|m| {
            m.iter().any(|x| x == "client_secret_post")
                && !m.iter().any(|x| x == "client_secret_basic")
        });
        let mut request = self.http.post(&metadata.token_endpoint);
        if post_only {
            form.push(("client_id", &c.client_id));
            form.push(("client_secret", c.client_secret.expose_secret()));
        } else {
            // RFC 6749 section 2.3.1: both parts are form-urlencoded before Base64.
            let id = form_encode(&c.client_id);
            let secret = form_encode(c.client_secret.expose_secret());
            let basic = STANDARD.encode(format!("{id}:{secret}"));
            request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(unavailable(format!("token endpoint answered {status}")));
        }
        if !status.is_success() {
            let error = read_json::<ErrorBody>(response)
                .await
                .map(|b| b.error)
                .unwrap_or_default();
            let error: String = error
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect();
            return Err(OAuthError::TokenExchange(if error.is_empty() {
                status.to_string()
            } else {
                error
            }));
        }
        read_json(response).await
    }

    /// The userinfo claims (OpenID Connect Core section 5.3), or `None` when the provider has
    /// no userinfo endpoint or it fails (sign-in then goes on with the ID token's claims).
    pub async fn userinfo(
        &self,
        metadata: &Metadata,
        access_token: &str,
    ) -> Option<HashMap<String, serde_json::Value>> {
        let endpoint = metadata.userinfo_endpoint.as_ref()?;
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await;
        let result = match response {
            Ok(r) if r.status().is_success() => read_json(r).await,
            Ok(r) => Err(unavailable(r.status())),
            Err(e) => Err(unavailable(e)),
        };
        result
            .inspect_err(
                |e| tracing::warn!(provider = %self.config.name, error = %e, "userinfo failed"),
            )
            .ok()
    }
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
