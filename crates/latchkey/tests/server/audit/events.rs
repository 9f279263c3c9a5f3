//! One record per security event, with its actor, client and outcome; none for a change that
//! did not happen; the admin and activity APIs.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::names;
use crate::kit::{NEW_PASSWORD, PASSWORD, TestApp, assert_problem, json_body, login_from};

async fn admin(app: &TestApp) -> (String, String) {
    let id = app.create_with_roles("root", &["admin"]).await;
    let session = app.login_session("root").await;
    (id, session.token)
}

#[tokio::test]
async fn every_security_event_of_an_account_is_recorded_with_actor_and_client() {
    let app = TestApp::builder().start().await;
    let (admin_id, admin_token) = admin(&app).await;
    let alice = app.register_user("alice").await;

    // Refused sign-ins, with their reasons.
    assert_eq!(
        app.login("alice", "not-the-password-at-all").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("nobody", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // A sign-in, then refresh reuse: the first token again after the reuse interval.
    let first = login_from(app.login("alice", PASSWORD).await).await;
    let rotated = app.refresh_with_cookie(&first.refresh_token).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    app.clock.advance(Duration::from_secs(11));
    let reused = app.refresh_with_cookie(&first.refresh_token).await;
    assert_eq!(reused.status(), StatusCode::UNAUTHORIZED);
    // One login ended from the list, one by logout.
    let second = login_from(app.login("alice", PASSWORD).await).await;
    let third = login_from(app.login("alice", PASSWORD).await).await;
    let logins = app.sessions(&second.access_token).await;
    let other = logins
        .iter()
        .find(|l| l["current"] != json!(true))
        .expect("another login")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete_session(&second.access_token, &other)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let _ = third;
    assert_eq!(
        app.logout_with_cookie(&second.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    // Password change, logout-all.
    let fourth = login_from(app.login("alice", PASSWORD).await).await;
    assert_eq!(
        app.change_password(&fourth.access_token, PASSWORD, NEW_PASSWORD)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.logout_all(&fourth.access_token).await.status(),
        StatusCode::NO_CONTENT
    );
    // Admin actions.
    let put = app
        .client
        .put(app.url(&format!("/admin/users/{alice}/roles")))
        .bearer_auth(&admin_token)
        .json(&json!({ "roles": ["editor"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    for action in ["revoke-sessions", "disable"] {
        let resp = app
            .client
            .post(app.url(&format!("/admin/users/{alice}/{action}")))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{action}");
    }
    assert_eq!(
        app.login("alice", NEW_PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = app
        .client
        .post(app.url(&format!("/admin/users/{alice}/enable")))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let records = app.audit_of(&admin_token, Some(&alice)).await;
    assert_eq!(
        names(&records),
        [
            "user.registered",
            "login:bad_password",
            "login",
            "refresh.reuse_detected:failure",
            "login",
            "login",
            "session.revoked",
            "logout",
            "login",
            "password.changed",
            "logout.all",
            "admin.roles_changed",
            "admin.logins_revoked",
            "admin.user_disabled",
            "login:disabled",
            "admin.user_enabled",
        ]
    );
    let by = |event: &str| {
        records
            .iter()
            .find(|r| r["event"] == event && r["outcome"] == "success")
            .unwrap()
            .clone()
    };
    assert_eq!(by("user.registered")["actor"], "client");
    let login = by("login");
    assert_eq!(login["actor"], format!("user:{alice}"));
    assert_eq!(login["ip"], "127.0.0.1");
    assert!(login["user_agent"].is_string(), "{login}");
    assert_eq!(login["details"]["method"], "password");
    assert_eq!(by("session.revoked")["details"]["login_id"], other);
    assert_eq!(
        by("admin.roles_changed")["actor"],
        format!("admin:{admin_id}")
    );
    assert_eq!(
        by("admin.roles_changed")["details"]["roles"],
        json!(["editor"])
    );
    assert_eq!(
        by("admin.user_disabled")["actor"],
        format!("admin:{admin_id}")
    );
    for r in &records {
        let text = r.to_string();
        for secret in [
            PASSWORD,
            NEW_PASSWORD,
            &first.refresh_token,
            &first.access_token,
        ] {
            assert!(!text.contains(secret), "a secret in {text}");
        }
        assert!(!text.contains("argon2"), "a hash in {text}");
    }

    // The unknown user's refusal has no user; the admin was created by the operator.
    let everything = app.audit_of(&admin_token, None).await;
    let unknown = everything
        .iter()
        .find(|r| r["details"]["reason"] == "unknown_user")
        .expect("the unknown user's refusal");
    assert_eq!(unknown["user_id"], Value::Null);
    assert_eq!(unknown["actor"], "client");
    let root = everything
        .iter()
        .find(|r| r["user_id"] == json!(admin_id) && r["event"] == "user.registered")
        .unwrap();
    assert_eq!(root["actor"], "system");

    // Key rotation (the operator's CLI path).
    app.auth_service()
        .await
        .signing_keys()
        .rotate(false)
        .await
        .unwrap();
    let body = json_body(
        app.get_authed("/admin/audit?event=keys.rotated", &admin_token)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["events"][0]["actor"], "system");

    // The user's own sign-ins, newest first.
    let mine = login_from(app.login("alice", NEW_PASSWORD).await).await;
    let body = json_body(
        app.get_authed("/auth/activity?limit=3", &mine.access_token)
            .await,
        StatusCode::OK,
    )
    .await;
    let events = body["events"].as_array().unwrap();
    assert_eq!(names(events), ["login", "login:disabled", "login"]);
    assert!(events.iter().all(|e| e["user_id"] == json!(alice)));
}

#[tokio::test]
async fn the_audit_api_is_for_admins_and_refuses_bad_filters() {
    let app = TestApp::builder().start().await;
    let (_, admin_token) = admin(&app).await;
    let user = app.signed_in("mallory").await;
    assert_problem(
        app.get_authed("/admin/audit", &user.access_token).await,
        StatusCode::FORBIDDEN,
        "insufficient_permission",
    )
    .await;
    let anonymous = app
        .client
        .get(app.url("/auth/activity"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    for bad in ["event=nope", "user=x", "after=x", "limit=0", "limit=-1"] {
        let resp = app
            .get_authed(&format!("/admin/audit?{bad}"), &admin_token)
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn a_failed_operation_writes_no_success_record() {
    let app = TestApp::builder().start().await;
    let (_, admin_token) = admin(&app).await;
    let bob = app.register_user("bob").await;
    // A taken username, a wrong current password, an unknown user for the admin, a logout
    // with a token that names no login.
    assert_eq!(
        app.register("bob", PASSWORD).await.status(),
        StatusCode::CONFLICT
    );
    let login = login_from(app.login("bob", PASSWORD).await).await;
    let resp = app
        .change_password(&login.access_token, "wrong-current-password", NEW_PASSWORD)
        .await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let nobody = uuid::Uuid::now_v7();
    for action in ["disable", "enable", "revoke-sessions"] {
        let resp = app
            .client
            .post(app.url(&format!("/admin/users/{nobody}/{action}")))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{action}");
    }
    let resp = app
        .client
        .put(app.url(&format!("/admin/users/{nobody}/roles")))
        .bearer_auth(&admin_token)
        .json(&json!({ "roles": ["x"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.logout_with_cookie(&login.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.logout_with_cookie(&login.refresh_token).await.status(),
        StatusCode::NO_CONTENT
    );

    let everything = app.audit_of(&admin_token, None).await;
    let registered = everything
        .iter()
        .filter(|r| r["event"] == "user.registered")
        .count();
    assert_eq!(registered, 2, "root and bob only");
    assert!(
        everything.iter().all(|r| r["event"] != "password.changed"
            && !r["event"].as_str().unwrap().starts_with("admin.")),
        "{everything:?}"
    );
    assert!(
        everything
            .iter()
            .all(|r| r["user_id"] != json!(nobody.to_string()))
    );
    let bobs = app.audit_of(&admin_token, Some(&bob)).await;
    assert_eq!(names(&bobs), ["user.registered", "login", "logout"]);
}

#[tokio::test]
async fn with_the_audit_trail_off_nothing_is_recorded() {
    let app = TestApp::builder()
        .vars(&[("LATCHKEY_AUDIT", "false")])
        .start()
        .await;
    let (_, admin_token) = admin(&app).await;
    let user = app.signed_in("quiet").await;
    let _ = app.login("quiet", "wrong-password-here").await;
    app.logout_all(&user.access_token).await;
    let body = json_body(
        app.get_authed("/admin/audit", &admin_token).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(body["events"], json!([]));
}
