//! The JWKS, the discovery document, and access tokens checked independently of the server.

use ed25519_dalek::{Signature, VerifyingKey};
use reqwest::StatusCode;
use serde_json::Value;

use crate::kit::{
    ISSUER, PASSWORD, browser, decode_jwt, header, json_body, jwk_for, now_secs, spawn_app,
    spawn_app_with, unb64,
};

/// Checks an EdDSA access token with ed25519-dalek and the JWKS alone.
fn verify_eddsa(token: &str, jwks: &Value) -> Value {
    let jwt = decode_jwt(token);
    assert_eq!(jwt.header["alg"], "EdDSA", "header {}", jwt.header);
    assert_eq!(jwt.header["typ"], "at+jwt", "header {}", jwt.header);
    let kid = jwt.header["kid"].as_str().expect("a kid in the header");
    let jwk = jwk_for(jwks, kid);
    let x: [u8; 32] = unb64(jwk["x"].as_str().unwrap())
        .try_into()
        .expect("a 32-byte Ed25519 key");
    let key = VerifyingKey::from_bytes(&x).expect("a valid Ed25519 point");
    let signature = Signature::from_slice(&jwt.signature).expect("a 64-byte signature");
    key.verify_strict(jwt.signing_input.as_bytes(), &signature)
        .expect("the signature verifies");
    jwt.claims
}

#[tokio::test]
async fn the_jwks_publishes_ed25519_public_keys_only() {
    let app = spawn_app().await;

    let resp = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();

    let cache = header(resp.headers(), "cache-control").unwrap_or_default();
    assert!(
        cache.contains("max-age") && !cache.contains("no-store"),
        "not cacheable: `{cache}`"
    );
    let jwks = json_body(resp, StatusCode::OK).await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    for key in keys {
        assert_eq!(key["kty"], "OKP", "{key}");
        assert_eq!(key["crv"], "Ed25519", "{key}");
        assert_eq!(unb64(key["x"].as_str().unwrap()).len(), 32, "{key}");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
        assert!(key.get("d").is_none(), "a private key is published: {key}");
        if let Some(alg) = key.get("alg") {
            assert_eq!(alg, "EdDSA");
        }
    }
}

#[tokio::test]
async fn the_discovery_document_names_the_issuer_and_the_jwks() {
    let app = spawn_app().await;

    let resp = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();

    let doc = json_body(resp, StatusCode::OK).await;
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
}

#[tokio::test]
async fn access_tokens_verify_independently_from_the_jwks_alone() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let jwks = app.jwks().await;

    let claims = verify_eddsa(&login.access_token, &jwks);

    assert_eq!(claims["sub"], login.user_id.as_str());
}

#[tokio::test]
async fn access_token_claims_follow_rfc_9068() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let claims = verify_eddsa(&login.access_token, &app.jwks().await);

    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], login.user_id.as_str());
    let aud_ok = claims["aud"] == ISSUER
        || claims["aud"]
            .as_array()
            .is_some_and(|a| a.contains(&ISSUER.into()));
    assert!(aud_ok, "aud defaults to the issuer: {claims}");
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert!((iat - now_secs()).abs() <= 60, "iat {iat} is not now");
    assert_eq!(exp - iat, 600, "the default lifetime is 10 minutes");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "jti: {claims}"
    );
    assert!(claims["roles"].is_array(), "roles: {claims}");
    assert_eq!(claims["roles"], login.body["user"]["roles"]);
    let sessions = app.sessions(&login.access_token).await;
    assert_eq!(
        claims["sid"], sessions[0]["id"],
        "sid is the session family id"
    );
}

#[tokio::test]
async fn every_access_token_has_a_unique_jti() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let login = app.log_in_with(&browser(), "alice", PASSWORD).await;
        let jti = decode_jwt(&login.access_token).claims["jti"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(seen.insert(jti), "a jti was repeated");
    }
}

#[tokio::test]
async fn refreshed_access_tokens_verify_against_the_same_jwks() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let jwks = app.jwks().await;

    let refreshed = crate::kit::login_from(app.refresh().await).await;

    verify_eddsa(&refreshed.access_token, &jwks);
}

#[tokio::test]
async fn a_configured_audience_becomes_the_aud_claim() {
    let app = spawn_app_with(&[("LATCHKEY_AUDIENCE", "https://api.example.com")]).await;
    let login = app.signed_in("alice").await;

    let claims = verify_eddsa(&login.access_token, &app.jwks().await);

    let aud = &claims["aud"];
    assert!(
        *aud == "https://api.example.com"
            || aud
                .as_array()
                .is_some_and(|a| a.contains(&"https://api.example.com".into())),
        "aud: {aud}"
    );
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(app.me(&login.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_access_token_lifetime_is_configurable() {
    let app = spawn_app_with(&[("LATCHKEY_ACCESS_TOKEN_TTL", "5m")]).await;
    let login = app.signed_in("alice").await;

    let claims = decode_jwt(&login.access_token).claims;

    assert_eq!(login.body["expires_in"], 300);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
}

#[tokio::test]
async fn an_access_token_lifetime_outside_1_to_60_minutes_is_refused_at_start() {
    let app = spawn_app().await;

    for ttl in ["30s", "61m", "2h"] {
        let mut vars = app.vars.clone();
        vars.insert("LATCHKEY_ACCESS_TOKEN_TTL".into(), ttl.into());
        assert!(
            latchkey::Config::from_env_map(&vars).is_err(),
            "an access token TTL of {ttl} was accepted"
        );
    }
}

#[tokio::test]
async fn es256_can_be_selected() {
    let app = spawn_app_with(&[("LATCHKEY_SIGNING_ALG", "ES256")]).await;
    let login = app.signed_in("alice").await;

    let jwt = decode_jwt(&login.access_token);
    let jwks = app.jwks().await;

    assert_eq!(jwt.header["alg"], "ES256");
    assert_eq!(jwt.header["typ"], "at+jwt");
    let jwk = jwk_for(&jwks, jwt.header["kid"].as_str().unwrap());
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert!(jwk.get("d").is_none(), "a private key is published");
    assert_eq!(jwt.signature.len(), 64, "a JOSE (r||s) ES256 signature");
    assert_eq!(app.me(&login.access_token).await.status(), StatusCode::OK);
}
