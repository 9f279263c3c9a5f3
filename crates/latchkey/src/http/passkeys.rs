//! `/auth/passkeys/*`: register (signed in), list, rename, delete, and passwordless sign-in
//! with a discoverable passkey. The domain is `auth::passkeys`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::AppState;
use super::auth::no_store;
use super::cookies::cookie;
use super::error::ApiError;
use super::extract::{ApiJson, Client, OptionalJson};
use super::oauth::auth_time;
use super::strategy::CurrentUser;
use crate::auth::AuthError;
use crate::auth::passkeys::{Ceremony, PasskeyInfo};

/// Body of `POST /auth/passkeys/register/finish`.
#[derive(Deserialize)]
pub struct RegisterFinishBody {
    challenge_id: String,
    /// The `RegistrationResponseJSON` (`PublicKeyCredential.toJSON()`).
    credential: Value,
    #[serde(default)]
    name: Option<String>,
}

/// Body of `POST /auth/passkeys/login/finish`.
#[derive(Deserialize)]
pub struct LoginFinishBody {
    challenge_id: String,
    /// The `AuthenticationResponseJSON` (`PublicKeyCredential.toJSON()`).
    credential: Value,
}

/// Body of `PATCH /auth/passkeys/{id}`.
#[derive(Deserialize)]
pub struct RenameBody {
    name: String,
}

/// Optional body of `DELETE /auth/passkeys/{id}`.
#[derive(Deserialize, Default)]
pub struct DeleteBody {
    #[serde(default)]
    password: Option<SecretString>,
}

fn ceremony_view(c: &Ceremony, expires_in: i64) -> Response {
    no_store(
        Json(json!({
            "challenge_id": c.challenge_id.expose_secret(),
            "options": c.options,
            "expires_in": expires_in,
        }))
        .into_response(),
    )
}

fn passkey_view(p: &PasskeyInfo) -> Value {
    json!({
        "id": p.id.to_string(),
        "name": p.name,
        "credential_id": p.credential_id,
        "transports": p.transports,
        "backup_eligible": p.backup_eligible,
        "backup_state": p.backup_state,
        "sign_count": p.sign_count,
        "created_at": p.created_at.format(&Rfc3339).unwrap_or_default(),
        "last_used_at": p.last_used_at.and_then(|t| t.format(&Rfc3339).ok()),
    })
}

fn credential_bytes(credential: &Value) -> Result<Vec<u8>, ApiError> {
    if !credential.is_object() {
        return Err(ApiError::BadRequest(
            "credential must be the PublicKeyCredential as JSON (toJSON())".into(),
        ));
    }
    serde_json::to_vec(credential)
        .map_err(|_| ApiError::BadRequest("credential could not be read".into()))
}

fn passkey_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::Auth(AuthError::NotFound))
}

const TTL_SECONDS: i64 = crate::auth::passkeys::CEREMONY_TTL.whole_seconds();

/// `POST /auth/passkeys/register/start` (Bearer or session): creation options.
pub async fn register_start(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
) -> Result<Response, ApiError> {
    let ceremony = state.auth.passkey_register_start(who.user_id).await?;
    Ok(ceremony_view(&ceremony, TTL_SECONDS))
}

/// `POST /auth/passkeys/register/finish` (Bearer or session): stores the new passkey.
pub async fn register_finish(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    ApiJson(body): ApiJson<RegisterFinishBody>,
) -> Result<Response, ApiError> {
    let credential = credential_bytes(&body.credential)?;
    let passkey = state
        .auth
        .passkey_register_finish(who.user_id, &body.challenge_id, &credential, body.name)
        .await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(json!({ "passkey": passkey_view(&passkey) })),
        )
            .into_response(),
    ))
}

/// `GET /auth/passkeys` (Bearer or session): the caller's passkeys.
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
) -> Result<Response, ApiError> {
    let passkeys = state.auth.passkeys(who.user_id).await?;
    let view: Vec<Value> = passkeys.iter().map(passkey_view).collect();
    Ok(no_store(Json(json!({ "passkeys": view })).into_response()))
}

/// `PATCH /auth/passkeys/{id}` (Bearer or session) `{name}`: renames a passkey.
pub async fn rename(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .rename_passkey(who.user_id, passkey_id(&id)?, &body.name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /auth/passkeys/{id}` (Bearer or session), optionally with `{password}`: deletes a
/// passkey. Needs a sign-in within `LATCHKEY_REAUTH_MAX_AGE` or the password.
pub async fn remove(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    Path(id): Path<String>,
    OptionalJson(body): OptionalJson<DeleteBody>,
) -> Result<StatusCode, ApiError> {
    let id = passkey_id(&id)?;
    state
        .auth
        .require_recent_auth(who.user_id, auth_time(&who), body.password)
        .await?;
    state.auth.delete_passkey(who.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/passkeys/login/start`: request options for a discoverable passkey (empty
/// `allowCredentials`; usable with `mediation: "conditional"`).
pub async fn login_start(
    State(state): State<AppState>,
    Client(client): Client,
) -> Result<Response, ApiError> {
    let ceremony = state.auth.passkey_login_start(&client).await?;
    Ok(ceremony_view(&ceremony, TTL_SECONDS))
}

/// `POST /auth/passkeys/login/finish`: signs in with the passkey; answers like
/// `POST /auth/login` (access token in the body, refresh token in a cookie).
pub async fn login_finish(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginFinishBody>,
) -> Result<Response, ApiError> {
    let mut client = client;
    client.refresh_token = cookie(&headers, &state.config.refresh_cookie_name)
        .map(|t| SecretString::from(t.to_owned()));
    let credential = credential_bytes(&body.credential)?;
    let login = state
        .auth
        .passkey_login_finish(&body.challenge_id, &credential, client)
        .await?;
    Ok(state.token_response(&login.issued))
}
