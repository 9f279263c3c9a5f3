//! Access-token verification: pinned algorithms, `typ`, issuer, audience, `exp` and `nbf` with
//! leeway, and a bounded cache of tokens already verified.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::TtlCache;
use crate::source::Refresher;

/// The claims of a Latchkey access token (RFC 9068).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer URL.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// Audience: one value or several.
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Unique token id.
    pub jti: String,
    /// The client the token was issued to (RFC 9068 section 2.2).
    #[serde(default)]
    pub client_id: String,
    /// The user's roles when the token was issued.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The refresh family (login session) the token belongs to.
    #[serde(default)]
    pub sid: String,
    /// When the user last authenticated for this login, seconds since the epoch (OpenID
    /// Connect Core section 2); refreshes keep it, so it says how fresh the sign-in is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}

impl AccessClaims {
    /// Whether the token carries `role`.
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// The `aud` claim: a single string or an array (RFC 7519 section 4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// Why a token was refused. The messages are safe to show: they never echo the token.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// Not a compact JWS, or claims of the wrong shape.
    #[error("the token is malformed")]
    Malformed,
    /// The header's `typ` is not `at+jwt`.
    #[error("the token is not an access token")]
    WrongType,
    /// The header names a key this verifier does not know.
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    /// The header's algorithm is not the one pinned for its key.
    #[error("the token uses a refused algorithm")]
    Algorithm,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    Signature,
    /// Past `exp` (plus leeway), or `iat` in the future.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is later than now plus the leeway.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Wrong issuer or audience.
    #[error("the token was not issued for this service")]
    WrongAudience,
    /// A key in a JWKS could not be used.
    #[error("unusable key in key set: {0}")]
    BadKey(String),
}

/// What a [`Verifier`] checks besides the signature.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud` (one of the token's audiences must equal it).
    pub audience: String,
    /// Clock-skew allowance on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Algorithms accepted at all; a key's own algorithm must also match.
    pub algorithms: Vec<Algorithm>,
    /// How many verified tokens to remember.
    pub cache_capacity: usize,
}

impl VerifierSettings {
    /// Settings with the defaults: 30 s leeway, asymmetric algorithms only, 10,000 cached tokens.
    #[must_use]
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            algorithms: vec![Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256],
            cache_capacity: 10_000,
        }
    }
}

struct VerifyKey {
    alg: Algorithm,
    key: DecodingKey,
    /// The JWK it came from (`None` for HMAC keys), to tell a changed key set from the same one.
    jwk: Option<Jwk>,
}

/// Verifies access tokens against a set of keys that can be replaced while it runs.
///
/// A verified token is remembered (by the SHA-256 of its full text) until it expires, so a
/// client that sends the same token on every request pays for the signature check once.
pub struct Verifier {
    settings: VerifierSettings,
    keys: RwLock<HashMap<String, Arc<VerifyKey>>>,
    cache: TtlCache<[u8; 32], Arc<AccessClaims>>,
    pub(crate) refresher: Option<Refresher>,
}

impl Verifier {
    /// A verifier with no keys yet: every token is refused until keys are added.
    #[must_use]
    pub fn new(settings: VerifierSettings) -> Self {
        let cache = TtlCache::new(settings.cache_capacity);
        Self {
            settings,
            keys: RwLock::new(HashMap::new()),
            cache,
            refresher: None,
        }
    }

    /// The settings this verifier checks against.
    #[must_use]
    pub fn settings(&self) -> &VerifierSettings {
        &self.settings
    }

    /// Replaces the asymmetric keys with those of `jwks` (keys without `kid` or with an
    /// algorithm outside the settings are skipped). HMAC keys added with
    /// [`Verifier::add_hmac_key`] are kept.
    ///
    /// Tokens already verified stay cached unless a key was removed or changed, so reloading
    /// an unchanged (or only grown) key set costs no signature checks.
    ///
    /// # Errors
    /// [`VerifyError::BadKey`] when a usable-looking key cannot be decoded; nothing is replaced.
    pub fn replace_keys(&self, jwks: &JwkSet) -> Result<(), VerifyError> {
        let mut fresh = HashMap::new();
        for jwk in &jwks.keys {
            if let Some((kid, key)) = self.decode_jwk(jwk)? {
                fresh.insert(kid, Arc::new(key));
            }
        }
        let mut keys = self.keys.write();
        let lost_a_key = keys.iter().any(|(kid, old)| {
            old.alg != Algorithm::HS256 && fresh.get(kid).is_none_or(|new| new.jwk != old.jwk)
        });
        keys.retain(|_, k| k.alg == Algorithm::HS256);
        keys.extend(fresh);
        drop(keys);
        if lost_a_key {
            self.cache.clear();
        }
        Ok(())
    }

    /// Adds a shared-secret HS256 key. Only for deployments that chose HS256 explicitly.
    pub fn add_hmac_key(&self, kid: &str, secret: &[u8]) {
        let key = VerifyKey {
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
            jwk: None,
        };
        self.keys.write().insert(kid.to_owned(), Arc::new(key));
    }

    /// Whether a key with this `kid` is known.
    #[must_use]
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.keys.read().contains_key(kid)
    }

    fn decode_jwk(&self, jwk: &Jwk) -> Result<Option<(String, VerifyKey)>, VerifyError> {
        let Some(kid) = jwk.common.key_id.clone() else {
            return Ok(None);
        };
        let Some(alg) = jwk
            .common
            .key_algorithm
            .and_then(|a| Algorithm::try_from(a).ok())
        else {
            return Ok(None);
        };
        if !self.settings.algorithms.contains(&alg) || alg == Algorithm::HS256 {
            return Ok(None);
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| VerifyError::BadKey(e.to_string()))?;
        Ok(Some((
            kid,
            VerifyKey {
                alg,
                key,
                jwk: Some(jwk.clone()),
            },
        )))
    }

    /// Verifies `token` and returns its claims.
    ///
    /// # Errors
    /// A [`VerifyError`] saying why the token is refused.
    pub fn verify(&self, token: &str) -> Result<Arc<AccessClaims>, VerifyError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cache.get(&digest) {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_uncached(token)?);
        let now = unix_now();
        let remaining = (claims.exp + self.settings.leeway.as_secs()).saturating_sub(now);
        self.cache.insert(
            digest,
            claims.clone(),
            Instant::now() + Duration::from_secs(remaining),
        );
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str) -> Result<AccessClaims, VerifyError> {
        let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(VerifyError::WrongType);
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self
            .keys
            .read()
            .get(kid)
            .cloned()
            .ok_or(VerifyError::UnknownKey)?;
        // The algorithm is pinned by the key, never taken from the token: this is what stops
        // `alg: none` and HS256-signed-with-the-public-key forgeries.
        if header.alg != key.alg || !self.allows(key.alg) {
            return Err(VerifyError::Algorithm);
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.settings.leeway.as_secs();
        // `nbf` is optional (Latchkey does not set it), but honoured when present.
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = decode::<AccessClaims>(token, &key.key, &validation).map_err(map_jwt_error)?;
        if data.claims.iat > unix_now() + self.settings.leeway.as_secs() {
            return Err(VerifyError::Expired);
        }
        Ok(data.claims)
    }

    fn allows(&self, alg: Algorithm) -> bool {
        alg == Algorithm::HS256 || self.settings.algorithms.contains(&alg)
    }
}

fn map_jwt_error(error: jsonwebtoken::errors::Error) -> VerifyError {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidSignature => VerifyError::Signature,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => VerifyError::Algorithm,
        _ => VerifyError::Malformed,
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The token of an `Authorization: Bearer` header (RFC 6750 section 2.1), if any.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
