//! Step-up authentication (RFC 9470): routes that need a sign-in with a second factor
//! ([`RequireMfa`]) or a recent one (`max_age`), answering 401 with
//! `WWW-Authenticate: Bearer error="insufficient_user_authentication"` so that the client
//! signs the user in again, as asked, and retries.
//!
//! The checks read the token's `amr` (RFC 8176; `mfa` when a second factor was used) and
//! `auth_time` (when the user signed in; refreshes keep it).
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use axum::{Router, routing::{get, post}};
//! use latchkey_guard::{RequireMfa, StepUp, require_step_up};
//!
//! async fn payout(RequireMfa(claims): RequireMfa) -> String {
//!     format!("paid out, {}", claims.sub)
//! }
//!
//! # fn build(verifier: Arc<latchkey_guard::Verifier>) -> Router {
//! Router::new()
//!     .route("/payout", post(payout))
//!     // Any route: a second factor within the last 5 minutes.
//!     .route("/close-account", post(|| async { "closed" }).route_layer(require_step_up(
//!         verifier.clone(),
//!         StepUp::mfa().with_max_age(Duration::from_secs(300)),
//!     )))
//!     .with_state(verifier)
//! # }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::{AccessClaims, Authenticated, BearerRejection, Problem, Verifier};

/// What a route asks of the sign-in behind a token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepUp {
    /// A second factor must have been used (`amr` holds `mfa`).
    pub require_mfa: bool,
    /// The sign-in (`auth_time`) must be at most this old.
    pub max_age: Option<Duration>,
}

impl StepUp {
    /// A sign-in with a second factor.
    #[must_use]
    pub fn mfa() -> Self {
        Self {
            require_mfa: true,
            max_age: None,
        }
    }

    /// A sign-in at most `max_age` ago (any method).
    #[must_use]
    pub fn recent(max_age: Duration) -> Self {
        Self {
            require_mfa: false,
            max_age: Some(max_age),
        }
    }

    /// This requirement, and a sign-in at most `max_age` ago.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Checks `claims` at `now` (seconds since the epoch). A token without `auth_time` fails
    /// any `max_age`.
    ///
    /// # Errors
    /// [`InsufficientUserAuthentication`] naming what is missing.
    pub fn check(
        &self,
        claims: &AccessClaims,
        now: u64,
    ) -> Result<(), InsufficientUserAuthentication> {
        let max_age = self.max_age.map(|d| d.as_secs());
        if self.require_mfa && !claims.is_mfa() {
            return Err(InsufficientUserAuthentication {
                description: "a sign-in with a second factor is required",
                max_age,
            });
        }
        if let Some(limit) = max_age {
            let fresh = claims
                .auth_time
                .is_some_and(|t| now.saturating_sub(t) <= limit);
            if !fresh {
                return Err(InsufficientUserAuthentication {
                    description: "a more recent sign-in is required",
                    max_age,
                });
            }
        }
        Ok(())
    }
}

/// The refusal of a valid token whose sign-in does not meet a [`StepUp`]: 401 problem+json
/// `insufficient_user_authentication` with the RFC 9470 challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientUserAuthentication {
    /// What is missing, for people.
    pub description: &'static str,
    /// The `max_age` the route asks for, in seconds.
    pub max_age: Option<u64>,
}

impl InsufficientUserAuthentication {
    /// The `WWW-Authenticate` value (RFC 9470 section 3).
    #[must_use]
    pub fn challenge(&self) -> String {
        let mut value = format!(
            "Bearer realm=\"latchkey\", error=\"insufficient_user_authentication\", \
             error_description=\"{}\"",
            self.description
        );
        if let Some(max_age) = self.max_age {
            value.push_str(&format!(", max_age={max_age}"));
        }
        value
    }
}

impl IntoResponse for InsufficientUserAuthentication {
    fn into_response(self) -> Response {
        let challenge = HeaderValue::from_str(&self.challenge())
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"latchkey\""));
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "insufficient_user_authentication",
            "Stronger sign-in required",
            self.description,
        )
        .with_header(header::WWW_AUTHENTICATE, challenge)
        .into_response()
    }
}

/// Why a step-up requirement refused a request.
#[derive(Debug)]
pub enum StepUpRejection {
    /// No token, or a refused one.
    Unauthenticated(BearerRejection),
    /// A valid token whose sign-in is not strong or recent enough.
    Insufficient(InsufficientUserAuthentication),
}

impl IntoResponse for StepUpRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(r) => r.into_response(),
            Self::Insufficient(r) => r.into_response(),
        }
    }
}

async fn claims_meeting(
    parts: &mut Parts,
    verifier: &Arc<Verifier>,
    step_up: StepUp,
) -> Result<Arc<AccessClaims>, StepUpRejection> {
    let Authenticated(claims) = Authenticated::from_request_parts(parts, verifier)
        .await
        .map_err(StepUpRejection::Unauthenticated)?;
    let now = verifier.settings().clock.unix_seconds();
    step_up
        .check(&claims, now)
        .map_err(StepUpRejection::Insufficient)?;
    Ok(claims)
}

/// The verified claims of a caller who signed in with a second factor (`amr` holds `mfa`).
#[derive(Debug, Clone)]
pub struct RequireMfa(pub Arc<AccessClaims>);

impl<S> FromRequestParts<S> for RequireMfa
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = StepUpRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        Ok(Self(claims_meeting(parts, &verifier, StepUp::mfa()).await?))
    }
}

/// A route layer that lets through only callers whose sign-in meets `step_up`; the handlers
/// behind it can still take [`Authenticated`].
pub fn require_step_up(verifier: Arc<Verifier>, step_up: StepUp) -> RequireStepUpLayer {
    RequireStepUpLayer { verifier, step_up }
}

/// The layer of [`require_step_up`].
#[derive(Clone)]
pub struct RequireStepUpLayer {
    verifier: Arc<Verifier>,
    step_up: StepUp,
}

impl<S> Layer<S> for RequireStepUpLayer {
    type Service = RequireStepUpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireStepUpService {
            inner,
            verifier: self.verifier.clone(),
            step_up: self.step_up,
        }
    }
}

/// The service of [`require_step_up`].
#[derive(Clone)]
pub struct RequireStepUpService<S> {
    inner: S,
    verifier: Arc<Verifier>,
    step_up: StepUp,
}

impl<S> Service<Request> for RequireStepUpService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let step_up = self.step_up;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match claims_meeting(&mut parts, &verifier, step_up).await {
                Ok(_) => inner.call(Request::from_parts(parts, body)).await,
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Audience;

    fn claims(amr: &[&str], auth_time: Option<u64>) -> AccessClaims {
        AccessClaims {
            iss: "https://auth.example".into(),
            sub: "u".into(),
            aud: Audience::One("api".into()),
            exp: 2_000,
            iat: 1_000,
            jti: "j".into(),
            client_id: "api".into(),
            roles: vec![],
            sid: "s".into(),
            auth_time,
            amr: amr.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn mfa_is_required_by_amr() {
        assert!(
            StepUp::mfa()
                .check(&claims(&["pwd", "otp", "mfa"], None), 0)
                .is_ok()
        );
        let refused = StepUp::mfa().check(&claims(&["pwd"], Some(1_000)), 1_000);
        assert_eq!(refused.unwrap_err().max_age, None);
        assert!(StepUp::mfa().check(&claims(&[], None), 0).is_err());
    }

    #[test]
    fn max_age_counts_from_auth_time_and_needs_it() {
        let step_up = StepUp::recent(Duration::from_secs(300));
        let token = claims(&["pwd"], Some(1_000));
        assert!(step_up.check(&token, 1_300).is_ok());
        let refused = step_up.check(&token, 1_301).unwrap_err();
        assert_eq!(refused.max_age, Some(300));
        assert!(refused.challenge().contains("max_age=300"));
        assert!(step_up.check(&claims(&["pwd"], None), 1_000).is_err());
    }

    #[test]
    fn both_are_checked_together() {
        let step_up = StepUp::mfa().with_max_age(Duration::from_secs(60));
        assert!(
            step_up
                .check(&claims(&["pwd", "otp", "mfa"], Some(100)), 150)
                .is_ok()
        );
        assert!(
            step_up
                .check(&claims(&["pwd", "otp", "mfa"], Some(100)), 161)
                .is_err()
        );
        assert!(step_up.check(&claims(&["pwd"], Some(100)), 150).is_err());
    }

    #[test]
    fn the_refusal_is_rfc_9470() {
        let refused = InsufficientUserAuthentication {
            description: "a sign-in with a second factor is required",
            max_age: Some(600),
        };
        let response = refused.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer "));
        assert!(challenge.contains("error=\"insufficient_user_authentication\""));
        assert!(challenge.contains("error_description=\""));
        assert!(challenge.contains("max_age=600"));
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
