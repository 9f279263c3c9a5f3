//! The key flows on a MongoDB-backed server: register, login, refresh, reuse, logout.

use reqwest::StatusCode;
use tokio::task::JoinSet;

use super::helpers::{Mongo, spawn_app};
use crate::kit::{PASSWORD, assert_problem, login_from};

#[tokio::test]
async fn register_login_refresh_and_logout_work_on_mongodb() {
    let Some(db) = Mongo::start() else { return };
    let app = spawn_app(&db.url, &[]).await;
    let first = app.signed_in("Mary").await;
    let taken = app.register("MARY", PASSWORD).await;
    assert_problem(taken, StatusCode::CONFLICT, "username_taken").await;
    assert_eq!(app.me(&first.access_token).await.status(), StatusCode::OK);

    let second = login_from(app.refresh_with_cookie(&first.refresh_token).await).await;
    assert_ne!(second.refresh_token, first.refresh_token, "rotated");
    let again = login_from(app.refresh_with_cookie(&first.refresh_token).await).await;
    assert_eq!(
        again.refresh_token, second.refresh_token,
        "the predecessor gets the current one"
    );

    assert_eq!(
        app.logout_with_cookie(&second.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    let after = app.refresh_with_cookie(&second.refresh_token).await;
    assert_problem(after, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    let wrong = app.login("mary", "not the password at all").await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.login("mary", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_login_on_mongodb() {
    let Some(db) = Mongo::start() else { return };
    let app = spawn_app(&db.url, &[]).await;
    let t0 = app.signed_in("mary").await;
    let t1 = login_from(app.refresh_with_cookie(&t0.refresh_token).await).await;
    let t2 = login_from(app.refresh_with_cookie(&t1.refresh_token).await).await;
    let reused = app.refresh_with_cookie(&t0.refresh_token).await;
    assert_problem(reused, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let revoked = app.refresh_with_cookie(&t2.refresh_token).await;
    assert_problem(revoked, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_all_get_the_same_successor() {
    let Some(db) = Mongo::start() else { return };
    let app = spawn_app(&db.url, &[]).await;
    let t0 = app.signed_in("mary").await;
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        tasks.spawn(app.refresh_owned(&t0.refresh_token));
    }
    let mut successors = Vec::new();
    while let Some(resp) = tasks.join_next().await {
        successors.push(login_from(resp.unwrap()).await.refresh_token);
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "one rotation, the others re-issued it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_name_create_one_user() {
    let Some(db) = Mongo::start() else { return };
    let app = spawn_app(&db.url, &[]).await;
    let mut tasks = JoinSet::new();
    for _ in 0..6 {
        tasks.spawn(app.register_owned("race"));
    }
    let mut statuses = Vec::new();
    while let Some(resp) = tasks.join_next().await {
        statuses.push(resp.unwrap().status());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let taken = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, taken), (1, 5), "{statuses:?}");
}
