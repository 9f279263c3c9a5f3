//! A restart on the same database keeps users, signing keys, refresh tokens and revocations.

use reqwest::StatusCode;

use crate::kit::{PASSWORD, browser, json_body, login_from, spawn_app};

#[tokio::test]
async fn users_survive_a_restart() {
    let mut app = spawn_app().await;
    let user = app.create_user("alice").await;

    app.restart().await;

    let login = login_from(app.login("alice", PASSWORD).await).await;
    assert_eq!(login.body["user"], user);
    let resp = app.register("alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn access_tokens_issued_before_a_restart_stay_valid() {
    let mut app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let keys_before = app.jwks().await;

    app.restart().await;

    let resp = app.me(&login.access_token).await;
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["user"]["id"], login.user_id.as_str());
    assert_eq!(
        app.jwks().await,
        keys_before,
        "the signing keys changed at restart"
    );
}

#[tokio::test]
async fn refresh_tokens_survive_a_restart() {
    let mut app = spawn_app().await;
    let login = app.signed_in("alice").await;

    app.restart().await;

    let refreshed = login_from(app.refresh().await).await;
    assert_ne!(refreshed.refresh_token, login.refresh_token);
    assert_eq!(
        app.me(&refreshed.access_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn rotation_state_survives_a_restart() {
    let mut app = spawn_app().await;
    let first = app.signed_in("alice").await.refresh_token;
    let second = login_from(app.refresh().await).await.refresh_token;
    login_from(app.refresh().await).await;

    app.restart().await;

    let resp = app.refresh_with_cookie(&first).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "a rotated token worked after restart"
    );
    let resp = app.refresh_with_cookie(&second).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the family survived reuse"
    );
}

#[tokio::test]
async fn revoked_sessions_stay_revoked_after_a_restart() {
    let mut app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let laptop = browser();
    let other = app.log_in_with(&laptop, "alice", PASSWORD).await;
    assert_eq!(app.logout().await.status(), StatusCode::NO_CONTENT);

    app.restart().await;

    let resp = app.refresh_with_cookie(&login.refresh_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let sessions = app.sessions(&other.access_token).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(app.refresh_with(&laptop).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_changed_password_survives_a_restart() {
    let mut app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let resp = app
        .change_password(&login.access_token, PASSWORD, crate::kit::NEW_PASSWORD)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    app.restart().await;

    assert_eq!(
        app.login("alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("alice", crate::kit::NEW_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn several_restarts_in_a_row_keep_one_signing_key() {
    let mut app = spawn_app().await;
    let before = app.jwks().await;

    for _ in 0..3 {
        app.restart().await;
    }

    assert_eq!(app.jwks().await, before);
    if crate::kit::Backend::current() == crate::kit::Backend::Sqlite {
        assert!(
            app.db_dir.path().join("latchkey.db").exists(),
            "the database file is where it was put"
        );
    }
}
