//! Enrolment: `POST /auth/mfa/totp`, `POST /auth/mfa/totp/confirm`.

use std::time::Duration;

use latchkey::store::KIND_TOTP;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

use super::helpers::{base32_decode, totp};
use crate::kit::{PASSWORD, TestApp, assert_no_store, assert_problem, json_body};

#[tokio::test]
async fn enrolment_shows_the_secret_once_and_confirmation_turns_totp_on_with_ten_codes() {
    let app = TestApp::builder().start().await;
    let (token, user_id) = app.password_user("ada").await;
    let me = json_body(app.me(&token).await, StatusCode::OK).await;
    assert_eq!(me["user"]["mfa_enabled"], false);

    let started = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp",
            Some(&token),
            None,
        )
        .await;
    assert_no_store(started.headers(), "an enrolment");
    let started = json_body(started, StatusCode::OK).await;
    let secret = started["secret"].as_str().unwrap();
    assert_eq!(
        base32_decode(secret).len(),
        20,
        "160 bits (RFC 4226 section 4)"
    );
    let uri = url::Url::parse(started["otpauth_uri"].as_str().unwrap()).unwrap();
    assert_eq!(uri.scheme(), "otpauth");
    assert_eq!(uri.host_str(), Some("totp"));
    let query: std::collections::HashMap<_, _> = uri.query_pairs().into_owned().collect();
    assert_eq!(query["secret"], secret);
    assert_eq!(query["issuer"], "Latchkey");
    assert_eq!(query.get("digits").map_or("6", String::as_str), "6");
    assert_eq!(query.get("period").map_or("30", String::as_str), "30");
    assert_eq!(
        query.get("algorithm").map_or("SHA1", String::as_str),
        "SHA1"
    );
    assert!(uri.path().contains("ada"));
    assert!(started["qr_svg"].as_str().unwrap().contains("<svg"));

    // Pending: a login still needs the password only.
    let pending = json_body(app.login("ada", PASSWORD).await, StatusCode::OK).await;
    assert!(pending["access_token"].is_string());

    let confirmed = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&token),
            Some(json!({ "code": totp(secret, app.unix()) })),
        )
        .await;
    assert_no_store(confirmed.headers(), "recovery codes");
    let confirmed = json_body(confirmed, StatusCode::OK).await;
    let codes = confirmed["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);

    let me = json_body(app.me(&token).await, StatusCode::OK).await;
    assert_eq!(me["user"]["mfa_enabled"], true);
    let status = json_body(app.get_authed("/auth/mfa", &token).await, StatusCode::OK).await;
    assert_eq!(status["enabled"], true);
    assert_eq!(status["recovery_codes_left"], 10);
    assert_eq!(status["factors"][0]["type"], "totp");
    assert!(status["factors"][0]["confirmed_at"].is_string());
    assert!(
        !status.to_string().contains(secret),
        "never the secret again"
    );

    // At rest: sealed, not the secret; recovery codes only as hashes.
    let user = Uuid::parse_str(&user_id).unwrap();
    let factors = app.store().list_factors(user, None).await.unwrap();
    assert_eq!(factors.len(), 11);
    let raw = base32_decode(secret);
    for f in &factors {
        let stored = f.secret.expose_secret();
        assert!(!stored.windows(raw.len()).any(|w| w == raw.as_slice()));
        for code in codes {
            let code = code.as_str().unwrap();
            assert!(!stored.windows(code.len()).any(|w| w == code.as_bytes()));
        }
    }
    assert_eq!(factors.iter().filter(|f| f.kind == KIND_TOTP).count(), 1);

    // The login now waits for the second factor.
    app.next_step();
    let body = json_body(app.login("ada", PASSWORD).await, StatusCode::OK).await;
    assert_eq!(body["mfa_required"], true);
}

#[tokio::test]
async fn a_wrong_confirmation_code_is_refused_and_changes_nothing() {
    let app = TestApp::builder().start().await;
    let (token, _) = app.password_user("bo").await;
    let started = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp",
            Some(&token),
            None,
        )
        .await;
    let secret = json_body(started, StatusCode::OK).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = format!(
        "{:06}",
        (app.code(&secret).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    for code in [wrong.as_str(), "12345", "abcdef", "1234567", ""] {
        let resp = app
            .send(
                &app.client,
                Method::POST,
                "/auth/mfa/totp/confirm",
                Some(&token),
                Some(json!({ "code": code })),
            )
            .await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    }
    let body = json_body(app.login("bo", PASSWORD).await, StatusCode::OK).await;
    assert!(body["access_token"].is_string(), "still password only");
    let status = json_body(app.get_authed("/auth/mfa", &token).await, StatusCode::OK).await;
    assert_eq!(status["enabled"], false);
}

#[tokio::test]
async fn confirming_without_an_enrolment_or_enrolling_twice_is_a_conflict() {
    let app = TestApp::builder().start().await;
    let (token, _) = app.password_user("cy").await;
    let resp = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&token),
            Some(json!({ "code": "123456" })),
        )
        .await;
    assert_problem(resp, StatusCode::CONFLICT, "mfa_not_pending").await;

    let enrolled = app.enrolled("dee").await;
    let body = json_body(app.login("dee", PASSWORD).await, StatusCode::OK).await;
    let mfa_token = body["mfa_token"].as_str().unwrap();
    let done = app
        .login_mfa(json!({ "mfa_token": mfa_token, "totp": app.code(&enrolled.secret) }))
        .await;
    let token = json_body(done, StatusCode::OK).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let again = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp",
            Some(&token),
            None,
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT, "mfa_already_enabled").await;
}

#[tokio::test]
async fn enrolment_needs_a_recent_sign_in_or_the_password() {
    let app = TestApp::builder().start().await;
    let (token, _) = app.password_user("eve").await;
    app.clock.advance(Duration::from_secs(6 * 60)); // past LATCHKEY_REAUTH_MAX_AGE (5 min)
    let refreshed = json_body(app.refresh().await, StatusCode::OK).await;
    let token2 = refreshed["access_token"].as_str().unwrap();
    assert_ne!(token, token2);
    let resp = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp",
            Some(token2),
            None,
        )
        .await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "reauthentication_required").await;
    let resp = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp",
            Some(token2),
            Some(json!({ "password": "not-the-password-at-all" })),
        )
        .await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let resp = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/totp",
            Some(token2),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}
