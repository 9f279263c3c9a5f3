//! `/session/*`: classic cookie sessions (server-side or sealed stateless cookies).

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::auth::UserView;
use super::cookies::cookie;
use super::error::ApiError;
use super::extract::{ApiJson, Client};
use super::strategy::{Via, session};
use crate::auth::mfa::LoginStep;
use crate::auth::sessions::{CookieSession, CookieSessionCookie};

/// Body of `POST /session/login`, as JSON or as a form.
#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: SecretString,
}

/// Body of `PUT /session/data`.
#[derive(Deserialize)]
pub struct DataBody {
    data: serde_json::Value,
}

/// A JSON body, or an `application/x-www-form-urlencoded` one.
pub struct JsonOrForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonOrForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            let axum::Form(value) =
                axum::Form::<T>::from_request(req, state)
                    .await
                    .map_err(|r| {
                        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                            ApiError::PayloadTooLarge
                        } else {
                            ApiError::BadRequest(
                                "the form is missing fields or is malformed".into(),
                            )
                        }
                        .into_response()
                    })?;
            return Ok(Self(value));
        }
        ApiJson::<T>::from_request(req, state)
            .await
            .map(|ApiJson(v)| Self(v))
            .map_err(IntoResponse::into_response)
    }
}

/// The caller's session; 401 `no_session` (and the cookie cleared) without a live one.
/// State-changing requests must pass the Origin check and carry the session's CSRF token.
pub struct CurrentSession(pub Box<CookieSession>);

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match session().authenticate(parts, state).await? {
            Some(principal) => match principal.via {
                Via::Session(loaded) => Ok(Self(loaded)),
                _ => Err(no_session(state)),
            },
            None => Err(no_session(state)),
        }
    }
}

fn no_session(state: &AppState) -> Response {
    let mut response = ApiError::NoSession.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state.cleared_session_cookie());
    response
}

fn session_json(session: &CookieSession) -> serde_json::Value {
    json!({
        "id": session.id.map(|id| id.to_string()),
        "created_at": session.created_at.format(&Rfc3339).unwrap_or_default(),
        "expires_at": session.expires_at.format(&Rfc3339).unwrap_or_default(),
        "data": session.data,
    })
}

fn with_cookie(
    state: &AppState,
    mut response: Response,
    cookie: Option<&CookieSessionCookie>,
) -> Response {
    if let Some(cookie) = cookie {
        response
            .headers_mut()
            .append(header::SET_COOKIE, state.session_cookie(cookie));
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `POST /session/login`: checks the password and starts a session with a fresh id; once it
/// succeeds, an earlier session of this browser is ended.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(mut client): Client,
    JsonOrForm(body): JsonOrForm<LoginBody>,
) -> Result<Response, ApiError> {
    if let Err(rejected) = state.csrf.check(&headers) {
        return Ok(ApiError::CrossSite(rejected).into_response());
    }
    client.refresh_token = cookie(&headers, &state.config.refresh_cookie_name)
        .map(|t| secrecy::SecretString::from(t.to_owned()));
    let step = state
        .auth
        .cookie_sessions()
        .login(&body.username, body.password, client)
        .await;
    match (state.auth.metrics())
        .counted_login_step(crate::metrics::LoginMethod::CookieSession, step)?
    {
        LoginStep::Done((session, new_cookie)) => {
            session_started(&state, &headers, &session, &new_cookie).await
        }
        LoginStep::SecondFactor(challenge) => Ok(super::mfa::mfa_required(&challenge)),
    }
}

/// The answer of a session login (`/session/login`, or its second step): the session and its
/// cookie; once it succeeded, an earlier session of this browser is ended.
pub(super) async fn session_started(
    state: &AppState,
    headers: &HeaderMap,
    session: &CookieSession,
    new_cookie: &CookieSessionCookie,
) -> Result<Response, ApiError> {
    // Only a successful login replaces the browser's earlier session: a mistyped password
    // must not log anyone out.
    if let Some(previous) = cookie(headers, &state.config.session_cookie_name) {
        state.auth.cookie_sessions().logout(previous).await?;
    }
    let body = json!({
        "user": UserView::from(&session.profile()),
        "csrf_token": session.csrf_token(),
        "session": session_json(session),
    });
    Ok(with_cookie(
        state,
        Json(body).into_response(),
        Some(new_cookie),
    ))
}

/// `GET /session/me`: the session's user and data.
pub async fn me(CurrentSession(session): CurrentSession) -> Response {
    let body =
        json!({ "user": UserView::from(&session.profile()), "session": session_json(&session) });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `GET /session/csrf`: the CSRF token to send back in `X-CSRF-Token`.
pub async fn csrf(CurrentSession(session): CurrentSession) -> Response {
    let mut response = Json(json!({ "csrf_token": session.csrf_token() })).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// `PUT /session/data` (CSRF token required): replaces the application data of the session.
pub async fn set_data(
    State(state): State<AppState>,
    CurrentSession(session): CurrentSession,
    ApiJson(body): ApiJson<DataBody>,
) -> Result<Response, ApiError> {
    let cookie = state
        .auth
        .cookie_sessions()
        .set_data(&session, body.data.clone())
        .await?;
    Ok(with_cookie(
        &state,
        Json(json!({ "data": body.data })).into_response(),
        cookie.as_ref(),
    ))
}

/// `POST /session/logout` (CSRF token required when a session is live): ends the session in
/// the store and clears the cookie; 204 also without a session.
pub async fn logout(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (mut parts, _body) = request.into_parts();
    if let Err(rejected) = state.csrf.check(&parts.headers) {
        return Ok(ApiError::CrossSite(rejected).into_response());
    }
    let live = match session().authenticate(&mut parts, &state).await {
        Ok(live) => live,
        Err(rejected) => return Ok(rejected),
    };
    if live.is_some()
        && let Some(value) = cookie(&parts.headers, &state.config.session_cookie_name)
    {
        state.auth.cookie_sessions().logout(value).await?;
    }
    Ok(super::auth::logged_out(
        (
            StatusCode::NO_CONTENT,
            [(header::SET_COOKIE, state.cleared_session_cookie())],
        )
            .into_response(),
    ))
}
