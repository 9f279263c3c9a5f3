//! Abuse limits: registration and OAuth-authorize throttles, the password-hashing queue,
//! re-authentication for sensitive changes, and the HTTP connection limits.

use std::time::Duration;

use super::{ConfigError, Vars, err};

/// A fixed-window limit: at most `per_address` requests from one client address (an IPv6
/// /64) and `global` from everyone, per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per client address per window.
    pub per_address: u32,
    /// Requests from all addresses together per window.
    pub global: u32,
    /// The counting window.
    pub window: Duration,
}

/// `LATCHKEY_REGISTER_*`, `LATCHKEY_OAUTH_AUTHORIZE_*`, `LATCHKEY_PASSWORD_QUEUE`,
/// `LATCHKEY_REAUTH_MAX_AGE`, `LATCHKEY_HEADER_READ_TIMEOUT`, `LATCHKEY_MAX_CONNECTIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `POST /auth/register`.
    pub register: RateLimit,
    /// `GET /auth/oauth/{provider}/authorize` (each writes a pending sign-in).
    pub oauth_authorize: RateLimit,
    /// How many password checks may wait for a hashing thread (registrations: a quarter).
    pub password_queue: usize,
    /// How recent a sign-in must be to link or unlink a provider without the password.
    pub reauth_max_age: Duration,
    /// How long a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Open connections at most; more wait in the kernel's accept queue.
    pub max_connections: usize,
}

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_REGISTER_MAX_PER_IP",
    "LATCHKEY_REGISTER_MAX_GLOBAL",
    "LATCHKEY_REGISTER_WINDOW",
    "LATCHKEY_OAUTH_AUTHORIZE_MAX_PER_IP",
    "LATCHKEY_OAUTH_AUTHORIZE_MAX_GLOBAL",
    "LATCHKEY_OAUTH_AUTHORIZE_WINDOW",
    "LATCHKEY_PASSWORD_QUEUE",
    "LATCHKEY_REAUTH_MAX_AGE",
    "LATCHKEY_HEADER_READ_TIMEOUT",
    "LATCHKEY_MAX_CONNECTIONS",
];

pub(super) fn rate_limit(
    vars: &Vars<'_>,
    names: [&'static str; 3],
    defaults: (u32, u32, &str),
) -> Result<RateLimit, ConfigError> {
    let limit = RateLimit {
        per_address: vars.number(names[0], defaults.0)?,
        global: vars.number(names[1], defaults.1)?,
        window: vars.duration(names[2], defaults.2)?,
    };
    if limit.per_address == 0 {
        return Err(err(names[0], "must be at least 1"));
    }
    if limit.global < limit.per_address {
        return Err(err(names[1], format!("must be at least {}", names[0])));
    }
    if limit.window.is_zero() {
        return Err(err(names[2], "must be at least 1s"));
    }
    Ok(limit)
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<Limits, ConfigError> {
    let register = rate_limit(
        vars,
        [
            "LATCHKEY_REGISTER_MAX_PER_IP",
            "LATCHKEY_REGISTER_MAX_GLOBAL",
            "LATCHKEY_REGISTER_WINDOW",
        ],
        (20, 1_000, "1h"),
    )?;
    let oauth_authorize = rate_limit(
        vars,
        [
            "LATCHKEY_OAUTH_AUTHORIZE_MAX_PER_IP",
            "LATCHKEY_OAUTH_AUTHORIZE_MAX_GLOBAL",
            "LATCHKEY_OAUTH_AUTHORIZE_WINDOW",
        ],
        (60, 10_000, "10m"),
    )?;
    let password_queue = vars.number("LATCHKEY_PASSWORD_QUEUE", 32usize)?;
    if !(1..=10_000).contains(&password_queue) {
        return Err(err(
            "LATCHKEY_PASSWORD_QUEUE",
            "must be between 1 and 10000",
        ));
    }
    let reauth_max_age = vars.duration("LATCHKEY_REAUTH_MAX_AGE", "5m")?;
    if !(1..=86_400).contains(&reauth_max_age.as_secs()) {
        return Err(err("LATCHKEY_REAUTH_MAX_AGE", "must be between 1s and 1d"));
    }
    let header_read_timeout = vars.duration("LATCHKEY_HEADER_READ_TIMEOUT", "10s")?;
    if !(1..=300).contains(&header_read_timeout.as_secs()) {
        return Err(err(
            "LATCHKEY_HEADER_READ_TIMEOUT",
            "must be between 1s and 5m",
        ));
    }
    let max_connections = vars.number("LATCHKEY_MAX_CONNECTIONS", 1_024usize)?;
    if !(1..=1_000_000).contains(&max_connections) {
        return Err(err(
            "LATCHKEY_MAX_CONNECTIONS",
            "must be between 1 and 1000000",
        ));
    }
    Ok(Limits {
        register,
        oauth_authorize,
        password_queue,
        reauth_max_age,
        header_read_timeout,
        max_connections,
    })
}
