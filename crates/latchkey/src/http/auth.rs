//! `/auth/*`: register, login, refresh, logout, me, sessions and password changes.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::AppState;
use super::cookies::cookie;
use super::error::ApiError;
use super::extract::{ApiJson, Client};
use super::strategy::{CurrentUser, Principal, Via};
use crate::auth::{
    AuthError, Issued, Keep, LinkedIdentity, Login, LoginKind, Profile, Registration,
};

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
    email_verified: bool,
    roles: Vec<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identities: Option<Vec<IdentityView>>,
}

impl UserView {
    /// The admin API's view of a user: the `User` object plus `disabled`.
    pub fn admin(u: &Profile) -> Self {
        Self {
            disabled: Some(u.disabled),
            ..Self::from(u)
        }
    }
}

/// A linked provider account, in the `User` object of `/auth/me`.
#[derive(Serialize)]
pub struct IdentityView {
    provider: String,
    subject: String,
    email: Option<String>,
}

impl UserView {
    /// The user with the provider accounts linked to it.
    fn with_identities(user: &Profile, identities: Vec<LinkedIdentity>) -> Self {
        let mut view = Self::from(user);
        view.identities = Some(
            identities
                .into_iter()
                .map(|i| IdentityView {
                    provider: i.provider,
                    subject: i.subject,
                    email: i.email,
                })
                .collect(),
        );
        view
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl From<&Profile> for UserView {
    fn from(u: &Profile) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            roles: u.roles.clone(),
            created_at: rfc3339(u.created_at),
            disabled: None,
            identities: None,
        }
    }
}

/// A logout answer: never cached, and the browser is told to drop this site's cookies
/// (`Clear-Site-Data`), on top of the cleared cookie itself.
pub(super) fn logged_out(mut response: Response) -> Response {
    response.headers_mut().insert(
        HeaderName::from_static("clear-site-data"),
        HeaderValue::from_static("\"cookies\""),
    );
    no_store(response)
}

pub(super) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl AppState {
    pub(super) fn token_response(&self, issued: &Issued) -> Response {
        let body = json!({
            "access_token": issued.access_token.expose_secret(),
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "user": UserView::from(&issued.user),
        });
        let cookie =
            self.refresh_cookie(issued.refresh_token.expose_secret(), issued.refresh_max_age);
        no_store(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
    }
}

/// `POST /auth/register`: creates a user (no login).
pub async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    let input = Registration {
        username: body.username,
        password: body.password,
        email: body.email,
        roles: Vec::new(),
    };
    let user = state.auth.register(input, Some(&client)).await?;
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
    Client(mut client): Client,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    client.refresh_token = cookie(&headers, &state.config.refresh_cookie_name)
        .map(|t| SecretString::from(t.to_owned()));
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
        return ApiError::CrossSite(rejected).into_response();
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
                .insert(header::SET_COOKIE, self.cleared_refresh_cookie());
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
        return Ok(ApiError::CrossSite(rejected).into_response());
    }
    if let Some(token) = cookie(&headers, &state.config.refresh_cookie_name) {
        state.auth.logout(token).await?;
    }
    Ok(logged_out(
        (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, state.cleared_refresh_cookie())],
        )
            .into_response(),
    ))
}

/// `POST /auth/logout-all` (Bearer or session): ends every login of the caller.
pub async fn logout_all(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.auth.logout_all(who.user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /auth/me` (Bearer or session): the caller, with its linked provider accounts.
pub async fn me(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
) -> Result<Response, ApiError> {
    let user = match &who.via {
        Via::Session(session) => session.profile(),
        _ => state.auth.profile(who.user_id).await?,
    };
    let identities = state.auth.identities(who.user_id).await?;
    let user = UserView::with_identities(&user, identities);
    Ok(no_store(Json(MeView { user }).into_response()))
}

/// The body of `GET /auth/me`, serialized straight from the view (no `serde_json::Value`).
#[derive(Serialize)]
struct MeView {
    user: UserView,
}

fn keep(who: &Principal) -> Keep {
    match &who.via {
        Via::Bearer(claims) => Keep {
            refresh_family: Uuid::parse_str(&claims.sid).ok(),
            cookie_session: None,
        },
        Via::Session(session) => Keep {
            refresh_family: None,
            cookie_session: session.id,
        },
        Via::Other(_) => Keep::default(),
    }
}

/// `GET /auth/sessions` (Bearer or session): the caller's live logins, refresh families
/// (`kind: "refresh"`) and server-side sessions (`kind: "session"`).
pub async fn sessions(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
) -> Result<Response, ApiError> {
    let logins = state.auth.logins(who.user_id).await?;
    let current = keep(&who);
    let view: Vec<_> = logins
        .iter()
        .map(|login| {
            let mine = match login.kind {
                LoginKind::RefreshFamily => current.refresh_family,
                LoginKind::CookieSession => current.cookie_session,
            };
            login_view(login, mine == Some(login.id))
        })
        .collect();
    Ok(no_store(Json(json!({ "sessions": view })).into_response()))
}

/// A login in `GET /auth/sessions`: `kind` is `refresh` for a refresh family and `session`
/// for a cookie session (the wire names of API.md).
fn login_view(login: &Login, current: bool) -> serde_json::Value {
    let kind = match login.kind {
        LoginKind::RefreshFamily => "refresh",
        LoginKind::CookieSession => "session",
    };
    json!({
        "id": login.id.to_string(),
        "kind": kind,
        "created_at": rfc3339(login.created_at),
        "last_used_at": rfc3339(login.last_used_at),
        "expires_at": rfc3339(login.expires_at),
        "user_agent": login.user_agent,
        "ip": login.ip,
        "current": current,
    })
}

/// `DELETE /auth/sessions/{id}` (Bearer or session): ends one of the caller's logins.
pub async fn delete_session(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::Auth(AuthError::NotFound))?;
    state.auth.end_login(who.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/password` (Bearer or session): changes the password; every other login ends.
pub async fn change_password(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let keep = keep(&who);
    state
        .auth
        .change_password(who.user_id, keep, body.current_password, body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
