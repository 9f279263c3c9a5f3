//! Signing keys: the algorithm, the HS256 shared secret, how often keys are re-read from the
//! store and how early a rotated key is published.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_SIGNING_ALG",
    "LATCHKEY_HS256_SECRET",
    "LATCHKEY_KEY_RELOAD_INTERVAL",
    "LATCHKEY_KEY_PUBLISH_AHEAD",
];

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

pub(super) struct KeySettings {
    pub signing_alg: SigningAlg,
    pub hs256_secret: Option<SecretString>,
    pub key_reload_interval: Duration,
    pub key_publish_ahead: Duration,
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<KeySettings, ConfigError> {
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
    Ok(KeySettings {
        signing_alg,
        hs256_secret,
        key_reload_interval,
        key_publish_ahead,
    })
}
