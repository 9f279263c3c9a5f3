//! Role requirements: the [`RequireRole`] extractor and the [`require_role`] route layer, both
//! answering 401 for a missing or refused token and 403 `insufficient_permission` for a
//! verified caller without the role.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::{AccessClaims, Authenticated, BearerRejection, Problem, Verifier};

/// A role name as a type, for [`RequireRole`]. Declare your own with one line:
/// `struct Editor; impl latchkey_guard::RoleName for Editor { const NAME: &'static str = "editor"; }`.
pub trait RoleName: Send + Sync + 'static {
    /// The role as it appears in the token's `roles` claim.
    const NAME: &'static str;
}

/// The `admin` role.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl RoleName for Admin {
    const NAME: &'static str = "admin";
}

/// The verified claims of a caller whose token carries role `R`: one argument on a handler,
/// destructured as `RequireRole(claims, ..)`.
pub struct RequireRole<R: RoleName>(pub Arc<AccessClaims>, pub PhantomData<R>);

impl<R: RoleName> std::fmt::Debug for RequireRole<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequireRole")
            .field(&R::NAME)
            .field(&self.0.sub)
            .finish()
    }
}

/// The refusal of a verified caller that lacks a permission: 403 problem+json
/// `insufficient_permission`, with `WWW-Authenticate: Bearer error="insufficient_scope"`
/// (RFC 6750 section 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientPermission;

impl IntoResponse for InsufficientPermission {
    fn into_response(self) -> Response {
        Problem::new(
            StatusCode::FORBIDDEN,
            "insufficient_permission",
            "Insufficient permission",
            "you are not allowed to do this",
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"latchkey\", error=\"insufficient_scope\""),
        )
        .into_response()
    }
}

/// Why a role requirement refused a request.
#[derive(Debug)]
pub enum RoleRejection {
    /// No token, or a refused one: 401.
    Unauthenticated(BearerRejection),
    /// A valid token without the role: 403.
    Forbidden(InsufficientPermission),
}

impl IntoResponse for RoleRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(r) => r.into_response(),
            Self::Forbidden(r) => r.into_response(),
        }
    }
}

async fn claims_with_role(
    parts: &mut Parts,
    verifier: &Arc<Verifier>,
    role: &str,
) -> Result<Arc<AccessClaims>, RoleRejection> {
    let Authenticated(claims) = Authenticated::from_request_parts(parts, verifier)
        .await
        .map_err(RoleRejection::Unauthenticated)?;
    if claims.has_role(role) {
        Ok(claims)
    } else {
        Err(RoleRejection::Forbidden(InsufficientPermission))
    }
}

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
    R: RoleName,
{
    type Rejection = RoleRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let claims = claims_with_role(parts, &verifier, R::NAME).await?;
        Ok(Self(claims, PhantomData))
    }
}

/// A route layer that lets through only callers whose token carries `role`; the handlers
/// behind it can still take [`Authenticated`] (the claims are verified once).
///
/// ```no_run
/// # use std::sync::Arc;
/// # use axum::{Router, routing::get};
/// # fn build(verifier: Arc<latchkey_guard::Verifier>) -> Router {
/// Router::new()
///     .route("/reports", get(|| async { "for admins" }))
///     .route_layer(latchkey_guard::require_role(verifier, "admin"))
/// # }
/// ```
pub fn require_role(verifier: Arc<Verifier>, role: impl Into<Arc<str>>) -> RequireRoleLayer {
    RequireRoleLayer {
        verifier,
        role: role.into(),
    }
}

/// The layer of [`require_role`].
#[derive(Clone)]
pub struct RequireRoleLayer {
    verifier: Arc<Verifier>,
    role: Arc<str>,
}

impl<S> Layer<S> for RequireRoleLayer {
    type Service = RequireRoleService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireRoleService {
            inner,
            verifier: self.verifier.clone(),
            role: self.role.clone(),
        }
    }
}

/// The service of [`require_role`].
#[derive(Clone)]
pub struct RequireRoleService<S> {
    inner: S,
    verifier: Arc<Verifier>,
    role: Arc<str>,
}

impl<S> Service<Request> for RequireRoleService<S>
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
        // The clone is not yet ready; keep the one that is (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let role = self.role.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match claims_with_role(&mut parts, &verifier, &role).await {
                Ok(_) => inner.call(Request::from_parts(parts, body)).await,
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}
