//! Several Latchkey instances on one PostgreSQL database behave as one server.

use std::time::Duration;

use reqwest::StatusCode;

use super::helpers::{eventually, fresh_database, get, refresh_owned, spawn_app};
use crate::kit::{PASSWORD, TestApp, assert_problem, json_body, login_from};

/// The kids `app` publishes, sorted.
async fn kids(app: &TestApp) -> Vec<String> {
    let jwks = json_body(get(app, "/.well-known/jwks.json").await, StatusCode::OK).await;
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    kids.sort();
    kids
}

#[tokio::test]
async fn instances_started_together_on_an_empty_database_all_start_and_converge() {
    let Some(url) = fresh_database() else { return };
    // The migrations run under an advisory lock: three first starts at once all succeed.
    let fast = [("LATCHKEY_KEY_RELOAD_INTERVAL", "1s")];
    let (a, b, c) = tokio::join!(
        spawn_app(&url, &fast),
        spawn_app(&url, &fast),
        spawn_app(&url, &fast)
    );
    // Racing first starts may each create a first key (on every store); within a reload
    // interval every instance publishes all of them.
    let converged = eventually(Duration::from_secs(10), || async {
        let (ka, kb, kc) = tokio::join!(kids(&a), kids(&b), kids(&c));
        ka == kb && kb == kc
    })
    .await;
    assert!(converged, "the instances publish one set of keys");
    let login = a.signed_in("mary").await;
    for app in [&b, &c] {
        assert_eq!(app.me(&login.access_token).await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_refresh_token_from_one_instance_is_rotated_and_guarded_by_the_other() {
    let Some(url) = fresh_database() else { return };
    let a = spawn_app(&url, &[]).await;
    let b = spawn_app(&url, &[]).await;
    let t0 = a.signed_in("mary").await;
    assert_eq!(b.me(&t0.access_token).await.status(), StatusCode::OK);
    let t1 = login_from(b.refresh_with_cookie(&t0.refresh_token).await).await;
    let t2 = login_from(a.refresh_with_cookie(&t1.refresh_token).await).await;
    let again = login_from(b.refresh_with_cookie(&t1.refresh_token).await).await;
    assert_eq!(
        again.refresh_token, t2.refresh_token,
        "B re-issues what A rotated to"
    );
    let reused = b.refresh_with_cookie(&t0.refresh_token).await;
    assert_problem(reused, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let revoked = a.refresh_with_cookie(&t2.refresh_token).await;
    assert_problem(revoked, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    let taken = b.register("MARY", PASSWORD).await;
    assert_problem(taken, StatusCode::CONFLICT, "username_taken").await;
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_on_two_instances_rotate_it_once() {
    let Some(url) = fresh_database() else { return };
    let a = spawn_app(&url, &[]).await;
    let b = spawn_app(&url, &[]).await;
    let t0 = a.signed_in("mary").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        tasks.spawn(refresh_owned(app, &t0.refresh_token));
    }
    let mut handed_out = Vec::new();
    while let Some(resp) = tasks.join_next().await {
        handed_out.push(login_from(resp.expect("a task")).await.refresh_token);
    }
    handed_out.sort();
    handed_out.dedup();
    assert_eq!(handed_out.len(), 1, "one successor for all: {handed_out:?}");
}

#[tokio::test]
async fn failed_logins_are_counted_across_instances() {
    let Some(url) = fresh_database() else { return };
    let limit = [("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")];
    let a = spawn_app(&url, &limit).await;
    let b = spawn_app(&url, &limit).await;
    assert_eq!(
        a.register("mary", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    for app in [&a, &b, &a] {
        let wrong = app.login("mary", "a wrong password, long enough").await;
        assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let blocked = b.login("mary", PASSWORD).await;
    assert!(blocked.headers().contains_key("retry-after"));
    assert_problem(blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}
