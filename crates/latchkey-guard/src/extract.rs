//! The axum extractor that hands handlers the verified claims of a Bearer token.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{AccessClaims, Problem, Verifier, VerifyError, bearer_token};

/// The verified claims of the request's Bearer token. Rejects with 401 problem+json and
/// `WWW-Authenticate` (RFC 6750 section 3) when the token is missing or refused. A token
/// naming an unknown key makes the verifier refetch its keys first, when it has a
/// [`crate::KeySource`].
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<AccessClaims>);

/// The rejection of [`Authenticated`].
#[derive(Debug)]
pub struct BearerRejection(pub VerifyError);

impl IntoResponse for BearerRejection {
    fn into_response(self) -> Response {
        // RFC 6750 section 3.1: a request without credentials gets no error code.
        let challenge = match self.0 {
            VerifyError::Missing => HeaderValue::from_static("Bearer realm=\"latchkey\""),
            _ => HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"invalid_token\""),
        };
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Unauthorized",
            self.0.to_string(),
        )
        .with_header(header::WWW_AUTHENTICATE, challenge)
        .into_response()
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(claims) = parts.extensions.get::<Authenticated>() {
            return Ok(claims.clone());
        }
        let token = bearer_token(&parts.headers).ok_or(BearerRejection(VerifyError::Missing))?;
        let verifier = Arc::<Verifier>::from_ref(state);
        let claims = verifier
            .authenticate(token)
            .await
            .map_err(BearerRejection)?;
        let authenticated = Authenticated(claims);
        parts.extensions.insert(authenticated.clone());
        Ok(authenticated)
    }
}
