//! Tokens files-api must refuse: another issuer, another key, expired, wrong audience, wrong
//! type, no signature; each is 401 `invalid_token` with a `WWW-Authenticate` challenge.

use latchkey::auth::keys::generate_key;
use latchkey::config::SigningAlg;
use latchkey_guard::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{Stack, assert_problem, spawn_stack};

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Latchkey's current signing key: its id and private half (the test plays a compromised or
/// confused issuer, to show each claim is checked on its own).
async fn issuer_key(stack: &Stack) -> (String, EncodingKey) {
    let config = latchkey::Config::from_env_map(&stack.latchkey_env).unwrap();
    let store = latchkey::store::open(&config.database_url).await.unwrap();
    let key = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.retired_at.is_none())
        .unwrap();
    (
        key.kid.clone(),
        EncodingKey::from_ed_der(key.private_der.expose_secret()),
    )
}

fn sign(kid: &str, key: &EncodingKey, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    encode(&header, claims, key).unwrap()
}

fn good_claims(stack: &Stack, sub: &str) -> Value {
    json!({
        "iss": stack.issuer, "sub": sub, "aud": stack.issuer, "exp": now() + 60, "iat": now(),
        "jti": "test", "client_id": stack.issuer, "roles": [], "sid": "s",
    })
}

#[tokio::test]
async fn a_token_signed_with_the_issuers_key_passes_only_with_every_claim_right() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    let (kid, key) = issuer_key(&stack).await;
    let base = good_claims(&stack, &owner.id);
    assert_eq!(
        stack
            .read_status(&id, &sign(&kid, &key, "at+jwt", &base))
            .await,
        StatusCode::OK,
        "the control token passes"
    );

    let mut variants: Vec<(&str, Value, &str)> = Vec::new();
    let mut other_issuer = base.clone();
    other_issuer["iss"] = json!("http://127.0.0.1:1");
    variants.push(("another issuer", other_issuer, "at+jwt"));
    let mut wrong_audience = base.clone();
    wrong_audience["aud"] = json!("https://some-other-api.example");
    variants.push(("wrong audience", wrong_audience, "at+jwt"));
    let mut expired = base.clone();
    expired["exp"] = json!(now() - 120);
    expired["iat"] = json!(now() - 300);
    variants.push(("expired beyond the leeway", expired, "at+jwt"));
    let mut future = base.clone();
    future["iat"] = json!(now() + 600);
    variants.push(("issued in the future", future, "at+jwt"));
    variants.push(("an ID token, not an access token", base.clone(), "JWT"));
    for (what, claims, typ) in variants {
        let token = sign(&kid, &key, typ, &claims);
        let response = stack
            .files_request(reqwest::Method::GET, &format!("/files/{id}"), &token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"latchkey\", error=\"invalid_token\"",
            "{what}"
        );
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused_whatever_kid_it_claims() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    let (kid, _) = issuer_key(&stack).await;
    let foreign = generate_key(SigningAlg::EdDSA, OffsetDateTime::now_utc()).unwrap();
    let foreign_key = EncodingKey::from_ed_der(foreign.private_der.expose_secret());
    let claims = good_claims(&stack, &owner.id);
    for token in [
        sign(&kid, &foreign_key, "at+jwt", &claims),
        sign(&foreign.kid, &foreign_key, "at+jwt", &claims),
    ] {
        let response = stack
            .files_request(reqwest::Method::GET, &format!("/files/{id}"), &token)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn a_real_token_of_another_latchkey_is_refused() {
    let stack = spawn_stack().await;
    let other = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    // Same username, same password, another issuer: its token means nothing here.
    let impostor = other.user("olive").await;
    assert_eq!(
        stack.read_status(&id, &impostor.token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(stack.read_status(&id, &owner.token).await, StatusCode::OK);
    other.shutdown().await;
    stack.shutdown().await;
}

#[tokio::test]
async fn unsigned_and_malformed_tokens_are_refused() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    use latchkey_guard::jsonwebtoken::{Algorithm as A, EncodingKey as K};
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let (kid, _) = issuer_key(&stack).await;
    let claims = good_claims(&stack, &owner.id);
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "at+jwt", "kid": kid })),
        b64(&claims)
    );
    let hs256 = {
        let mut header = Header::new(A::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        encode(
            &header,
            &claims,
            &K::from_secret(b"the public key is not a secret"),
        )
        .unwrap()
    };
    for token in [alg_none, hs256, "garbage".to_owned(), "a.b.c".to_owned()] {
        let response = stack
            .files_request(reqwest::Method::GET, &format!("/files/{id}"), &token)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    stack.shutdown().await;
}
