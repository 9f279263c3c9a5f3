//! Failed-login throttling, per account and per client address.

use std::time::Duration;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT",
    "LATCHKEY_LOGIN_MAX_FAILURES_PER_IP",
    "LATCHKEY_LOGIN_THROTTLE_WINDOW",
];

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

pub(super) fn parse(vars: &Vars<'_>) -> Result<ThrottleSettings, ConfigError> {
    let throttle = ThrottleSettings {
        max_failures_per_account: vars.number("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", 10u32)?,
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
    Ok(throttle)
}
