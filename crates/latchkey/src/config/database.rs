//! The database: which store (by URL scheme) and its URL, whose password never shows.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &["LATCHKEY_DATABASE_URL", COPY_FROM_VAR, COPY_TO_VAR];

/// The default variable holding the source URL of `latchkey store copy` (read by the CLI,
/// listed here so that setting it is not warned about as unknown).
pub const COPY_FROM_VAR: &str = "LATCHKEY_COPY_FROM";
/// The default variable holding the target URL of `latchkey store copy`.
pub const COPY_TO_VAR: &str = "LATCHKEY_COPY_TO";

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

    /// The URL scheme (`sqlite`, `mongodb`, `postgres`, ...).
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.expose().split_once("://").map_or("", |(s, _)| s)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Url::parse(self.expose()) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("REDACTED"));
                }
                // libpq also takes the password (and the client key's) as query parameters.
                let secret = |k: &str| matches!(k, "password" | "sslpassword");
                if url.query_pairs().any(|(k, _)| secret(&k)) {
                    let pairs: Vec<(String, String)> = url
                        .query_pairs()
                        .map(|(k, v)| {
                            let v = if secret(&k) { "REDACTED".into() } else { v };
                            (k.into_owned(), v.into_owned())
                        })
                        .collect();
                    url.query_pairs_mut().clear().extend_pairs(pairs);
                }
                write!(f, "{url}")
            }
            Err(_) => write!(f, "{}://…", self.scheme()),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<DatabaseUrl, ConfigError> {
    let database_url = DatabaseUrl::new(
        vars.get("LATCHKEY_DATABASE_URL")
            .unwrap_or("sqlite://latchkey.db"),
    );
    match database_url.scheme() {
        "sqlite" | "mongodb" | "mongodb+srv" | "postgres" | "postgresql" => {}
        _ => {
            return Err(err(
                "LATCHKEY_DATABASE_URL",
                "must start with sqlite://, mongodb:// or postgres://",
            ));
        }
    }
    Ok(database_url)
}
