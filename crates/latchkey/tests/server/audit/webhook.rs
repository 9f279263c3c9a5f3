//! The webhook: a receiver that is down first and then up gets every record, at least once,
//! duplicates only with the same id, each signed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use latchkey::store::{AuditQuery, Store};

use crate::kit::{PASSWORD, TestApp, hmac_sha256};

const SECRET: &str = "a-webhook-secret-of-some-length";

type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

async fn all_records(store: &Arc<dyn Store>) -> Vec<latchkey::store::AuditRecord> {
    let query = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    store.list_audit(&query).await.unwrap()
}

async fn receive(received: Received, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers["latchkey-signature"].to_str().unwrap().to_owned();
    let (t, v1) = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .expect("t=…,v1=…");
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(&body);
    assert_eq!(
        hex::encode(hmac_sha256(SECRET.as_bytes(), &message)),
        v1,
        "the signature"
    );
    let id = headers["latchkey-event-id"].to_str().unwrap().to_owned();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(value["id"], id.as_str());
    received.lock().unwrap().push((id, value));
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn a_receiver_that_is_down_then_up_gets_every_record() {
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = TestApp::builder()
        .vars(&[
            ("LATCHKEY_AUDIT_WEBHOOK_URL", &url),
            ("LATCHKEY_AUDIT_WEBHOOK_SECRET", SECRET),
        ])
        .start()
        .await;
    app.register_user("hooked").await;
    let _ = app.login("hooked", "wrong-password-for-sure").await;
    let _ = app.login("hooked", PASSWORD).await;
    let store = app.store();

    // Every record has been tried and failed (the receiver is down).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let records = all_records(&store).await;
        assert_eq!(records.len(), 3);
        if records
            .iter()
            .all(|r| r.webhook_attempts >= 1 && r.webhook_due.is_some())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt: {records:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The receiver comes up; the retries come due.
    let received: Received = Arc::default();
    let router = axum::Router::new().route(
        "/hook",
        post({
            let received = received.clone();
            move |headers, body| receive(received.clone(), headers, body)
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let more = app.login("hooked", PASSWORD).await;
    assert_eq!(more.status(), reqwest::StatusCode::OK);
    app.clock.advance(Duration::from_secs(2 * 3600));

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let records = all_records(&store).await;
        if records.iter().all(|r| r.webhook_due.is_none()) {
            let got = received.lock().unwrap().clone();
            let mut by_id: HashMap<String, serde_json::Value> = HashMap::new();
            for (id, body) in got {
                if let Some(seen) = by_id.insert(id.clone(), body.clone()) {
                    assert_eq!(seen, body, "a duplicate differs from the first delivery");
                }
            }
            assert_eq!(by_id.len(), 4);
            for r in &records {
                let body = &by_id[&r.id.to_string()];
                assert_eq!(body["event"], r.event.as_str());
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "undelivered: {records:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
