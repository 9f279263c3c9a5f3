//! ID-token validation (OpenID Connect Core section 3.1.3.7): signature by one of the
//! provider's keys with a pinned asymmetric algorithm, `iss`, `aud`, `azp`, `exp` and `iat`
//! with leeway, and the `nonce` of this sign-in.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::OAuthError;

/// Algorithms an ID token may be signed with. Never `none` and never HMAC: a token MACed with
/// the client secret proves nothing the secret's holders could not forge.
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

fn family_of(alg: Algorithm) -> Option<Family> {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(Family::Rsa),
        Algorithm::ES256 => Some(Family::P256),
        Algorithm::ES384 => Some(Family::P384),
        Algorithm::EdDSA => Some(Family::Ed25519),
        _ => None,
    }
}

struct ProviderKey {
    kid: Option<String>,
    alg: Option<Algorithm>,
    family: Family,
    key: DecodingKey,
}

/// A provider's usable signing keys, decoded once per JWKS fetch.
pub struct ProviderKeys {
    keys: Vec<ProviderKey>,
}

impl ProviderKeys {
    /// The signature keys of a JWKS's `keys` array that this server can use; others
    /// (encryption keys, unknown types or curves, malformed entries) are skipped.
    #[must_use]
    pub fn from_jwks(set: &[serde_json::Value]) -> Self {
        let keys = set
            .iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value.clone()).ok())
            .filter(|jwk| {
                !matches!(
                    jwk.common.public_key_use,
                    Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
                )
            })
            .filter_map(|jwk| {
                let jwk = &jwk;
                let family = match &jwk.algorithm {
                    AlgorithmParameters::RSA(_) => Family::Rsa,
                    AlgorithmParameters::EllipticCurve(p) => match p.curve {
                        EllipticCurve::P256 => Family::P256,
                        EllipticCurve::P384 => Family::P384,
                        _ => return None,
                    },
                    AlgorithmParameters::OctetKeyPair(p) => match p.curve {
                        EllipticCurve::Ed25519 => Family::Ed25519,
                        _ => return None,
                    },
                    _ => return None,
                };
                let alg = match jwk.common.key_algorithm {
                    Some(a) => Some(Algorithm::try_from(a).ok()?),
                    None => None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(ProviderKey {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    family,
                    key,
                })
            })
            .collect();
        Self { keys }
    }

    /// Whether a key with this `kid` is known.
    #[must_use]
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// What the ID token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The provider's issuer, exactly (and its legacy spellings, see [`accepted_issuers`]).
    pub issuer: &'a str,
    /// Our client id: in `aud`, and `azp` when present.
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: &'a str,
    /// Clock-skew allowance, seconds.
    pub leeway: u64,
    /// Now, seconds since the epoch.
    pub now: u64,
    /// When the sign-in started, seconds since the epoch: an older `iat` is refused.
    pub started: u64,
}

/// The claims sign-in uses, from a validated ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityClaims {
    /// The provider's stable id of the user.
    pub sub: String,
    /// The email, if given.
    pub email: Option<String>,
    /// Whether the provider vouches for the email.
    pub email_verified: bool,
    /// A username the user prefers, if given.
    pub preferred_username: Option<String>,
    /// A display name, if given.
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    aud: Aud,
    exp: u64,
    iat: u64,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn invalid(what: &str) -> OAuthError {
    OAuthError::InvalidIdToken(what.to_owned())
}

/// The `iss` values accepted for `issuer`: itself, and for Google also the scheme-less
/// `accounts.google.com` its documentation says ID tokens may carry.
#[must_use]
pub fn accepted_issuers(issuer: &str) -> Vec<&str> {
    if issuer == crate::config::GOOGLE_ISSUER {
        vec![issuer, "accounts.google.com"]
    } else {
        vec![issuer]
    }
}

/// Whether a claim says "verified": `true`, or the string `"true"` some providers send.
#[must_use]
pub fn is_true(value: Option<&serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Validates `token` against `keys` and `expected`.
///
/// # Errors
/// [`OAuthError::NonceMismatch`] for a token of another sign-in, [`OAuthError::InvalidIdToken`]
/// for anything else wrong.
pub fn validate(
    token: &str,
    keys: &ProviderKeys,
    expected: &Expected<'_>,
) -> Result<IdentityClaims, OAuthError> {
    let header = decode_header(token).map_err(|_| invalid("malformed"))?;
    let family = family_of(header.alg)
        .filter(|_| ACCEPTED.contains(&header.alg))
        .ok_or_else(|| invalid("refused signing algorithm"))?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = expected.leeway;
    validation.set_issuer(&accepted_issuers(expected.issuer));
    // Checked below against `expected.now`, so that one clock decides (and tests can set it).
    validation.validate_exp = false;
    validation.validate_aud = false; // checked below, together with azp
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let candidates = keys.keys.iter().filter(|k| {
        k.family == family
            && k.alg.is_none_or(|a| a == header.alg)
            && match &header.kid {
                Some(kid) => k.kid.as_deref() == Some(kid),
                None => true,
            }
    });
    let mut outcome = Err(invalid("signed by an unknown key"));
    for key in candidates {
        outcome = decode::<Claims>(token, &key.key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::ExpiredSignature => invalid("expired"),
                ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                ErrorKind::MissingRequiredClaim(c) => invalid(&format!("no `{c}` claim")),
                _ => invalid("malformed"),
            }
        });
        if outcome.is_ok() {
            break;
        }
    }
    let claims = outcome?.claims;
    let audiences = match &claims.aud {
        Aud::One(a) => vec![a.as_str()],
        Aud::Many(many) => many.iter().map(String::as_str).collect(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(invalid("issued for another client"));
    }
    // Core 3.1.3.7 (4, 5): several audiences need an `azp`, and an `azp` must be us.
    match &claims.azp {
        Some(azp) if azp != expected.client_id => return Err(invalid("wrong authorized party")),
        None if audiences.len() > 1 => return Err(invalid("several audiences and no azp")),
        _ => {}
    }
    if claims.exp + expected.leeway < expected.now {
        return Err(invalid("expired"));
    }
    if claims.iat > expected.now + expected.leeway
        || claims.iat + expected.leeway < expected.started
    {
        return Err(invalid("issued at the wrong time"));
    }
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|n| bool::from(n.as_bytes().ct_eq(expected.nonce.as_bytes())));
    if !nonce_ok {
        return Err(OAuthError::NonceMismatch);
    }
    if claims.sub.is_empty() || claims.sub.len() > 255 {
        return Err(invalid("bad subject"));
    }
    Ok(IdentityClaims {
        sub: claims.sub,
        email_verified: is_true(claims.email_verified.as_ref()),
        email: claims.email,
        preferred_username: claims.preferred_username,
        name: claims.name,
    })
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod tests;
