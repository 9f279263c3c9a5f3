//! Email routes: `/auth/email/verify/request`, `/auth/email/verify`,
//! `/auth/password/forgot` and `/auth/password/reset`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::{UserView, no_store};
use super::error::ApiError;
use super::extract::{ApiJson, Client};
use super::strategy::CurrentUser;

/// Body of `POST /auth/email/verify`.
#[derive(Deserialize)]
pub struct VerifyBody {
    token: SecretString,
}

/// Body of `POST /auth/password/forgot`: one of the two.
#[derive(Deserialize)]
pub struct ForgotBody {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// Body of `POST /auth/password/reset`.
#[derive(Deserialize)]
pub struct ResetBody {
    token: SecretString,
    new_password: SecretString,
}

/// The one answer of the routes that send mail (202).
fn accepted() -> Response {
    no_store(
        (
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "accepted",
                "detail": "if an account matches, a message is on its way",
            })),
        )
            .into_response(),
    )
}

/// `POST /auth/email/verify/request` (Bearer or session): mails the caller a verification
/// link (nothing when the address is verified already). 202.
pub async fn request_verification(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(who): CurrentUser,
) -> Result<Response, ApiError> {
    state
        .auth
        .request_email_verification(who.user_id, &client)
        .await?;
    Ok(accepted())
}

/// `POST /auth/email/verify {token}`: uses a verification token; 200 `{"user"}`.
pub async fn verify(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Response, ApiError> {
    let user = state.auth.verify_email(&body.token, &client).await?;
    Ok(no_store(
        Json(json!({ "user": UserView::from(&user) })).into_response(),
    ))
}

/// `POST /auth/password/forgot {username | email}`: 202 with the same body whether an account
/// matches or not (the lookup runs after the answer).
pub async fn forgot(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<ForgotBody>,
) -> Result<Response, ApiError> {
    let identifier = match (body.username, body.email) {
        (Some(name), None) => name,
        (None, Some(email)) => email,
        _ => {
            return Err(ApiError::BadRequest(
                "send exactly one of `username` and `email`".into(),
            ));
        }
    };
    state.auth.forgot_password(&identifier, &client).await?;
    Ok(accepted())
}

/// `POST /auth/password/reset {token, new_password}`: sets the new password and ends every
/// login and session of the user; 204.
pub async fn reset(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .reset_password(&body.token, body.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
