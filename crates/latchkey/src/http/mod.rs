//! The HTTP surface: the router, its layers and the shared state.

mod admin;
mod audit;
mod auth;
mod cookies;
mod email;
pub mod error;
mod extract;
mod health;
mod mfa;
mod oauth;
mod passkeys;
pub mod request_context;
mod session;
pub mod strategy;
mod well_known;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, Request};
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use latchkey_guard::{CrossSiteCheck, SecurityHeaders, Verifier, security_headers};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::AuthService;
use crate::config::Config;
use error::ApiError;

/// What every handler can reach: one `Arc`, so the per-request clones (route layers, `State`
/// extraction) cost one atomic increment each.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

/// The fields of [`AppState`], reached through `Deref`.
pub struct AppStateInner {
    /// The domain service.
    pub auth: Arc<AuthService>,
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The Origin / Fetch-Metadata check for cookie-authenticated routes.
    pub csrf: Arc<CrossSiteCheck>,
    /// What a route accepts when it names no strategies: a Bearer token.
    pub default_strategies: Arc<[Arc<dyn strategy::Strategy>]>,
}

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

impl FromRef<AppState> for Arc<Verifier> {
    fn from_ref(state: &AppState) -> Self {
        state.auth.verifier().clone()
    }
}

impl AppState {
    /// State for `auth` under `config`.
    #[must_use]
    pub fn new(auth: Arc<AuthService>, config: Arc<Config>) -> Self {
        let own_origin = url::Url::parse(&config.issuer)
            .ok()
            .map(|u| u.origin().ascii_serialization());
        let csrf = Arc::new(CrossSiteCheck::new(
            own_origin,
            config.allowed_origins.clone(),
        ));
        let default_strategies = Arc::from(vec![strategy::bearer()]);
        Self(Arc::new(AppStateInner {
            auth,
            config,
            csrf,
            default_strategies,
        }))
    }
}

/// The whole application router with its layers.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    // Outermost, so the latency counted includes every layer; `None` when metrics are off.
    let request_metrics = state.auth.metrics().http_layer();
    let origins: Vec<HeaderValue> = config
        .allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let cors = (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static("x-csrf-token"),
            ])
            // So that a page on an allowed origin can honour 429/503 and Bearer challenges.
            .expose_headers([
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                request_context::REQUEST_ID.clone(),
            ])
            .max_age(Duration::from_secs(600))
    });
    // Everything that needs keys from the store answers 503 until they are loaded.
    let needs_keys = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/logout-all", post(auth::logout_all.layer(either())))
        .route("/auth/me", get(auth::me.layer(either())))
        .route("/auth/sessions", get(auth::sessions.layer(either())))
        .route(
            "/auth/sessions/{id}",
            delete(auth::delete_session.layer(either())),
        )
        .route(
            "/auth/password",
            post(auth::change_password.layer(either())),
        )
        .route(
            "/auth/passkeys/register/start",
            post(passkeys::register_start.layer(either())),
        )
        .route(
            "/auth/passkeys/register/finish",
            post(passkeys::register_finish.layer(either())),
        )
        .route("/auth/passkeys", get(passkeys::list.layer(either())))
        .route(
            "/auth/passkeys/{id}",
            patch(passkeys::rename.layer(either())).delete(passkeys::remove.layer(either())),
        )
        .route("/auth/passkeys/login/start", post(passkeys::login_start))
        .route("/auth/passkeys/login/finish", post(passkeys::login_finish))
        .route(
            "/auth/email/verify/request",
            post(email::request_verification.layer(either())),
        )
        .route("/auth/email/verify", post(email::verify))
        .route("/auth/password/forgot", post(email::forgot))
        .route("/auth/password/reset", post(email::reset))
        .route("/auth/oauth/providers", get(oauth::providers))
        .route("/auth/oauth/{provider}/authorize", get(oauth::authorize))
        .route("/auth/oauth/{provider}/callback", get(oauth::callback))
        .route(
            "/auth/oauth/{provider}/link",
            post(oauth::link.layer(either())).delete(oauth::unlink.layer(either())),
        )
        .route("/auth/login/mfa", post(mfa::login_mfa))
        .route("/auth/mfa", get(mfa::status.layer(either())))
        .route(
            "/auth/mfa/totp",
            post(mfa::enrol_totp.layer(either())).delete(mfa::remove_totp.layer(either())),
        )
        .route(
            "/auth/mfa/totp/confirm",
            post(mfa::confirm_totp.layer(either())),
        )
        .route(
            "/auth/mfa/recovery-codes",
            post(mfa::regenerate_recovery_codes.layer(either())),
        )
        .route("/session/login", post(session::login))
        .route("/session/me", get(session::me))
        .route("/session/csrf", get(session::csrf))
        .route("/session/data", put(session::set_data))
        .route("/session/logout", post(session::logout))
        .route("/auth/activity", get(audit::activity.layer(either())))
        .route("/admin/audit", get(audit::admin_audit))
        .route("/admin/users", get(admin::list_users))
        .route("/admin/users/{id}", get(mfa::admin_user))
        .route("/admin/users/{id}/mfa", delete(mfa::admin_reset_mfa))
        .route("/admin/users/{id}/roles", put(admin::set_roles))
        .route(
            "/admin/users/{id}/revoke-sessions",
            post(admin::revoke_sessions),
        )
        .route("/admin/users/{id}/disable", post(admin::disable))
        .route("/admin/users/{id}/enable", post(admin::enable))
        .route(
            "/admin/users/{id}/verify-email",
            post(admin::verify_email).delete(admin::unverify_email),
        )
        .route("/.well-known/jwks.json", get(well_known::jwks))
        .route_layer(RequireKeys(state.auth.clone()));
    let audit_layer = config
        .audit
        .enabled
        .then(|| axum::middleware::from_fn_with_state(state.clone(), audit::request_client));
    let app = Router::new()
        .merge(needs_keys)
        .route(
            "/.well-known/openid-configuration",
            get(well_known::openid_configuration),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    let app = match audit_layer {
        Some(layer) => app.layer(layer),
        None => app,
    };
    // Only sealed-cookie sessions are ever re-issued on a plain request (sliding idle timeout).
    let app = if config.session_store == crate::config::SessionStoreKind::Cookie {
        app.layer(axum::middleware::from_fn(strategy::session_cookie_writer))
    } else {
        app
    };
    app.layer(DefaultBodyLimit::max(config.body_limit))
        .layer(tower::util::option_layer(cors))
        .layer(CatchPanicLayer::custom(|_| ApiError::Panic.into_response()))
        .layer(axum::middleware::from_fn(error::log_errors))
        .layer(axum::middleware::from_fn(time_limit))
        .layer(security_headers(headers_for(&config)))
        .layer(request_context::RequestContext(Arc::new(
            config.trusted_proxies.clone(),
        )))
        .layer(tower::util::option_layer(request_metrics))
}

/// helmet's defaults, with the configured Content-Security-Policy.
fn headers_for(config: &Config) -> SecurityHeaders {
    match config.content_security_policy.as_deref() {
        None => SecurityHeaders::default(),
        Some("none") => SecurityHeaders::default().remove(&header::CONTENT_SECURITY_POLICY),
        Some(policy) => match HeaderValue::from_str(policy) {
            Ok(value) => SecurityHeaders::default().content_security_policy(value),
            Err(_) => SecurityHeaders::default(),
        },
    }
}

/// Bearer token or session cookie, in that order. Layered on the handler (`get(h.layer(..))`),
/// not on the method router, so the route keeps one boxed service instead of two nested ones.
fn either() -> axum::Extension<strategy::Strategies> {
    strategy::accept([strategy::bearer(), strategy::session()])
}

/// Answers 503 `store_unavailable` while the service has not loaded its keys (the store was
/// unreachable at start), instead of refusing tokens it cannot check yet.
///
/// A plain tower layer rather than `from_fn_with_state`: every request clones the route's
/// service stack, and `from_fn` adds a state clone, a boxed `Next` and a `State` extraction on
/// top; this costs one `Arc` clone and one boxed future.
#[derive(Clone)]
struct RequireKeys(Arc<AuthService>);

impl<S> tower::Layer<S> for RequireKeys {
    type Service = RequireKeysService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireKeysService {
            auth: Arc::clone(&self.0),
            inner,
        }
    }
}

#[derive(Clone)]
struct RequireKeysService<S> {
    auth: Arc<AuthService>,
    inner: S,
}

impl<S> tower::Service<Request> for RequireKeysService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if self.auth.is_ready() {
            Box::pin(self.inner.call(request))
        } else {
            let response = ApiError::from(crate::auth::AuthError::unavailable(
                "keys are not loaded from the store yet",
            ))
            .into_response();
            Box::pin(std::future::ready(Ok(response)))
        }
    }
}

/// How long a request may take before it is answered 503.
const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Answers a request that takes longer than [`REQUEST_TIME_LIMIT`] with the API's own 503
/// `overloaded` problem (and `Retry-After`), and drops its work.
async fn time_limit(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIME_LIMIT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("a request took longer than the time limit");
            ApiError::from(crate::auth::AuthError::Overloaded { retry_after: 1 }).into_response()
        }
    }
}
