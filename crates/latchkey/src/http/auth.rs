//! `/auth/*`: register, login, refresh, logout, me, sessions and password changes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_guard::Authenticated;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiJson, Client, cookie};
use crate::auth::{AuthError, Issued, Registration};
use crate::store::{FamilyRecord, UserRecord};

/// Body of `POST /auth/register`.
#[derive(Deserialize)]
pub struct RegisterBody {
    username: String,
    password: SecretString,
    #[serde(default)]
    email: Option<String>,
}

/// Body of `POST /auth/login`.
#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: SecretString,
}

/// Body of `POST /auth/password`.
#[derive(Deserialize)]
pub struct PasswordBody {
    current_password: SecretString,
    new_password: SecretString,
}

/// The `User` object of the API; the admin API adds `disabled`.
#[derive(Serialize)]
pub struct UserView {
    id: String,
    username: String,
    email: Option<String>,
    roles: Vec<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<bool>,
}

impl UserView {
    /// The admin API's view of a user: the `User` object plus `disabled`.
    pub fn admin(u: &UserRecord) -> Self {
        Self {
            disabled: Some(u.disabled),
            ..Self::from(u)
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            roles: u.roles.clone(),
            created_at: rfc3339(u.created_at),
            disabled: None,
        }
    }
}

pub(super) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl AppState {
    fn refresh_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let c = &self.config;
        let secure = if c.cookie_secure { "; Secure" } else { "" };
        let text = format!(
            "{}={value}; Path=/auth; Max-Age={max_age}; HttpOnly; SameSite={}{secure}",
            c.refresh_cookie_name,
            c.cookie_same_site.as_str()
        );
        HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    fn cleared_cookie(&self) -> HeaderValue {
        self.refresh_cookie("", 0)
    }

    fn token_response(&self, issued: &Issued) -> Response {
        let body = json!({
            "access_token": issued.access_token.expose_secret(),
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "user": UserView::from(&*issued.user),
        });
        let cookie =
            self.refresh_cookie(issued.refresh_token.expose_secret(), issued.refresh_max_age);
        no_store(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
    }
}

/// `POST /auth/register`: creates a user (no login).
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    let input = Registration {
        username: body.username,
        password: body.password,
        email: body.email,
        roles: Vec::new(),
    };
    let user = state.auth.register(input).await?;
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(json!({ "user": UserView::from(&user) })),
        )
            .into_response(),
    ))
}

/// `POST /auth/login`: password login; access token in the body, refresh token in a cookie.
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    if body.username.len() > 1024 || body.password.expose_secret().len() > 1024 {
        return Err(ApiError::BadRequest(
            "username or password is too long".into(),
        ));
    }
    let issued = state
        .auth
        .login(&body.username, body.password, client)
        .await?;
    Ok(state.token_response(&issued))
}

/// `POST /auth/refresh`: rotates the refresh cookie and returns a new access token.
pub async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(rejected) = state.csrf.check(&headers) {
        return rejected.into_response();
    }
    let Some(token) = cookie(&headers, &state.config.refresh_cookie_name) else {
        return state.refresh_failure(AuthError::InvalidRefreshToken);
    };
    match state.auth.refresh(token).await {
        Ok(issued) => state.token_response(&issued),
        Err(e) => state.refresh_failure(e),
    }
}

impl AppState {
    fn refresh_failure(&self, error: AuthError) -> Response {
        let clear = matches!(
            error,
            AuthError::InvalidRefreshToken | AuthError::RefreshTokenReused
        );
        let mut response = ApiError::from(error).into_response();
        if clear {
            response
                .headers_mut()
                .insert(header::SET_COOKIE, self.cleared_cookie());
        }
        response
    }
}

/// `POST /auth/logout`: ends this login and clears the cookie; 204 also without a cookie.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Err(rejected) = state.csrf.check(&headers) {
        return Ok(rejected.into_response());
    }
    if let Some(token) = cookie(&headers, &state.config.refresh_cookie_name) {
        state.auth.logout(token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, state.cleared_cookie())],
    )
        .into_response())
}

fn user_id(claims: &Authenticated) -> Result<Uuid, ApiError> {
    Uuid::parse_str(&claims.0.sub).map_err(|_| ApiError::Auth(AuthError::NotFound))
}

/// `POST /auth/logout-all` (Bearer): ends every login of the caller.
pub async fn logout_all(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    state.auth.logout_all(user_id(&auth)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /auth/me` (Bearer): the caller.
pub async fn me(State(state): State<AppState>, auth: Authenticated) -> Result<Response, ApiError> {
    let user = state.auth.user(user_id(&auth)?).await?;
    Ok(no_store(
        Json(json!({ "user": UserView::from(&*user) })).into_response(),
    ))
}

/// `GET /auth/sessions` (Bearer): the caller's live logins.
pub async fn sessions(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Response, ApiError> {
    let families = state.auth.sessions(user_id(&auth)?).await?;
    let view: Vec<_> = families
        .iter()
        .map(|f| session_view(f, &auth.0.sid))
        .collect();
    Ok(no_store(Json(json!({ "sessions": view })).into_response()))
}

fn session_view(f: &FamilyRecord, current_sid: &str) -> serde_json::Value {
    json!({
        "id": f.id.to_string(),
        "created_at": rfc3339(f.created_at),
        "last_used_at": rfc3339(f.last_used_at),
        "expires_at": rfc3339(f.expires_at),
        "user_agent": f.user_agent,
        "ip": f.ip,
        "current": f.id.to_string() == current_sid,
    })
}

/// `DELETE /auth/sessions/{id}` (Bearer): ends one of the caller's logins.
pub async fn delete_session(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let family = Uuid::parse_str(&id).map_err(|_| ApiError::Auth(AuthError::NotFound))?;
    state.auth.delete_session(user_id(&auth)?, family).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/password` (Bearer): changes the password; every other login ends.
pub async fn change_password(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let keep = Uuid::parse_str(&auth.0.sid).ok();
    state
        .auth
        .change_password(
            user_id(&auth)?,
            keep,
            body.current_password,
            body.new_password,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
