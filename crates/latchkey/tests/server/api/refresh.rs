//! POST /auth/refresh: rotation, reuse detection, the reuse interval and concurrency.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Barrier;

use crate::kit::{
    COOKIE, SetCookie, TestApp, assert_cookie_cleared, assert_no_store, assert_problem, decode_jwt,
    json_body, login_from, plain_client, refresh_cookie, spawn_app, spawn_app_with,
};

/// One refresh answer: status, the refresh cookie it set and its body.
struct Answer {
    status: StatusCode,
    cookie: Option<SetCookie>,
    body: Value,
}

/// Sends `n` refreshes with `token` at once.
async fn refresh_concurrently(app: &TestApp, token: &str, n: usize) -> Vec<Answer> {
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (barrier, url, token) = (barrier.clone(), app.url("/auth/refresh"), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let client = plain_client();
            barrier.wait().await;
            let resp = client
                .post(url)
                .header("cookie", format!("{COOKIE}={token}"))
                .send()
                .await
                .unwrap();
            let (status, cookie) = (resp.status(), refresh_cookie(&resp));
            let body = resp.json().await.unwrap_or(Value::Null);
            Answer {
                status,
                cookie,
                body,
            }
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Refreshes with an explicit token and returns the successor; panics unless it is 200.
async fn rotate(app: &TestApp, token: &str) -> String {
    login_from(app.refresh_with_cookie(token).await)
        .await
        .refresh_token
}

#[tokio::test]
async fn refreshing_rotates_the_cookie_and_returns_a_new_access_token() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let resp = app.refresh().await;

    assert_no_store(resp.headers(), "refresh");
    let cookie = refresh_cookie(&resp).expect("a rotated cookie");
    assert_ne!(cookie.value, login.refresh_token);
    assert!(
        cookie.has("HttpOnly") && cookie.get("Path") == Some("/auth"),
        "{cookie:?}"
    );
    assert!(cookie.max_age().unwrap() > 86_000, "{cookie:?}");
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["user"]["id"], login.user_id.as_str());
    let token = body["access_token"].as_str().unwrap();
    assert_ne!(token, login.access_token);
    assert_eq!(app.me(token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_refreshed_access_token_stays_in_the_same_session_family() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let refreshed = login_from(app.refresh().await).await;

    let (before, after) = (
        decode_jwt(&login.access_token),
        decode_jwt(&refreshed.access_token),
    );
    assert_eq!(before.claims["sid"], after.claims["sid"]);
    assert_eq!(before.claims["sub"], after.claims["sub"]);
    assert_ne!(before.claims["jti"], after.claims["jti"]);
}

#[tokio::test]
async fn a_chain_of_refreshes_keeps_working() {
    let app = spawn_app().await;
    let mut token = app.signed_in("alice").await.refresh_token;

    for _ in 0..5 {
        let next = rotate(&app, &token).await;
        assert_ne!(next, token);
        token = next;
    }
}

#[tokio::test]
async fn refresh_without_a_cookie_is_401_invalid_refresh_token() {
    let app = spawn_app().await;

    let resp = plain_client()
        .post(app.url("/auth/refresh"))
        .send()
        .await
        .unwrap();

    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
}

#[tokio::test]
async fn refresh_with_an_unknown_token_is_401_and_clears_the_cookie() {
    let app = spawn_app().await;
    app.signed_in("alice").await;

    for bogus in [
        "bogus",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "%00%ff",
    ] {
        let resp = app.refresh_with_cookie(bogus).await;
        assert_cookie_cleared(&resp);
        assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    }
}

#[tokio::test]
async fn refresh_with_a_rotated_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.signed_in("alice").await.refresh_token;
    let second = rotate(&app, &first).await;
    let current = rotate(&app, &second).await;

    // `first` is two generations old: never a grace case.
    let resp = app.refresh_with_cookie(&first).await;

    assert_cookie_cleared(&resp);
    assert_problem(resp, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let resp = app.refresh_with_cookie(&current).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the current token survived reuse"
    );
    assert_cookie_cleared(&resp);
}

#[tokio::test]
async fn reuse_revokes_only_the_family_it_happened_in() {
    let app = spawn_app().await;
    let first = app.signed_in("alice").await.refresh_token;
    let other = app
        .log_in_with(&crate::kit::browser(), "alice", crate::kit::PASSWORD)
        .await;
    let second = rotate(&app, &first).await;
    rotate(&app, &second).await;

    let reuse = app.refresh_with_cookie(&first).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);

    let resp = app.refresh_with_cookie(&other.refresh_token).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "another login of the user was revoked"
    );
}

#[tokio::test]
async fn the_predecessor_within_the_reuse_interval_gets_the_same_successor() {
    let app = spawn_app().await;
    let first = app.signed_in("alice").await.refresh_token;
    let second = rotate(&app, &first).await;

    let resp = app.refresh_with_cookie(&first).await;

    let again = login_from(resp).await;
    assert_eq!(
        again.refresh_token, second,
        "a new branch instead of the same successor"
    );
    assert_eq!(app.me(&again.access_token).await.status(), StatusCode::OK);
    // The family is intact: the successor still rotates normally.
    let third = rotate(&app, &second).await;
    assert_ne!(third, second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_all_get_the_same_successor() {
    let app = spawn_app().await;
    let first = app.signed_in("alice").await.refresh_token;

    let answers = refresh_concurrently(&app, &first, 8).await;

    for a in &answers {
        assert_eq!(
            a.status,
            StatusCode::OK,
            "a concurrent refresh failed: {}",
            a.body
        );
    }
    let successors: Vec<String> = answers
        .iter()
        .map(|a| a.cookie.clone().unwrap().value)
        .collect();
    assert!(
        successors.iter().all(|s| *s == successors[0]),
        "the family forked: {successors:?}"
    );
    assert_ne!(successors[0], first);
    let next = rotate(&app, &successors[0]).await;
    assert_ne!(next, successors[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_never_fork_the_family_across_generations() {
    let app = spawn_app().await;
    let first = app.signed_in("alice").await.refresh_token;
    let second = rotate(&app, &first).await;

    let answers = refresh_concurrently(&app, &second, 8).await;

    let third = answers[0].cookie.clone().expect("a successor").value;
    for a in &answers {
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        assert_eq!(a.cookie.as_ref().unwrap().value, third);
    }
    // `first` is now two generations behind.
    let resp = app.refresh_with_cookie(&first).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
}

#[tokio::test]
async fn the_predecessor_after_the_reuse_interval_is_reuse_and_revokes_the_family() {
    let app = spawn_app_with(&[("LATCHKEY_REFRESH_REUSE_INTERVAL", "1s")]).await;
    let first = app.signed_in("alice").await.refresh_token;
    let current = rotate(&app, &first).await;
    app.clock.advance(Duration::from_millis(1500));

    let resp = app.refresh_with_cookie(&first).await;

    assert_cookie_cleared(&resp);
    assert_problem(resp, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let resp = app.refresh_with_cookie(&current).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the current token survived reuse"
    );
    let body = resp.json::<Value>().await.unwrap();
    assert!(
        body["code"] == "invalid_refresh_token" || body["code"] == "refresh_token_reused",
        "unexpected code: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_a_stale_token_are_all_refused() {
    let app = spawn_app_with(&[("LATCHKEY_REFRESH_REUSE_INTERVAL", "1s")]).await;
    let first = app.signed_in("alice").await.refresh_token;
    let current = rotate(&app, &first).await;
    app.clock.advance(Duration::from_millis(1500));

    let answers = refresh_concurrently(&app, &first, 8).await;

    for a in &answers {
        assert_eq!(
            a.status,
            StatusCode::UNAUTHORIZED,
            "a stale token was accepted: {}",
            a.body
        );
        assert!(
            a.cookie.as_ref().is_some_and(SetCookie::is_cleared),
            "cookie not cleared"
        );
    }
    assert!(
        answers
            .iter()
            .any(|a| a.body["code"] == "refresh_token_reused"),
        "no reuse was reported"
    );
    let resp = app.refresh_with_cookie(&current).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the current token survived reuse"
    );
}

#[tokio::test]
async fn the_current_token_still_refreshes_after_the_reuse_interval() {
    let app = spawn_app_with(&[("LATCHKEY_REFRESH_REUSE_INTERVAL", "1s")]).await;
    let first = app.signed_in("alice").await.refresh_token;
    let current = rotate(&app, &first).await;
    app.clock.advance(Duration::from_millis(1500));

    let next = rotate(&app, &current).await;

    assert_ne!(next, current);
}

#[tokio::test]
async fn the_cookie_jar_follows_rotation_and_reuse_clears_it() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let second = login_from(app.refresh().await).await.refresh_token;
    login_from(app.refresh().await).await;

    // Replaying the original token kills the family; the jar's current token is dead too.
    let reuse = app.refresh_with_cookie(&login.refresh_token).await;
    assert_eq!(reuse.status(), StatusCode::UNAUTHORIZED);
    let resp = app.refresh().await;

    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_cookie_cleared(&resp);
    let resp = app.refresh_with_cookie(&second).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}
