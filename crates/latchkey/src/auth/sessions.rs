//! Classic sessions (the passport / express-session part): a session cookie whose data lives
//! either in the store (only a hash of the cookie's secret id is kept) or, stateless, in the
//! cookie itself, sealed with AES-256-GCM under a server-only key.
//!
//! What a session holds is the user id plus the application's own data (a JSON object) and a
//! synchronizer CSRF token; on every request the user is loaded again, so a disabled or
//! deleted user ends the session.

use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use uuid::Uuid;

use super::audit::{Actor, AuditEvent, Event};
use super::refresh::hash_token;
use super::{AuthError, AuthService, ClientInfo, Profile, to_time};
use crate::config::SessionStoreKind;
use crate::store::{AuditedChange, SessionRecord, TokenHash, UserRecord};

/// The record of a successful password sign-in to a cookie session.
fn login_event(user_id: Uuid) -> Event {
    Event::success(AuditEvent::Login, Some(user_id), Actor::User(user_id))
        .with(serde_json::json!({ "method": "password", "session": true }))
}

/// The largest application data a session may hold, serialized.
pub const MAX_SESSION_DATA_BYTES: usize = 2048;
const SESSION_KEY_NAME: &str = "session_cookie_key_v1";
/// A sealed cookie is re-issued (sliding the idle timeout) at most this often.
const RESEAL_AFTER: time::Duration = time::Duration::seconds(60);

/// A loaded, live session.
#[derive(Debug, Clone)]
pub struct CookieSession {
    /// The user, loaded on this request.
    user: Arc<UserRecord>,
    /// Public id (database sessions only).
    pub id: Option<Uuid>,
    /// Application data.
    pub data: serde_json::Value,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// When it ends if nothing happens (the earlier of idle and absolute end).
    pub expires_at: OffsetDateTime,
    csrf_token: SecretString,
    handle: Handle,
}

#[derive(Debug, Clone)]
enum Handle {
    Database(TokenHash),
    Cookie(Sealed),
}

/// The payload of a sealed cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    uid: Uuid,
    data: serde_json::Value,
    csrf: String,
    /// Creation, ms since the epoch.
    iat: i64,
    /// Last use, ms since the epoch.
    lu: i64,
    /// The user's login generation at login: a password change or logout-all moves it on,
    /// and the cookie is then refused.
    #[serde(default)]
    g: u64,
}

/// A session just started or changed: the cookie to set.
#[derive(Debug)]
pub struct CookieSessionCookie {
    /// The cookie value.
    pub value: SecretString,
    /// Seconds until it expires (the cookie's Max-Age).
    pub max_age: u64,
}

/// Seals and opens stateless session cookies with a list of keys (the first seals).
pub struct CookieSealer {
    keys: Vec<LessSafeKey>,
}

impl CookieSealer {
    /// A sealer over 32-byte keys.
    ///
    /// # Errors
    /// [`AuthError::Internal`] for a key of the wrong size or no key at all.
    pub fn new(keys: &[&[u8]]) -> Result<Self, AuthError> {
        let keys = keys
            .iter()
            .map(|k| UnboundKey::new(&AES_256_GCM, k).map(LessSafeKey::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| AuthError::Internal("session keys must be 32 bytes".into()))?;
        if keys.is_empty() {
            return Err(AuthError::Internal("no session key".into()));
        }
        Ok(Self { keys })
    }

    fn seal(&self, payload: &Sealed, aad: &str) -> Result<String, AuthError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| AuthError::Internal("no session key".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        crate::auth::fill_random(&mut nonce)?;
        let mut buffer =
            serde_json::to_vec(payload).map_err(|e| AuthError::Internal(e.to_string()))?;
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut buffer,
        )
        .map_err(|_| AuthError::Internal("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buffer);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    fn open(&self, value: &str, aad: &str) -> Option<Sealed> {
        if value.len() > 4096 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        self.keys.iter().find_map(|key| {
            let mut buffer = sealed.to_vec();
            let plain = key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad.as_bytes()),
                    &mut buffer,
                )
                .ok()?;
            serde_json::from_slice(plain).ok()
        })
    }
}

/// Builds the sealer from the configured keys, or from a key kept in the store (made at `now`
/// when it is the first).
///
/// # Errors
/// A store failure or bad key material.
pub(super) async fn build_sealer(
    store: &dyn crate::store::Store,
    configured: &[secrecy::SecretSlice<u8>],
    now: OffsetDateTime,
) -> Result<CookieSealer, AuthError> {
    if configured.is_empty() {
        let mut candidate = [0u8; 32];
        crate::auth::fill_random(&mut candidate)?;
        let key = store
            .server_secret(SESSION_KEY_NAME, &candidate, now)
            .await?;
        return CookieSealer::new(&[&key]);
    }
    let keys: Vec<&[u8]> = configured.iter().map(ExposeSecret::expose_secret).collect();
    CookieSealer::new(&keys)
}

fn random_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    crate::auth::fill_random(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn max_age(until: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((until - now).whole_seconds()).unwrap_or(0)
}

impl CookieSession {
    /// The signed-in user's id.
    #[must_use]
    pub fn user_id(&self) -> Uuid {
        self.user.id
    }

    /// The signed-in user's roles.
    #[must_use]
    pub fn roles(&self) -> &[String] {
        &self.user.roles
    }

    /// The signed-in user's profile.
    #[must_use]
    pub fn profile(&self) -> Profile {
        Profile::from(&*self.user)
    }

    /// Whether `presented` is this session's CSRF token (constant-time comparison).
    #[must_use]
    pub fn csrf_matches(&self, presented: &str) -> bool {
        let expected = self.csrf_token.expose_secret().as_bytes();
        expected.len() == presented.len() && bool::from(expected.ct_eq(presented.as_bytes()))
    }

    /// The CSRF token to hand to the page.
    #[must_use]
    pub fn csrf_token(&self) -> &str {
        self.csrf_token.expose_secret()
    }
}

/// The cookie-session area (`/session/*` and the session strategy): sessions kept in the
/// store or sealed in the cookie, as configured. See [`AuthService::cookie_sessions`].
pub struct CookieSessions<'a> {
    service: &'a AuthService,
}

impl AuthService {
    /// The cookie-session area.
    #[must_use]
    pub fn cookie_sessions(&self) -> CookieSessions<'_> {
        CookieSessions { service: self }
    }
}

impl CookieSessions<'_> {
    fn idle(&self) -> time::Duration {
        to_time(self.service.config.session_idle_timeout)
    }

    fn absolute(&self) -> time::Duration {
        to_time(self.service.config.session_absolute_timeout)
    }

    /// Checks the password (throttled like token logins) and starts a new session with a new
    /// id (so a planted id is never promoted: no session fixation).
    ///
    /// # Errors
    /// As [`AuthService::authenticate_password`], or a store failure.
    pub async fn login(
        &self,
        username: &str,
        password: SecretString,
        client: ClientInfo,
    ) -> Result<(CookieSession, CookieSessionCookie), AuthError> {
        let user = Arc::new(
            self.service
                .authenticate_password(username, password, &client)
                .await?,
        );
        let client_info = client;
        let now = self.service.now();
        let csrf = random_token()?;
        let absolute_end = now + self.absolute();
        let idle_end = (now + self.idle()).min(absolute_end);
        let data = serde_json::json!({});
        let (value, handle, id) = match self.service.config.session_store {
            SessionStoreKind::Database => {
                let secret = random_token()?;
                let record = SessionRecord {
                    id: Uuid::new_v4(),
                    token_hash: hash_token(&secret),
                    user_id: user.id,
                    data: data.clone(),
                    csrf_token: csrf.clone(),
                    created_at: now,
                    last_used_at: now,
                    idle_expires_at: idle_end,
                    absolute_expires_at: absolute_end,
                    user_agent: client_info.user_agent.clone(),
                    ip: client_info.ip.clone(),
                };
                let records = self
                    .service
                    .audit_records(Some(&client_info), [login_event(user.id)]);
                self.service
                    .store
                    .audited(AuditedChange::CreateSession(&record), &records)
                    .await?;
                (secret, Handle::Database(record.token_hash), Some(record.id))
            }
            SessionStoreKind::Cookie => {
                // Nothing is stored for a sealed cookie: the record alone.
                self.service
                    .record(Some(&client_info), login_event(user.id))
                    .await;
                let sealed = Sealed {
                    uid: user.id,
                    data: data.clone(),
                    csrf: csrf.clone(),
                    iat: ms(now),
                    lu: ms(now),
                    g: user.generation,
                };
                let value = self
                    .service
                    .secrets()?
                    .sealer
                    .seal(&sealed, &self.service.config.session_cookie_name)?;
                (value, Handle::Cookie(sealed), None)
            }
        };
        let cookie = CookieSessionCookie {
            value: SecretString::from(value),
            max_age: max_age(idle_end, now),
        };
        let loaded = CookieSession {
            user,
            id,
            data,
            created_at: now,
            expires_at: idle_end,
            csrf_token: SecretString::from(csrf),
            handle,
        };
        Ok((loaded, cookie))
    }

    /// Loads the session of a cookie value. `None` for anything that is not a live session of
    /// an enabled user: unknown, forged, tampered, sealed with a foreign key, expired.
    /// For sealed cookies, a re-sealed cookie (sliding idle timeout) may come with it.
    ///
    /// # Errors
    /// A store failure.
    pub async fn load(
        &self,
        value: &str,
    ) -> Result<Option<(CookieSession, Option<CookieSessionCookie>)>, AuthError> {
        let now = self.service.now();
        match self.service.config.session_store {
            SessionStoreKind::Database => {
                if value.len() > 128 {
                    return Ok(None);
                }
                let hash = hash_token(value);
                let Some(record) = self
                    .service
                    .store
                    .use_session(hash, now, now + self.idle())
                    .await?
                else {
                    return Ok(None);
                };
                let Some(user) = self.live_user(record.user_id).await? else {
                    self.service.store.delete_session(hash).await?;
                    return Ok(None);
                };
                let loaded = CookieSession {
                    user,
                    id: Some(record.id),
                    data: record.data,
                    created_at: record.created_at,
                    expires_at: record.idle_expires_at.min(record.absolute_expires_at),
                    csrf_token: SecretString::from(record.csrf_token),
                    handle: Handle::Database(hash),
                };
                Ok(Some((loaded, None)))
            }
            SessionStoreKind::Cookie => {
                let Some(mut sealed) = self
                    .service
                    .secrets()?
                    .sealer
                    .open(value, &self.service.config.session_cookie_name)
                else {
                    return Ok(None);
                };
                let absolute_end = from_ms(sealed.iat) + self.absolute();
                let idle_end = (from_ms(sealed.lu) + self.idle()).min(absolute_end);
                if idle_end <= now {
                    return Ok(None);
                }
                let Some(user) = self.live_user(sealed.uid).await? else {
                    return Ok(None);
                };
                if user.generation != sealed.g {
                    return Ok(None); // ended by a password change or logout-all
                }
                let mut reissued = None;
                let mut expires_at = idle_end;
                if now - from_ms(sealed.lu) >= RESEAL_AFTER {
                    sealed.lu = ms(now);
                    expires_at = (now + self.idle()).min(absolute_end);
                    let value = self
                        .service
                        .secrets()?
                        .sealer
                        .seal(&sealed, &self.service.config.session_cookie_name)?;
                    reissued = Some(CookieSessionCookie {
                        value: SecretString::from(value),
                        max_age: max_age(expires_at, now),
                    });
                }
                let loaded = CookieSession {
                    user,
                    id: None,
                    data: sealed.data.clone(),
                    created_at: from_ms(sealed.iat),
                    expires_at,
                    csrf_token: SecretString::from(sealed.csrf.clone()),
                    handle: Handle::Cookie(sealed),
                };
                Ok(Some((loaded, reissued)))
            }
        }
    }

    async fn live_user(&self, user_id: Uuid) -> Result<Option<Arc<UserRecord>>, AuthError> {
        match self.service.user(user_id).await {
            Ok(user) if !user.disabled => Ok(Some(user)),
            Ok(_) | Err(AuthError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the session's application data (a JSON object of at most 2 KiB). A sealed
    /// cookie session gets a new cookie.
    ///
    /// # Errors
    /// [`AuthError::InvalidInput`] for data that is not an object or too large; a store failure.
    pub async fn set_data(
        &self,
        session: &CookieSession,
        data: serde_json::Value,
    ) -> Result<Option<CookieSessionCookie>, AuthError> {
        if !data.is_object() || data.to_string().len() > MAX_SESSION_DATA_BYTES {
            return Err(AuthError::InvalidInput(format!(
                "session data must be a JSON object of at most {MAX_SESSION_DATA_BYTES} bytes"
            )));
        }
        match &session.handle {
            Handle::Database(hash) => {
                if !self.service.store.set_session_data(*hash, &data).await? {
                    return Err(AuthError::NotFound);
                }
                Ok(None)
            }
            Handle::Cookie(sealed) => {
                let now = self.service.now();
                let sealed = Sealed {
                    data,
                    lu: ms(now),
                    ..sealed.clone()
                };
                let absolute_end = from_ms(sealed.iat) + self.absolute();
                let expires_at = (now + self.idle()).min(absolute_end);
                let value = self
                    .service
                    .secrets()?
                    .sealer
                    .seal(&sealed, &self.service.config.session_cookie_name)?;
                Ok(Some(CookieSessionCookie {
                    value: SecretString::from(value),
                    max_age: max_age(expires_at, now),
                }))
            }
        }
    }

    /// Ends the session of a cookie value in the store (a sealed cookie can only be cleared
    /// from the browser: it stays valid until it expires if a copy was kept).
    ///
    /// # Errors
    /// A store failure.
    pub async fn logout(&self, value: &str) -> Result<(), AuthError> {
        if self.service.config.session_store == SessionStoreKind::Database && value.len() <= 128 {
            let hash = hash_token(value);
            let owner = match self.service.audit_enabled() {
                true => self
                    .service
                    .store
                    .use_session(hash, self.service.now(), self.service.now())
                    .await?
                    .map(|s| s.user_id),
                false => None,
            };
            let event = Event::success(
                AuditEvent::Logout,
                owner,
                owner.map_or(Actor::Client, Actor::User),
            )
            .with(serde_json::json!({ "method": "session" }));
            self.service
                .audited(AuditedChange::DeleteSession(hash), None, event)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Sealed {
        Sealed {
            uid: Uuid::new_v4(),
            data: serde_json::json!({"theme": "dark"}),
            csrf: "c".into(),
            iat: 1,
            lu: 2,
            g: 0,
        }
    }

    #[test]
    fn a_sealed_cookie_opens_with_its_key_and_older_keys_still_open() {
        let old = CookieSealer::new(&[&[1; 32]]).unwrap();
        let value = old.seal(&payload(), "session").unwrap();
        let rotated = CookieSealer::new(&[&[2; 32], &[1; 32]]).unwrap();
        assert_eq!(
            rotated.open(&value, "session").unwrap().data["theme"],
            "dark"
        );
        let foreign = CookieSealer::new(&[&[3; 32]]).unwrap();
        assert!(foreign.open(&value, "session").is_none());
        assert!(
            old.open(&value, "other-cookie-name").is_none(),
            "bound to its cookie name"
        );
    }

    #[test]
    fn a_tampered_cookie_does_not_open() {
        let sealer = CookieSealer::new(&[&[1; 32]]).unwrap();
        let value = sealer.seal(&payload(), "session").unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
        let last = bytes.len() - 20;
        bytes[last] ^= 1;
        assert!(
            sealer
                .open(&URL_SAFE_NO_PAD.encode(bytes), "session")
                .is_none()
        );
        assert!(sealer.open("not base64!", "session").is_none());
    }
}
