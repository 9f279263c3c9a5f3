//! The HTTP error type: every failure becomes RFC 9457 problem+json with a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_guard::Problem;

use crate::auth::AuthError;
use crate::auth::oidc::OAuthError;
use crate::store::StoreError;

/// An error answered to a client.
#[derive(Debug)]
pub enum ApiError {
    /// A domain refusal or failure.
    Auth(AuthError),
    /// Input refused before the domain sees it (query parameters, oversized fields).
    BadRequest(String),
    /// No such route or resource.
    NotFound,
    /// The route exists, the method does not.
    MethodNotAllowed,
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let problem = match self {
            Self::BadRequest(detail) => {
                Problem::new(S::BAD_REQUEST, "invalid_input", "Invalid input", detail)
            }
            Self::NotFound => Problem::new(
                S::NOT_FOUND,
                "not_found",
                "Not found",
                "there is nothing here",
            ),
            Self::MethodNotAllowed => Problem::new(
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "this path does not accept this method",
            ),
            Self::Auth(error) => auth_problem(error),
        };
        problem.into_response()
    }
}

fn auth_problem(error: AuthError) -> Problem {
    use StatusCode as S;
    let detail = error.to_string();
    match error {
        AuthError::InvalidInput(_) => {
            Problem::new(S::BAD_REQUEST, "invalid_input", "Invalid input", detail)
        }
        AuthError::UsernameTaken => {
            Problem::new(S::CONFLICT, "username_taken", "Username taken", detail)
        }
        AuthError::InvalidCredentials => Problem::new(
            S::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid credentials",
            detail,
        ),
        AuthError::TooManyAttempts { retry_after } => Problem::new(
            S::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many attempts",
            format!("{detail}; retry in {retry_after} s"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)),
        AuthError::Overloaded { retry_after } => Problem::new(
            S::SERVICE_UNAVAILABLE,
            "overloaded",
            "Overloaded",
            format!("{detail} (in {retry_after} s)"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)),
        AuthError::ReauthenticationRequired { max_age } => Problem::new(
            S::UNAUTHORIZED,
            "reauthentication_required",
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
            "invalid_refresh_token",
            "Invalid refresh token",
            detail,
        ),
        AuthError::RefreshTokenReused => Problem::new(
            S::UNAUTHORIZED,
            "refresh_token_reused",
            "Refresh token reused",
            detail,
        ),
        AuthError::Forbidden => Problem::new(
            S::FORBIDDEN,
            "insufficient_permission",
            "Insufficient permission",
            detail,
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"insufficient_scope\""),
        ),
        AuthError::NotFound => Problem::new(S::NOT_FOUND, "not_found", "Not found", detail),
        AuthError::LastLoginMethod => Problem::new(
            S::CONFLICT,
            "last_login_method",
            "Last way to log in",
            detail,
        ),
        AuthError::OAuth(e) => {
            let status = match e {
                OAuthError::UnknownProvider => S::NOT_FOUND,
                OAuthError::IdentityTaken | OAuthError::AccountExists => S::CONFLICT,
                OAuthError::ProviderUnavailable(_) => S::BAD_GATEWAY,
                _ => S::BAD_REQUEST,
            };
            Problem::new(status, e.code(), "Sign-in with provider failed", detail)
        }
        AuthError::Store(StoreError::Unavailable(source)) => {
            tracing::error!(error = %source, "store unavailable");
            Problem::new(
                S::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "Store unavailable",
                "the database is unreachable; retry shortly",
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
        }
        AuthError::Store(source) => internal(&source),
        AuthError::Internal(source) => internal(&source),
    }
}

/// Logs the cause once and answers a generic 500.
fn internal(source: &dyn std::fmt::Display) -> Problem {
    tracing::error!(error = %source, "internal error");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Internal error",
        "something went wrong on our side",
    )
}
