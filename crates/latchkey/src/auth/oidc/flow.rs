//! The two legs of the authorization-code flow: `begin` (state, nonce, PKCE, the provider's
//! URL) and `callback` (checks, code exchange, ID-token validation, sign-in).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::id_token::{self, Expected, is_true};
use super::{OAuthError, ProviderInfo, STATE_TTL};
use crate::auth::refresh::hash_token;
use crate::auth::{AuthError, AuthService, ClientInfo, Issued, to_time};
use crate::store::OAuthStateRecord;

/// A started sign-in: where to send the browser, and the binding cookie to set.
#[derive(Debug)]
pub struct Begun {
    /// The provider's authorization URL with all parameters.
    pub authorization_url: String,
    /// The value of the browser-binding cookie.
    pub binding: SecretString,
    /// The cookie's Max-Age in seconds.
    pub max_age: u64,
}

/// The query of the callback, as the provider sent it.
#[derive(Debug, Default, Clone)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The state sent at the start.
    pub state: Option<String>,
    /// RFC 9207 issuer identification.
    pub iss: Option<String>,
    /// An error instead of a code (RFC 6749 section 4.1.2.1).
    pub error: Option<String>,
}

/// A finished sign-in.
#[derive(Debug)]
pub struct CallbackOutcome {
    /// Where to send the browser.
    pub redirect_to: String,
    /// The new login (`None` when an identity was linked to an already logged-in user).
    pub issued: Option<Issued>,
}

/// A failed callback, with where to report it when that is known and allowed.
#[derive(Debug)]
pub struct CallbackFailure {
    /// What went wrong.
    pub error: AuthError,
    /// The allowed `redirect_to` of the sign-in, if the state was valid.
    pub redirect_to: Option<String>,
}

fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    crate::auth::fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn unix(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp()).unwrap_or(0)
}

/// The sign-in area: signing in (and linking accounts) through upstream OpenID Connect
/// providers.
pub struct SignIn<'a> {
    auth: &'a AuthService,
}

impl AuthService {
    /// The upstream OpenID Connect sign-in area.
    #[must_use]
    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn { auth: self }
    }
}

impl SignIn<'_> {
    /// The configured sign-in providers.
    #[must_use]
    pub fn providers(&self) -> &[ProviderInfo] {
        self.auth.oidc.list()
    }

    /// The redirect URI registered with providers: `{issuer}/auth/oauth/{provider}/callback`.
    #[must_use]
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/auth/oauth/{provider}/callback", self.auth.config.issuer)
    }

    /// Whether `url` is an allowed `redirect_to`.
    #[must_use]
    pub fn allows_redirect(&self, url: &str) -> bool {
        self.auth.config.oauth.allows_redirect(url)
    }

    /// Counts the start of a sign-in against `LATCHKEY_OAUTH_AUTHORIZE_*` (each start stores a
    /// pending sign-in).
    ///
    /// # Errors
    /// [`AuthError::TooManyAttempts`] over the limits, or a store failure.
    pub async fn throttle_start(&self, client: &ClientInfo) -> Result<(), AuthError> {
        self.auth
            .take_rate("oauth", self.auth.config.limits.oauth_authorize, client)
            .await
    }

    /// Starts a sign-in with `provider` (or, with `link_user`, the linking of a provider
    /// account to that logged-in user): stores the state and returns the provider's URL.
    ///
    /// # Errors
    /// [`OAuthError::InvalidRedirect`], [`OAuthError::UnknownProvider`],
    /// [`OAuthError::ProviderUnavailable`], or a store failure.
    pub async fn begin(
        &self,
        provider: &str,
        redirect_to: &str,
        link_user: Option<Uuid>,
    ) -> Result<Begun, AuthError> {
        if !self.allows_redirect(redirect_to) {
            return Err(OAuthError::InvalidRedirect.into());
        }
        let client = self.auth.oidc.get(provider)?;
        let metadata = client.metadata().await?;
        let (state, nonce, binding) = (random_token()?, random_token()?, random_token()?);
        let verifier = random_token()?;
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let created_at = self.auth.now();
        self.auth
            .store
            .save_oauth_state(&OAuthStateRecord {
                state_hash: hash_token(&state),
                provider: provider.to_owned(),
                binding_hash: hash_token(&binding),
                nonce: nonce.clone(),
                pkce_verifier: SecretString::from(verifier),
                redirect_to: redirect_to.to_owned(),
                link_user_id: link_user,
                created_at,
                expires_at: created_at + to_time(STATE_TTL),
            })
            .await?;
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| OAuthError::ProviderUnavailable(e.to_string()))?;
        let config = &client.config;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &self.redirect_uri(provider))
            .append_pair("scope", &config.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(Begun {
            authorization_url: url.into(),
            binding: SecretString::from(binding),
            max_age: STATE_TTL.as_secs(),
        })
    }

    /// Finishes a sign-in: checks the state (single use) and its binding to this browser,
    /// the provider's answer and `iss`, exchanges the code, validates the ID token, then
    /// signs in (or links) the identity and starts a refresh family.
    ///
    /// # Errors
    /// A [`CallbackFailure`] with the allowed `redirect_to` when the state was valid.
    #[tracing::instrument(skip_all, fields(provider = %provider))]
    pub async fn callback(
        &self,
        provider: &str,
        params: CallbackParams,
        binding: Option<&str>,
        client_info: ClientInfo,
    ) -> Result<CallbackOutcome, CallbackFailure> {
        let fail =
            |error: AuthError, redirect_to: Option<String>| CallbackFailure { error, redirect_to };
        let Some(state) = params.state.as_deref().filter(|s| s.len() <= 256) else {
            return Err(fail(OAuthError::InvalidState.into(), None));
        };
        let record = match self
            .auth
            .store
            .take_oauth_state(hash_token(state), self.auth.now())
            .await
        {
            Ok(Some(record)) => record,
            Ok(None) => return Err(fail(OAuthError::InvalidState.into(), None)),
            Err(e) => return Err(fail(e.into(), None)),
        };
        let redirect_to = Some(record.redirect_to.clone()).filter(|r| self.allows_redirect(r));
        let bound =
            binding.is_some_and(|b| bool::from(hash_token(b).0.ct_eq(&record.binding_hash.0)));
        if record.provider != provider || !bound {
            return Err(fail(OAuthError::InvalidState.into(), redirect_to));
        }
        // The allow-list may have changed since the start: decide before signing anyone in.
        let Some(redirect_to) = redirect_to else {
            return Err(fail(OAuthError::InvalidRedirect.into(), None));
        };
        match self.finish(provider, &params, record, client_info).await {
            Ok(issued) => Ok(CallbackOutcome {
                redirect_to,
                issued,
            }),
            Err(error) => {
                tracing::info!(error = %error, "sign-in with provider failed");
                Err(fail(error, Some(redirect_to)))
            }
        }
    }

    async fn finish(
        &self,
        provider: &str,
        params: &CallbackParams,
        record: OAuthStateRecord,
        client_info: ClientInfo,
    ) -> Result<Option<Issued>, AuthError> {
        if let Some(error) = &params.error {
            return Err(if error == "access_denied" {
                OAuthError::AccessDenied
            } else {
                let error: String = error
                    .chars()
                    .filter(char::is_ascii_graphic)
                    .take(64)
                    .collect();
                OAuthError::ProviderError(error)
            }
            .into());
        }
        let client = self.auth.oidc.get(provider)?;
        let metadata = client.metadata().await?;
        // RFC 9207 section 2.4: compare `iss` when present; require it when announced.
        match &params.iss {
            Some(iss)
                if !id_token::accepted_issuers(&client.config.issuer).contains(&iss.as_str()) =>
            {
                return Err(OAuthError::IssuerMismatch.into());
            }
            None if metadata.authorization_response_iss_parameter_supported => {
                return Err(OAuthError::IssuerMismatch.into());
            }
            _ => {}
        }
        let code = params
            .code
            .as_deref()
            .ok_or_else(|| OAuthError::ProviderError("no code".into()))?;
        let tokens = client
            .exchange_code(
                &metadata,
                code,
                &self.redirect_uri(provider),
                &record.pkce_verifier,
            )
            .await?;
        let token = tokens
            .id_token
            .ok_or_else(|| OAuthError::InvalidIdToken("the provider sent no ID token".into()))?;
        let kid = jsonwebtoken::decode_header(&token)
            .map_err(|_| OAuthError::InvalidIdToken("malformed".into()))?
            .kid;
        let keys = client.keys(kid.as_deref()).await?;
        let expected = Expected {
            issuer: &client.config.issuer,
            client_id: &client.config.client_id,
            nonce: &record.nonce,
            leeway: self.auth.config.token_leeway.as_secs(),
            now: unix(self.auth.now()),
            started: unix(record.created_at),
        };
        let mut claims = id_token::validate(&token, &keys, &expected)?;
        // Providers that follow Core 5.4 strictly keep profile claims out of the ID token
        // when an access token for userinfo is issued: ask there, for the same `sub` only.
        if (claims.email.is_none() || claims.preferred_username.is_none())
            && let Some(access_token) = &tokens.access_token
            && let Some(info) = client.userinfo(&metadata, access_token).await
            && info.get("sub").and_then(|s| s.as_str()) == Some(claims.sub.as_str())
        {
            let text = |k: &str| info.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            if claims.email.is_none() {
                claims.email = text("email");
                claims.email_verified = is_true(info.get("email_verified"));
            }
            claims.preferred_username = claims
                .preferred_username
                .or_else(|| text("preferred_username"));
            claims.name = claims.name.or_else(|| text("name"));
        }
        let user = self
            .auth
            .resolve_oauth_user(provider, &claims, record.link_user_id)
            .await?;
        if record.link_user_id.is_some() {
            tracing::info!(user.id = %user.id, "provider account linked");
            return Ok(None);
        }
        tracing::info!(user.id = %user.id, "login with provider");
        self.auth
            .start_family(Arc::new(user), client_info, "oidc")
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_values_are_long_and_distinct() {
        let a = random_token().unwrap();
        assert_eq!(
            a.len(),
            43,
            "32 bytes, base64url: a valid PKCE verifier length"
        );
        assert_ne!(a, random_token().unwrap());
    }
}
