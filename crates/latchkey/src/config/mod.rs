//! Settings from the environment (and an optional `.env` file), validated at start.
//!
//! Every setting is a `LATCHKEY_*` variable; a bad or contradictory value stops the server
//! with a message naming the variable. Secrets are typed so that `Debug` never shows them.

mod duration;
mod limits;
mod oauth;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretSlice, SecretString};
use url::Url;

pub use duration::{format_duration, parse_duration};
pub use limits::{Limits, RateLimit};
pub use oauth::{DEFAULT_SCOPES, GOOGLE_ISSUER, OAuthConfig, OAuthProviderConfig};

/// A setting that could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    /// The variable at fault.
    pub variable: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn err(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        message: message.into(),
    }
}

/// The access-token signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// Ed25519 (the default).
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// HMAC-SHA-256 with a configured shared secret (no JWKS is published).
    HS256,
}

impl SigningAlg {
    /// The JOSE name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
            Self::HS256 => "HS256",
        }
    }
}

/// The cookie `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Never sent cross-site.
    Strict,
    /// Sent on top-level navigations.
    Lax,
    /// Always sent (requires `Secure`).
    None,
}

impl SameSite {
    /// The attribute value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// Where classic sessions keep their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStoreKind {
    /// In the database, with only an id in the cookie.
    Database,
    /// In a sealed (encrypted, authenticated) cookie.
    Cookie,
}

/// A database URL whose password never shows in `Debug` or `Display`.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wraps a URL.
    #[must_use]
    pub fn new(url: &str) -> Self {
        Self(SecretString::from(url.to_owned()))
    }

    /// The full URL, password included: hand it to the driver only.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL scheme (`sqlite`, `mongodb`, ...).
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.expose().split_once("://").map_or("", |(s, _)| s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(self.expose()) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("REDACTED"));
                write!(f, "{url}")
            }
            Ok(url) => write!(f, "{url}"),
            Err(_) => write!(f, "{}://…", self.scheme()),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Memory in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Passes (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
}

/// Failed-login throttling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Failures per account within the window before logins for it are refused.
    pub max_failures_per_account: u32,
    /// Failures per client address within the window.
    pub max_failures_per_ip: u32,
    /// The counting window.
    pub window: Duration,
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LATCHKEY_LISTEN`.
    pub listen: SocketAddr,
    /// `LATCHKEY_DATABASE_URL`.
    pub database_url: DatabaseUrl,
    /// `LATCHKEY_ISSUER`, without a trailing slash.
    pub issuer: String,
    /// `LATCHKEY_AUDIENCE`.
    pub audience: String,
    /// `LATCHKEY_ACCESS_TOKEN_TTL`.
    pub access_token_ttl: Duration,
    /// `LATCHKEY_REFRESH_TOKEN_TTL`.
    pub refresh_token_ttl: Duration,
    /// `LATCHKEY_SESSION_MAX_LIFETIME`: the absolute lifetime of a login's refresh chain.
    pub session_max_lifetime: Duration,
    /// `LATCHKEY_REFRESH_REUSE_INTERVAL`.
    pub refresh_reuse_interval: Duration,
    /// `LATCHKEY_TOKEN_LEEWAY`.
    pub token_leeway: Duration,
    /// `LATCHKEY_COOKIE_SECURE`.
    pub cookie_secure: bool,
    /// `LATCHKEY_COOKIE_SAMESITE`.
    pub cookie_same_site: SameSite,
    /// `LATCHKEY_REFRESH_COOKIE_NAME`.
    pub refresh_cookie_name: String,
    /// `LATCHKEY_ALLOWED_ORIGINS`.
    pub allowed_origins: Vec<String>,
    /// `LATCHKEY_SIGNING_ALG`.
    pub signing_alg: SigningAlg,
    /// `LATCHKEY_HS256_SECRET`, only with HS256.
    pub hs256_secret: Option<SecretString>,
    /// `LATCHKEY_PASSWORD_MIN_LENGTH`.
    pub password_min_length: usize,
    /// `LATCHKEY_ARGON2_*`.
    pub argon2: Argon2Settings,
    /// `LATCHKEY_LOGIN_*`.
    pub throttle: ThrottleSettings,
    /// `LATCHKEY_BODY_LIMIT` in bytes.
    pub body_limit: usize,
    /// Abuse limits (registration, OAuth authorize, hashing queue, re-authentication,
    /// connections).
    pub limits: Limits,
    /// `LATCHKEY_OAUTH_*`: upstream sign-in providers, the `redirect_to` allow-list, linking.
    pub oauth: OAuthConfig,
    /// `LATCHKEY_SESSION_STORE`.
    pub session_store: SessionStoreKind,
    /// `LATCHKEY_SESSION_COOKIE_NAME`.
    pub session_cookie_name: String,
    /// `LATCHKEY_SESSION_IDLE_TIMEOUT`.
    pub session_idle_timeout: Duration,
    /// `LATCHKEY_SESSION_ABSOLUTE_TIMEOUT`.
    pub session_absolute_timeout: Duration,
    /// `LATCHKEY_SESSION_KEYS`: 32-byte keys for sealed cookie sessions, the first seals.
    pub session_keys: Vec<SecretSlice<u8>>,
    /// `LATCHKEY_CONTENT_SECURITY_POLICY`: replaces helmet's default policy (`none` removes it).
    pub content_security_policy: Option<String>,
    /// `LATCHKEY_KEY_RELOAD_INTERVAL` (undocumented, for tests): how often signing keys are
    /// re-read from the store. Default [`crate::server::KEY_RELOAD_INTERVAL`].
    pub key_reload_interval: Duration,
    /// `LATCHKEY_KEY_PUBLISH_AHEAD`: how long `keys rotate` publishes a new key before it
    /// signs (default 15m); the JWKS `max-age` is a third of it, at most 5 minutes.
    pub key_publish_ahead: Duration,
    /// Unknown `LATCHKEY_*` variables, worth a warning (likely typos).
    pub unknown_variables: Vec<String>,
}

const KNOWN: &[&str] = &[
    "LATCHKEY_LISTEN",
    "LATCHKEY_DATABASE_URL",
    "LATCHKEY_ISSUER",
    "LATCHKEY_AUDIENCE",
    "LATCHKEY_ACCESS_TOKEN_TTL",
    "LATCHKEY_REFRESH_TOKEN_TTL",
    "LATCHKEY_SESSION_MAX_LIFETIME",
    "LATCHKEY_REFRESH_REUSE_INTERVAL",
    "LATCHKEY_TOKEN_LEEWAY",
    "LATCHKEY_COOKIE_SECURE",
    "LATCHKEY_COOKIE_SAMESITE",
    "LATCHKEY_REFRESH_COOKIE_NAME",
    "LATCHKEY_ALLOWED_ORIGINS",
    "LATCHKEY_SIGNING_ALG",
    "LATCHKEY_HS256_SECRET",
    "LATCHKEY_PASSWORD_MIN_LENGTH",
    "LATCHKEY_ARGON2_MEMORY_KIB",
    "LATCHKEY_ARGON2_ITERATIONS",
    "LATCHKEY_ARGON2_PARALLELISM",
    "LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT",
    "LATCHKEY_LOGIN_MAX_FAILURES_PER_IP",
    "LATCHKEY_LOGIN_THROTTLE_WINDOW",
    "LATCHKEY_BODY_LIMIT",
    "LATCHKEY_OAUTH_PROVIDERS",
    "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
    "LATCHKEY_OAUTH_AUTO_LINK_VERIFIED_EMAIL",
    "LATCHKEY_SESSION_STORE",
    "LATCHKEY_SESSION_COOKIE_NAME",
    "LATCHKEY_SESSION_IDLE_TIMEOUT",
    "LATCHKEY_SESSION_ABSOLUTE_TIMEOUT",
    "LATCHKEY_SESSION_KEYS",
    "LATCHKEY_CONTENT_SECURITY_POLICY",
    "LATCHKEY_KEY_RELOAD_INTERVAL",
    "LATCHKEY_KEY_PUBLISH_AHEAD",
    "LATCHKEY_LOG",
    "LATCHKEY_LOG_FORMAT",
];

struct Vars<'a>(&'a HashMap<String, String>);

impl Vars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn duration(&self, name: &'static str, default: &str) -> Result<Duration, ConfigError> {
        parse_duration(self.get(name).unwrap_or(default)).map_err(|m| err(name, m))
    }

    fn number<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| err(name, format!("`{v}` is not a whole number"))),
        }
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(v) => Err(err(name, format!("`{v}` is not true or false"))),
        }
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Config {
    /// Reads the process environment, after loading `.env` from the working directory if there
    /// is one (the real environment wins).
    ///
    /// # Errors
    /// The first setting that cannot be accepted.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is an error worth stopping for.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(err("LATCHKEY_*", format!(".env could not be read: {e}"))),
        }
        let vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("LATCHKEY_"))
            .collect();
        Self::from_env_map(&vars)
    }

    /// Builds and validates the configuration from a map of variables (pure: tests use this).
    ///
    /// # Errors
    /// The first setting that cannot be accepted, naming its variable.
    pub fn from_env_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let vars = Vars(map);
        let listen_text = vars.get("LATCHKEY_LISTEN").unwrap_or("127.0.0.1:8080");
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "LATCHKEY_LISTEN",
                format!("`{listen_text}` is not an address like 127.0.0.1:8080"),
            )
        })?;

        let database_url = DatabaseUrl::new(
            vars.get("LATCHKEY_DATABASE_URL")
                .unwrap_or("sqlite://latchkey.db"),
        );
        match database_url.scheme() {
            "sqlite" | "mongodb" | "mongodb+srv" => {}
            _ => {
                return Err(err(
                    "LATCHKEY_DATABASE_URL",
                    "must start with sqlite:// or mongodb://",
                ));
            }
        }

        let issuer = match vars.get("LATCHKEY_ISSUER") {
            Some(v) => {
                let url = Url::parse(v)
                    .map_err(|_| err("LATCHKEY_ISSUER", format!("`{v}` is not a URL")))?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.query().is_some()
                    || url.fragment().is_some()
                {
                    return Err(err(
                        "LATCHKEY_ISSUER",
                        "must be an http(s) URL without query or fragment",
                    ));
                }
                v.trim_end_matches('/').to_owned()
            }
            None => format!("http://{listen}"),
        };
        let audience = vars
            .get("LATCHKEY_AUDIENCE")
            .map_or_else(|| issuer.clone(), str::to_owned);

        let access_token_ttl = vars.duration("LATCHKEY_ACCESS_TOKEN_TTL", "10m")?;
        if !(60..=3_600).contains(&access_token_ttl.as_secs()) {
            return Err(err(
                "LATCHKEY_ACCESS_TOKEN_TTL",
                "must be between 1m and 60m",
            ));
        }
        let refresh_token_ttl = vars.duration("LATCHKEY_REFRESH_TOKEN_TTL", "1d")?;
        if refresh_token_ttl <= access_token_ttl {
            return Err(err(
                "LATCHKEY_REFRESH_TOKEN_TTL",
                "must be longer than LATCHKEY_ACCESS_TOKEN_TTL",
            ));
        }
        let session_max_lifetime = vars.duration("LATCHKEY_SESSION_MAX_LIFETIME", "30d")?;
        if session_max_lifetime < refresh_token_ttl {
            return Err(err(
                "LATCHKEY_SESSION_MAX_LIFETIME",
                "must not be shorter than LATCHKEY_REFRESH_TOKEN_TTL",
            ));
        }
        let refresh_reuse_interval = vars.duration("LATCHKEY_REFRESH_REUSE_INTERVAL", "10s")?;
        if refresh_reuse_interval.as_secs() > 300 || refresh_reuse_interval >= refresh_token_ttl {
            return Err(err(
                "LATCHKEY_REFRESH_REUSE_INTERVAL",
                "must be at most 5m and shorter than the refresh lifetime",
            ));
        }
        let token_leeway = vars.duration("LATCHKEY_TOKEN_LEEWAY", "30s")?;
        if token_leeway.as_secs() > 300 {
            return Err(err("LATCHKEY_TOKEN_LEEWAY", "must be at most 5m"));
        }

        let cookie_secure = vars.boolean("LATCHKEY_COOKIE_SECURE", true)?;
        let cookie_same_site = match vars
            .get("LATCHKEY_COOKIE_SAMESITE")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("strict") => SameSite::Strict,
            Some("lax") => SameSite::Lax,
            Some("none") if cookie_secure => SameSite::None,
            Some("none") => {
                return Err(err(
                    "LATCHKEY_COOKIE_SAMESITE",
                    "None requires LATCHKEY_COOKIE_SECURE=true",
                ));
            }
            Some(v) => {
                return Err(err(
                    "LATCHKEY_COOKIE_SAMESITE",
                    format!("`{v}` is not Strict, Lax or None"),
                ));
            }
        };
        let default_cookie = if cookie_secure {
            "__Secure-refresh_token"
        } else {
            "refresh_token"
        };
        let refresh_cookie_name = vars
            .get("LATCHKEY_REFRESH_COOKIE_NAME")
            .unwrap_or(default_cookie)
            .to_owned();
        if !refresh_cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(err(
                "LATCHKEY_REFRESH_COOKIE_NAME",
                "may hold only letters, digits, `-`, `_` and `.`",
            ));
        }
        if refresh_cookie_name.starts_with("__Host-") {
            return Err(err(
                "LATCHKEY_REFRESH_COOKIE_NAME",
                "`__Host-` cookies need Path=/, but the refresh cookie uses Path=/auth",
            ));
        }
        if refresh_cookie_name.starts_with("__Secure-") && !cookie_secure {
            return Err(err(
                "LATCHKEY_REFRESH_COOKIE_NAME",
                "`__Secure-` cookies need LATCHKEY_COOKIE_SECURE=true",
            ));
        }

        let allowed_origins = vars.list("LATCHKEY_ALLOWED_ORIGINS");
        for origin in &allowed_origins {
            let ok = Url::parse(origin).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.path() == "/"
                    && u.query().is_none()
                    && !origin.ends_with('/')
            });
            if !ok {
                return Err(err(
                    "LATCHKEY_ALLOWED_ORIGINS",
                    format!("`{origin}` is not an origin like https://app.example.com"),
                ));
            }
        }

        let signing_alg = match vars.get("LATCHKEY_SIGNING_ALG").unwrap_or("EdDSA") {
            "EdDSA" => SigningAlg::EdDSA,
            "ES256" => SigningAlg::ES256,
            "RS256" => SigningAlg::RS256,
            "HS256" => SigningAlg::HS256,
            v => {
                return Err(err(
                    "LATCHKEY_SIGNING_ALG",
                    format!("`{v}` is not EdDSA, ES256, RS256 or HS256"),
                ));
            }
        };
        let hs256_secret = vars
            .get("LATCHKEY_HS256_SECRET")
            .map(|s| SecretString::from(s.to_owned()));
        match (&hs256_secret, signing_alg) {
            (None, SigningAlg::HS256) => {
                return Err(err(
                    "LATCHKEY_HS256_SECRET",
                    "is required when LATCHKEY_SIGNING_ALG=HS256",
                ));
            }
            (Some(s), SigningAlg::HS256) if s.expose_secret().len() < 32 => {
                return Err(err(
                    "LATCHKEY_HS256_SECRET",
                    "must be at least 32 characters",
                ));
            }
            (Some(_), a) if a != SigningAlg::HS256 => {
                return Err(err(
                    "LATCHKEY_HS256_SECRET",
                    "is only used with LATCHKEY_SIGNING_ALG=HS256",
                ));
            }
            _ => {}
        }

        let password_min_length = vars.number("LATCHKEY_PASSWORD_MIN_LENGTH", 15usize)?;
        if !(8..=256).contains(&password_min_length) {
            return Err(err(
                "LATCHKEY_PASSWORD_MIN_LENGTH",
                "must be between 8 and 256",
            ));
        }
        let argon2 = Argon2Settings {
            memory_kib: vars.number("LATCHKEY_ARGON2_MEMORY_KIB", 19_456u32)?,
            iterations: vars.number("LATCHKEY_ARGON2_ITERATIONS", 2u32)?,
            parallelism: vars.number("LATCHKEY_ARGON2_PARALLELISM", 1u32)?,
        };
        if argon2.memory_kib < 1_024 || argon2.memory_kib > 4 * 1_024 * 1_024 {
            return Err(err(
                "LATCHKEY_ARGON2_MEMORY_KIB",
                "must be between 1024 and 4194304",
            ));
        }
        if !(1..=100).contains(&argon2.iterations) {
            return Err(err(
                "LATCHKEY_ARGON2_ITERATIONS",
                "must be between 1 and 100",
            ));
        }
        if !(1..=64).contains(&argon2.parallelism) {
            return Err(err(
                "LATCHKEY_ARGON2_PARALLELISM",
                "must be between 1 and 64",
            ));
        }

        let throttle = ThrottleSettings {
            max_failures_per_account: vars
                .number("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", 10u32)?,
            max_failures_per_ip: vars.number("LATCHKEY_LOGIN_MAX_FAILURES_PER_IP", 100u32)?,
            window: vars.duration("LATCHKEY_LOGIN_THROTTLE_WINDOW", "15m")?,
        };
        if throttle.max_failures_per_account == 0 {
            return Err(err(
                "LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT",
                "must be at least 1",
            ));
        }
        if throttle.max_failures_per_ip == 0 {
            return Err(err(
                "LATCHKEY_LOGIN_MAX_FAILURES_PER_IP",
                "must be at least 1",
            ));
        }
        if throttle.window.is_zero() {
            return Err(err("LATCHKEY_LOGIN_THROTTLE_WINDOW", "must be at least 1s"));
        }

        let body_limit = vars.number("LATCHKEY_BODY_LIMIT", 64 * 1024usize)?;
        if !(1_024..=16 * 1024 * 1024).contains(&body_limit) {
            return Err(err(
                "LATCHKEY_BODY_LIMIT",
                "must be between 1024 and 16777216 bytes",
            ));
        }

        let limits = limits::parse(&vars)?;

        let oauth = oauth::parse(
            &|k| vars.get(k).map(str::to_owned),
            &|k| vars.list(k),
            vars.boolean("LATCHKEY_OAUTH_AUTO_LINK_VERIFIED_EMAIL", false)?,
        )?;
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

        let default_session_cookie = if cookie_secure {
            "__Host-session"
        } else {
            "session"
        };
        let session_cookie_name = vars
            .get("LATCHKEY_SESSION_COOKIE_NAME")
            .unwrap_or(default_session_cookie)
            .to_owned();
        if !session_cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            || ((session_cookie_name.starts_with("__Host-")
                || session_cookie_name.starts_with("__Secure-"))
                && !cookie_secure)
            || session_cookie_name == refresh_cookie_name
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

        let content_security_policy = vars
            .get("LATCHKEY_CONTENT_SECURITY_POLICY")
            .map(str::to_owned);
        if let Some(csp) = &content_security_policy
            && axum::http::HeaderValue::from_str(csp).is_err()
        {
            return Err(err(
                "LATCHKEY_CONTENT_SECURITY_POLICY",
                "must be a valid header value",
            ));
        }
        let key_reload_interval = vars.duration("LATCHKEY_KEY_RELOAD_INTERVAL", "10s")?;
        if !(1..=3_600).contains(&key_reload_interval.as_secs()) {
            return Err(err(
                "LATCHKEY_KEY_RELOAD_INTERVAL",
                "must be between 1s and 1h",
            ));
        }
        let key_publish_ahead = vars.duration("LATCHKEY_KEY_PUBLISH_AHEAD", "15m")?;
        if key_publish_ahead <= key_reload_interval || key_publish_ahead.as_secs() > 86_400 {
            return Err(err(
                "LATCHKEY_KEY_PUBLISH_AHEAD",
                "must be longer than LATCHKEY_KEY_RELOAD_INTERVAL (10s by default) and at most 1d",
            ));
        }

        let mut unknown_variables: Vec<String> = map
            .keys()
            .filter(|k| {
                k.starts_with("LATCHKEY_")
                    && !KNOWN.contains(&k.as_str())
                    && !limits::VARIABLES.contains(&k.as_str())
                    && !oauth::is_provider_variable(k, &oauth.providers)
            })
            .cloned()
            .collect();
        unknown_variables.sort();

        Ok(Self {
            listen,
            database_url,
            issuer,
            audience,
            access_token_ttl,
            refresh_token_ttl,
            session_max_lifetime,
            refresh_reuse_interval,
            token_leeway,
            cookie_secure,
            cookie_same_site,
            refresh_cookie_name,
            allowed_origins,
            signing_alg,
            hs256_secret,
            password_min_length,
            argon2,
            throttle,
            body_limit,
            limits,
            oauth,
            session_store,
            session_cookie_name,
            session_idle_timeout,
            session_absolute_timeout,
            session_keys,
            content_security_policy,
            key_reload_interval,
            key_publish_ahead,
            unknown_variables,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_env_map(&map)
    }

    #[test]
    fn the_defaults_are_those_of_the_contract() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.audience, c.issuer);
        assert_eq!(c.access_token_ttl, Duration::from_secs(600));
        assert_eq!(c.refresh_token_ttl, Duration::from_secs(86_400));
        assert_eq!(c.session_max_lifetime, Duration::from_secs(30 * 86_400));
        assert_eq!(c.refresh_reuse_interval, Duration::from_secs(10));
        assert!(c.cookie_secure);
        assert_eq!(c.refresh_cookie_name, "__Secure-refresh_token");
        assert_eq!(c.signing_alg, SigningAlg::EdDSA);
        assert_eq!(c.password_min_length, 15);
        assert_eq!(
            c.argon2,
            Argon2Settings {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[test]
    fn a_contradictory_lifetime_names_its_variable() {
        let e = config(&[
            ("LATCHKEY_ACCESS_TOKEN_TTL", "60m"),
            ("LATCHKEY_REFRESH_TOKEN_TTL", "30m"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "LATCHKEY_REFRESH_TOKEN_TTL");
        assert_eq!(
            config(&[("LATCHKEY_ACCESS_TOKEN_TTL", "2h")])
                .unwrap_err()
                .variable,
            "LATCHKEY_ACCESS_TOKEN_TTL"
        );
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let cases = [
            ("LATCHKEY_LISTEN", "nowhere"),
            ("LATCHKEY_DATABASE_URL", "postgres://x"),
            ("LATCHKEY_ISSUER", "not a url"),
            ("LATCHKEY_COOKIE_SECURE", "maybe"),
            ("LATCHKEY_SIGNING_ALG", "none"),
            ("LATCHKEY_PASSWORD_MIN_LENGTH", "4"),
            ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example/path"),
            ("LATCHKEY_SESSION_STORE", "redis"),
            ("LATCHKEY_REFRESH_REUSE_INTERVAL", "ten"),
        ];
        for (variable, value) in cases {
            assert_eq!(
                config(&[(variable, value)]).unwrap_err().variable,
                variable,
                "{variable}={value}"
            );
        }
    }

    #[test]
    fn insecure_cookies_change_the_default_name() {
        let c = config(&[("LATCHKEY_COOKIE_SECURE", "false")]).unwrap();
        assert_eq!(c.refresh_cookie_name, "refresh_token");
    }

    #[test]
    fn hs256_needs_a_long_secret() {
        assert_eq!(
            config(&[("LATCHKEY_SIGNING_ALG", "HS256")])
                .unwrap_err()
                .variable,
            "LATCHKEY_HS256_SECRET"
        );
        let ok = config(&[
            ("LATCHKEY_SIGNING_ALG", "HS256"),
            ("LATCHKEY_HS256_SECRET", &"s".repeat(40)),
        ]);
        assert!(ok.is_ok());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = config(&[
            (
                "LATCHKEY_DATABASE_URL",
                "mongodb://admin:hunter2hunter2@db.example/latchkey",
            ),
            ("LATCHKEY_SIGNING_ALG", "HS256"),
            (
                "LATCHKEY_HS256_SECRET",
                "topsecret-topsecret-topsecret-topsecret",
            ),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("topsecret"), "{shown}");
    }

    #[test]
    fn unknown_variables_are_reported() {
        let c = config(&[("LATCHKEY_ACESS_TOKEN_TTL", "5m")]).unwrap();
        assert_eq!(
            c.unknown_variables,
            vec!["LATCHKEY_ACESS_TOKEN_TTL".to_owned()]
        );
    }
}
