//! `/admin/*`: user administration. Every handler takes `RequireRole<Admin>` first: 401 without
//! a valid token, 403 `insufficient_permission` without role `admin` in it (and the domain
//! checks again that the caller is still an enabled admin in the store).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_guard::{Admin, RequireRole};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::auth::{UserView, no_store};
use super::error::ApiError;
use super::extract::ApiJson;
use crate::auth::AuthError;
use crate::auth::admin::DEFAULT_PAGE_SIZE;

/// Body of `PUT /admin/users/{id}/roles`.
#[derive(Deserialize)]
pub struct RolesBody {
    roles: Vec<String>,
}

fn caller(admin: &RequireRole<Admin>) -> Result<Uuid, ApiError> {
    Uuid::parse_str(&admin.0.sub).map_err(|_| ApiError::Auth(AuthError::Forbidden))
}

/// A malformed id names no user: 404, like an unknown one.
fn target(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::Auth(AuthError::NotFound))
}

/// `?limit` (default 50, at most 200: larger is clamped) and `?after` (a user id).
fn page_query(raw: Option<&str>) -> Result<(Option<Uuid>, u32), ApiError> {
    let (mut after, mut limit) = (None, DEFAULT_PAGE_SIZE);
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match &*key {
            "limit" => {
                limit = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    ApiError::BadRequest("limit must be a positive whole number".into())
                })?;
            }
            "after" if !value.is_empty() => {
                after = Some(Uuid::parse_str(&value).map_err(|_| {
                    ApiError::BadRequest("after must be a user id from a previous page".into())
                })?);
            }
            _ => {}
        }
    }
    Ok((after, limit))
}

/// `GET /admin/users?limit&after` (role `admin`): one page of users, in creation order;
/// `next` is the `after` of the following page, `null` on the last.
pub async fn list_users(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (after, limit) = page_query(query.as_deref())?;
    let page = state
        .auth
        .admin()
        .list_users(caller(&admin)?, after, limit)
        .await?;
    let users: Vec<UserView> = page.users.iter().map(UserView::admin).collect();
    let next = page.next.map(|id| id.to_string());
    Ok(no_store(
        Json(json!({ "users": users, "next": next })).into_response(),
    ))
}

/// `PUT /admin/users/{id}/roles` (role `admin`): replaces the user's roles; they reach access
/// tokens at the user's next refresh.
pub async fn set_roles(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RolesBody>,
) -> Result<Response, ApiError> {
    let user = state
        .auth
        .admin()
        .set_roles(caller(&admin)?, target(&id)?, body.roles)
        .await?;
    Ok(no_store(
        Json(json!({ "user": UserView::admin(&user) })).into_response(),
    ))
}

/// `POST /admin/users/{id}/revoke-sessions` (role `admin`): ends every login of the user.
pub async fn revoke_sessions(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .admin()
        .end_logins(caller(&admin)?, target(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/users/{id}/disable` (role `admin`): the user can no longer log in or refresh;
/// every login of theirs ends now.
pub async fn disable(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .admin()
        .set_disabled(caller(&admin)?, target(&id)?, true)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/users/{id}/enable` (role `admin`): the user may log in again.
pub async fn enable(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .admin()
        .set_disabled(caller(&admin)?, target(&id)?, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/users/{id}/verify-email` (role `admin`): marks the user's email address
/// verified; 200 `{"user"}`, 400 when the account has no address.
pub async fn verify_email(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_email_verified(admin, state, &id, true).await
}

/// `DELETE /admin/users/{id}/verify-email` (role `admin`): marks the user's email address
/// unverified; 200 `{"user"}`.
pub async fn unverify_email(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    set_email_verified(admin, state, &id, false).await
}

async fn set_email_verified(
    admin: RequireRole<Admin>,
    state: AppState,
    id: &str,
    verified: bool,
) -> Result<Response, ApiError> {
    let user = state
        .auth
        .admin()
        .set_email_verified(caller(&admin)?, target(id)?, verified)
        .await?;
    Ok(no_store(
        Json(json!({ "user": UserView::admin(&user) })).into_response(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_query_has_defaults_and_refuses_nonsense() {
        assert_eq!(page_query(None).unwrap(), (None, 50));
        assert_eq!(page_query(Some("limit=500")).unwrap(), (None, 500));
        let id = Uuid::now_v7();
        assert_eq!(
            page_query(Some(&format!("after={id}&limit=2"))).unwrap(),
            (Some(id), 2)
        );
        for bad in ["limit=0", "limit=-1", "limit=ten", "after=nope"] {
            assert!(page_query(Some(bad)).is_err(), "{bad}");
        }
    }
}
