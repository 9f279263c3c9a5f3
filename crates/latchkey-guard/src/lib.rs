//! Verify Latchkey access tokens in any axum service, and the browser-safety layers that go
//! with them.
//!
//! A resource server builds a [`Verifier`] from the issuer's public keys (a JWKS), puts it in
//! its state, and takes [`Authenticated`] in its handlers:
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use latchkey_guard::{Authenticated, Verifier, VerifierSettings, security_headers, SecurityHeaders};
//!
//! async fn me(Authenticated(claims): Authenticated) -> String {
//!     format!("hello {}", claims.sub)
//! }
//!
//! # fn build(jwks: latchkey_guard::jsonwebtoken::jwk::JwkSet) -> Result<(), latchkey_guard::VerifyError> {
//! let verifier = Arc::new(Verifier::new(VerifierSettings::new("https://auth.example", "https://api.example")));
//! verifier.replace_keys(&jwks)?;
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .with_state(verifier)
//!     .layer(security_headers(SecurityHeaders::default()));
//! # Ok(()) }
//! ```

mod cache;
mod csrf;
mod extract;
mod headers;
mod problem;
mod verify;

pub use cache::TtlCache;
pub use csrf::{CrossSiteCheck, CrossSiteRejected};
pub use extract::{Authenticated, BearerRejection};
pub use headers::{SecurityHeaders, security_headers};
pub use jsonwebtoken;
pub use problem::Problem;
pub use verify::{AccessClaims, Audience, Verifier, VerifierSettings, VerifyError, bearer_token};
