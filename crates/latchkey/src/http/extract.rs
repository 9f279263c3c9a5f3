//! Request extractors that answer in the API's own error format.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::auth::ClientInfo;

/// The JSON body extractor: rejections are problem+json (415, 413, 400 `invalid_input`),
/// shared with every resource server through the guard library.
pub use latchkey_guard::JsonBody as ApiJson;

/// The client's address and User-Agent.
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
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
