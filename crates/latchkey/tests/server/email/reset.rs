//! Forgotten passwords: one answer for known and unknown accounts, a mailed link that sets a
//! new password once, within its lifetime, and ends every login of the user.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{SmtpSink, address, app_mailing_to};
use crate::kit::{NEW_PASSWORD, PASSWORD, assert_problem, browser, login_from, plain_client};

#[tokio::test]
async fn forgot_answers_known_and_unknown_accounts_alike_and_mails_only_the_known() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    app.register_with_email("alice").await;

    let mut answers: Vec<(StatusCode, Value, Duration)> = Vec::new();
    for body in [
        json!({ "username": "alice" }),
        json!({ "username": "nobody" }),
        json!({ "email": address("alice") }),
        json!({ "email": "nobody@mail.test" }),
    ] {
        let started = Instant::now();
        let resp = app.forgot(&body).await;
        let elapsed = started.elapsed();
        let status = resp.status();
        answers.push((status, resp.json().await.unwrap(), elapsed));
    }
    for (status, body, _) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED);
        assert_eq!(body, &answers[0].1, "every answer has the same body");
    }
    // The answer goes before any lookup: none waits for the store's account lookup or the
    // enqueueing (a loose bound: a loaded CI machine still answers these well under it).
    for (_, _, elapsed) in &answers {
        assert!(*elapsed < Duration::from_secs(2), "{elapsed:?}");
    }
    let mail = smtp.wait_for(&address("alice"), 2).await;
    assert_eq!(mail.subject, "Reset your password");
    assert!(
        mail.text
            .contains("https://app.example/reset-password#token=")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        smtp.received().len(),
        2,
        "mail went only to the known account"
    );
}

#[tokio::test]
async fn a_reset_sets_the_password_and_ends_every_login_and_session() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    let login = app.signed_in_with_email("alice").await;
    let session = app.session_log_in("alice").await;
    let other_device = browser();
    app.log_in_with(&other_device, "alice", PASSWORD).await;

    app.forgot(&json!({ "username": "alice" })).await;
    let token = smtp.wait_for(&address("alice"), 1).await.token();
    let resp = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    assert_eq!(app.refresh().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh_with(&other_device).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.session_status(&session.cookie).await,
        StatusCode::UNAUTHORIZED
    );
    let resp = app.login_with(&plain_client(), "alice", PASSWORD).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let fresh = login_from(app.login_with(&plain_client(), "alice", NEW_PASSWORD).await).await;
    assert_eq!(fresh.user_id, login.user_id);
}

#[tokio::test]
async fn a_reset_token_works_once() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    app.register_with_email("alice").await;
    app.forgot(&json!({ "email": address("alice") })).await;
    let token = smtp.wait_for(&address("alice"), 1).await.token();
    assert_eq!(
        app.reset_password(&token, NEW_PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );

    let third = "Saffron-Harbor-Minnow-Quartz-58";
    let resp = app.reset_password(&token, third).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
    let user = login_from(app.login_with(&plain_client(), "alice", NEW_PASSWORD).await).await;
    let resp = app.login_with(&plain_client(), "alice", third).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // The audit trail holds the one reset that happened, by the user, and not the refused one.
    let query = latchkey::store::AuditQuery {
        user_id: Some(user.user_id.parse().unwrap()),
        events: vec!["password.reset".to_owned()],
        limit: 10,
        ..Default::default()
    };
    let records = app.store().list_audit(&query).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].actor, format!("user:{}", user.user_id));
}

#[tokio::test]
async fn an_expired_reset_token_or_a_weak_password_changes_nothing() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    let login = app.signed_in_with_email("alice").await;
    app.forgot(&json!({ "username": "alice" })).await;
    let token = smtp.wait_for(&address("alice"), 1).await.token();

    // A password the rules refuse: 400, and the token still works afterwards.
    for weak in ["short", "aaaaaaaaaaaaaaaaaaaa", "passwordpassword"] {
        let resp = app.reset_password(&token, weak).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    assert_eq!(app.me(&login.access_token).await.status(), StatusCode::OK);

    // 30 minutes later the link is dead.
    app.clock.advance(Duration::from_secs(30 * 60 + 1));
    let resp = app.reset_password(&token, NEW_PASSWORD).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
    login_from(app.login_with(&plain_client(), "alice", PASSWORD).await).await;
    // The refresh cookie of the first login still works: nothing was ended.
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn malformed_forgot_and_reset_requests_get_clear_4xx_answers() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    for body in [
        json!({}),
        json!({ "username": "a", "email": "a@b" }),
        json!({ "username": "" }),
        json!({ "username": "x".repeat(400) }),
        json!({ "username": 7 }),
    ] {
        let resp = app.forgot(&body).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    let resp = app.reset_password("not-a-token", NEW_PASSWORD).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
    let resp = app.reset_password(&"A".repeat(43), NEW_PASSWORD).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_email_token").await;
    let resp = app
        .post_json("/auth/password/reset", &json!({ "token": "x" }))
        .await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
}

#[tokio::test]
async fn resets_and_forgotten_password_requests_are_throttled_per_address() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(
        &smtp.url(),
        &[
            ("LATCHKEY_EMAIL_MAX_PER_IP", "3"),
            ("LATCHKEY_EMAIL_MAX_GLOBAL", "100"),
        ],
    )
    .await;
    for _ in 0..3 {
        let resp = app.reset_password(&"A".repeat(43), NEW_PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    }
    let resp = app.reset_password(&"A".repeat(43), NEW_PASSWORD).await;
    let body = assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert!(body["detail"].is_string());
    let resp = app.forgot(&json!({ "username": "nobody" })).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
}
