//! The audit trail over HTTP: `GET /admin/audit` (role `admin`), `GET /auth/activity` (the
//! caller's own sign-ins), and the layer that gives the domain each request's client for its
//! records.

use axum::Json;
use axum::extract::{FromRequestParts, RawQuery, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey_guard::{Admin, RequireRole};
use serde_json::json;
use uuid::Uuid;

use super::AppState;
use super::auth::no_store;
use super::error::ApiError;
use super::extract::Client;
use super::strategy::CurrentUser;
use crate::auth::AuthError;
use crate::auth::audit::{AuditEvent, REQUEST_CLIENT};
use crate::store::AuditQuery;

/// Page size when the caller names none.
const DEFAULT_LIMIT: u32 = 50;

/// Runs the request with its client (address, User-Agent, as the `Client` extractor sees
/// them) known to the domain, for the audit records of operations that take no client.
pub async fn request_client(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let client = match Client::from_request_parts(&mut parts, &state).await {
        Ok(Client(client)) => client,
        Err(never) => match never {},
    };
    REQUEST_CLIENT
        .scope(client, next.run(Request::from_parts(parts, body)))
        .await
}

fn bad(message: &str) -> ApiError {
    ApiError::BadRequest(message.to_owned())
}

fn limit_of(value: &str) -> Result<u32, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("limit must be a positive whole number"))
}

/// `?user&event&after&limit`: `event` may be given several times or comma-separated.
fn audit_query(raw: Option<&str>) -> Result<AuditQuery, ApiError> {
    let mut query = AuditQuery {
        limit: DEFAULT_LIMIT,
        newest_first: true,
        ..AuditQuery::default()
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match &*key {
            "limit" => query.limit = limit_of(&value)?,
            "user" if !value.is_empty() => {
                query.user_id =
                    Some(Uuid::parse_str(&value).map_err(|_| bad("user must be a user id"))?);
            }
            "after" if !value.is_empty() => {
                query.after = Some(
                    Uuid::parse_str(&value)
                        .map_err(|_| bad("after must be an event id from a previous page"))?,
                );
            }
            "event" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let event = AuditEvent::parse(name)
                        .ok_or_else(|| bad(&format!("unknown event `{name}`")))?;
                    query.events.push(event.as_str().to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(query)
}

/// `GET /admin/audit?user&event&after&limit` (role `admin`): audit records, newest first;
/// `next` is the `after` of the following page, `null` on the last.
pub async fn admin_audit(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let caller = Uuid::parse_str(&admin.0.sub).map_err(|_| ApiError::Auth(AuthError::Forbidden))?;
    let query = audit_query(raw.as_deref())?;
    let (events, next) = state.auth.admin().audit(caller, query).await?;
    Ok(no_store(
        Json(json!({ "events": events, "next": next })).into_response(),
    ))
}

/// `GET /auth/activity?limit` (Bearer or session): the caller's own recent sign-ins,
/// successful and refused, newest first.
pub async fn activity(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key == "limit" {
            limit = limit_of(&value)?;
        }
    }
    let events = state.auth.activity(who.user_id, limit).await?;
    Ok(no_store(Json(json!({ "events": events })).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_query_reads_filters_and_refuses_nonsense() {
        let q = audit_query(None).unwrap();
        assert_eq!((q.limit, q.newest_first, q.events.len()), (50, true, 0));
        let id = Uuid::now_v7();
        let q = audit_query(Some(&format!(
            "user={id}&event=login,logout&after={id}&limit=3"
        )))
        .unwrap();
        assert_eq!(q.user_id, Some(id));
        assert_eq!(q.after, Some(id));
        assert_eq!(q.events, vec!["login".to_owned(), "logout".to_owned()]);
        assert_eq!(q.limit, 3);
        for bad in ["limit=0", "user=x", "after=x", "event=nope", "limit=-2"] {
            assert!(audit_query(Some(bad)).is_err(), "{bad}");
        }
    }
}
