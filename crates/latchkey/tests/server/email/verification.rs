//! Email verification: the mailed link verifies once, expires, and can be required for login;
//! an admin can mark an address verified.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{SmtpSink, address, app_mailing_to};
use crate::kit::{PASSWORD, assert_problem, json_body, login_from};

#[tokio::test]
async fn the_mailed_link_verifies_the_address() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    let login = app.signed_in_with_email("alice").await;
    assert!(!app.email_verified(&login.access_token).await);

    let resp = app.request_verification(&login.access_token).await;
    let body = json_body(resp, StatusCode::ACCEPTED).await;
    assert_eq!(body["status"], "accepted");
    let mail = smtp.wait_for(&address("alice"), 1).await;
    assert_eq!(mail.subject, "Confirm your email address");
    assert!(
        mail.text
            .contains("https://app.example/verify-email#token="),
        "the link points at LATCHKEY_PUBLIC_URL: {}",
        mail.text
    );

    let resp = app.verify_email(&mail.token()).await;
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["user"]["email_verified"], true);
    assert!(app.email_verified(&login.access_token).await);
}

#[tokio::test]
async fn a_used_token_is_refused_and_changes_nothing() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    let login = app.signed_in_with_email("alice").await;
    app.request_verification(&login.access_token).await;
    let first = smtp.wait_for(&address("alice"), 1).await.token();
    // Only the newest link works: a second request replaces the first.
    app.request_verification(&login.access_token).await;
    let second = smtp.wait_for(&address("alice"), 2).await.token();
    assert_ne!(first, second);
    let resp = app.verify_email(&first).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
    assert!(!app.email_verified(&login.access_token).await);

    assert_eq!(app.verify_email(&second).await.status(), StatusCode::OK);
    let resp = app.verify_email(&second).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
}

#[tokio::test]
async fn an_expired_token_is_refused_and_changes_nothing() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[("LATCHKEY_EMAIL_VERIFY_TTL", "1h")]).await;
    let login = app.signed_in_with_email("alice").await;
    app.request_verification(&login.access_token).await;
    let token = smtp.wait_for(&address("alice"), 1).await.token();

    app.clock.advance(Duration::from_secs(3_601));

    let resp = app.verify_email(&token).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
    let fresh = app.log_in_with(&app.client, "alice", PASSWORD).await;
    assert!(!app.email_verified(&fresh.access_token).await);
}

#[tokio::test]
async fn malformed_verification_requests_get_clear_4xx_answers() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    for token in [
        "",
        "short",
        &"A".repeat(43),
        &"é".repeat(43),
        &"x".repeat(5_000),
    ] {
        let resp = app.verify_email(token).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
    }
    let resp = app
        .post_json("/auth/email/verify", &json!({ "tok": "x" }))
        .await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    // Without a login there is nothing to verify.
    let resp = app
        .client
        .post(app.url("/auth/email/verify/request"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // An account without an address.
    let login = app.signed_in("bob").await;
    let resp = app.request_verification(&login.access_token).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
}

#[tokio::test]
async fn without_smtp_the_email_routes_say_so() {
    let app = crate::kit::spawn_app().await;
    let login = app.signed_in("alice").await;
    let resp = app.request_verification(&login.access_token).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "email_disabled").await;
    let resp = app.forgot(&json!({ "username": "alice" })).await;
    assert_problem(resp, StatusCode::NOT_FOUND, "email_disabled").await;
}

#[tokio::test]
async fn login_can_require_a_verified_address() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[("LATCHKEY_REQUIRE_VERIFIED_EMAIL", "true")]).await;
    app.register_with_email("alice").await;
    let resp = app.login("alice", PASSWORD).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "email_not_verified").await;
    // A wrong password still says only that.
    let resp = app.login("alice", "Wrong-Password-Entirely-42").await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let resp = app
        .session_login_json(&crate::kit::plain_client(), "alice", PASSWORD)
        .await;
    assert_problem(resp, StatusCode::FORBIDDEN, "email_not_verified").await;

    // The operator's command line marks it verified (the same service call as the CLI).
    let auth = app.auth_service().await;
    let profile = auth.mark_email_verified("alice").await.unwrap();
    assert!(profile.email_verified);
    login_from(app.login("alice", PASSWORD).await).await;
}

#[tokio::test]
async fn an_admin_marks_an_address_verified_or_not() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    let alice = app.register_with_email("alice").await;
    let admin = app.signed_in("root").await;
    let root_id = uuid::Uuid::parse_str(&admin.user_id).unwrap();
    app.store()
        .set_roles(root_id, &["admin".to_owned()])
        .await
        .unwrap();
    let admin = app.log_in_with(&app.client, "root", PASSWORD).await;
    let path = format!(
        "/admin/users/{}/verify-email",
        alice["id"].as_str().unwrap()
    );

    let resp = app
        .client
        .post(app.url(&path))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["user"]["email_verified"], true);
    let resp = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body(resp, StatusCode::OK).await["user"]["email_verified"],
        false
    );

    // Not an admin: refused; no address: a clear 400; unknown user: 404.
    let alice_login = app
        .log_in_with(&crate::kit::browser(), "alice", PASSWORD)
        .await;
    let resp = app
        .client
        .post(app.url(&path))
        .bearer_auth(&alice_login.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = app
        .client
        .post(app.url(&format!("/admin/users/{}/verify-email", admin.user_id)))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    let resp = app
        .client
        .post(app.url(&format!(
            "/admin/users/{}/verify-email",
            uuid::Uuid::now_v7()
        )))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_cookie_session_asks_for_verification_with_its_csrf_token() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    app.register_with_email("alice").await;
    let session = app.session_log_in("alice").await;
    let path = "/auth/email/verify/request";
    let resp = app
        .with_session(reqwest::Method::POST, path, &session.cookie)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let resp = app
        .with_session(reqwest::Method::POST, path, &session.cookie)
        .header("x-csrf-token", &session.csrf_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let mail = smtp.wait_for(&address("alice"), 1).await;
    assert_eq!(
        app.verify_email(&mail.token()).await.status(),
        StatusCode::OK
    );
}
