//! Settings from the environment (and an optional `.env` file), validated at start.
//!
//! Every setting is a `LATCHKEY_*` variable; a bad or contradictory value stops the server
//! with a message naming the variable. Secrets are typed so that `Debug` never shows them.
//!
//! Each area parses its own variables and lists their names next to its parser
//! (`VARIABLES`); the known names, used to warn about unknown `LATCHKEY_*` variables, are
//! those lists together ([`AREAS`]), and a test proves that every name a parser reads is in
//! one of them.

mod audit;
mod cookies;
mod database;
mod duration;
mod keys;
mod limits;
mod logging;
mod mail;
mod metrics;
mod mfa;
mod oauth;
mod passwords;
mod proxies;
mod server;
mod sessions;
mod testing;
mod throttle;
mod tokens;
mod vars;
mod webauthn;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{SecretSlice, SecretString};

pub use audit::AuditSettings;
pub use cookies::SameSite;
pub use database::{COPY_FROM_VAR, COPY_TO_VAR, DatabaseUrl};
pub use duration::{format_duration, parse_duration};
pub use keys::SigningAlg;
pub use limits::{Limits, RateLimit};
pub use logging::LogFormat;
pub use mail::{MailConfig, MailTransport, SmtpTls};
pub use metrics::MetricsConfig;
pub use mfa::MfaSettings;
pub use oauth::{DEFAULT_SCOPES, GOOGLE_ISSUER, OAuthConfig, OAuthProviderConfig};
pub use passwords::Argon2Settings;
pub use proxies::{ForwardedHeader, TrustedProxies};
pub use sessions::SessionStoreKind;
#[doc(hidden)]
pub use testing::TEST_ISSUER;
pub use throttle::ThrottleSettings;
use vars::Vars;
pub use webauthn::WebauthnConfig;

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

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The clock every expiry decision reads: the system clock from [`Config::from_env`];
    /// tests put a [`latchkey_guard::TestClock`] here and move it instead of sleeping.
    pub clock: latchkey_guard::SharedClock,
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
    /// `LATCHKEY_MFA_*`: second factors.
    pub mfa: MfaSettings,
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
    /// `LATCHKEY_METRICS_*`: the Prometheus listener (off by default).
    pub metrics: MetricsConfig,
    /// `LATCHKEY_WEBAUTHN_*`: the passkey relying party; `None` turns passkeys off (an IP
    /// issuer with nothing set).
    pub webauthn: Option<WebauthnConfig>,
    /// `LATCHKEY_AUDIT*`: the audit trail.
    pub audit: AuditSettings,
    /// `LATCHKEY_TRUSTED_PROXIES` and `LATCHKEY_FORWARDED_HEADER`: who may state the client
    /// address (and request id), and in which header.
    pub trusted_proxies: TrustedProxies,
    /// `LATCHKEY_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LATCHKEY_SMTP_URL`, `LATCHKEY_MAIL_*`, `LATCHKEY_EMAIL_*`, `LATCHKEY_PUBLIC_URL`,
    /// `LATCHKEY_PASSWORD_RESET_TTL`, `LATCHKEY_REQUIRE_VERIFIED_EMAIL`: email.
    pub mail: MailConfig,
    /// Unknown `LATCHKEY_*` variables, worth a warning (likely typos).
    pub unknown_variables: Vec<String>,
}

/// The variables of every area, in the order they are parsed; with the per-provider OAuth
/// variables of the listed providers, these are the known ones.
const AREAS: &[&[&str]] = &[
    server::VARIABLES,
    database::VARIABLES,
    tokens::VARIABLES,
    cookies::VARIABLES,
    keys::VARIABLES,
    passwords::VARIABLES,
    throttle::VARIABLES,
    limits::VARIABLES,
    mfa::VARIABLES,
    oauth::VARIABLES,
    sessions::VARIABLES,
    mail::VARIABLES,
    logging::VARIABLES,
    metrics::VARIABLES,
    webauthn::VARIABLES,
    audit::VARIABLES,
    proxies::VARIABLES,
];

/// Whether `name` is a variable some area reads (per-provider OAuth variables aside).
fn is_known(name: &str) -> bool {
    AREAS.iter().any(|area| area.contains(&name))
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
    /// The first setting that cannot be accepted, naming its variable (areas are checked in
    /// the order of [`AREAS`]).
    pub fn from_env_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_vars(&Vars::new(map), map)
    }

    fn from_vars(vars: &Vars<'_>, map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let server = server::parse(vars)?;
        let database_url = database::parse(vars)?;
        let tokens = tokens::parse(vars)?;
        let cookies = cookies::parse(vars)?;
        let keys = keys::parse(vars)?;
        let passwords = passwords::parse(vars)?;
        let throttle = throttle::parse(vars)?;
        let limits = limits::parse(vars)?;
        let mfa = mfa::parse(vars)?;
        let oauth = oauth::from_vars(vars)?;
        let sessions = sessions::parse(vars, &cookies)?;
        let metrics = metrics::parse(vars)?;
        let webauthn = webauthn::parse(vars, &server.issuer)?;
        let audit = audit::parse(vars)?;
        let log_format = logging::parse(vars)?;
        let trusted_proxies = proxies::parse(vars)?;
        let mail = mail::parse(vars, &server.issuer)?;

        let mut unknown_variables: Vec<String> = map
            .keys()
            .filter(|k| {
                k.starts_with("LATCHKEY_")
                    && !is_known(k)
                    && !oauth::is_provider_variable(k, &oauth.providers)
            })
            .cloned()
            .collect();
        unknown_variables.sort();

        Ok(Self {
            clock: latchkey_guard::SystemClock::shared(),
            listen: server.listen,
            database_url,
            issuer: server.issuer,
            audience: server.audience,
            access_token_ttl: tokens.access_token_ttl,
            refresh_token_ttl: tokens.refresh_token_ttl,
            session_max_lifetime: tokens.session_max_lifetime,
            refresh_reuse_interval: tokens.refresh_reuse_interval,
            token_leeway: tokens.token_leeway,
            cookie_secure: cookies.cookie_secure,
            cookie_same_site: cookies.cookie_same_site,
            refresh_cookie_name: cookies.refresh_cookie_name,
            allowed_origins: server.allowed_origins,
            signing_alg: keys.signing_alg,
            hs256_secret: keys.hs256_secret,
            password_min_length: passwords.password_min_length,
            argon2: passwords.argon2,
            throttle,
            body_limit: server.body_limit,
            limits,
            mfa,
            oauth,
            session_store: sessions.session_store,
            session_cookie_name: sessions.session_cookie_name,
            session_idle_timeout: sessions.session_idle_timeout,
            session_absolute_timeout: sessions.session_absolute_timeout,
            session_keys: sessions.session_keys,
            content_security_policy: server.content_security_policy,
            key_reload_interval: keys.key_reload_interval,
            key_publish_ahead: keys.key_publish_ahead,
            metrics,
            webauthn,
            audit,
            trusted_proxies,
            log_format,
            mail,
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
        assert_eq!(c.metrics.listen, None, "metrics are off by default");
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
            ("LATCHKEY_DATABASE_URL", "redis://x"),
            ("LATCHKEY_ISSUER", "not a url"),
            ("LATCHKEY_COOKIE_SECURE", "maybe"),
            ("LATCHKEY_SIGNING_ALG", "none"),
            ("LATCHKEY_PASSWORD_MIN_LENGTH", "4"),
            ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example/path"),
            ("LATCHKEY_SESSION_STORE", "redis"),
            ("LATCHKEY_REFRESH_REUSE_INTERVAL", "ten"),
            ("LATCHKEY_METRICS_LISTEN", "9464"),
            ("LATCHKEY_METRICS_SAMPLE_INTERVAL", "0s"),
            ("LATCHKEY_LOG_FORMAT", "xml"),
            ("LATCHKEY_TRUSTED_PROXIES", "everyone"),
            ("LATCHKEY_FORWARDED_HEADER", "x-real-ip"),
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
    fn postgres_urls_are_accepted_and_their_passwords_redacted() {
        for url in [
            "postgres://latchkey:hunter2hunter2@db.example:5432/latchkey?sslmode=require",
            "postgresql://latchkey@db.example/latchkey?password=hunter2hunter2&sslmode=verify-full",
        ] {
            let c = config(&[("LATCHKEY_DATABASE_URL", url)]).unwrap();
            let shown = format!("{} {:?}", c.database_url, c.database_url);
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("REDACTED"), "{shown}");
            assert!(shown.contains("sslmode="), "{shown}");
            assert_eq!(c.database_url.expose(), url, "the driver gets the password");
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

    #[test]
    fn the_store_copy_variables_are_not_unknown() {
        let c = config(&[
            (COPY_FROM_VAR, "sqlite://a.db"),
            (COPY_TO_VAR, "postgres://u:p@db/latchkey"),
        ])
        .unwrap();
        assert!(c.unknown_variables.is_empty(), "{:?}", c.unknown_variables);
    }

    /// Every settable variable with a valid non-default value, one OAuth provider included.
    fn full_map() -> HashMap<String, String> {
        [
            ("LATCHKEY_LISTEN", "127.0.0.1:9000"),
            ("LATCHKEY_ISSUER", "https://auth.example.com"),
            ("LATCHKEY_AUDIENCE", "https://api.example.com"),
            ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.com"),
            ("LATCHKEY_BODY_LIMIT", "4096"),
            ("LATCHKEY_CONTENT_SECURITY_POLICY", "none"),
            ("LATCHKEY_DATABASE_URL", "sqlite://x.db"),
            ("LATCHKEY_SIGNING_ALG", "HS256"),
            ("LATCHKEY_HS256_SECRET", "0123456789abcdef0123456789abcdef"),
            ("LATCHKEY_OAUTH_PROVIDERS", "corp"),
            (
                "LATCHKEY_OAUTH_REDIRECT_ALLOWLIST",
                "https://app.example.com/",
            ),
            ("LATCHKEY_OAUTH_CORP_ISSUER", "https://id.corp.example"),
            ("LATCHKEY_OAUTH_CORP_CLIENT_ID", "latchkey"),
            ("LATCHKEY_OAUTH_CORP_CLIENT_SECRET", "x"),
            ("LATCHKEY_SESSION_STORE", "cookie"),
            (
                "LATCHKEY_SESSION_KEYS",
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
            ("LATCHKEY_LOG", "debug"),
            ("LATCHKEY_METRICS_LISTEN", "127.0.0.1:9464"),
            ("LATCHKEY_METRICS_SAMPLE_INTERVAL", "15s"),
            ("LATCHKEY_LOG_FORMAT", "json"),
            ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("LATCHKEY_FORWARDED_HEADER", "forwarded"),
            ("LATCHKEY_SMTP_URL", "smtps://u:p@mail.example.com"),
            ("LATCHKEY_MAIL_FROM", "Example <no-reply@example.com>"),
            ("LATCHKEY_PUBLIC_URL", "https://app.example.com/"),
            ("LATCHKEY_EMAIL_VERIFY_TTL", "2d"),
            ("LATCHKEY_PASSWORD_RESET_TTL", "15m"),
            ("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "true"),
            ("LATCHKEY_EMAIL_MAX_PER_IP", "5"),
            ("LATCHKEY_EMAIL_MAX_GLOBAL", "50"),
            ("LATCHKEY_EMAIL_WINDOW", "10m"),
            ("LATCHKEY_MAIL_MAX_ATTEMPTS", "3"),
            ("LATCHKEY_MAIL_POLL_INTERVAL", "250ms"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn every_variable_a_parser_reads_is_known_and_every_known_one_is_read() {
        let map = full_map();
        let vars = Vars::new(&map);
        let c = Config::from_vars(&vars, &map).unwrap();
        assert!(c.unknown_variables.is_empty(), "{:?}", c.unknown_variables);
        let read = vars.read.into_inner();
        for name in &read {
            assert!(
                is_known(name) || oauth::is_provider_variable(name, &c.oauth.providers),
                "{name} is read but in no area's VARIABLES"
            );
        }
        for name in AREAS.iter().flat_map(|area| area.iter()) {
            assert!(
                // `main` reads the log filter itself, and `store copy` reads its URLs.
                read.contains(*name)
                    || *name == "LATCHKEY_LOG"
                    || [COPY_FROM_VAR, COPY_TO_VAR].contains(name),
                "{name} is listed but no parser reads it"
            );
        }
    }

    #[test]
    fn no_variable_is_listed_by_two_areas() {
        let mut all: Vec<&str> = AREAS.iter().flat_map(|area| area.iter().copied()).collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count);
    }
}
