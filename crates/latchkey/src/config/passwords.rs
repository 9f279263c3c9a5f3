//! Passwords: the minimum length and the Argon2id cost of hashing.

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_PASSWORD_MIN_LENGTH",
    "LATCHKEY_ARGON2_MEMORY_KIB",
    "LATCHKEY_ARGON2_ITERATIONS",
    "LATCHKEY_ARGON2_PARALLELISM",
];

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

pub(super) struct PasswordSettings {
    pub password_min_length: usize,
    pub argon2: Argon2Settings,
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<PasswordSettings, ConfigError> {
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
    Ok(PasswordSettings {
        password_min_length,
        argon2,
    })
}
