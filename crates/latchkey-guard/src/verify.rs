//! Access-token verification: pinned algorithms, `typ`, issuer, audience, `exp` and `nbf` with
//! leeway, and a bounded cache of tokens already verified.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::source::Refresher;
use crate::{SharedClock, SystemClock, TtlCache};

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
    /// How the user authenticated (RFC 8176 values: `pwd`, `otp`, `mfa`, ...; an OpenID
    /// Connect sign-in adds `oidc:<provider>`). Refreshes keep it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

impl AccessClaims {
    /// Whether the token carries `role`.
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the sign-in used more than one factor (`amr` holds `mfa`).
    #[must_use]
    pub fn is_mfa(&self) -> bool {
        self.amr.iter().any(|m| m == "mfa")
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
    /// The clock `exp`, `nbf` and `iat` are checked against (the system clock unless a test
    /// injects a [`TestClock`](crate::TestClock)).
    pub clock: SharedClock,
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
            clock: SystemClock::shared(),
        }
    }

    /// These settings with `clock` as the source of "now".
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

/// The claims as signed, with the optional `nbf` the verifier checks but callers never need.
#[derive(Deserialize)]
struct SignedClaims {
    #[serde(flatten)]
    claims: AccessClaims,
    /// Not before, seconds since the epoch (RFC 7519 section 4.1.5); Latchkey does not set it.
    #[serde(default)]
    nbf: Option<u64>,
}

struct VerifyKey {
    alg: Algorithm,
    key: DecodingKey,
    /// The JWK it came from (`None` for HMAC keys), to tell a changed key set from the same one.
    jwk: Option<Jwk>,
}

/// Verifies access tokens against a set of keys that can be replaced while it runs.
///
/// A verified token is remembered (with its full text, compared in full on every hit) until it
/// expires, so a client that sends the same token on every request pays for the signature
/// check once.
pub struct Verifier {
    settings: VerifierSettings,
    keys: RwLock<HashMap<String, Arc<VerifyKey>>>,
    /// Slot: a keyed hash of the token's signature segment; see [`Verifier::cache_slot`].
    cache: TtlCache<u64, Arc<CachedToken>>,
    /// Per-process random keys for the slot hash.
    slot_hasher: RandomState,
    pub(crate) refresher: Option<Refresher>,
    /// What [`Verifier::stats`] reports.
    counters: Counters,
}

/// How many tokens a [`Verifier`] has checked since it was made: plain counters an operator's
/// metrics can read at scrape time (the guard itself depends on no metrics library).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifierStats {
    /// Tokens answered from the cache of already-verified tokens.
    pub cache_hits: u64,
    /// Tokens checked in full (signature and claims) that passed.
    pub verified: u64,
    /// Tokens checked in full that were refused.
    pub refused: u64,
}

impl VerifierStats {
    /// Every verification: `cache_hits + verified + refused`.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.cache_hits + self.verified + self.refused
    }

    /// The share of verifications answered from the cache (0 before the first).
    #[must_use]
    #[allow(clippy::cast_precision_loss)] // a ratio: the precision of f64 is plenty
    pub fn cache_hit_ratio(&self) -> f64 {
        match self.total() {
            0 => 0.0,
            total => self.cache_hits as f64 / total as f64,
        }
    }
}

/// The counters behind [`VerifierStats`]; relaxed atomics, one increment per verification.
#[derive(Default)]
struct Counters {
    cache_hits: AtomicU64,
    verified: AtomicU64,
    refused: AtomicU64,
}

/// A verified token: its whole text and its claims.
struct CachedToken {
    token: Box<str>,
    claims: Arc<AccessClaims>,
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
            slot_hasher: RandomState::new(),
            refresher: None,
            counters: Counters::default(),
        }
    }

    /// How many tokens this verifier has checked, by result (counted since it was made).
    #[must_use]
    pub fn stats(&self) -> VerifierStats {
        VerifierStats {
            cache_hits: self.counters.cache_hits.load(Ordering::Relaxed),
            verified: self.counters.verified.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
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
        let slot = self.cache_slot(token);
        let now = self.settings.clock.unix_seconds();
        // A hit must be the very same token: the slot only narrows the search.
        if let Some(hit) = self.cache.get(&slot)
            && *hit.token == *token
        {
            // The cache's deadline is monotonic time; the injected clock has the last word, so
            // a clock moved past `exp` never gets a cached token back.
            if self.check_times(&hit.claims, None, now).is_ok() {
                self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Arc::clone(&hit.claims));
            }
            self.cache.remove(&slot);
        }
        let claims = match self.verify_uncached(token, now) {
            Ok(claims) => {
                self.counters.verified.fetch_add(1, Ordering::Relaxed);
                Arc::new(claims)
            }
            Err(e) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let remaining = (claims.exp + self.settings.leeway.as_secs()).saturating_sub(now);
        let cached = CachedToken {
            token: token.into(),
            claims: Arc::clone(&claims),
        };
        self.cache.insert(
            slot,
            Arc::new(cached),
            Instant::now() + Duration::from_secs(remaining),
        );
        Ok(claims)
    }

    /// Where `token` lives in the cache: a hash of its signature segment under per-process
    /// random keys. Cheaper than a SHA-256 of the whole text (which cost ~2.5% of the server's
    /// CPU per Bearer request). It needs no collision resistance because a hit is confirmed by
    /// comparing the full text (a collision is a miss), and the random keys keep anyone from
    /// steering tokens into one slot.
    fn cache_slot(&self, token: &str) -> u64 {
        let signature = token.rsplit_once('.').map_or(token, |(_, s)| s);
        self.slot_hasher.hash_one(signature)
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<AccessClaims, VerifyError> {
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
        // jsonwebtoken reads the system time for `exp` and `nbf`; those are checked below
        // against the injected clock instead.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let data = decode::<SignedClaims>(token, &key.key, &validation).map_err(map_jwt_error)?;
        self.check_times(&data.claims.claims, data.claims.nbf, now)?;
        Ok(data.claims.claims)
    }

    /// `exp` (RFC 7519 section 4.1.4), `nbf` (section 4.1.5, optional but honoured when
    /// present) and `iat` not in the future, each with the leeway.
    fn check_times(
        &self,
        claims: &AccessClaims,
        nbf: Option<u64>,
        now: u64,
    ) -> Result<(), VerifyError> {
        let leeway = self.settings.leeway.as_secs();
        if claims.exp.saturating_add(leeway) < now {
            return Err(VerifyError::Expired);
        }
        if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(VerifyError::NotYetValid);
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(VerifyError::Expired);
        }
        Ok(())
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

/// The token of an `Authorization: Bearer` header (RFC 6750 section 2.1), if any.
#[must_use]
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, TestClock};
    use jsonwebtoken::{EncodingKey, Header, encode};

    const SECRET: &[u8] = b"a test secret of thirty-two bytes!";

    fn verifier(clock: &Arc<TestClock>) -> Verifier {
        let settings = VerifierSettings::new("https://issuer.test", "https://issuer.test")
            .with_clock(clock.clone());
        let verifier = Verifier::new(settings);
        verifier.add_hmac_key("k", SECRET);
        verifier
    }

    fn token(iat: u64, exp: u64, nbf: Option<u64>) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k".into());
        let mut claims = serde_json::json!({
            "iss": "https://issuer.test", "aud": "https://issuer.test", "sub": "u1",
            "iat": iat, "exp": exp, "jti": "j",
        });
        if let Some(nbf) = nbf {
            claims["nbf"] = nbf.into();
        }
        encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    #[test]
    fn a_cached_token_is_refused_once_the_injected_clock_passes_its_expiry() {
        let clock = TestClock::new();
        let verifier = verifier(&clock);
        let now = clock.unix_seconds();
        let token = token(now, now + 300, None);
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&token).is_ok(), "served from the cache");
        clock.advance(Duration::from_secs(300 + 29));
        assert!(verifier.verify(&token).is_ok(), "inside the 30 s leeway");
        clock.advance(Duration::from_secs(2));
        assert_eq!(verifier.verify(&token), Err(VerifyError::Expired));
    }

    #[test]
    fn stats_count_cache_hits_full_checks_and_refusals() {
        let clock = TestClock::new();
        let verifier = verifier(&clock);
        assert_eq!(verifier.stats(), VerifierStats::default());
        assert!(verifier.stats().cache_hit_ratio().abs() < f64::EPSILON);
        let now = clock.unix_seconds();
        let token = token(now, now + 300, None);
        for _ in 0..3 {
            assert!(verifier.verify(&token).is_ok());
        }
        assert!(verifier.verify("not.a.token").is_err());
        let stats = verifier.stats();
        assert_eq!(
            stats,
            VerifierStats {
                cache_hits: 2,
                verified: 1,
                refused: 1
            }
        );
        assert_eq!(stats.total(), 4);
        assert!((stats.cache_hit_ratio() - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn a_token_expired_by_the_injected_clock_is_refused_before_it_is_cached() {
        let clock = TestClock::new();
        let verifier = verifier(&clock);
        let now = clock.unix_seconds();
        let token = token(now, now + 60, None);
        clock.advance(Duration::from_secs(3_600));
        assert_eq!(verifier.verify(&token), Err(VerifyError::Expired));
    }

    #[test]
    fn nbf_and_iat_are_checked_against_the_injected_clock() {
        let clock = TestClock::new();
        let verifier = verifier(&clock);
        let now = clock.unix_seconds();
        let later = token(now, now + 3_600, Some(now + 600));
        assert_eq!(verifier.verify(&later), Err(VerifyError::NotYetValid));
        let future = token(now + 600, now + 3_600, None);
        assert_eq!(verifier.verify(&future), Err(VerifyError::Expired));
        clock.advance(Duration::from_secs(600));
        assert!(verifier.verify(&later).is_ok());
        assert!(verifier.verify(&future).is_ok());
    }

    #[test]
    fn a_token_sharing_only_the_signature_of_a_cached_one_is_checked_in_full() {
        let clock = TestClock::new();
        let verifier = verifier(&clock);
        let now = clock.unix_seconds();
        let cached = token(now, now + 300, None);
        let other = token(now, now + 600, None);
        assert!(verifier.verify(&cached).is_ok());
        let (_, signature) = cached.rsplit_once('.').unwrap();
        let (unsigned, _) = other.rsplit_once('.').unwrap();
        let forged = format!("{unsigned}.{signature}");
        assert_eq!(verifier.verify(&forged), Err(VerifyError::Signature));
        assert!(verifier.verify(&cached).is_ok());
    }

    #[test]
    fn a_clock_moved_back_before_iat_refuses_a_cached_token() {
        let clock = TestClock::new();
        let verifier = verifier(&clock);
        let now = clock.unix_seconds();
        let token = token(now, now + 300, None);
        assert!(verifier.verify(&token).is_ok());
        clock.rewind(Duration::from_secs(120));
        assert_eq!(verifier.verify(&token), Err(VerifyError::Expired));
    }
}
