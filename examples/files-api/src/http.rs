//! The HTTP surface: who is calling, the routes, and problem+json errors.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey_guard::{
    Authenticated, BearerRejection, InsufficientPermission, JsonBody, Problem, Verifier,
    VerifyError, invalid_input,
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::access::{Caller, Permission};
use crate::files::{Files, FilesError};
use crate::store::{FileFor, FileRecord, StoreError};

/// How callers are identified at run time.
#[derive(Clone)]
pub enum CallerAuth {
    /// Verified access tokens.
    Verify(Arc<Verifier>),
    /// `X-Bench-User` / `X-Bench-Roles` headers, trusted blindly (benchmarks only).
    InsecureBenchHeader,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The files service.
    pub files: Files,
    /// How callers are identified.
    pub auth: CallerAuth,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = BearerRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match &state.auth {
            CallerAuth::Verify(verifier) => {
                let Authenticated(claims) =
                    Authenticated::from_request_parts(parts, verifier).await?;
                Ok(Self {
                    id: claims.sub.clone(),
                    admin: claims.has_role("admin"),
                })
            }
            CallerAuth::InsecureBenchHeader => {
                let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
                let id = header("x-bench-user")
                    .filter(|v| !v.is_empty())
                    .ok_or(BearerRejection(VerifyError::Missing))?;
                let admin = header("x-bench-roles")
                    .is_some_and(|r| r.split(',').any(|r| r.trim() == "admin"));
                Ok(Self {
                    id: id.to_owned(),
                    admin,
                })
            }
        }
    }
}

impl IntoResponse for FilesError {
    fn into_response(self) -> Response {
        match self {
            Self::InvalidInput(detail) => invalid_input(detail).into_response(),
            Self::NotFound => not_found(),
            Self::Forbidden => InsufficientPermission.into_response(),
            Self::Store(StoreError::Unavailable(source)) => {
                tracing::error!(error = %source, "files database unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "Store unavailable",
                    "the database is unreachable; retry shortly",
                )
                .into_response()
            }
            Self::Store(source) => {
                tracing::error!(error = %source, "files database failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Internal error",
                    "something went wrong on our side",
                )
                .into_response()
            }
        }
    }
}

/// 404 problem+json `not_found`: unknown paths, and files that do not exist or are hidden.
#[must_use]
pub fn not_found() -> Response {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "Not found",
        "there is nothing here",
    )
    .into_response()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn summary(file: &FileRecord) -> Value {
    json!({ "id": file.id, "name": file.name, "owner": file.owner, "created_at": rfc3339(file.created_at) })
}

/// The caller's relation to a file, as shown to them.
fn access_of(caller: &Caller, found: &FileFor) -> &'static str {
    match found.share {
        _ if found.file.owner == caller.id => "owner",
        Some(p) => p.as_str(),
        None => "admin",
    }
}

fn full(caller: &Caller, found: &FileFor) -> Value {
    let file = &found.file;
    json!({
        "id": file.id, "name": file.name, "owner": file.owner, "content": file.content,
        "created_at": rfc3339(file.created_at), "updated_at": rfc3339(file.updated_at),
        "access": access_of(caller, found),
    })
}

/// Body of `POST /files`.
#[derive(Deserialize)]
pub struct NewFile {
    name: String,
    content: String,
}

/// Body of `PUT /files/{id}`.
#[derive(Deserialize)]
pub struct NewContent {
    content: String,
}

/// Body of `POST /files/{id}/shares`.
#[derive(Deserialize)]
pub struct NewShare {
    user_id: String,
    permission: String,
}

/// `POST /files` (any authenticated caller): creates a file the caller owns.
pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    JsonBody(body): JsonBody<NewFile>,
) -> Result<Response, FilesError> {
    let file = s.files.create(&caller, &body.name, body.content).await?;
    let location = format!("/files/{}", file.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(json!({ "file": summary(&file) })),
    )
        .into_response())
}

/// `GET /files` (any authenticated caller): the caller's own files and those shared with them.
pub async fn list(caller: Caller, State(s): State<AppState>) -> Result<Json<Value>, FilesError> {
    let files = s.files.list(&caller).await?;
    let view: Vec<Value> = files
        .iter()
        .map(|f| {
            let mut v = summary(&f.file);
            v["updated_at"] = json!(rfc3339(f.file.updated_at));
            v["access"] = json!(access_of(&caller, f));
            v
        })
        .collect();
    Ok(Json(json!({ "files": view })))
}

/// `GET /files/{id}` (owner, any share, or role `admin`; others 404).
pub async fn read(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, FilesError> {
    let found = s.files.read(&caller, &id).await?;
    Ok(Json(json!({ "file": full(&caller, &found) })))
}

/// `PUT /files/{id}` (owner, a write share, or role `admin`; a read share 403; others 404).
pub async fn write(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewContent>,
) -> Result<Json<Value>, FilesError> {
    let found = s.files.write(&caller, &id, body.content).await?;
    Ok(Json(json!({ "file": full(&caller, &found) })))
}

/// `DELETE /files/{id}` (owner or role `admin`; a share 403; others 404).
pub async fn delete(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, FilesError> {
    s.files.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /files/{id}/shares` (the owner only; a share or role `admin` 403; others 404).
pub async fn share(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewShare>,
) -> Result<Json<Value>, FilesError> {
    let permission = Permission::parse(&body.permission).ok_or_else(|| {
        FilesError::InvalidInput("permission must be \"read\" or \"write\"".into())
    })?;
    s.files
        .share(&caller, &id, &body.user_id, permission)
        .await?;
    Ok(Json(
        json!({ "share": { "file_id": id, "user_id": body.user_id, "permission": permission.as_str() } }),
    ))
}

/// `GET /healthz`: 200 while the database answers, else 503.
pub async fn healthz(State(s): State<AppState>) -> Result<StatusCode, FilesError> {
    s.files.store().ping().await?;
    Ok(StatusCode::OK)
}
