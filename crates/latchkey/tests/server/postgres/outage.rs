//! PostgreSQL outages on a cluster of the test's own: Latchkey starts without its database,
//! answers 503 `store_unavailable` within a bounded time while it is gone, and recovers by
//! itself when it is back, with every login kept (PostgreSQL's data survives the restart).

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::helpers::{PgCluster, assert_unavailable, eventually, get, spawn_app};
use crate::kit::{PASSWORD, login_from};

/// Longest acceptable answer while the database is down.
const BOUND: Duration = Duration::from_secs(6);

async fn timed<T>(what: &str, request: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let answer = request.await;
    assert!(
        started.elapsed() < BOUND,
        "{what} took {:?}",
        started.elapsed()
    );
    answer
}

#[tokio::test]
async fn an_outage_answers_503_quickly_and_ends_without_a_restart_keeping_the_logins() {
    let Some(db) = PgCluster::start() else { return };
    let app = spawn_app(&db.admin_url, &[]).await;
    let before = app.signed_in("mary").await;

    db.stop();
    assert_unavailable(timed("readyz", get(&app, "/readyz")).await).await;
    assert_unavailable(timed("login", app.login("mary", PASSWORD)).await).await;
    let refresh = timed("refresh", app.refresh_with_cookie(&before.refresh_token)).await;
    assert_unavailable(refresh).await;
    assert_eq!(
        get(&app, "/healthz").await.status(),
        StatusCode::OK,
        "the process lives on"
    );

    db.restart();
    let back = eventually(Duration::from_secs(20), || async {
        get(&app, "/readyz").await.status() == StatusCode::OK
    })
    .await;
    assert!(back, "ready again within 20 s of the restart");
    let after = login_from(app.refresh_with_cookie(&before.refresh_token).await).await;
    assert_eq!(app.me(&after.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.login("mary", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_server_starts_while_the_database_is_down_and_serves_once_it_is_up() {
    let Some(db) = PgCluster::start() else { return };
    db.stop();
    let app = timed("start", spawn_app(&db.admin_url, &[])).await;
    assert_eq!(get(&app, "/healthz").await.status(), StatusCode::OK);
    assert_unavailable(get(&app, "/readyz").await).await;
    assert_unavailable(app.register("mary", PASSWORD).await).await;
    assert_unavailable(app.login("mary", PASSWORD).await).await;
    assert_unavailable(app.me("not.a.token").await).await;
    assert_unavailable(get(&app, "/.well-known/jwks.json").await).await;

    db.restart();
    let ready = eventually(Duration::from_secs(20), || async {
        get(&app, "/readyz").await.status() == StatusCode::OK
    })
    .await;
    assert!(ready, "ready within 20 s of the database starting");
    let login = app.signed_in("mary").await;
    assert_eq!(app.me(&login.access_token).await.status(), StatusCode::OK);
}
