//! GET /auth/me, GET and DELETE /auth/sessions, POST /auth/password, POST /auth/logout-all.

use reqwest::StatusCode;
use serde_json::Value;

use crate::kit::{
    NEW_PASSWORD, PASSWORD, USER_AGENT, assert_no_store, assert_problem, assert_problem_status,
    browser, decode_jwt, header, json_body, me_user, rfc3339, spawn_app,
};

fn sid(access_token: &str) -> Value {
    decode_jwt(access_token).claims["sid"].clone()
}

#[tokio::test]
async fn me_returns_the_caller_and_is_not_cached() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let resp = app.me(&login.access_token).await;

    assert_no_store(resp.headers(), "/auth/me");
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(me_user(&body), login.body["user"]);
}

#[tokio::test]
async fn protected_endpoints_without_a_token_are_401_with_a_bearer_challenge() {
    let app = spawn_app().await;

    for (method, path) in [
        ("GET", "/auth/me"),
        ("GET", "/auth/sessions"),
        (
            "DELETE",
            "/auth/sessions/00000000-0000-0000-0000-000000000000",
        ),
        ("POST", "/auth/password"),
        ("POST", "/auth/logout-all"),
    ] {
        let req = app.client.request(method.parse().unwrap(), app.url(path));
        let body =
            serde_json::json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD });
        let req = if method == "POST" {
            req.json(&body)
        } else {
            req
        };
        let resp = req.send().await.unwrap();
        let www = header(resp.headers(), "www-authenticate").unwrap_or_default();
        assert!(
            www.starts_with("Bearer"),
            "{method} {path}: WWW-Authenticate `{www}`"
        );
        assert_problem_status(resp, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn sessions_lists_the_callers_families_and_marks_the_current_one() {
    let app = spawn_app().await;
    let phone = app.signed_in("alice").await;
    let laptop = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app.get_authed("/auth/sessions", &phone.access_token).await;

    assert_no_store(resp.headers(), "/auth/sessions");
    let body = json_body(resp, StatusCode::OK).await;
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(
        current.len(),
        1,
        "exactly one current session: {sessions:?}"
    );
    assert_eq!(current[0]["id"], sid(&phone.access_token));
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("a non-current session");
    assert_eq!(other["id"], sid(&laptop.access_token));
    for s in sessions {
        for field in ["created_at", "last_used_at", "expires_at"] {
            rfc3339(&s[field], field);
        }
        assert!(rfc3339(&s["expires_at"], "expires_at") > rfc3339(&s["created_at"], "created_at"));
        assert_eq!(s["user_agent"], USER_AGENT, "{s}");
        assert_eq!(s["ip"], "127.0.0.1", "{s}");
    }
}

#[tokio::test]
async fn sessions_follow_the_family_through_refreshes() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let refreshed = crate::kit::login_from(app.refresh().await).await;

    let sessions = app.sessions(&refreshed.access_token).await;
    assert_eq!(
        sessions.len(),
        1,
        "a refresh started a new session: {sessions:?}"
    );
    assert_eq!(sessions[0]["id"], sid(&login.access_token));
    assert_eq!(sessions[0]["current"], true);
}

#[tokio::test]
async fn sessions_of_other_users_are_not_listed() {
    let app = spawn_app().await;
    let alice = app.signed_in("alice").await;
    app.create_user("bob").await;
    app.log_in_with(&browser(), "bob", PASSWORD).await;

    let sessions = app.sessions(&alice.access_token).await;

    assert_eq!(sessions.len(), 1, "{sessions:?}");
}

#[tokio::test]
async fn deleting_one_of_my_sessions_revokes_it() {
    let app = spawn_app().await;
    let phone = app.signed_in("alice").await;
    let laptop = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app
        .delete_session(
            &phone.access_token,
            sid(&laptop.access_token).as_str().unwrap(),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let refresh = app.refresh_with_cookie(&laptop.refresh_token).await;
    assert_eq!(
        refresh.status(),
        StatusCode::UNAUTHORIZED,
        "the deleted session still refreshes"
    );
    let sessions = app.sessions(&phone.access_token).await;
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        app.refresh().await.status(),
        StatusCode::OK,
        "the caller's own session was hit"
    );
}

#[tokio::test]
async fn deleting_my_current_session_revokes_it() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let resp = app
        .delete_session(
            &login.access_token,
            sid(&login.access_token).as_str().unwrap(),
        )
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.refresh().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn deleting_another_users_session_is_404_not_found_and_leaves_it_alone() {
    let app = spawn_app().await;
    let alice = app.signed_in("alice").await;
    app.create_user("bob").await;
    let bob = app.log_in_with(&browser(), "bob", PASSWORD).await;

    let resp = app
        .delete_session(
            &alice.access_token,
            sid(&bob.access_token).as_str().unwrap(),
        )
        .await;

    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    let refresh = app.refresh_with_cookie(&bob.refresh_token).await;
    assert_eq!(
        refresh.status(),
        StatusCode::OK,
        "bob's session was revoked by alice"
    );
}

#[tokio::test]
async fn deleting_an_unknown_session_is_404_not_found() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let id = uuid::Uuid::new_v4().to_string();
    let resp = app.delete_session(&login.access_token, &id).await;

    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn deleting_a_session_with_a_malformed_id_is_a_client_error() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let resp = app
        .delete_session(&login.access_token, "not-a-session-id")
        .await;

    let status = resp.status();
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
        "got {status}"
    );
    assert_problem_status(resp, status).await;
}

#[tokio::test]
async fn changing_the_password_revokes_other_sessions_but_keeps_the_current_one() {
    let app = spawn_app().await;
    let phone = app.signed_in("alice").await;
    let laptop = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app
        .change_password(&phone.access_token, PASSWORD, NEW_PASSWORD)
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let other = app.refresh_with_cookie(&laptop.refresh_token).await;
    assert_eq!(
        other.status(),
        StatusCode::UNAUTHORIZED,
        "another session survived the change"
    );
    assert_eq!(
        app.refresh().await.status(),
        StatusCode::OK,
        "the current session was revoked"
    );
    assert_eq!(
        app.login_with(&browser(), "alice", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login_with(&browser(), "alice", NEW_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn changing_the_password_with_a_wrong_current_password_changes_nothing() {
    let app = spawn_app().await;
    let phone = app.signed_in("alice").await;
    let laptop = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app
        .change_password(
            &phone.access_token,
            "Not-The-Current-Passphrase-5",
            NEW_PASSWORD,
        )
        .await;

    let status = resp.status();
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
        "got {status}"
    );
    assert_problem_status(resp, status).await;
    assert_eq!(
        app.login_with(&browser(), "alice", PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.refresh_with_cookie(&laptop.refresh_token)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn changing_to_a_weak_password_is_400_invalid_input() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    for weak in ["short", "passwordpassword"] {
        let resp = app
            .change_password(&login.access_token, PASSWORD, weak)
            .await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    assert_eq!(
        app.login_with(&browser(), "alice", PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_user_only() {
    let app = spawn_app().await;
    let phone = app.signed_in("alice").await;
    let laptop = app.log_in_with(&browser(), "alice", PASSWORD).await;
    app.create_user("bob").await;
    let bob = app.log_in_with(&browser(), "bob", PASSWORD).await;

    let resp = app.logout_all(&phone.access_token).await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for token in [&phone.refresh_token, &laptop.refresh_token] {
        assert_eq!(
            app.refresh_with_cookie(token).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(app.refresh().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh_with_cookie(&bob.refresh_token).await.status(),
        StatusCode::OK
    );
    let fresh = app.log_in_with(&browser(), "alice", PASSWORD).await;
    assert_eq!(app.sessions(&fresh.access_token).await.len(), 1);
}
