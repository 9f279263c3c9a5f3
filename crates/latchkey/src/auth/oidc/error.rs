//! Why an OAuth / OpenID Connect sign-in did not succeed, each with a stable error code.

/// A refused or failed sign-in step. [`OAuthError::code`] is what the browser is redirected
/// with (`?error=CODE`) or what the problem+json body carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// No provider of this name is configured.
    #[error("no sign-in provider of this name is configured")]
    UnknownProvider,
    /// `redirect_to` is missing or not exactly one of the allowed URLs.
    #[error("redirect_to is missing or not in LATCHKEY_OAUTH_REDIRECT_ALLOWLIST")]
    InvalidRedirect,
    /// `state` is missing, unknown, expired, already used, for another provider, or not bound
    /// to this browser.
    #[error("the sign-in state is missing, expired, already used or not from this browser")]
    InvalidState,
    /// The user (or the provider) declined (`error=access_denied`).
    #[error("the sign-in was declined at the provider")]
    AccessDenied,
    /// The provider answered the authorization request with another error.
    #[error("the provider refused the sign-in: {0}")]
    ProviderError(String),
    /// The RFC 9207 `iss` parameter names another issuer, or is missing though announced.
    #[error("the authorization response comes from another issuer")]
    IssuerMismatch,
    /// The provider could not be reached, or answered nonsense.
    #[error("the provider is unavailable: {0}")]
    ProviderUnavailable(String),
    /// The provider refused to exchange the code.
    #[error("the provider refused the authorization code: {0}")]
    TokenExchange(String),
    /// The ID token's signature, issuer, audience, party or lifetime is wrong.
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
    /// The ID token's `nonce` is not the one of this sign-in.
    #[error("the ID token was not issued for this sign-in (nonce mismatch)")]
    NonceMismatch,
    /// This provider account is linked to another user, or the user has another account of
    /// this provider linked.
    #[error(
        "this provider account is linked to another user, or this user already has one of this provider"
    )]
    IdentityTaken,
    /// An account with the provider's verified email exists and automatic linking is off (or
    /// ambiguous): log in to it and link the provider.
    #[error("an account with this email exists; log in to it and link the provider")]
    AccountExists,
    /// The user the identity signs in as is disabled.
    #[error("this account is disabled")]
    AccountDisabled,
}

impl OAuthError {
    /// The stable snake_case code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider => "unknown_provider",
            Self::InvalidRedirect => "invalid_redirect_to",
            Self::InvalidState => "invalid_state",
            Self::AccessDenied => "access_denied",
            Self::ProviderError(_) => "provider_error",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::ProviderUnavailable(_) => "provider_unavailable",
            Self::TokenExchange(_) => "token_exchange_failed",
            Self::InvalidIdToken(_) => "invalid_id_token",
            Self::NonceMismatch => "nonce_mismatch",
            Self::IdentityTaken => "identity_taken",
            Self::AccountExists => "account_exists",
            Self::AccountDisabled => "account_disabled",
        }
    }
}
