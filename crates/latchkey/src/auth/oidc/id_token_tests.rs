//! Unit tests of ID-token validation with locally generated provider keys.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::*;
use crate::auth::keys::generate_key;
use crate::config::SigningAlg;

const ISS: &str = "https://id.example";
const CLIENT: &str = "latchkey";
const NOW: u64 = 1_800_000_000;

struct TestKey {
    alg: Algorithm,
    kid: String,
    key: EncodingKey,
    jwk: Value,
}

fn test_key(alg: SigningAlg, kid: &str) -> TestKey {
    use secrecy::ExposeSecret;
    let record = generate_key(alg, time::OffsetDateTime::now_utc()).unwrap();
    let der = record.private_der.expose_secret();
    let (jose, key) = match alg {
        SigningAlg::EdDSA => (Algorithm::EdDSA, EncodingKey::from_ed_der(der)),
        SigningAlg::ES256 => (Algorithm::ES256, EncodingKey::from_ec_der(der)),
        _ => {
            use base64::Engine;
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            )
        }
    };
    let mut jwk = Jwk::from_encoding_key(&key, jose).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    TestKey {
        alg: jose,
        kid: kid.to_owned(),
        key,
        jwk: serde_json::to_value(jwk).unwrap(),
    }
}

fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "248289761001", "aud": CLIENT, "exp": NOW + 300, "iat": NOW,
        "nonce": "n-0S6_WzA2Mj", "email": "jane@example.com", "email_verified": true,
        "preferred_username": "jane",
    })
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    encode(&header, claims, &key.key).unwrap()
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISS,
        client_id: CLIENT,
        nonce: "n-0S6_WzA2Mj",
        leeway: 30,
        now: NOW,
        started: NOW - 60,
    }
}

fn check(
    key: &TestKey,
    published: &[&TestKey],
    claims: &Value,
) -> Result<IdentityClaims, OAuthError> {
    let set: Vec<Value> = published.iter().map(|k| k.jwk.clone()).collect();
    validate(
        &sign(key, claims),
        &ProviderKeys::from_jwks(&set),
        &expected(),
    )
}

#[test]
fn a_good_token_of_each_algorithm_is_accepted() {
    for alg in [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA] {
        let key = test_key(alg, "k1");
        let got = check(&key, &[&key], &claims()).unwrap();
        assert_eq!(got.sub, "248289761001");
        assert_eq!(got.email.as_deref(), Some("jane@example.com"));
        assert!(got.email_verified);
        assert_eq!(got.preferred_username.as_deref(), Some("jane"));
    }
}

#[test]
fn a_token_signed_by_another_key_is_refused() {
    let published = test_key(SigningAlg::EdDSA, "k1");
    let rogue = test_key(SigningAlg::EdDSA, "k1");
    assert_eq!(
        check(&rogue, &[&published], &claims()),
        Err(invalid("bad signature"))
    );
    let unknown = test_key(SigningAlg::EdDSA, "k2");
    assert_eq!(
        check(&unknown, &[&published], &claims()),
        Err(invalid("signed by an unknown key"))
    );
}

#[test]
fn hmac_and_none_are_refused_whatever_the_keys() {
    let key = test_key(SigningAlg::EdDSA, "k1");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let token = encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(b"client-secret"),
    )
    .unwrap();
    let keys = ProviderKeys::from_jwks(std::slice::from_ref(&key.jwk));
    assert!(validate(&token, &keys, &expected()).is_err());
    let unsigned = format!(
        "{}.{}.",
        base64_url(r#"{"alg":"none","kid":"k1"}"#),
        base64_url(&claims().to_string())
    );
    assert!(validate(&unsigned, &keys, &expected()).is_err());
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn wrong_claims_are_refused_each_with_its_reason() {
    let key = test_key(SigningAlg::ES256, "k1");
    let with = |k: &str, v: Value| {
        let mut c = claims();
        c[k] = v;
        check(&key, &[&key], &c)
    };
    assert_eq!(
        with("nonce", json!("other")),
        Err(OAuthError::NonceMismatch)
    );
    assert_eq!(
        with("iss", json!("https://evil.example")),
        Err(invalid("wrong issuer"))
    );
    assert_eq!(
        with("aud", json!("someone-else")),
        Err(invalid("issued for another client"))
    );
    assert_eq!(
        with("aud", json!([CLIENT, "other"])),
        Err(invalid("several audiences and no azp"))
    );
    assert_eq!(
        with("azp", json!("other")),
        Err(invalid("wrong authorized party"))
    );
    assert_eq!(with("exp", json!(NOW - 31)), Err(invalid("expired")));
    assert_eq!(
        with("iat", json!(NOW + 31)),
        Err(invalid("issued at the wrong time"))
    );
    assert_eq!(
        with("iat", json!(NOW - 100)),
        Err(invalid("issued at the wrong time"))
    );
    let mut no_nonce = claims();
    no_nonce.as_object_mut().unwrap().remove("nonce");
    assert_eq!(
        check(&key, &[&key], &no_nonce),
        Err(OAuthError::NonceMismatch)
    );
}

#[test]
fn clock_skew_within_the_leeway_is_accepted() {
    let key = test_key(SigningAlg::EdDSA, "k1");
    let mut c = claims();
    c["exp"] = json!(NOW - 20);
    c["iat"] = json!(NOW + 20);
    assert!(check(&key, &[&key], &c).is_ok());
    let mut c = claims();
    c["aud"] = json!([CLIENT, "other"]);
    c["azp"] = json!(CLIENT);
    c["email_verified"] = json!("true");
    assert!(check(&key, &[&key], &c).unwrap().email_verified);
}

#[test]
fn google_tokens_may_name_the_issuer_without_its_scheme() {
    assert_eq!(
        accepted_issuers("https://accounts.google.com"),
        ["https://accounts.google.com", "accounts.google.com"]
    );
    assert_eq!(accepted_issuers(ISS), [ISS]);
}

#[test]
fn unusable_keys_in_a_jwks_are_skipped() {
    let key = test_key(SigningAlg::RS256, "k1");
    let set = [
        json!({"kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "kid": "e1", "n": "AQAB", "e": "AQAB"}),
        json!({"kty": "weird"}),
        key.jwk.clone(),
    ];
    let keys = ProviderKeys::from_jwks(&set);
    assert!(keys.knows("k1"));
    assert!(!keys.knows("e1"));
    assert!(validate(&sign(&key, &claims()), &keys, &expected()).is_ok());
}
