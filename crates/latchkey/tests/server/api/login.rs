//! POST /auth/login: the token response, the refresh cookie, equal failures and throttling.

use reqwest::StatusCode;

use crate::kit::{
    COOKIE, PASSWORD, assert_problem, browser, cookie_named, decode_jwt, header, json_body,
    refresh_cookie, set_cookies, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn logging_in_returns_a_bearer_token_response() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;

    let resp = app.login("alice", PASSWORD).await;

    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["expires_in"], 600,
        "the default lifetime is 10 minutes"
    );
    assert_eq!(
        body["user"], user,
        "the same User object as at registration"
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a compact JWS: {token}");
}

#[tokio::test]
async fn the_access_token_of_a_login_opens_the_me_endpoint() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let resp = app.me(&login.access_token).await;

    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["user"]["id"], login.user_id.as_str());
    assert_eq!(body["user"]["username"], "alice");
}

#[tokio::test]
async fn the_refresh_cookie_has_the_contracted_attributes() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let resp = app.login("alice", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = refresh_cookie(&resp).expect("a refresh_token cookie");
    assert!(cookie.has("HttpOnly"), "{cookie:?}");
    assert_eq!(
        cookie
            .get("SameSite")
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("strict"),
        "{cookie:?}"
    );
    assert_eq!(cookie.get("Path"), Some("/auth"), "{cookie:?}");
    let max_age = cookie.max_age().expect("a Max-Age");
    assert!(
        (86_340..=86_400).contains(&max_age),
        "Max-Age {max_age} is not the 1 day default"
    );
    assert!(
        !cookie.has("Secure"),
        "Secure was turned off by configuration: {cookie:?}"
    );
    assert!(!cookie.has("Domain"), "a host-only cookie: {cookie:?}");
    // At least 256 bits of randomness: 43 base64url characters, or 64 hex digits.
    assert!(
        cookie.value.len() >= 43,
        "a short refresh token: {} chars",
        cookie.value.len()
    );
}

#[tokio::test]
async fn the_cookie_max_age_follows_the_refresh_token_lifetime() {
    let app = spawn_app_with(&[("LATCHKEY_REFRESH_TOKEN_TTL", "2h")]).await;
    app.create_user("alice").await;

    let resp = app.login("alice", PASSWORD).await;

    let max_age = refresh_cookie(&resp).unwrap().max_age().unwrap();
    assert!((7_140..=7_200).contains(&max_age), "Max-Age {max_age}");
}

#[tokio::test]
async fn with_secure_cookies_on_the_cookie_is_secure_and_prefixed() {
    let app = spawn_app_with(&[("LATCHKEY_COOKIE_SECURE", "true")]).await;
    app.create_user("alice").await;

    let resp = app.login("alice", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = cookie_named(&resp, "__Secure-refresh_token").expect("the __Secure- cookie");
    assert!(cookie.has("Secure"), "{cookie:?}");
    assert!(cookie.has("HttpOnly"), "{cookie:?}");
    assert_eq!(cookie.get("Path"), Some("/auth"));
    assert!(
        cookie_named(&resp, COOKIE).is_none(),
        "the unprefixed name is not used"
    );
}

#[tokio::test]
async fn the_access_token_is_never_put_in_a_cookie_or_a_header() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let resp = app.login("alice", PASSWORD).await;

    let cookies = set_cookies(&resp);
    let headers = resp.headers().clone();
    let body = json_body(resp, StatusCode::OK).await;
    let token = body["access_token"].as_str().unwrap();
    assert!(
        cookies.iter().all(|c| !c.value.contains(token)),
        "the access token is in a cookie"
    );
    for (name, value) in &headers {
        assert!(
            !value.to_str().unwrap_or_default().contains(token),
            "the access token is in {name}"
        );
    }
}

#[tokio::test]
async fn each_login_starts_a_new_session_family() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let first = app.log_in_with(&browser(), "alice", PASSWORD).await;
    let second = app.log_in_with(&browser(), "alice", PASSWORD).await;

    assert_ne!(first.refresh_token, second.refresh_token);
    let (a, b) = (
        decode_jwt(&first.access_token),
        decode_jwt(&second.access_token),
    );
    assert_ne!(
        a.claims["sid"], b.claims["sid"],
        "two logins share a session family"
    );
    assert_ne!(a.claims["jti"], b.claims["jti"]);
}

#[tokio::test]
async fn a_wrong_password_is_401_invalid_credentials_without_a_cookie() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let resp = app.login("alice", "Wrong-Passphrase-For-Alice-12").await;

    assert!(
        refresh_cookie(&resp).is_none(),
        "a refresh cookie for a failed login"
    );
    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_identical_answers() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let wrong = app.login("alice", "Wrong-Passphrase-For-Alice-12").await;
    let unknown = app.login("mallory", "Wrong-Passphrase-For-Alice-12").await;

    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), wrong.status());
    assert_eq!(
        header(wrong.headers(), "content-type"),
        header(unknown.headers(), "content-type")
    );
    let (wrong, unknown) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(wrong, unknown, "the bodies tell an unknown user apart");
}

#[tokio::test]
async fn a_correct_login_after_a_few_failures_succeeds() {
    let app = spawn_app_with(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    app.create_user("alice").await;
    for _ in 0..2 {
        let resp = app.login("alice", "Wrong-Passphrase-For-Alice-12").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    let resp = app.login("alice", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn too_many_failed_logins_for_an_account_are_429_with_retry_after() {
    let app = spawn_app_with(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    app.create_user("alice").await;
    for _ in 0..3 {
        let resp = app.login("alice", "Wrong-Passphrase-For-Alice-12").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    let resp = app.login("alice", "Wrong-Passphrase-For-Alice-12").await;

    assert_retry_after(&resp);
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // While throttled, even the right password is not tried (or an attacker learns it).
    let resp = app.login("alice", PASSWORD).await;
    assert!(
        refresh_cookie(&resp).is_none(),
        "a throttled login set a cookie"
    );
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn a_throttled_account_does_not_lock_out_other_accounts() {
    let app = spawn_app_with(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    app.create_user("alice").await;
    app.create_user("bob").await;
    for _ in 0..4 {
        app.login("alice", "Wrong-Passphrase-For-Alice-12").await;
    }

    let resp = app.login("bob", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn too_many_failed_logins_from_one_address_are_429() {
    let app = spawn_app_with(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_IP", "3")]).await;
    app.create_user("alice").await;
    for name in ["mallory", "trudy", "eve"] {
        let resp = app.login(name, "Wrong-Passphrase-For-Alice-12").await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    let resp = app.login("alice", PASSWORD).await;

    assert_retry_after(&resp);
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn the_failure_counters_are_shared_by_servers_on_one_database() {
    let app = spawn_app_with(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    app.create_user("alice").await;
    let sibling = app.start_sibling(&[]).await;
    let sibling_url = format!("http://{}/auth/login", sibling.addr());
    for _ in 0..2 {
        app.login("alice", "Wrong-Passphrase-For-Alice-12").await;
    }
    let body =
        serde_json::json!({ "username": "alice", "password": "Wrong-Passphrase-For-Alice-12" });
    let resp = app
        .client
        .post(&sibling_url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = app.login("alice", PASSWORD).await;

    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    sibling.shutdown().await;
}

fn assert_retry_after(resp: &reqwest::Response) {
    let retry = header(resp.headers(), "retry-after").expect("a Retry-After header");
    let seconds: u64 = retry
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After `{retry}` is not seconds"));
    assert!(
        (1..=900).contains(&seconds),
        "Retry-After {seconds} is outside the 15 minute window"
    );
}
