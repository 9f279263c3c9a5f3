//! Turning TOTP off, new recovery codes, and the operator's reset (admin API and CLI).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::kit::{PASSWORD, TestApp, assert_problem, json_body};

/// Completes a login of `user` with a TOTP code; returns the access token.
async fn full_login(app: &TestApp, user: &super::helpers::Enrolled) -> String {
    let token = app.mfa_token(&user.username).await;
    let done = app
        .login_mfa(json!({ "mfa_token": token, "totp": app.code(&user.secret) }))
        .await;
    app.next_step();
    json_body(done, StatusCode::OK).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn turning_totp_off_needs_the_password_or_a_current_code() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("ada").await;
    let token = full_login(&app, &user).await;
    let delete = |body: Option<serde_json::Value>| {
        app.send(
            &app.client,
            Method::DELETE,
            "/auth/mfa/totp",
            Some(&token),
            body,
        )
    };
    assert_problem(delete(None).await, StatusCode::BAD_REQUEST, "invalid_input").await;
    assert_problem(
        delete(Some(json!({ "password": "Not-The-Password-At-All-1" }))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        delete(Some(json!({ "totp": "000000" }))).await,
        StatusCode::BAD_REQUEST,
        "invalid_mfa_code",
    )
    .await;
    // Nothing changed.
    let status = json_body(app.get_authed("/auth/mfa", &token).await, StatusCode::OK).await;
    assert_eq!(status["enabled"], true);
    assert_eq!(status["recovery_codes_left"], 10);

    let off = delete(Some(json!({ "totp": app.code(&user.secret) }))).await;
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
    let body = json_body(app.login("ada", PASSWORD).await, StatusCode::OK).await;
    assert!(body["access_token"].is_string(), "password only again");
    let status = json_body(app.get_authed("/auth/mfa", &token).await, StatusCode::OK).await;
    assert_eq!(
        status,
        json!({ "enabled": false, "factors": [], "recovery_codes_left": 0 })
    );
}

#[tokio::test]
async fn turning_totp_off_with_the_password_works_too() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("bo").await;
    let token = full_login(&app, &user).await;
    let off = app
        .send(
            &app.client,
            Method::DELETE,
            "/auth/mfa/totp",
            Some(&token),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_ones() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("cy").await;
    let token = full_login(&app, &user).await;
    let resp = app
        .send(
            &app.client,
            Method::POST,
            "/auth/mfa/recovery-codes",
            Some(&token),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    let fresh = json_body(resp, StatusCode::OK).await;
    let fresh: Vec<String> = fresh["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fresh.len(), 10);
    let pending = app.mfa_token("cy").await;
    let old = app
        .login_mfa(json!({ "mfa_token": pending, "recovery_code": user.recovery_codes[0] }))
        .await;
    assert_problem(old, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    let new = app
        .login_mfa(json!({ "mfa_token": pending, "recovery_code": fresh[0] }))
        .await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_admin_sees_a_users_factors_and_resets_them() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("dee").await;
    let admin = app.admin("boss").await;
    let path = format!("/admin/users/{}", user.user_id);
    let seen = json_body(app.get_authed(&path, &admin.token).await, StatusCode::OK).await;
    assert_eq!(seen["user"]["id"], user.user_id.as_str());
    assert_eq!(seen["mfa"]["enabled"], true);
    assert_eq!(seen["mfa"]["factors"][0]["type"], "totp");
    assert!(seen["mfa"]["factors"][0]["created_at"].is_string());
    assert!(seen["mfa"]["factors"][0]["last_used_at"].is_string());
    assert!(seen["mfa"]["factors"][0].get("secret").is_none());
    assert!(!seen.to_string().contains(&user.secret));

    // Not for a plain user.
    let (plain, _) = app.password_user("nobody").await;
    let refused = app.get_authed(&path, &plain).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "insufficient_permission").await;
    let refused = app
        .send(
            &app.client,
            Method::DELETE,
            &format!("{path}/mfa"),
            Some(&plain),
            None,
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "insufficient_permission").await;
    let unknown = app
        .send(
            &app.client,
            Method::DELETE,
            "/admin/users/not-a-user/mfa",
            Some(&admin.token),
            None,
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;

    let reset = app
        .send(
            &app.client,
            Method::DELETE,
            &format!("{path}/mfa"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let body = json_body(app.login("dee", PASSWORD).await, StatusCode::OK).await;
    assert!(
        body["access_token"].is_string(),
        "the locked-out user logs in with the password"
    );
    let seen = json_body(app.get_authed(&path, &admin.token).await, StatusCode::OK).await;
    assert_eq!(seen["mfa"]["enabled"], false);

    // The trail holds the enrolment by the user and the reset by the admin, each once.
    let events = |name: &str| latchkey::store::AuditQuery {
        user_id: Some(
            seen["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .parse()
                .unwrap_or_default(),
        ),
        events: vec![name.to_owned()],
        limit: 10,
        ..Default::default()
    };
    let enabled = app
        .store()
        .list_audit(&events("mfa.enabled"))
        .await
        .unwrap();
    assert_eq!(enabled.len(), 1, "{enabled:?}");
    let reset = app.store().list_audit(&events("mfa.reset")).await.unwrap();
    assert_eq!(reset.len(), 1, "{reset:?}");
    assert!(reset[0].actor.starts_with("admin:"), "{:?}", reset[0].actor);
}

#[tokio::test]
async fn the_cli_resets_a_users_second_factors() {
    let app = TestApp::builder().start().await;
    app.enrolled("eve").await;
    let service = app.auth_service().await;
    let id = service.user_id_for("eve").await.unwrap();
    assert_eq!(
        service
            .reset_mfa(id, latchkey::auth::audit::Actor::System)
            .await
            .unwrap(),
        11
    );
    let body = json_body(app.login("eve", PASSWORD).await, StatusCode::OK).await;
    assert!(body["access_token"].is_string());
}
