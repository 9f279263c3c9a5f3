//! Classic (cookie) sessions: where they are kept, the session cookie's name, the idle and
//! absolute timeouts and the keys that seal cookie-stored sessions.

use std::time::Duration;

use secrecy::SecretSlice;

use super::cookies::{CookieSettings, is_plain_cookie_name};
use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_SESSION_STORE",
    "LATCHKEY_SESSION_COOKIE_NAME",
    "LATCHKEY_SESSION_IDLE_TIMEOUT",
    "LATCHKEY_SESSION_ABSOLUTE_TIMEOUT",
    "LATCHKEY_SESSION_KEYS",
];

/// Where classic sessions keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStoreKind {
    /// In the database, with only an id in the cookie.
    Database,
    /// In a sealed (encrypted, authenticated) cookie.
    Cookie,
}

pub(super) struct SessionSettings {
    pub session_store: SessionStoreKind,
    pub session_cookie_name: String,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub session_keys: Vec<SecretSlice<u8>>,
}

/// Reads the session settings; the cookie name's defaults and rules follow `cookies`.
pub(super) fn parse(
    vars: &Vars<'_>,
    cookies: &CookieSettings,
) -> Result<SessionSettings, ConfigError> {
    let session_store = match vars.get("LATCHKEY_SESSION_STORE").unwrap_or("database") {
        "database" => SessionStoreKind::Database,
        "cookie" => SessionStoreKind::Cookie,
        v => {
            return Err(err(
                "LATCHKEY_SESSION_STORE",
                format!("`{v}` is not database or cookie"),
            ));
        }
    };

    let default_session_cookie = if cookies.cookie_secure {
        "__Host-session"
    } else {
        "session"
    };
    let session_cookie_name = vars
        .get("LATCHKEY_SESSION_COOKIE_NAME")
        .unwrap_or(default_session_cookie)
        .to_owned();
    if !is_plain_cookie_name(&session_cookie_name)
        || ((session_cookie_name.starts_with("__Host-")
            || session_cookie_name.starts_with("__Secure-"))
            && !cookies.cookie_secure)
        || session_cookie_name == cookies.refresh_cookie_name
    {
        return Err(err(
            "LATCHKEY_SESSION_COOKIE_NAME",
            "must be a cookie name (letters, digits, `-_.`), differ from the refresh cookie, \
             and use __Host-/__Secure- only with LATCHKEY_COOKIE_SECURE=true",
        ));
    }
    let session_idle_timeout = vars.duration("LATCHKEY_SESSION_IDLE_TIMEOUT", "30m")?;
    let session_absolute_timeout = vars.duration("LATCHKEY_SESSION_ABSOLUTE_TIMEOUT", "12h")?;
    if session_idle_timeout.as_secs() < 60 {
        return Err(err("LATCHKEY_SESSION_IDLE_TIMEOUT", "must be at least 1m"));
    }
    if session_absolute_timeout < session_idle_timeout {
        return Err(err(
            "LATCHKEY_SESSION_ABSOLUTE_TIMEOUT",
            "must not be shorter than LATCHKEY_SESSION_IDLE_TIMEOUT",
        ));
    }
    let mut session_keys = Vec::new();
    for key in vars.list("LATCHKEY_SESSION_KEYS") {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(key.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(&key))
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                err(
                    "LATCHKEY_SESSION_KEYS",
                    "each key must be 32 bytes in base64",
                )
            })?;
        session_keys.push(SecretSlice::from(bytes));
    }
    Ok(SessionSettings {
        session_store,
        session_cookie_name,
        session_idle_timeout,
        session_absolute_timeout,
        session_keys,
    })
}
