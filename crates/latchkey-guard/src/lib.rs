//! Verify Latchkey access tokens in any axum service, and the browser-safety layers that go
//! with them.
//!
//! Given only the issuer URL and its own audience, a resource server gets a [`Verifier`] whose
//! keys come from the issuer's discovery document and JWKS ([`RemoteVerifier`]): cached,
//! refetched when a token names an unknown `kid` (at most once per 10 s, so made-up tokens
//! cannot make it hammer the issuer), refreshed every 5 minutes in the background, and kept
//! while the issuer is briefly unreachable. Algorithms are pinned per key; `typ`, issuer,
//! audience and expiry (with 30 s leeway) are checked; a verified token is cached until it
//! expires. Handlers take [`Authenticated`] (any valid token) or [`RequireRole`] (a valid token
//! carrying a role); refusals are problem+json with `WWW-Authenticate`, as Latchkey answers:
//! 401 `invalid_token`, 403 `insufficient_permission`.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use latchkey_guard::{
//!     Admin, Authenticated, RemoteOptions, RemoteVerifier, RequireRole, SecurityHeaders,
//!     VerifierSettings, security_headers,
//! };
//!
//! async fn me(Authenticated(claims): Authenticated) -> String {
//!     format!("hello {}", claims.sub)
//! }
//!
//! async fn report(RequireRole(claims, ..): RequireRole<Admin>) -> String {
//!     format!("the report, for admin {}", claims.sub)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = VerifierSettings::new("https://auth.example", "https://api.example");
//! let remote = RemoteVerifier::start(settings, &RemoteOptions::default()).await?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .route("/report", get(report))
//!     .with_state(remote.verifier())
//!     .layer(security_headers(SecurityHeaders::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
//! axum::serve(listener, app).await?; // keep `remote` alive: it refreshes the keys
//! # drop(remote);
//! # Ok(()) }
//! ```
//!
//! A server that holds the keys itself (Latchkey does) calls [`Verifier::replace_keys`]
//! instead; any other source of keys can implement [`KeySource`].

mod cache;
mod clock;
mod csrf;
mod extract;
mod headers;
mod json;
mod problem;
mod remote;
mod role;
mod source;
mod step_up;
mod verify;

pub use cache::TtlCache;
pub use clock::{Clock, SharedClock, SystemClock, TestClock};
pub use csrf::{CrossSiteCheck, CrossSiteRejected};
pub use extract::{Authenticated, BearerRejection};
pub use headers::{SecurityHeaders, security_headers};
pub use json::{JsonBody, invalid_input, json_problem};
pub use jsonwebtoken;
pub use problem::Problem;
pub use remote::{RemoteKeys, RemoteOptions, RemoteVerifier};
pub use role::{
    Admin, InsufficientPermission, RequireRole, RequireRoleLayer, RequireRoleService, RoleName,
    RoleRejection, require_role,
};
pub use source::{KeyFetchError, KeyRefreshTask, KeySource};
pub use step_up::{
    InsufficientUserAuthentication, RequireMfa, RequireStepUpLayer, RequireStepUpService, StepUp,
    StepUpRejection, require_step_up,
};
pub use verify::{
    AccessClaims, Audience, Verifier, VerifierSettings, VerifierStats, VerifyError, bearer_token,
};
