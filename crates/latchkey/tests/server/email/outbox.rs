//! The outbox: a message waits in the store while the SMTP server is down, and across a
//! restart of Latchkey, and goes out once the server is up and its retry is due.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::{SmtpSink, address, app_mailing_to, free_port, smtp_url};
use crate::kit::NEW_PASSWORD;

/// Waits until the outbox holds `count` messages (and a first attempt had time to fail).
async fn outbox_holds(app: &crate::kit::TestApp, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.store().count_mail().await.unwrap() != count {
        assert!(Instant::now() < deadline, "the outbox never held {count}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn mail_waits_for_an_smtp_server_that_is_down_at_first() {
    let port = free_port();
    let app = app_mailing_to(&smtp_url(port), &[]).await;
    let login = app.signed_in_with_email("alice").await;
    let resp = app.request_verification(&login.access_token).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    outbox_holds(&app, 1).await;
    // The first attempt fails on the closed port (the worker polls every 100 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.store().count_mail().await.unwrap(), 1);

    let Some(smtp) = SmtpSink::start_on(port) else {
        return;
    };
    // The retry is due 30 s after the failure, on the server's clock.
    app.clock.advance(Duration::from_secs(31));
    let mail = smtp.wait_for(&address("alice"), 1).await;
    let resp = app.verify_email(&mail.token()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    outbox_holds(&app, 0).await;
}

#[tokio::test]
async fn mail_enqueued_before_a_restart_is_sent_after_it() {
    let port = free_port();
    let mut app = app_mailing_to(&smtp_url(port), &[]).await;
    app.register_with_email("alice").await;
    let resp = app.forgot(&json!({ "username": "alice" })).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    outbox_holds(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.restart().await;
    let Some(smtp) = SmtpSink::start_on(port) else {
        return;
    };
    // Whatever its lease or retry time, the message is due within the lease's 10 minutes.
    app.clock.advance(Duration::from_secs(11 * 60));
    let token = smtp.wait_for(&address("alice"), 1).await.token();
    // The reset link of 30 minutes still works 11 minutes on.
    let resp = app.reset_password(&token, NEW_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_message_whose_link_expired_is_dropped_unsent() {
    let port = free_port();
    let app = app_mailing_to(&smtp_url(port), &[]).await;
    app.register_with_email("alice").await;
    app.forgot(&json!({ "username": "alice" })).await;
    outbox_holds(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let Some(smtp) = SmtpSink::start_on(port) else {
        return;
    };
    app.clock.advance(Duration::from_secs(31 * 60));
    outbox_holds(&app, 0).await;
    assert!(smtp.received().is_empty(), "a dead link was mailed");
}

#[tokio::test]
async fn two_instances_on_one_store_send_a_message_once() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    let app = app_mailing_to(&smtp.url(), &[]).await;
    let sibling = app.start_sibling(&[]).await;
    app.register_with_email("alice").await;
    for _ in 0..3 {
        let resp = app.forgot(&json!({ "username": "alice" })).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    smtp.wait_for(&address("alice"), 3).await;
    outbox_holds(&app, 0).await;
    // Both workers kept polling meanwhile (every 100 ms): still three, no duplicates.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received_by(&address("alice")).len(), 3);
    sibling.shutdown().await;
}

#[tokio::test]
async fn smtp_without_starttls_is_refused_unless_the_url_allows_plain_text() {
    let Some(smtp) = SmtpSink::start() else {
        return;
    };
    // `smtp://` requires STARTTLS by default, and this server offers none.
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let app = app_mailing_to(&url, &[]).await;
    let login = app.signed_in_with_email("alice").await;
    app.request_verification(&login.access_token).await;
    outbox_holds(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(smtp.received().is_empty(), "mail went out in plain text");
    // Kept for a retry (a configuration to fix, not a message to lose).
    assert_eq!(app.store().count_mail().await.unwrap(), 1);
}
