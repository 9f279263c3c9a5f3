//! Request extractors that answer in the API's own error format.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::request_context::ClientAddr;
use crate::auth::ClientInfo;

/// The JSON body extractor: rejections are problem+json (415, 413, 400 `invalid_input`),
/// shared with every resource server through the guard library.
pub use latchkey_guard::JsonBody as ApiJson;

/// The client's address ([`ClientAddr`]: the peer, or what a trusted proxy says) and
/// User-Agent.
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = ClientAddr::of(&parts.extensions).map(|ip| ip.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(256).collect());
        Ok(Self(ClientInfo {
            ip,
            user_agent,
            refresh_token: None,
        }))
    }
}
