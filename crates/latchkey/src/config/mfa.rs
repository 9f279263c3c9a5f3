//! Second factors: how long a login may wait for its second step, how many wrong codes one
//! pending login takes, and the name authenticator apps show.

use std::time::Duration;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_MFA_TOKEN_TTL",
    "LATCHKEY_MFA_MAX_ATTEMPTS",
    "LATCHKEY_TOTP_ISSUER",
];

/// `LATCHKEY_MFA_*` and `LATCHKEY_TOTP_ISSUER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSettings {
    /// How long an `mfa_token` lives (default 5 minutes).
    pub token_ttl: Duration,
    /// Wrong codes one `mfa_token` takes before it is withdrawn (default 5).
    pub max_attempts: u32,
    /// The issuer name in `otpauth://` URIs (what authenticator apps show; default `Latchkey`).
    pub totp_issuer: String,
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<MfaSettings, ConfigError> {
    let settings = MfaSettings {
        token_ttl: vars.duration("LATCHKEY_MFA_TOKEN_TTL", "5m")?,
        max_attempts: vars.number("LATCHKEY_MFA_MAX_ATTEMPTS", 5u32)?,
        totp_issuer: vars
            .get("LATCHKEY_TOTP_ISSUER")
            .unwrap_or("Latchkey")
            .to_owned(),
    };
    if settings.token_ttl < Duration::from_secs(30)
        || settings.token_ttl > Duration::from_secs(3600)
    {
        return Err(err("LATCHKEY_MFA_TOKEN_TTL", "must be between 30s and 1h"));
    }
    if settings.max_attempts == 0 {
        return Err(err("LATCHKEY_MFA_MAX_ATTEMPTS", "must be at least 1"));
    }
    if settings.totp_issuer.contains(':') || settings.totp_issuer.len() > 64 {
        return Err(err(
            "LATCHKEY_TOTP_ISSUER",
            "must be at most 64 characters without `:`",
        ));
    }
    Ok(settings)
}
