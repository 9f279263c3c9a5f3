//! POST /auth/logout: revokes the caller's family and clears the cookie.

use reqwest::StatusCode;

use crate::kit::{PASSWORD, browser, plain_client, refresh_cookie, spawn_app};

#[tokio::test]
async fn logout_is_204_and_clears_the_cookie_with_max_age_0() {
    let app = spawn_app().await;
    app.signed_in("alice").await;

    let resp = app.logout().await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cookie = refresh_cookie(&resp).expect("the cookie is cleared");
    assert_eq!(cookie.max_age(), Some(0), "{cookie:?}");
    assert_eq!(
        cookie.get("Path"),
        Some("/auth"),
        "a clearing cookie must match the cookie's path"
    );
}

#[tokio::test]
async fn after_logout_the_refresh_token_is_refused() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    app.logout().await;

    let resp = app.refresh_with_cookie(&login.refresh_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.refresh().await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the jar still held a working token"
    );
}

#[tokio::test]
async fn logout_revokes_the_rotated_tokens_of_the_family_too() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let refreshed = crate::kit::login_from(app.refresh().await).await;

    let resp = app.logout_with_cookie(&refreshed.refresh_token).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    for token in [&login.refresh_token, &refreshed.refresh_token] {
        let resp = app.refresh_with_cookie(token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn logout_without_a_cookie_is_204() {
    let app = spawn_app().await;

    let resp = plain_client()
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_with_an_unknown_cookie_is_204_and_clears_it() {
    let app = spawn_app().await;

    let resp = app.logout_with_cookie("not-a-real-refresh-token").await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(refresh_cookie(&resp).and_then(|c| c.max_age()), Some(0));
}

#[tokio::test]
async fn logging_out_twice_is_204_both_times() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let first = app.logout_with_cookie(&login.refresh_token).await;
    let second = app.logout_with_cookie(&login.refresh_token).await;

    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    assert_eq!(second.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn logout_leaves_the_users_other_sessions_alone() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let laptop = browser();
    app.log_in_with(&laptop, "alice", PASSWORD).await;

    app.logout().await;

    let resp = app.refresh_with(&laptop).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "logout revoked another session"
    );
}

#[tokio::test]
async fn logout_removes_the_session_from_the_list() {
    let app = spawn_app().await;
    let phone = app.signed_in("alice").await;
    let laptop = browser();
    let desk = app.log_in_with(&laptop, "alice", PASSWORD).await;

    app.logout().await;

    let sessions = app.sessions(&desk.access_token).await;
    let phone_sid = crate::kit::decode_jwt(&phone.access_token).claims["sid"].clone();
    assert!(
        sessions.iter().all(|s| s["id"] != phone_sid),
        "the logged-out session is listed: {sessions:?}"
    );
    assert_eq!(sessions.len(), 1);
}
