//! Database outages: Latchkey starts without its database, answers 503 `store_unavailable`
//! within a bounded time while it is gone, and recovers by itself when it is back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::helpers::{Mongo, assert_unavailable, eventually, spawn_app};
use crate::kit::{PASSWORD, login_from};

/// Longest acceptable answer while the database is down.
const BOUND: Duration = Duration::from_secs(6);

#[tokio::test]
async fn an_outage_answers_503_quickly_and_ends_without_a_restart() {
    let Some(mut db) = Mongo::start() else { return };
    let app = spawn_app(&db.url, &[]).await;
    let before = app.signed_in("mary").await;

    db.server.stop();
    let started = Instant::now();
    let ready = app.get("/readyz").await;
    assert!(
        started.elapsed() < BOUND,
        "readyz took {:?}",
        started.elapsed()
    );
    assert_unavailable(ready).await;
    let started = Instant::now();
    let login = app.login("mary", PASSWORD).await;
    assert!(
        started.elapsed() < BOUND,
        "login took {:?}",
        started.elapsed()
    );
    assert_unavailable(login).await;
    assert_unavailable(app.refresh_with_cookie(&before.refresh_token).await).await;
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "the process lives on"
    );

    db.server.restart(); // in-memory storage: the data is gone, the keys live on in Latchkey
    let back = eventually(Duration::from_secs(20), || async {
        app.get("/readyz").await.status() == StatusCode::OK
    })
    .await;
    assert!(back, "ready again within 20 s of the restart");
    let after = app.signed_in("mary").await;
    assert_eq!(app.me(&after.access_token).await.status(), StatusCode::OK);
    login_from(app.refresh_with_cookie(&after.refresh_token).await).await;
}

#[tokio::test]
async fn the_server_starts_while_the_database_is_down_and_serves_once_it_is_up() {
    let Some(mut db) = Mongo::start() else { return };
    db.server.stop();
    let started = Instant::now();
    let app = spawn_app(&db.url, &[]).await;
    assert!(
        started.elapsed() < BOUND,
        "start took {:?}",
        started.elapsed()
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    assert_unavailable(app.get("/readyz").await).await;
    assert_unavailable(app.register("mary", PASSWORD).await).await;
    assert_unavailable(app.login("mary", PASSWORD).await).await;
    assert_unavailable(app.me("not.a.token").await).await;
    assert_unavailable(app.get("/.well-known/jwks.json").await).await;

    db.server.restart();
    let ready = eventually(Duration::from_secs(20), || async {
        app.get("/readyz").await.status() == StatusCode::OK
    })
    .await;
    assert!(ready, "ready within 20 s of the database starting");
    let tokens = app.signed_in("mary").await;
    assert_eq!(app.me(&tokens.access_token).await.status(), StatusCode::OK);
}
