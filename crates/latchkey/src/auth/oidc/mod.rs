//! Sign-in with an upstream OpenID Connect provider (Google, or any issuer with a discovery
//! document): the authorization-code flow with PKCE S256, `state` and `nonce`, and the
//! accounts it signs in as.
//!
//! Latchkey is the *client* here: it sends the browser to the provider, takes the code back
//! at `/auth/oauth/{provider}/callback`, exchanges it, validates the ID token, finds or creates
//! the user by (provider, `sub`) and then issues its own tokens exactly as for a password
//! login. Built on `reqwest` and `jsonwebtoken` rather than the `openidconnect` crate: see
//! [`client`] and [`id_token`].
//!
//! Forced-login protection: `state` is stored (hashed, single use, 10 minutes) together with
//! the hash of a random value that `/authorize` also sets in a short-lived cookie; the callback
//! needs both, so a callback URL planted in someone else's browser fails (RFC 9700 section
//! 4.7).

mod accounts;
pub mod client;
mod error;
mod flow;
pub mod id_token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use error::OAuthError;
pub use flow::{Begun, CallbackFailure, CallbackOutcome, CallbackParams, SignIn};

use client::ProviderClient;

use crate::config::OAuthConfig;

/// How long a started sign-in may take (the state's lifetime and the cookie's Max-Age).
pub const STATE_TTL: Duration = Duration::from_secs(600);
/// Time allowed for one request to a provider.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider as shown to clients (sign-in buttons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The name in URLs.
    pub name: String,
    /// The name for people.
    pub display_name: String,
}

/// The configured providers.
pub struct Providers {
    by_name: HashMap<String, Arc<ProviderClient>>,
    list: Vec<ProviderInfo>,
}

impl Providers {
    /// Clients for the configured providers. Nothing is fetched yet: a provider that is down
    /// at start does not stop the server.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS roots).
    pub fn new(config: &OAuthConfig) -> Result<Self, super::AuthError> {
        let mut by_name = HashMap::new();
        let mut list = Vec::new();
        if config.providers.is_empty() {
            // No HTTP client (and no TLS roots loaded) for servers without providers.
            return Ok(Self { by_name, list });
        }
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // Discovery and token responses are never redirects worth following: refusing
            // them keeps a compromised document from steering requests elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| super::AuthError::Internal(format!("HTTP client: {e}")))?;
        for p in &config.providers {
            list.push(ProviderInfo {
                name: p.name.clone(),
                display_name: p.display_name.clone(),
            });
            by_name.insert(
                p.name.clone(),
                Arc::new(ProviderClient::new(p.clone(), http.clone())),
            );
        }
        Ok(Self { by_name, list })
    }

    /// The provider named `name`.
    ///
    /// # Errors
    /// [`OAuthError::UnknownProvider`].
    pub fn get(&self, name: &str) -> Result<&Arc<ProviderClient>, OAuthError> {
        self.by_name.get(name).ok_or(OAuthError::UnknownProvider)
    }

    /// The configured providers, in configuration order.
    #[must_use]
    pub fn list(&self) -> &[ProviderInfo] {
        &self.list
    }
}
