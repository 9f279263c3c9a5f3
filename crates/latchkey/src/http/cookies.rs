//! Every cookie the server reads or writes: the refresh cookie (`/auth`), the session cookie
//! (`/`) and the OAuth browser-binding cookie (`/auth/oauth`), all `HttpOnly` and `Secure`
//! unless disabled for local development.
//!
//! Written by hand rather than with `axum-extra`'s `CookieJar`: the server reads one cookie
//! per request, and a jar would parse every cookie of every request into a map on the hot path
//! (`/auth/me` with a session) for nothing.

use axum::http::{HeaderMap, HeaderValue, header};
use secrecy::ExposeSecret;

use super::AppState;
use crate::auth::sessions::CookieSessionCookie;

/// The value of cookie `name` in the request, if present.
#[must_use]
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

impl AppState {
    /// The `Set-Cookie` value of the refresh cookie (a refresh family's current token).
    pub(super) fn refresh_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let c = &self.config;
        self.cookie_header(
            &c.refresh_cookie_name,
            value,
            "/auth",
            max_age,
            c.cookie_same_site.as_str(),
        )
    }

    /// Clears the refresh cookie.
    pub(super) fn cleared_refresh_cookie(&self) -> HeaderValue {
        self.refresh_cookie("", 0)
    }

    /// The `Set-Cookie` value of a cookie session.
    #[must_use]
    pub fn session_cookie(&self, cookie: &CookieSessionCookie) -> HeaderValue {
        self.cookie_header(
            &self.config.session_cookie_name,
            cookie.value.expose_secret(),
            "/",
            cookie.max_age,
            "Lax",
        )
    }

    /// Clears the session cookie.
    pub(super) fn cleared_session_cookie(&self) -> HeaderValue {
        self.cookie_header(&self.config.session_cookie_name, "", "/", 0, "Lax")
    }

    /// The name of the OAuth browser-binding cookie (`__Secure-` when cookies are secure).
    pub(super) fn binding_cookie_name(&self) -> &'static str {
        if self.config.cookie_secure {
            "__Secure-oauth_state"
        } else {
            "oauth_state"
        }
    }

    /// The browser-binding cookie: `Lax`, so that it comes back with the provider's top-level
    /// redirect to the callback; scoped to `/auth/oauth`; gone after 10 minutes.
    pub(super) fn binding_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        self.cookie_header(
            self.binding_cookie_name(),
            value,
            "/auth/oauth",
            max_age,
            "Lax",
        )
    }

    /// A `Set-Cookie` value with this server's attributes (`HttpOnly`, `Secure` unless
    /// disabled).
    fn cookie_header(
        &self,
        name: &str,
        value: &str,
        path: &str,
        max_age: u64,
        same_site: &str,
    ) -> HeaderValue {
        let secure = if self.config.cookie_secure {
            "; Secure"
        } else {
            ""
        };
        let text = format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
        );
        HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }
}
