//! Authentication strategies, in the spirit of passport's: each route says which ways of
//! authenticating it accepts, and the [`CurrentUser`] extractor tries them in order.
//!
//! ```ignore
//! // A route that accepts a Bearer token or a session cookie:
//! .route("/auth/me", get(me).layer(accept([bearer(), session()])))
//! ```
//!
//! Adding a strategy (say, API keys in an `X-Api-Key` header) means implementing [`Strategy`]:
//! return `Ok(None)` when the request carries no credential of this kind (the next strategy is
//! tried), `Ok(Some(principal))` when it authenticates, and `Err(response)` when a credential
//! is present but refused:
//!
//! ```ignore
//! struct ApiKey;
//! #[async_trait]
//! impl Strategy for ApiKey {
//!     fn name(&self) -> &'static str { "api_key" }
//!     async fn authenticate(&self, parts: &mut Parts, state: &AppState) -> Result<Option<Principal>, Response> {
//!         let Some(key) = parts.headers.get("x-api-key") else { return Ok(None) };
//!         let user = lookup_api_key(state, key).await.map_err(IntoResponse::into_response)?;
//!         Ok(Some(Principal { user_id: user.id, roles: user.roles.clone(), via: Via::Other("api_key") }))
//!     }
//! }
//! ```

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Extension;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_guard::{AccessClaims, VerifyError, bearer_token};
use uuid::Uuid;

use super::AppState;
use super::cookies::cookie;
use super::error::ApiError;
use crate::auth::sessions::CookieSession;

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    /// An access token.
    Bearer(Arc<AccessClaims>),
    /// A session cookie.
    Session(Box<CookieSession>),
    /// A strategy of the application's own.
    Other(&'static str),
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's roles.
    pub roles: Vec<String>,
    /// The strategy that authenticated the request.
    pub via: Via,
}

/// One way of authenticating a request.
#[async_trait]
pub trait Strategy: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;
    /// `Ok(None)`: no credential of this kind; `Ok(Some)`: authenticated; `Err`: refused.
    async fn authenticate(
        &self,
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Principal>, Response>;
}

/// The strategies a route accepts, in order (a route extension).
#[derive(Clone)]
pub struct Strategies(Arc<[Arc<dyn Strategy>]>);

/// The layer that makes a route accept `strategies`.
pub fn accept<const N: usize>(strategies: [Arc<dyn Strategy>; N]) -> Extension<Strategies> {
    Extension(Strategies(Arc::from(strategies.to_vec())))
}

/// The Bearer access-token strategy.
#[must_use]
pub fn bearer() -> Arc<dyn Strategy> {
    Arc::new(BearerStrategy)
}

/// The session-cookie strategy (with CSRF checks on state-changing methods).
#[must_use]
pub fn session() -> Arc<dyn Strategy> {
    Arc::new(SessionStrategy)
}

struct BearerStrategy;

#[async_trait]
impl Strategy for BearerStrategy {
    fn name(&self) -> &'static str {
        "bearer"
    }

    async fn authenticate(
        &self,
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Principal>, Response> {
        let Some(token) = bearer_token(&parts.headers) else {
            return Ok(None);
        };
        let claims = state
            .auth
            .verifier()
            .verify(token)
            .map_err(|e| ApiError::InvalidToken(e).into_response())?;
        let user_id = Uuid::parse_str(&claims.sub)
            .map_err(|_| ApiError::InvalidToken(VerifyError::Malformed).into_response())?;
        Ok(Some(Principal {
            user_id,
            roles: claims.roles.clone(),
            via: Via::Bearer(claims),
        }))
    }
}

struct SessionStrategy;

/// Where the session strategy leaves a re-sealed cookie for [`session_cookie_writer`].
#[derive(Clone, Default)]
pub struct CookieSlot(Arc<Mutex<Option<HeaderValue>>>);

#[async_trait]
impl Strategy for SessionStrategy {
    fn name(&self) -> &'static str {
        "session"
    }

    async fn authenticate(
        &self,
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Principal>, Response> {
        let Some(value) = cookie(&parts.headers, &state.config.session_cookie_name) else {
            return Ok(None);
        };
        let loaded = state
            .auth
            .cookie_sessions()
            .load(value)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        let Some((session, reissued)) = loaded else {
            return Ok(None);
        };
        if is_state_changing(&parts.method) {
            state
                .csrf
                .check(&parts.headers)
                .map_err(|rejected| ApiError::CrossSite(rejected).into_response())?;
            let presented = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !session.csrf_matches(presented) {
                return Err(ApiError::CsrfTokenMissing.into_response());
            }
        }
        if let (Some(cookie), Some(slot)) = (reissued, parts.extensions.get::<CookieSlot>())
            && let Ok(mut guard) = slot.0.lock()
        {
            *guard = Some(state.session_cookie(&cookie));
        }
        let principal = Principal {
            user_id: session.user_id(),
            roles: session.roles().to_vec(),
            via: Via::Session(Box::new(session)),
        };
        Ok(Some(principal))
    }
}

/// Whether a method changes state (RFC 9110 section 9.2.1: not safe).
#[must_use]
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware for routes that accept sessions: sets a re-sealed session cookie when the
/// session strategy produced one (sliding idle timeout of stateless sessions).
pub async fn session_cookie_writer(mut request: Request, next: Next) -> Response {
    let slot = CookieSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let cookie = slot.0.lock().ok().and_then(|mut g| g.take());
    if let Some(cookie) = cookie
        && !response.headers().contains_key(header::SET_COOKIE)
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The authenticated caller, by the strategies the route accepts (Bearer only by default).
pub struct CurrentUser(pub Principal);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let strategies = match parts.extensions.get::<Strategies>() {
            Some(listed) => listed.0.clone(),
            None => Arc::clone(&state.default_strategies),
        };
        for strategy in strategies.iter() {
            if let Some(principal) = strategy.authenticate(parts, state).await? {
                tracing::trace!(strategy = strategy.name(), "authenticated");
                return Ok(Self(principal));
            }
        }
        Err(ApiError::InvalidToken(VerifyError::Missing).into_response())
    }
}
