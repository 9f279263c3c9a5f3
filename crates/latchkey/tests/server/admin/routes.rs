//! The admin API: who may call it, pagination, roles, revocation, disabling.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::claims;
use crate::kit::{assert_problem, spawn_app};

fn admin_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/admin/users".into(), None),
        (
            Method::PUT,
            format!("/admin/users/{id}/roles"),
            Some(json!({ "roles": ["admin"] })),
        ),
        (
            Method::POST,
            format!("/admin/users/{id}/revoke-sessions"),
            None,
        ),
        (Method::POST, format!("/admin/users/{id}/disable"), None),
        (Method::POST, format!("/admin/users/{id}/enable"), None),
    ]
}

#[tokio::test]
async fn admin_routes_answer_401_without_a_token_and_403_without_the_admin_role() {
    let app = spawn_app().await;
    let mary = app.user("mary").await;
    for (method, path, body) in admin_routes(&mary.user_id) {
        let mut anonymous = reqwest::Client::new().request(method.clone(), app.url(&path));
        let mut as_mary = mary
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&mary.token);
        if let Some(body) = &body {
            anonymous = anonymous.json(body);
            as_mary = as_mary.json(body);
        }
        let response = anonymous.send().await.unwrap();
        assert!(response.headers().contains_key("www-authenticate"));
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
        let response = as_mary.send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "insufficient_permission").await;
    }
    let forged = reqwest::Client::new()
        .get(app.url("/admin/users"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_problem(forged, StatusCode::UNAUTHORIZED, "invalid_token").await;
    app.shutdown().await;
}

#[tokio::test]
async fn listing_users_pages_through_everyone_in_creation_order() {
    let app = spawn_app().await;
    let admin = app.admin("root").await;
    let mut expected = vec![admin.user_id.clone()];
    for i in 0..5 {
        expected.push(app.register_user(&format!("user{i}")).await);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = app.url("/admin/users?limit=2");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let response = admin
            .client
            .get(url)
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        let users = body["users"].as_array().unwrap();
        assert!(users.len() <= 2);
        for user in users {
            assert_eq!(user["disabled"], false);
            assert!(user["created_at"].is_string() && user["roles"].is_array());
            seen.push(user["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match body["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);

    let all: Value = admin
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["users"].as_array().unwrap().len(), 6);
    assert_eq!(all["next"], Value::Null);
    for bad in ["limit=0", "limit=many", "after=not-an-id"] {
        let response = admin
            .client
            .get(app.url(&format!("/admin/users?{bad}")))
            .bearer_auth(&admin.token)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_role_granted_by_an_admin_reaches_the_token_at_the_next_refresh() {
    let app = spawn_app().await;
    let admin = app.admin("root").await;
    let mary = app.user("mary").await;
    assert_eq!(claims(&mary.token)["roles"], json!([]));

    let response = admin
        .client
        .put(app.url(&format!("/admin/users/{}/roles", mary.user_id)))
        .bearer_auth(&admin.token)
        .json(&json!({ "roles": ["editor", "files:write", "editor"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], mary.user_id.as_str());
    assert_eq!(body["user"]["roles"], json!(["editor", "files:write"]));

    // /auth/me reads the user through a cache, which the role change invalidated.
    let me: Value = mary
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&mary.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["roles"], json!(["editor", "files:write"]));

    let refreshed: Value = app.refresh_session(&mary).await.json().await.unwrap();
    let token = refreshed["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["roles"], json!(["editor", "files:write"]));
    assert_eq!(refreshed["user"]["roles"], json!(["editor", "files:write"]));
    app.shutdown().await;
}

#[tokio::test]
async fn bad_roles_are_400_and_unknown_or_malformed_user_ids_are_404() {
    let app = spawn_app().await;
    let admin = app.admin("root").await;
    let mary = app.register_user("mary").await;
    let too_many: Vec<String> = (0..33).map(|i| format!("r{i}")).collect();
    for roles in [
        json!(["Admin"]),
        json!(["has space"]),
        json!([""]),
        json!(["x".repeat(65)]),
        json!(too_many),
        json!("admin"),
    ] {
        let response = admin
            .client
            .put(app.url(&format!("/admin/users/{mary}/roles")))
            .bearer_auth(&admin.token)
            .json(&json!({ "roles": roles }))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    for id in [unknown.as_str(), "not-a-uuid"] {
        for (method, path, body) in admin_routes(id).into_iter().skip(1) {
            let mut request = admin
                .client
                .request(method, app.url(&path))
                .bearer_auth(&admin.token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn revoking_sessions_makes_every_refresh_of_the_user_fail() {
    let app = spawn_app().await;
    let admin = app.admin("root").await;
    let phone = app.user("mary").await;
    let laptop = app.login_session("mary").await;
    let response = admin
        .client
        .post(app.url(&format!("/admin/users/{}/revoke-sessions", phone.user_id)))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for session in [&phone, &laptop] {
        let response = app.refresh_session(session).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    }
    // Revocation ends logins, not the account.
    app.login_session("mary").await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_disabled_user_can_neither_refresh_nor_log_in_until_enabled() {
    let app = spawn_app().await;
    let admin = app.admin("root").await;
    let mary = app.user("mary").await;
    let disable = admin
        .client
        .post(app.url(&format!("/admin/users/{}/disable", mary.user_id)))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), StatusCode::NO_CONTENT);

    let response = app.refresh_session(&mary).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    let response = app.try_login_as(&mary.client, "mary").await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let listing: Value = admin
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown = listing["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == mary.user_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(shown["disabled"], true);

    let enable = admin
        .client
        .post(app.url(&format!("/admin/users/{}/enable", mary.user_id)))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(enable.status(), StatusCode::NO_CONTENT);
    let again = app.login_session("mary").await;
    assert_eq!(app.refresh_session(&again).await.status(), StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn a_disabled_or_demoted_admin_loses_admin_powers_at_once() {
    let app = spawn_app().await;
    let root = app.admin("root").await;
    let other = app.admin("deputy").await;
    let demote = root
        .client
        .put(app.url(&format!("/admin/users/{}/roles", other.user_id)))
        .bearer_auth(&root.token)
        .json(&json!({ "roles": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(demote.status(), StatusCode::OK);
    // The deputy's access token still says `admin`, but the store no longer does.
    let response = other
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(&other.token)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "insufficient_permission").await;
    app.shutdown().await;
}

#[tokio::test]
async fn roles_given_at_creation_are_checked_like_the_admin_apis() {
    let app = spawn_app().await;
    let result = app
        .auth_service()
        .await
        .register(
            latchkey::auth::Registration {
                username: "eve".into(),
                password: crate::kit::PASSWORD.to_owned().into(),
                email: None,
                roles: vec!["Super Admin".into()],
            },
            None,
        )
        .await;
    assert!(matches!(
        result,
        Err(latchkey::auth::AuthError::InvalidInput(_))
    ));
    app.shutdown().await;
}

#[tokio::test]
async fn an_admin_demoted_by_another_instance_is_refused_on_the_next_request() {
    let app = spawn_app().await;
    let root = app.admin("root").await;
    let deputy = app.admin("deputy").await;
    let list = || {
        deputy
            .client
            .get(app.url("/admin/users"))
            .bearer_auth(&deputy.token)
            .send()
    };
    assert_eq!(list().await.unwrap().status(), StatusCode::OK);
    // Another instance on the same database (here: a second service) demotes the deputy.
    let other_instance = app.auth_service().await;
    let root_id = uuid::Uuid::parse_str(&root.user_id).unwrap();
    let deputy_id = uuid::Uuid::parse_str(&deputy.user_id).unwrap();
    other_instance
        .admin()
        .set_roles(root_id, deputy_id, vec![])
        .await
        .unwrap();
    // This server answered the deputy a moment ago; it must ask the database again.
    let response = list().await.unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "insufficient_permission").await;
    app.shutdown().await;
}
