//! Settings from `FILES_*` environment variables, validated at start.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

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

/// How callers are identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// Verify Latchkey access tokens from `issuer` for `audience` (the only mode for real use).
    Verify {
        /// `FILES_ISSUER`: the Latchkey URL, exactly as it appears in the tokens' `iss`.
        issuer: String,
        /// `FILES_AUDIENCE`: the `aud` this service accepts (default: the issuer).
        audience: String,
    },
    /// `FILES_INSECURE_NO_VERIFY=true`, for benchmarks only: the caller is whoever the
    /// `X-Bench-User` header says (roles from `X-Bench-Roles`). Refused unless the service
    /// listens on a loopback address.
    InsecureBenchHeader,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FILES_LISTEN` (default `127.0.0.1:8081`).
    pub listen: SocketAddr,
    /// `FILES_DATABASE_URL` (default `sqlite://files.db`, created on first start).
    pub database_url: String,
    /// How callers are identified.
    pub auth: AuthMode,
    /// `FILES_JWKS_REFETCH_INTERVAL` (default `10s`): the shortest time between two key
    /// refetches caused by tokens naming an unknown key.
    pub jwks_refetch_min_interval: Duration,
    /// `FILES_JWKS_REFRESH_INTERVAL` (default `5m`): the background key refresh period.
    pub jwks_refresh_interval: Duration,
    /// `FILES_BODY_LIMIT` in bytes (default 1 MiB).
    pub body_limit: usize,
    /// `FILES_ALLOWED_ORIGINS` (default: none): browser origins (`scheme://host[:port]`) that
    /// may call this API cross-origin (CORS, with the `Authorization` header, no credentials).
    pub allowed_origins: Vec<String>,
}

/// Parses a comma-separated list of origins like `https://app.example.com` or
/// `http://localhost:5173` (no path, query or trailing slash).
fn origins(variable: &'static str, text: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let mut list = Vec::new();
    for item in text.unwrap_or("").split(',').map(str::trim) {
        if item.is_empty() {
            continue;
        }
        let rest = item
            .strip_prefix("http://")
            .or_else(|| item.strip_prefix("https://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        if !valid {
            return Err(err(
                variable,
                format!("`{item}` is not an origin like https://app.example.com (no path, no `*`)"),
            ));
        }
        list.push(item.to_owned());
    }
    Ok(list)
}

/// Parses `30`, `30s`, `10m` or `1h`.
fn duration(variable: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| {
        err(
            variable,
            format!("`{text}` is not a duration like 10s or 5m"),
        )
    })?;
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3_600),
        _ => {
            return Err(err(
                variable,
                format!("`{text}` is not a duration like 10s or 5m"),
            ));
        }
    };
    if seconds == 0 {
        return Err(err(variable, "must be at least 1s"));
    }
    Ok(Duration::from_secs(seconds))
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// The first setting that cannot be accepted.
    pub fn from_env() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("FILES_"))
            .collect();
        Self::from_env_map(&vars)
    }

    /// Builds and validates the configuration from a map of variables (tests use this).
    ///
    /// # Errors
    /// The first setting that cannot be accepted, naming its variable.
    pub fn from_env_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| map.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let listen_text = get("FILES_LISTEN").unwrap_or("127.0.0.1:8081");
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "FILES_LISTEN",
                format!("`{listen_text}` is not an address like 127.0.0.1:8081"),
            )
        })?;
        let database_url = get("FILES_DATABASE_URL")
            .unwrap_or("sqlite://files.db")
            .to_owned();
        if !database_url.starts_with("sqlite:") {
            return Err(err("FILES_DATABASE_URL", "must start with sqlite://"));
        }
        let insecure = match get("FILES_INSECURE_NO_VERIFY")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on") => true,
            Some(v) => {
                return Err(err(
                    "FILES_INSECURE_NO_VERIFY",
                    format!("`{v}` is not true or false"),
                ));
            }
        };
        let auth = if insecure {
            if !listen.ip().is_loopback() {
                return Err(err(
                    "FILES_INSECURE_NO_VERIFY",
                    "trusts a header instead of tokens: only allowed on a loopback FILES_LISTEN, for benchmarks",
                ));
            }
            AuthMode::InsecureBenchHeader
        } else {
            let issuer = get("FILES_ISSUER")
                .ok_or_else(|| {
                    err(
                        "FILES_ISSUER",
                        "is required: the Latchkey URL, e.g. http://127.0.0.1:8080",
                    )
                })?
                .to_owned();
            if !(issuer.starts_with("http://") || issuer.starts_with("https://")) {
                return Err(err(
                    "FILES_ISSUER",
                    format!("`{issuer}` is not an http(s) URL"),
                ));
            }
            let audience = get("FILES_AUDIENCE").map_or_else(|| issuer.clone(), str::to_owned);
            AuthMode::Verify { issuer, audience }
        };
        let jwks_refetch_min_interval = duration(
            "FILES_JWKS_REFETCH_INTERVAL",
            get("FILES_JWKS_REFETCH_INTERVAL").unwrap_or("10s"),
        )?;
        let jwks_refresh_interval = duration(
            "FILES_JWKS_REFRESH_INTERVAL",
            get("FILES_JWKS_REFRESH_INTERVAL").unwrap_or("5m"),
        )?;
        let body_limit = match get("FILES_BODY_LIMIT") {
            None => 1024 * 1024,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1_024..=64 * 1024 * 1024).contains(n))
                .ok_or_else(|| {
                    err(
                        "FILES_BODY_LIMIT",
                        "must be between 1024 and 67108864 bytes",
                    )
                })?,
        };
        let allowed_origins = origins("FILES_ALLOWED_ORIGINS", get("FILES_ALLOWED_ORIGINS"))?;
        Ok(Self {
            listen,
            database_url,
            auth,
            jwks_refetch_min_interval,
            jwks_refresh_interval,
            body_limit,
            allowed_origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_defaults_need_only_an_issuer() {
        let config =
            Config::from_env_map(&map(&[("FILES_ISSUER", "http://127.0.0.1:8080")])).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(config.database_url, "sqlite://files.db");
        assert_eq!(
            config.auth,
            AuthMode::Verify {
                issuer: "http://127.0.0.1:8080".into(),
                audience: "http://127.0.0.1:8080".into()
            }
        );
        assert_eq!(config.jwks_refetch_min_interval, Duration::from_secs(10));
        assert_eq!(config.jwks_refresh_interval, Duration::from_secs(300));
        assert_eq!(
            Config::from_env_map(&map(&[])).unwrap_err().variable,
            "FILES_ISSUER"
        );
    }

    #[test]
    fn insecure_mode_is_refused_off_loopback() {
        let on_lan = map(&[
            ("FILES_INSECURE_NO_VERIFY", "true"),
            ("FILES_LISTEN", "0.0.0.0:8081"),
        ]);
        assert_eq!(
            Config::from_env_map(&on_lan).unwrap_err().variable,
            "FILES_INSECURE_NO_VERIFY"
        );
        let local = map(&[("FILES_INSECURE_NO_VERIFY", "true")]);
        assert_eq!(
            Config::from_env_map(&local).unwrap().auth,
            AuthMode::InsecureBenchHeader
        );
    }

    #[test]
    fn allowed_origins_are_exact_origins() {
        let config = Config::from_env_map(&map(&[
            ("FILES_ISSUER", "http://127.0.0.1:8080"),
            (
                "FILES_ALLOWED_ORIGINS",
                "http://localhost:5173, https://app.example.com",
            ),
        ]))
        .unwrap();
        assert_eq!(
            config.allowed_origins,
            ["http://localhost:5173", "https://app.example.com"]
        );
        for bad in [
            "*",
            "localhost:5173",
            "https://app.example.com/",
            "ftp://x",
            "http://",
        ] {
            let result = Config::from_env_map(&map(&[
                ("FILES_ISSUER", "http://127.0.0.1:8080"),
                ("FILES_ALLOWED_ORIGINS", bad),
            ]));
            assert_eq!(
                result.unwrap_err().variable,
                "FILES_ALLOWED_ORIGINS",
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        assert_eq!(duration("X", "90").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("X", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(duration("X", "1h").unwrap(), Duration::from_secs(3_600));
        for bad in ["0", "ten", "5d", "", "-1s"] {
            assert!(duration("X", bad).is_err(), "{bad}");
        }
    }
}
