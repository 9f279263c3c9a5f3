//! Bad input: malformed bodies and forged, tampered, foreign or expired tokens. Always a clear
//! 4xx, never a 500.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::kit::{
    ISSUER, assert_invalid_token, assert_problem, assert_problem_status, b64, b64_json, decode_jwt,
    hmac_sha256, jwk_for, spawn_app, spawn_app_with, unb64,
};

const JSON_ENDPOINTS: &[&str] = &["/auth/register", "/auth/login"];

#[tokio::test]
async fn malformed_json_is_400_invalid_input() {
    let app = spawn_app().await;

    for path in JSON_ENDPOINTS {
        for body in [
            "{",
            "{\"username\": \"alice\",}",
            "not json",
            "",
            "null",
            "[]",
            "\"alice\"",
        ] {
            let resp = app
                .client
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
        }
    }
}

#[tokio::test]
async fn invalid_utf8_and_deeply_nested_json_are_400() {
    let app = spawn_app().await;
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));

    for body in [
        b"{\"username\": \"\xff\xfe\"}".to_vec(),
        nested.into_bytes(),
    ] {
        let resp = app
            .client
            .post(app.url("/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_415() {
    let app = spawn_app().await;
    let body = json!({ "username": "alice", "password": crate::kit::PASSWORD }).to_string();

    for path in JSON_ENDPOINTS {
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            None,
        ] {
            let mut req = app.client.post(app.url(path)).body(body.clone());
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.unwrap();
            assert_problem_status(resp, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
        }
    }
}

#[tokio::test]
async fn a_json_content_type_with_a_charset_is_accepted() {
    let app = spawn_app().await;
    let body = json!({ "username": "alice", "password": crate::kit::PASSWORD }).to_string();

    let resp = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(70 * 1024);

    for path in JSON_ENDPOINTS {
        let body = json!({ "username": "alice", "password": crate::kit::PASSWORD, "pad": padding });
        let resp = app.post_json(path, &body).await;
        assert_problem_status(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
}

#[tokio::test]
async fn missing_or_mistyped_fields_are_400_invalid_input() {
    let app = spawn_app().await;
    let p = crate::kit::PASSWORD;

    let cases = [
        ("/auth/register", json!({ "password": p })),
        ("/auth/register", json!({ "username": "alice" })),
        ("/auth/register", json!({})),
        ("/auth/register", json!({ "username": 42, "password": p })),
        (
            "/auth/register",
            json!({ "username": "alice", "password": ["x"] }),
        ),
        ("/auth/register", json!({ "username": null, "password": p })),
        (
            "/auth/register",
            json!({ "username": "alice", "password": p, "email": 7 }),
        ),
        ("/auth/login", json!({ "username": "alice" })),
        ("/auth/login", json!({ "password": p })),
        ("/auth/login", json!({ "username": true, "password": p })),
    ];
    for (path, body) in cases {
        let resp = app.post_json(path, &body).await;
        let status = resp.status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert_problem(resp, status, "invalid_input").await;
    }
}

#[tokio::test]
async fn a_password_change_with_a_bad_body_is_400_invalid_input() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    for body in [
        json!({}),
        json!({ "current_password": crate::kit::PASSWORD }),
        json!({ "new_password": 5 }),
    ] {
        let resp = app
            .client
            .post(app.url("/auth/password"))
            .bearer_auth(&login.access_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

#[tokio::test]
async fn garbage_bearer_tokens_are_401_invalid_token() {
    let app = spawn_app().await;
    let long = "a".repeat(10_000);

    for token in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJFZERTQSJ9.e30.",
        "...",
        long.as_str(),
    ] {
        let resp = app.me(token).await;
        assert_invalid_token(resp).await;
    }
}

#[tokio::test]
async fn a_non_bearer_authorization_is_401() {
    let app = spawn_app().await;

    for value in ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "Token abc"] {
        let resp = app
            .client
            .get(app.url("/auth/me"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::UNAUTHORIZED,
            "Authorization: {value}"
        );
        assert!(
            resp.headers()
                .get("www-authenticate")
                .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer"))
        );
    }
}

#[tokio::test]
async fn an_alg_none_token_is_401_invalid_token() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let jwt = decode_jwt(&login.access_token);

    let mut header = jwt.header.clone();
    for alg in ["none", "None", "NONE"] {
        header["alg"] = json!(alg);
        let forged = format!("{}.{}.", b64_json(&header), b64_json(&jwt.claims));
        assert_invalid_token(app.me(&forged).await).await;
        let with_sig = format!(
            "{}.{}.{}",
            b64_json(&header),
            b64_json(&jwt.claims),
            b64(&jwt.signature)
        );
        assert_invalid_token(app.me(&with_sig).await).await;
    }
}

#[tokio::test]
async fn an_hs256_token_signed_with_the_public_key_is_401_invalid_token() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let jwt = decode_jwt(&login.access_token);
    let jwks = app.jwks().await;
    let jwk = jwk_for(&jwks, jwt.header["kid"].as_str().unwrap());
    let x = jwk["x"].as_str().unwrap();

    let mut header = jwt.header.clone();
    header["alg"] = json!("HS256");
    let input = format!("{}.{}", b64_json(&header), b64_json(&jwt.claims));
    // The key confusion attack, with every plausible encoding of the public key as the secret.
    for secret in [
        unb64(x),
        x.as_bytes().to_vec(),
        jwk.to_string().into_bytes(),
    ] {
        let forged = format!("{input}.{}", b64(&hmac_sha256(&secret, input.as_bytes())));
        assert_invalid_token(app.me(&forged).await).await;
    }
}

#[tokio::test]
async fn a_tampered_token_is_401_invalid_token() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let jwt = decode_jwt(&login.access_token);
    let parts: Vec<&str> = login.access_token.split('.').collect();

    let mut claims = jwt.claims.clone();
    claims["roles"] = json!(["admin"]);
    let elevated = format!("{}.{}.{}", parts[0], b64_json(&claims), parts[2]);
    let mut claims = jwt.claims.clone();
    claims["exp"] = json!(claims["exp"].as_i64().unwrap() + 3600);
    let extended = format!("{}.{}.{}", parts[0], b64_json(&claims), parts[2]);
    let mut signature = jwt.signature.clone();
    signature[10] ^= 0x01;
    let bad_signature = format!("{}.{}.{}", parts[0], parts[1], b64(&signature));
    let mut header = jwt.header.clone();
    header["kid"] = json!("no-such-key");
    let unknown_kid = format!("{}.{}.{}", b64_json(&header), parts[1], parts[2]);
    let mut header = jwt.header.clone();
    header["typ"] = json!("JWT");
    let wrong_typ = format!("{}.{}.{}", b64_json(&header), parts[1], parts[2]);

    for (what, token) in [
        ("elevated roles", elevated),
        ("extended exp", extended),
        ("flipped signature bit", bad_signature),
        ("unknown kid", unknown_kid),
        ("typ changed", wrong_typ),
    ] {
        let resp = app.me(&token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_invalid_token(resp).await;
    }
    assert_eq!(
        app.me(&login.access_token).await.status(),
        StatusCode::OK,
        "the genuine token"
    );
}

#[tokio::test]
async fn a_token_from_another_server_is_401_invalid_token() {
    let app = spawn_app().await;
    let other = spawn_app().await;
    let foreign = other.signed_in("alice").await;
    app.create_user("alice").await;

    let resp = app.me(&foreign.access_token).await;

    assert_invalid_token(resp).await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_401_invalid_token() {
    let app = spawn_app().await;
    // Same database, hence the same signing keys: only the audience differs.
    let sibling = app
        .start_sibling(&[("LATCHKEY_AUDIENCE", "https://elsewhere.example")])
        .await;
    app.create_user("alice").await;
    let login = crate::kit::login_from(
        app.client
            .post(format!("http://{}/auth/login", sibling.addr()))
            .json(&json!({ "username": "alice", "password": crate::kit::PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        decode_jwt(&login.access_token).claims["aud"],
        "https://elsewhere.example"
    );

    let resp = app.me(&login.access_token).await;

    assert_invalid_token(resp).await;
    sibling.shutdown().await;
}

#[tokio::test]
async fn a_token_from_another_issuer_is_401_invalid_token() {
    let app = spawn_app().await;
    let sibling = app
        .start_sibling(&[
            ("LATCHKEY_ISSUER", "http://impostor.test"),
            ("LATCHKEY_AUDIENCE", ISSUER),
        ])
        .await;
    app.create_user("alice").await;
    let resp = app
        .client
        .post(format!("http://{}/auth/login", sibling.addr()))
        .json(&json!({ "username": "alice", "password": crate::kit::PASSWORD }))
        .send()
        .await
        .unwrap();
    let login = crate::kit::login_from(resp).await;
    assert_eq!(
        decode_jwt(&login.access_token).claims["iss"],
        "http://impostor.test"
    );

    let resp = app.me(&login.access_token).await;

    assert_invalid_token(resp).await;
    sibling.shutdown().await;
}

#[tokio::test]
async fn an_expired_access_token_is_401_invalid_token() {
    let app = spawn_app_with(&[
        ("LATCHKEY_ACCESS_TOKEN_TTL", "1m"),
        ("LATCHKEY_TOKEN_LEEWAY", "1s"),
    ])
    .await;
    let login = app.signed_in("alice").await;
    // Used once while valid, so a cache of verified tokens is exercised too.
    assert_eq!(app.me(&login.access_token).await.status(), StatusCode::OK);
    let exp = decode_jwt(&login.access_token).claims["exp"]
        .as_i64()
        .unwrap();

    // The server's clock passes `exp` and the leeway (no waiting).
    let wait = exp + 3 - crate::kit::now_secs();
    app.clock
        .advance(Duration::from_secs(u64::try_from(wait.max(0)).unwrap()));

    assert_invalid_token(app.me(&login.access_token).await).await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_client_errors_not_500() {
    let app = spawn_app().await;

    let resp = app.client.get(app.url("/auth/nope")).send().await.unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let resp = app.client.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = app
        .client
        .delete(app.url("/auth/sessions/%ff%fe"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "got {}", resp.status());
}
