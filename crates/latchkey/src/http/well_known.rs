//! `/.well-known/*`: the JWKS and the discovery document.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::auth::keys::rollover::jwks_max_age;

/// `GET /.well-known/jwks.json`: the public keys, cacheable for a third of the publication
/// delay (at most five minutes). A client that refreshes on that schedule knows every key
/// before it signs: `keys rotate` publishes a key `LATCHKEY_KEY_PUBLISH_AHEAD` ahead.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.auth.jwks_json().to_vec();
    let max_age = jwks_max_age(state.config.key_publish_ahead);
    let cache_control = HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("public, max-age=60"));
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, cache_control),
        ],
        body,
    )
        .into_response()
}

/// `GET /.well-known/openid-configuration`: where the keys are and what is signed with what.
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    let issuer = &state.config.issuer;
    let alg = state.config.signing_alg.as_str();
    let body = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "userinfo_endpoint": format!("{issuer}/auth/me"),
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [alg],
        "access_token_signing_alg_values_supported": [alg],
        "token_endpoint_auth_methods_supported": ["none"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "roles", "sid"],
        "latchkey_endpoints": {
            "register": format!("{issuer}/auth/register"),
            "login": format!("{issuer}/auth/login"),
            "refresh": format!("{issuer}/auth/refresh"),
            "logout": format!("{issuer}/auth/logout"),
        },
    });
    (
        [(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        )],
        Json(body),
    )
        .into_response()
}
