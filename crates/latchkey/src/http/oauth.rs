//! `/auth/oauth/*`: sign-in with upstream OpenID Connect providers, and linking them.
//!
//! Browser routes (`authorize`, `callback`) answer with redirects: to the provider, to the
//! allowed `redirect_to` (with `?error=CODE` on failure), or a 400 problem when no allowed
//! `redirect_to` is known. The access token never travels in a URL: after the redirect the app
//! calls `POST /auth/refresh`, whose cookie the callback has set.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::no_store;
use super::cookies::cookie;
use super::error::{ApiError, ErrorSource, code};
use super::extract::{ApiJson, Client, OptionalJson};
use super::strategy::CurrentUser;
use crate::auth::AuthError;
use crate::auth::oidc::{Begun, CallbackParams};
use crate::metrics::LoginMethod;

/// Body of `POST /auth/oauth/{provider}/link`.
#[derive(Deserialize)]
pub struct LinkBody {
    redirect_to: String,
    /// The current password, needed unless the caller signed in within
    /// `LATCHKEY_REAUTH_MAX_AGE`.
    #[serde(default)]
    password: Option<SecretString>,
}

/// Optional body of `DELETE /auth/oauth/{provider}/link`.
#[derive(Deserialize, Default)]
pub struct UnlinkBody {
    #[serde(default)]
    password: Option<SecretString>,
}

pub(super) use super::mfa::auth_time;

fn query(raw: Option<&str>) -> impl Fn(&str) -> Option<String> + '_ {
    move |name| {
        url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

impl AppState {
    fn redirect(&self, location: &str, cookies: &[HeaderValue]) -> Response {
        let mut response = StatusCode::FOUND.into_response();
        let headers = response.headers_mut();
        // Through `Url`, so that a configured URL with non-ASCII characters is percent-encoded.
        let location = url::Url::parse(location).map_or_else(|_| location.to_owned(), String::from);
        if let Ok(location) = HeaderValue::from_str(&location) {
            headers.insert(header::LOCATION, location);
        }
        for cookie in cookies {
            headers.append(header::SET_COOKIE, cookie.clone());
        }
        no_store(response)
    }

    /// The answer to a failed browser step: back to `redirect_to` with `?error=CODE` when it is
    /// allowed, else a 400 problem (503/500 for the store or a bug).
    fn browser_failure(&self, error: AuthError, redirect_to: Option<&str>) -> Response {
        let clear = self.binding_cookie("", 0);
        let code = match &error {
            AuthError::OAuth(e) => e.code(),
            e if e.is_unavailable() => code::STORE_UNAVAILABLE,
            _ => code::SERVER_ERROR,
        };
        let allowed = redirect_to.filter(|r| self.auth.sign_in().allows_redirect(r));
        if let Some(mut url) = allowed.and_then(|r| url::Url::parse(r).ok()) {
            url.query_pairs_mut().append_pair("error", code);
            let mut response = self.redirect(url.as_str(), &[clear]);
            if !matches!(error, AuthError::OAuth(_)) {
                ErrorSource::attach(
                    &mut response,
                    format!("sign-in with provider failed: {error}"),
                );
            }
            return response;
        }
        let mut response = match error {
            AuthError::OAuth(e) => ApiError::SignIn(e).into_response(),
            other => ApiError::from(other).into_response(),
        };
        response.headers_mut().append(header::SET_COOKIE, clear);
        no_store(response)
    }
}

/// `GET /auth/oauth/providers`: the configured providers, for sign-in buttons.
pub async fn providers(State(state): State<AppState>) -> Response {
    let list: Vec<_> = state
        .auth
        .sign_in()
        .providers()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "display_name": p.display_name,
                "authorize_url": format!("{}/auth/oauth/{}/authorize", state.config.issuer, p.name),
            })
        })
        .collect();
    Json(json!({ "providers": list })).into_response()
}

/// `GET /auth/oauth/{provider}/authorize?redirect_to=URL`: 302 to the provider, with the
/// browser-binding cookie set.
pub async fn authorize(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Client(client): Client,
    RawQuery(raw): RawQuery,
) -> Response {
    // Each start writes a pending sign-in: throttled per address and globally first.
    if let Err(e) = state.auth.sign_in().throttle_start(&client).await {
        return ApiError::from(e).into_response();
    }
    let redirect_to = query(raw.as_deref())("redirect_to").unwrap_or_default();
    match state
        .auth
        .sign_in()
        .begin(&provider, &redirect_to, None)
        .await
    {
        Ok(begun) => {
            let cookie = state.binding_cookie(begun.binding.expose_secret(), begun.max_age);
            state.redirect(&begun.authorization_url, &[cookie])
        }
        Err(e) => state.browser_failure(e, Some(&redirect_to)),
    }
}

/// `GET /auth/oauth/{provider}/callback?code&state[&iss]`: finishes the sign-in, sets the
/// refresh cookie and 302s to `redirect_to`.
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    Client(client): Client,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let get = query(raw.as_deref());
    let params = CallbackParams {
        code: get("code"),
        state: get("state"),
        iss: get("iss"),
        error: get("error"),
    };
    let binding = cookie(&headers, state.binding_cookie_name());
    let result = state
        .auth
        .sign_in()
        .callback(&provider, params, binding, client)
        .await;
    // A linking callback issues nothing: not a login (its failures count, indistinguishable).
    match &result {
        Ok(done) if done.issued.is_none() => {}
        Ok(_) => (state.auth.metrics()).login::<()>(LoginMethod::Oidc, &Ok(())),
        Err(failure) => (state.auth.metrics()).login_failed(LoginMethod::Oidc, &failure.error),
    }
    match result {
        Ok(done) => {
            let mut cookies = vec![state.binding_cookie("", 0)];
            if let Some(issued) = &done.issued {
                let token = issued.refresh_token.expose_secret();
                cookies.push(state.refresh_cookie(token, issued.refresh_max_age));
            }
            state.redirect(&done.redirect_to, &cookies)
        }
        Err(failure) => state.browser_failure(failure.error, failure.redirect_to.as_deref()),
    }
}

/// `POST /auth/oauth/{provider}/link` (Bearer or session) `{redirect_to}`: starts linking a
/// provider account to the caller. Answers `{"authorization_url"}` and sets the
/// browser-binding cookie; the app then navigates the browser to that URL.
pub async fn link(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    Path(provider): Path<String>,
    ApiJson(body): ApiJson<LinkBody>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require_recent_auth(who.user_id, auth_time(&who), body.password)
        .await?;
    let Begun {
        authorization_url,
        binding,
        max_age,
    } = state
        .auth
        .sign_in()
        .begin(&provider, &body.redirect_to, Some(who.user_id))
        .await?;
    let cookie = state.binding_cookie(binding.expose_secret(), max_age);
    let body = Json(json!({ "authorization_url": authorization_url }));
    Ok(no_store(
        ([(header::SET_COOKIE, cookie)], body).into_response(),
    ))
}

/// `DELETE /auth/oauth/{provider}/link` (Bearer or session), optionally with a JSON body
/// `{password}`: unlinks the caller's account of this provider; 409 `last_login_method` when
/// it is the only way left to log in. Needs a sign-in within `LATCHKEY_REAUTH_MAX_AGE` or the
/// password (401 `reauthentication_required` otherwise).
pub async fn unlink(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    Path(provider): Path<String>,
    OptionalJson(body): OptionalJson<UnlinkBody>,
) -> Result<Response, ApiError> {
    state
        .auth
        .require_recent_auth(who.user_id, auth_time(&who), body.password)
        .await?;
    state.auth.unlink_identity(who.user_id, &provider).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
