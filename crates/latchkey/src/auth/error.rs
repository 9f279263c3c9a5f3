//! The domain's refusals and failures. The HTTP layer alone turns them into responses.

pub use crate::store::StoreError;

/// Why an authentication operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request is well-formed JSON but its values are not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// The (case-folded) username is registered already.
    #[error("this username is already taken")]
    UsernameTaken,
    /// Unknown user, wrong password or disabled account: deliberately one answer.
    #[error("the username or password is incorrect")]
    InvalidCredentials,
    /// Too many failed logins; retry after this many seconds.
    #[error("too many failed attempts")]
    TooManyAttempts {
        /// Seconds until the window closes.
        retry_after: u64,
    },
    /// The password-hashing queue is full: answered at once instead of queueing without bound.
    #[error("the server is busy; retry shortly")]
    Overloaded {
        /// Seconds to wait before retrying.
        retry_after: u64,
    },
    /// The operation needs a recent authentication (RFC 9470): a sign-in within `max_age`
    /// seconds, or the password in the request.
    #[error("this needs a recent sign-in: log in again or send your current password")]
    ReauthenticationRequired {
        /// How recent the sign-in must be, in seconds.
        max_age: u64,
    },
    /// Missing, forged, expired or revoked refresh token.
    #[error("the refresh token is invalid or expired")]
    InvalidRefreshToken,
    /// An already-rotated refresh token was presented: its family is revoked.
    #[error("the refresh token was already used; all sessions of this login are revoked")]
    RefreshTokenReused,
    /// The caller is authenticated but not allowed to do this.
    #[error("you are not allowed to do this")]
    Forbidden,
    /// The named thing does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// A sign-in with an upstream provider was refused or failed.
    #[error(transparent)]
    OAuth(#[from] super::oidc::OAuthError),
    /// Removing this would leave the user no way to log in (no password, no other identity).
    #[error(
        "this is the account's last way to log in; set a password or link another provider first"
    )]
    LastLoginMethod,
    /// A second factor is on already (remove it first).
    #[error("two-factor authentication is already on for this account")]
    MfaAlreadyEnabled,
    /// No TOTP enrolment is waiting for confirmation (or none is on, for recovery codes).
    #[error("no TOTP enrolment is pending; start one with POST /auth/mfa/totp")]
    MfaNotPending,
    /// A wrong, expired or already used TOTP or recovery code.
    #[error("the code is wrong, expired or already used")]
    InvalidMfaCode,
    /// An unknown, expired, used or withdrawn `mfa_token`.
    #[error("the mfa_token is invalid or expired; log in again")]
    InvalidMfaToken,
    /// A passkey (WebAuthn) operation was refused.
    #[error(transparent)]
    Passkey(super::passkeys::PasskeyError),
    /// The server sends no email (`LATCHKEY_SMTP_URL` is not set).
    #[error("this server sends no email")]
    EmailDisabled,
    /// An email token that is unknown, expired or already used.
    #[error("the link is invalid, expired or already used; ask for a new one")]
    InvalidEmailToken,
    /// Login refused until the account's email address is verified
    /// (`LATCHKEY_REQUIRE_VERIFIED_EMAIL`).
    #[error("verify your email address before logging in")]
    EmailNotVerified,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or an environment failure (never shown to clients).
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// The store (or what the service loads from it) is unavailable: answered 503.
    #[must_use]
    pub fn unavailable(why: impl Into<String>) -> Self {
        Self::Store(StoreError::Unavailable(why.into()))
    }

    /// Whether this is [`AuthError::unavailable`].
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Store(StoreError::Unavailable(_)))
    }
}
