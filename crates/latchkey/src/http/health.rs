//! `/healthz` (the process runs) and `/readyz` (the database answers).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use crate::auth::AuthError;

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the keys are loaded and the store answers within two seconds,
/// else 503.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if !state.auth.is_ready() {
        return ApiError::from(AuthError::unavailable("keys not loaded yet")).into_response();
    }
    match tokio::time::timeout(Duration::from_secs(2), state.auth.ping_store()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(_) => ApiError::from(AuthError::unavailable("ping timed out")).into_response(),
    }
}
