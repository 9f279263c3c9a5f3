//! `/auth/mfa/*` and `/auth/login/mfa`: TOTP enrolment, recovery codes, and the second step of
//! a login; `/admin/users/{id}` and `/admin/users/{id}/mfa` for operators.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_guard::{Admin, RequireRole};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::AppState;
use super::auth::{UserView, no_store};
use super::cookies::cookie;
use super::error::ApiError;
use super::extract::{ApiJson, Client, OptionalJson};
use super::strategy::{CurrentUser, Principal, Via};
use crate::auth::mfa::{Completed, LoginStep, MfaChallenge, MfaProof, MfaStatus};
use crate::auth::{AuthError, Issued};

/// Optional body of `POST /auth/mfa/totp`.
#[derive(Deserialize, Default)]
pub struct EnrolBody {
    #[serde(default)]
    password: Option<SecretString>,
}

/// Body of `POST /auth/mfa/totp/confirm`.
#[derive(Deserialize)]
pub struct ConfirmBody {
    code: SecretString,
}

/// Body of `DELETE /auth/mfa/totp` and `POST /auth/mfa/recovery-codes`: one proof.
#[derive(Deserialize, Default)]
pub struct ProofBody {
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    totp: Option<SecretString>,
    #[serde(default)]
    recovery_code: Option<SecretString>,
}

/// Body of `POST /auth/login/mfa`.
#[derive(Deserialize)]
pub struct LoginMfaBody {
    mfa_token: SecretString,
    #[serde(default)]
    totp: Option<SecretString>,
    #[serde(default)]
    recovery_code: Option<SecretString>,
}

fn too_long(values: &[Option<&SecretString>]) -> Result<(), ApiError> {
    if values
        .iter()
        .flatten()
        .any(|v| v.expose_secret().len() > 1024)
    {
        return Err(ApiError::BadRequest("a value is too long".into()));
    }
    Ok(())
}

/// One of `totp` / `recovery_code`, not both.
fn proof(
    totp: Option<SecretString>,
    recovery_code: Option<SecretString>,
) -> Result<Option<MfaProof>, ApiError> {
    too_long(&[totp.as_ref(), recovery_code.as_ref()])?;
    match (totp, recovery_code) {
        (Some(_), Some(_)) => Err(ApiError::BadRequest(
            "send either `totp` or `recovery_code`, not both".into(),
        )),
        (Some(code), None) => Ok(Some(MfaProof::Totp(code))),
        (None, Some(code)) => Ok(Some(MfaProof::RecoveryCode(code))),
        (None, None) => Ok(None),
    }
}

/// When the caller last authenticated: `auth_time` of a token, the start of a session.
pub(super) fn auth_time(who: &Principal) -> Option<OffsetDateTime> {
    match &who.via {
        Via::Bearer(claims) => claims
            .auth_time
            .and_then(|t| i64::try_from(t).ok())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        Via::Session(session) => Some(session.created_at),
        Via::Other(_) => None,
    }
}

/// The answer of a login that waits for its second factor: 200, nothing issued.
pub(super) fn mfa_required(challenge: &MfaChallenge) -> Response {
    no_store(
        Json(json!({
            "mfa_required": true,
            "mfa_token": challenge.token.expose_secret(),
            "methods": challenge.methods,
            "expires_in": challenge.expires_in,
        }))
        .into_response(),
    )
}

impl AppState {
    /// The answer of a password login step (`/auth/login`).
    pub(super) fn login_step_response(&self, step: &LoginStep<Issued>) -> Response {
        match step {
            LoginStep::Done(issued) => self.token_response(issued),
            LoginStep::SecondFactor(challenge) => mfa_required(challenge),
        }
    }
}

/// `POST /auth/mfa/totp` (Bearer or session; a sign-in within `LATCHKEY_REAUTH_MAX_AGE` or
/// `{password}`): starts a TOTP enrolment and answers `{secret, otpauth_uri, qr_svg}` once.
pub async fn enrol_totp(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    OptionalJson(body): OptionalJson<EnrolBody>,
) -> Result<Response, ApiError> {
    too_long(&[body.password.as_ref()])?;
    let enrolment = state
        .auth
        .enrol_totp(who.user_id, auth_time(&who), body.password)
        .await?;
    Ok(no_store(
        Json(json!({
            "secret": enrolment.secret.expose_secret(),
            "otpauth_uri": enrolment.otpauth_uri.expose_secret(),
            "qr_svg": enrolment.qr_svg.expose_secret(),
        }))
        .into_response(),
    ))
}

fn codes_response(codes: &[SecretString]) -> Response {
    let codes: Vec<&str> = codes.iter().map(ExposeSecret::expose_secret).collect();
    no_store(Json(json!({ "recovery_codes": codes })).into_response())
}

/// `POST /auth/mfa/totp/confirm {code}` (Bearer or session): turns TOTP on with a first code
/// and answers the 10 recovery codes, shown once.
pub async fn confirm_totp(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Response, ApiError> {
    too_long(&[Some(&body.code)])?;
    let codes = state.auth.confirm_totp(who.user_id, &body.code).await?;
    Ok(codes_response(&codes))
}

/// `DELETE /auth/mfa/totp {password | totp | recovery_code}` (Bearer or session): turns
/// two-factor authentication off (TOTP and recovery codes).
pub async fn remove_totp(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    OptionalJson(body): OptionalJson<ProofBody>,
) -> Result<StatusCode, ApiError> {
    too_long(&[body.password.as_ref()])?;
    let proof = proof(body.totp, body.recovery_code)?;
    state
        .auth
        .remove_totp(who.user_id, body.password, proof)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/mfa/recovery-codes {password | totp | recovery_code}` (Bearer or session):
/// replaces the recovery codes; the new ones are shown once.
pub async fn regenerate_recovery_codes(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
    ApiJson(body): ApiJson<ProofBody>,
) -> Result<Response, ApiError> {
    too_long(&[body.password.as_ref()])?;
    let proof = proof(body.totp, body.recovery_code)?;
    let codes = state
        .auth
        .regenerate_recovery_codes(who.user_id, body.password, proof)
        .await?;
    Ok(codes_response(&codes))
}

/// `MfaStatus` on the wire.
#[derive(Serialize)]
pub struct MfaView {
    enabled: bool,
    factors: Vec<FactorView>,
    recovery_codes_left: usize,
}

/// A factor on the wire: type and times, never a secret.
#[derive(Serialize)]
struct FactorView {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created_at: String,
    confirmed_at: Option<String>,
    last_used_at: Option<String>,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl From<&MfaStatus> for MfaView {
    fn from(status: &MfaStatus) -> Self {
        Self {
            enabled: status.enabled,
            factors: status
                .factors
                .iter()
                .map(|f| FactorView {
                    id: f.id.to_string(),
                    kind: f.kind.clone(),
                    created_at: rfc3339(f.created_at),
                    confirmed_at: f.confirmed_at.map(rfc3339),
                    last_used_at: f.last_used_at.map(rfc3339),
                })
                .collect(),
            recovery_codes_left: status.recovery_codes_left,
        }
    }
}

/// `GET /auth/mfa` (Bearer or session): the caller's second factors.
pub async fn status(
    State(state): State<AppState>,
    CurrentUser(who): CurrentUser,
) -> Result<Response, ApiError> {
    let status = state.auth.mfa_status(who.user_id).await?;
    Ok(no_store(Json(MfaView::from(&status)).into_response()))
}

/// `POST /auth/login/mfa {mfa_token, totp | recovery_code}`: completes a login that waits for
/// its second factor, answering as the endpoint that started it (`/auth/login`: tokens and the
/// refresh cookie; `/session/login`: the session and its cookie).
pub async fn login_mfa(
    State(state): State<AppState>,
    headers: HeaderMap,
    Client(mut client): Client,
    ApiJson(body): ApiJson<LoginMfaBody>,
) -> Result<Response, ApiError> {
    too_long(&[Some(&body.mfa_token)])?;
    let Some(proof) = proof(body.totp, body.recovery_code)? else {
        return Err(ApiError::BadRequest(
            "send `totp` or `recovery_code` with the `mfa_token`".into(),
        ));
    };
    if let Err(rejected) = state.csrf.check(&headers) {
        return Ok(ApiError::CrossSite(rejected).into_response());
    }
    client.refresh_token = cookie(&headers, &state.config.refresh_cookie_name)
        .map(|t| SecretString::from(t.to_owned()));
    let completed = state
        .auth
        .complete_mfa_login(&body.mfa_token, proof, client)
        .await;
    match (state.auth.metrics())
        .counted_login(crate::metrics::LoginMethod::SecondFactor, completed)?
    {
        Completed::Token(issued) => Ok(state.token_response(&issued)),
        Completed::Session(started) => {
            let (session, new_cookie) = *started;
            super::session::session_started(&state, &headers, &session, &new_cookie).await
        }
    }
}

/// `GET /admin/users/{id}` (role `admin`): the user with their second factors.
pub async fn admin_user(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = Uuid::parse_str(&admin.0.sub).map_err(|_| ApiError::Auth(AuthError::Forbidden))?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::Auth(AuthError::NotFound))?;
    let (user, mfa) = state.auth.admin().user_with_mfa(caller, id).await?;
    Ok(no_store(
        Json(json!({ "user": UserView::admin(&user), "mfa": MfaView::from(&mfa) })).into_response(),
    ))
}

/// `DELETE /admin/users/{id}/mfa` (role `admin`): removes every second factor of the user
/// (for a locked-out user).
pub async fn admin_reset_mfa(
    admin: RequireRole<Admin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let caller = Uuid::parse_str(&admin.0.sub).map_err(|_| ApiError::Auth(AuthError::Forbidden))?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::Auth(AuthError::NotFound))?;
    state.auth.admin().reset_mfa(caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
