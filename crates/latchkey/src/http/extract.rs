//! Request extractors that answer in the API's own error format.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;

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

/// A JSON body that may be left out (an empty body is `T::default()`): for `DELETE` and for
/// requests whose fields are all optional. A body that is present must be `application/json`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        let body = match axum::body::Bytes::from_request(req, state).await {
            Ok(body) => body,
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::PayloadTooLarge);
            }
            Err(_) => return Err(ApiError::BadRequest("the body could not be read".into())),
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType(
                "a body must be application/json",
            ));
        }
        serde_json::from_slice(&body).map(Self).map_err(|_| {
            ApiError::BadRequest("the body must be a JSON object of the documented fields".into())
        })
    }
}
