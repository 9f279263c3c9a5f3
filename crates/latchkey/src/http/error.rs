//! The HTTP error type: every failure becomes RFC 9457 problem+json with a stable `code`.
//!
//! [`ApiError`] is the only thing here that builds a problem: its mapping to status, code and
//! title is one exhaustive `match`. A 5xx answer carries its cause in an [`ErrorSource`]
//! response extension (never in the body) and [`log_errors`] logs it once, in the request's span.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_guard::{BearerRejection, CrossSiteRejected, Problem, VerifyError};

use crate::auth::oidc::OAuthError;
use crate::auth::{AuthError, StoreError};

/// The error `code`s of `API.md` (and of the OAuth sign-in's `?error=`, see [`OAuthError`]).
pub mod code {
    /// 400: values not acceptable.
    pub const INVALID_INPUT: &str = "invalid_input";
    /// 409: the username is registered already.
    pub const USERNAME_TAKEN: &str = "username_taken";
    /// 401: unknown user, wrong password or disabled account.
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    /// 429: too many failed attempts.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// 503: the server is busy.
    pub const OVERLOADED: &str = "overloaded";
    /// 401: a more recent sign-in is needed (RFC 9470).
    pub const REAUTHENTICATION_REQUIRED: &str = "reauthentication_required";
    /// 401: missing, forged, expired or revoked refresh token.
    pub const INVALID_REFRESH_TOKEN: &str = "invalid_refresh_token";
    /// 401: a rotated refresh token came back; its family is revoked.
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
    /// 403: authenticated, not allowed.
    pub const INSUFFICIENT_PERMISSION: &str = "insufficient_permission";
    /// 404: nothing here.
    pub const NOT_FOUND: &str = "not_found";
    /// 405: the path does not take this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 409: the last way to log in.
    pub const LAST_LOGIN_METHOD: &str = "last_login_method";
    /// 413: the body is too large.
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// 415: the body is not of an accepted type.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 401: no live cookie session.
    pub const NO_SESSION: &str = "no_session";
    /// 403: failed Origin / Fetch-Metadata check or missing CSRF token.
    pub const CSRF_REJECTED: &str = "csrf_rejected";
    /// 503: the database is unreachable.
    pub const STORE_UNAVAILABLE: &str = "store_unavailable";
    /// 404: the server sends no email (`LATCHKEY_SMTP_URL` unset).
    pub const EMAIL_DISABLED: &str = "email_disabled";
    /// 400: an email token that is unknown, expired or already used.
    pub const INVALID_EMAIL_TOKEN: &str = "invalid_email_token";
    /// 403: password login refused until the email address is verified.
    pub const EMAIL_NOT_VERIFIED: &str = "email_not_verified";
    /// 500: a bug or an environment failure.
    pub const INTERNAL_ERROR: &str = "internal_error";
    /// 400: a wrong, expired or already used TOTP or recovery code.
    pub const INVALID_MFA_CODE: &str = "invalid_mfa_code";
    /// 401: an unknown, expired, used or withdrawn `mfa_token`.
    pub const INVALID_MFA_TOKEN: &str = "invalid_mfa_token";
    /// 409: a second factor is on already.
    pub const MFA_ALREADY_ENABLED: &str = "mfa_already_enabled";
    /// 409: no TOTP enrolment is pending (or none is on).
    pub const MFA_NOT_PENDING: &str = "mfa_not_pending";
    /// `?error=` of a failed browser sign-in that was not the provider's doing.
    pub const SERVER_ERROR: &str = "server_error";
}

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    /// A domain refusal or failure.
    Auth(AuthError),
    /// A failed step of a browser sign-in with a provider, answered 400 whatever the cause
    /// (there is no allowed page to send the browser back to).
    SignIn(OAuthError),
    /// Input refused before the domain sees it (query parameters, oversized fields).
    BadRequest(String),
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The body is not of an accepted type; the detail says which is.
    UnsupportedMediaType(&'static str),
    /// A cookie-session route without a live cookie session.
    NoSession,
    /// A cookie-session request that changes state without this session's CSRF token.
    CsrfTokenMissing,
    /// No such route or resource.
    NotFound,
    /// The route exists, the method does not.
    MethodNotAllowed,
    /// A handler panicked.
    Panic,
    /// A refused Bearer token: 401 `invalid_token` with `WWW-Authenticate`, exactly as
    /// resource servers answer through `latchkey-guard`.
    InvalidToken(VerifyError),
    /// A cookie-authenticated request from another site: 403 `csrf_rejected`, as the guard's
    /// [`CrossSiteCheck`](latchkey_guard::CrossSiteCheck) answers it.
    CrossSite(CrossSiteRejected),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::Auth(error)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::Auth(AuthError::Store(error))
    }
}

/// The cause of a failure the client sees only as a generic answer, for [`log_errors`].
#[derive(Debug, Clone)]
pub struct ErrorSource(pub Arc<str>);

impl ErrorSource {
    /// Attaches `source` to `response`, for [`log_errors`] to log.
    pub fn attach(response: &mut Response, source: impl std::fmt::Display) {
        response
            .extensions_mut()
            .insert(Self(Arc::from(source.to_string())));
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let problem = match self {
            Self::Auth(error) => return answer(auth_problem(error)),
            // The guard's own answers, shared with every resource server.
            Self::InvalidToken(e) => return BearerRejection(e).into_response(),
            Self::CrossSite(rejected) => return rejected.into_response(),
            Self::SignIn(e) => {
                let detail = e.to_string();
                Problem::new(
                    S::BAD_REQUEST,
                    e.code(),
                    "Sign-in with provider failed",
                    detail,
                )
            }
            Self::BadRequest(detail) => {
                Problem::new(S::BAD_REQUEST, code::INVALID_INPUT, "Invalid input", detail)
            }
            Self::PayloadTooLarge => Problem::new(
                S::PAYLOAD_TOO_LARGE,
                code::PAYLOAD_TOO_LARGE,
                "Payload too large",
                "the request body is too large",
            ),
            Self::UnsupportedMediaType(detail) => Problem::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                code::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
                detail,
            ),
            Self::NoSession => Problem::new(
                S::UNAUTHORIZED,
                code::NO_SESSION,
                "Not logged in",
                "there is no live session",
            ),
            Self::CsrfTokenMissing => Problem::new(
                S::FORBIDDEN,
                code::CSRF_REJECTED,
                "CSRF token missing or wrong",
                "send this session's token (GET /session/csrf) in the X-CSRF-Token header",
            ),
            Self::NotFound => Problem::new(
                S::NOT_FOUND,
                code::NOT_FOUND,
                "Not found",
                "there is nothing here",
            ),
            Self::MethodNotAllowed => Problem::new(
                S::METHOD_NOT_ALLOWED,
                code::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "this path does not accept this method",
            ),
            Self::Panic => return answer(internal("a request handler panicked".into())),
        };
        problem.into_response()
    }
}

/// The response for `problem`, with `source` attached for [`log_errors`].
fn answer((problem, source): (Problem, Option<String>)) -> Response {
    let mut response = problem.into_response();
    if let Some(source) = source {
        ErrorSource::attach(&mut response, source);
    }
    response
}

fn auth_problem(error: AuthError) -> (Problem, Option<String>) {
    use StatusCode as S;
    let detail = error.to_string();
    let problem = match error {
        AuthError::InvalidInput(_) => {
            Problem::new(S::BAD_REQUEST, code::INVALID_INPUT, "Invalid input", detail)
        }
        AuthError::UsernameTaken => {
            Problem::new(S::CONFLICT, code::USERNAME_TAKEN, "Username taken", detail)
        }
        AuthError::InvalidCredentials => Problem::new(
            S::UNAUTHORIZED,
            code::INVALID_CREDENTIALS,
            "Invalid credentials",
            detail,
        ),
        AuthError::TooManyAttempts { retry_after } => Problem::new(
            S::TOO_MANY_REQUESTS,
            code::TOO_MANY_ATTEMPTS,
            "Too many attempts",
            format!("{detail}; retry in {retry_after} s"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)),
        AuthError::Overloaded { retry_after } => Problem::new(
            S::SERVICE_UNAVAILABLE,
            code::OVERLOADED,
            "Overloaded",
            format!("{detail} (in {retry_after} s)"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)),
        AuthError::ReauthenticationRequired { max_age } => Problem::new(
            S::UNAUTHORIZED,
            code::REAUTHENTICATION_REQUIRED,
            "Recent sign-in required",
            detail,
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_str(&format!(
                "Bearer realm=\"latchkey\", error=\"insufficient_user_authentication\", \
                 error_description=\"a more recent authentication is required\", max_age={max_age}"
            ))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"latchkey\"")),
        ),
        AuthError::InvalidRefreshToken => Problem::new(
            S::UNAUTHORIZED,
            code::INVALID_REFRESH_TOKEN,
            "Invalid refresh token",
            detail,
        ),
        AuthError::RefreshTokenReused => Problem::new(
            S::UNAUTHORIZED,
            code::REFRESH_TOKEN_REUSED,
            "Refresh token reused",
            detail,
        ),
        AuthError::Forbidden => Problem::new(
            S::FORBIDDEN,
            code::INSUFFICIENT_PERMISSION,
            "Insufficient permission",
            detail,
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"insufficient_scope\""),
        ),
        AuthError::NotFound => Problem::new(S::NOT_FOUND, code::NOT_FOUND, "Not found", detail),
        AuthError::InvalidMfaCode => Problem::new(
            S::BAD_REQUEST,
            code::INVALID_MFA_CODE,
            "Invalid code",
            detail,
        ),
        AuthError::InvalidMfaToken => Problem::new(
            S::UNAUTHORIZED,
            code::INVALID_MFA_TOKEN,
            "Invalid mfa_token",
            detail,
        ),
        AuthError::MfaAlreadyEnabled => Problem::new(
            S::CONFLICT,
            code::MFA_ALREADY_ENABLED,
            "Two-factor authentication already on",
            detail,
        ),
        AuthError::MfaNotPending => Problem::new(
            S::CONFLICT,
            code::MFA_NOT_PENDING,
            "No pending enrolment",
            detail,
        ),
        AuthError::LastLoginMethod => Problem::new(
            S::CONFLICT,
            code::LAST_LOGIN_METHOD,
            "Last way to log in",
            detail,
        ),
        AuthError::OAuth(e) => {
            let status = match e {
                OAuthError::UnknownProvider => S::NOT_FOUND,
                OAuthError::IdentityTaken | OAuthError::AccountExists => S::CONFLICT,
                OAuthError::ProviderUnavailable(_) => S::BAD_GATEWAY,
                OAuthError::InvalidRedirect
                | OAuthError::InvalidState
                | OAuthError::AccessDenied
                | OAuthError::ProviderError(_)
                | OAuthError::IssuerMismatch
                | OAuthError::TokenExchange(_)
                | OAuthError::InvalidIdToken(_)
                | OAuthError::NonceMismatch
                | OAuthError::AccountDisabled => S::BAD_REQUEST,
            };
            Problem::new(status, e.code(), "Sign-in with provider failed", detail)
        }
        AuthError::Passkey(e) => {
            use crate::auth::passkeys::PasskeyError as P;
            let status = match e {
                P::Disabled => S::NOT_FOUND,
                P::UnknownCeremony | P::Malformed(_) => S::BAD_REQUEST,
                P::UnknownCredential | P::Rejected(_) => S::UNAUTHORIZED,
                P::AlreadyRegistered => S::CONFLICT,
            };
            Problem::new(status, e.code(), "Passkey refused", detail)
        }
        AuthError::EmailDisabled => Problem::new(
            S::NOT_FOUND,
            code::EMAIL_DISABLED,
            "Email is not configured",
            detail,
        ),
        AuthError::InvalidEmailToken => Problem::new(
            S::BAD_REQUEST,
            code::INVALID_EMAIL_TOKEN,
            "Invalid or expired link",
            detail,
        ),
        AuthError::EmailNotVerified => Problem::new(
            S::FORBIDDEN,
            code::EMAIL_NOT_VERIFIED,
            "Email not verified",
            detail,
        ),
        AuthError::Store(StoreError::Unavailable(source)) => {
            let problem = Problem::new(
                S::SERVICE_UNAVAILABLE,
                code::STORE_UNAVAILABLE,
                "Store unavailable",
                "the database is unreachable; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return (problem, Some(format!("store unavailable: {source}")));
        }
        AuthError::Store(source) => return internal(source.to_string()),
        AuthError::Internal(source) => return internal(source),
    };
    (problem, None)
}

/// A generic 500; the cause goes to the log only.
fn internal(source: String) -> (Problem, Option<String>) {
    let problem = Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL_ERROR,
        "Internal error",
        "something went wrong on our side",
    );
    (problem, Some(source))
}

/// Logs, once per request, the cause of any answer carrying an [`ErrorSource`] (every 5xx the
/// server produced itself, and browser sign-ins that failed on our side), inside the request's
/// span (so with its request id, method, route and client address).
pub async fn log_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(ErrorSource(source)) = response.extensions_mut().remove::<ErrorSource>() {
        tracing::error!(
            path,
            status = response.status().as_u16(),
            error = %source,
            "request failed"
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_5xx_carries_its_cause_for_the_log_and_a_generic_body() {
        let response = ApiError::from(AuthError::Internal("disk on fire".into())).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let source = response.extensions().get::<ErrorSource>().unwrap();
        assert_eq!(&*source.0, "disk on fire");
        let response = ApiError::from(AuthError::unavailable("no route to host")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.extensions().get::<ErrorSource>().is_some());
    }

    #[test]
    fn a_refusal_has_nothing_to_log() {
        for error in [
            ApiError::from(AuthError::InvalidCredentials),
            ApiError::NoSession,
            ApiError::CsrfTokenMissing,
            ApiError::PayloadTooLarge,
            ApiError::from(AuthError::Overloaded { retry_after: 1 }),
        ] {
            let response = error.into_response();
            assert!(response.extensions().get::<ErrorSource>().is_none());
        }
    }
}
