//! Token lifetimes: access tokens, refresh tokens and their chains, the reuse grace interval
//! and the clock leeway of verification.

use std::time::Duration;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_ACCESS_TOKEN_TTL",
    "LATCHKEY_REFRESH_TOKEN_TTL",
    "LATCHKEY_SESSION_MAX_LIFETIME",
    "LATCHKEY_REFRESH_REUSE_INTERVAL",
    "LATCHKEY_TOKEN_LEEWAY",
];

pub(super) struct TokenSettings {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_max_lifetime: Duration,
    pub refresh_reuse_interval: Duration,
    pub token_leeway: Duration,
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<TokenSettings, ConfigError> {
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
    Ok(TokenSettings {
        access_token_ttl,
        refresh_token_ttl,
        session_max_lifetime,
        refresh_reuse_interval,
        token_leeway,
    })
}
