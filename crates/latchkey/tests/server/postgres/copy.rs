//! `latchkey store copy` to and from PostgreSQL, verified by counts, with live logins
//! surviving every move: SQLite → PostgreSQL → SQLite, and PostgreSQL ↔ MongoDB.

use reqwest::StatusCode;

use super::helpers::{assert_copied, fresh_database, spawn_app, store_copy};
#[cfg(feature = "mongodb")]
use crate::kit::Secantus;
use crate::kit::{Login, PASSWORD, TestApp, login_from};

const ONE_LOGIN: &str = "copied 1 users, 0 identities, 1 refresh families";

/// Refreshes `login` on `app` (so it was copied alive) and checks the old access token still
/// verifies (the signing key was copied); returns the new login.
async fn still_logged_in(app: &TestApp, login: &Login) -> Login {
    let refreshed = login_from(app.refresh_with_cookie(&login.refresh_token).await).await;
    assert_eq!(
        app.me(&refreshed.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.me(&login.access_token).await.status(),
        StatusCode::OK,
        "same signing key"
    );
    assert_eq!(app.login("mary", PASSWORD).await.status(), StatusCode::OK);
    refreshed
}

#[tokio::test]
async fn a_sqlite_deployment_moves_to_postgres_and_back_with_its_logins() {
    let Some(postgres) = fresh_database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let old = spawn_app(&sqlite, &[]).await;
    let login = old.signed_in("mary").await;
    old.shutdown().await;

    assert_copied(&store_copy(&sqlite, &postgres), ONE_LOGIN);
    let refused = store_copy(&sqlite, &postgres);
    assert!(!refused.status.success(), "the target is not empty");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let on_postgres = spawn_app(&postgres, &[]).await;
    let login = still_logged_in(&on_postgres, &login).await;
    on_postgres.shutdown().await;

    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    // Two families now: the copied one and the login still_logged_in made.
    assert_copied(
        &store_copy(&postgres, &back),
        "copied 1 users, 0 identities, 2 refresh families",
    );
    let on_sqlite = spawn_app(&back, &[]).await;
    still_logged_in(&on_sqlite, &login).await;
}

#[cfg(feature = "mongodb")]
#[tokio::test]
async fn a_postgres_deployment_moves_to_mongodb_and_back_with_its_logins() {
    let Some(postgres) = fresh_database() else {
        return;
    };
    let Some(mongo) = Secantus::start() else {
        return;
    };
    let old = spawn_app(&postgres, &[]).await;
    let login = old.signed_in("mary").await;
    old.shutdown().await;

    let mongo_url = mongo.url("latchkey");
    assert_copied(&store_copy(&postgres, &mongo_url), ONE_LOGIN);
    let on_mongo = spawn_app(&mongo_url, &[]).await;
    let login = still_logged_in(&on_mongo, &login).await;
    on_mongo.shutdown().await;

    let Some(again) = fresh_database() else {
        return;
    };
    assert_copied(
        &store_copy(&mongo_url, &again),
        "copied 1 users, 0 identities, 2 refresh families",
    );
    let on_postgres = spawn_app(&again, &[]).await;
    still_logged_in(&on_postgres, &login).await;
}
