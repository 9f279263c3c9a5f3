//! Classic sessions kept in the database (`LATCHKEY_SESSION_STORE=database`, the default):
//! `/session/login`, `/session/me`, `/session/csrf`, `/session/data`, `/session/logout`, the
//! CSRF tokens, the routes that accept a Bearer token or a session, and what ends a session.

use latchkey::store::SessionRecord;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::kit::{
    ISSUER, NEW_PASSWORD, PASSWORD, SESSION_COOKIE, SessionLogin, TestApp, USER_AGENT,
    assert_invalid_token, assert_no_store, assert_problem, assert_problem_status, browser,
    cookie_named, eventually_status, header, json_body, me_user, now_secs, plain_client,
    refresh_cookie, rfc3339, session_login_from, spawn_app, spawn_app_with, tamper, tamper_at,
};

super::session_twins::session_mode_cases!(spawn_app());

const WRONG_PASSWORD: &str = "Wrong-Passphrase-For-Alice-12";
const EVIL: &str = "http://evil.example";

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn session_id(session: &SessionLogin) -> String {
    session.body["session"]["id"]
        .as_str()
        .expect("session.id")
        .to_owned()
}

/// One stored session, expired or not, read through the server's store.
async fn stored_session(app: &TestApp, session: &SessionLogin) -> Option<SessionRecord> {
    let id = uuid::Uuid::parse_str(&session_id(session)).unwrap();
    stored_sessions(app).await.into_iter().find(|s| s.id == id)
}

/// Every stored session, expired or not.
async fn stored_sessions(app: &TestApp) -> Vec<SessionRecord> {
    app.store()
        .list_live_sessions(None, 10_000, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap()
}

fn ms(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Moves one stored session's expiry times (ms since the epoch), through the server's store.
async fn set_expiry(app: &TestApp, session: &SessionLogin, column: &str, at_ms: i64) {
    let mut record = stored_session(app, session)
        .await
        .expect("the session row is not there");
    let at =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).unwrap();
    match column {
        "idle_expires_at" => record.idle_expires_at = at,
        "absolute_expires_at" => record.absolute_expires_at = at,
        other => panic!("not an expiry column: {other}"),
    }
    app.store().import_session(&record).await.unwrap();
}

async fn stored_i64(app: &TestApp, session: &SessionLogin, column: &str) -> i64 {
    let record = stored_session(app, session).await.expect("the session row");
    match column {
        "idle_expires_at" => ms(record.idle_expires_at),
        "absolute_expires_at" => ms(record.absolute_expires_at),
        other => panic!("not an expiry column: {other}"),
    }
}

/// A state-changing request through the session, with `csrf` as X-CSRF-Token (if any).
async fn send_changing(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.with_session(method, path, cookie);
    if let Some(token) = csrf {
        req = req.header("x-csrf-token", token);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let body = match path {
        "/session/data" => json!({ "data": { "theme": "dark" } }),
        "/auth/password" => json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        _ => Value::Null,
    };
    if body.is_null() {
        req.send().await.unwrap()
    } else {
        req.json(&body).send().await.unwrap()
    }
}

/// The state-changing routes a session may call, with what a success looks like.
fn changing_routes(session_id: &str) -> Vec<(Method, String, StatusCode)> {
    vec![
        (Method::PUT, "/session/data".into(), StatusCode::OK),
        (
            Method::POST,
            "/session/logout".into(),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            "/auth/password".into(),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            "/auth/logout-all".into(),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::DELETE,
            format!("/auth/sessions/{session_id}"),
            StatusCode::NO_CONTENT,
        ),
    ]
}

// ---- Login and the cookie -------------------------------------------------------------------

#[tokio::test]
async fn session_login_sets_an_httponly_lax_cookie_named_session_for_the_whole_site() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let resp = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;

    assert_no_store(resp.headers(), "/session/login");
    assert!(
        refresh_cookie(&resp).is_none(),
        "a session login also handed out a refresh token"
    );
    let login = session_login_from(resp).await;
    let text = &login.set_cookie_text;
    let cookie = &login.set_cookie;
    assert_eq!(cookie.name, SESSION_COOKIE, "{text}");
    assert!(cookie.has("HttpOnly"), "not HttpOnly: {text}");
    assert_eq!(cookie.get("SameSite"), Some("Lax"), "{text}");
    assert_eq!(cookie.get("Path"), Some("/"), "{text}");
    assert!(!cookie.has("Domain"), "a Domain widens the cookie: {text}");
    assert!(
        !cookie.has("Secure"),
        "Secure although LATCHKEY_COOKIE_SECURE=false: {text}"
    );
    let max_age = cookie.max_age().expect("a Max-Age");
    assert!(
        (1795..=1800).contains(&max_age),
        "Max-Age {max_age} is not the default 30m idle timeout: {text}"
    );
}

#[tokio::test]
async fn with_secure_cookies_the_session_cookie_is_host_prefixed_and_secure() {
    let app = spawn_app_with(&[("LATCHKEY_COOKIE_SECURE", "true")]).await;
    app.create_user("alice").await;

    let resp = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;

    let login = session_login_from(resp).await;
    let text = &login.set_cookie_text;
    assert!(text.starts_with("__Host-session="), "{text}");
    assert!(login.set_cookie.has("Secure"), "not Secure: {text}");
    assert!(login.set_cookie.has("HttpOnly"), "not HttpOnly: {text}");
    assert_eq!(login.set_cookie.get("SameSite"), Some("Lax"), "{text}");
    assert_eq!(
        login.set_cookie.get("Path"),
        Some("/"),
        "__Host- needs Path=/: {text}"
    );
    assert!(
        !login.set_cookie.has("Domain"),
        "__Host- forbids Domain: {text}"
    );
}

#[tokio::test]
async fn the_cookie_max_age_follows_the_configured_idle_timeout() {
    let app = spawn_app_with(&[("LATCHKEY_SESSION_IDLE_TIMEOUT", "2m")]).await;

    let login = app.session_signed_in("alice").await;

    let max_age = login.set_cookie.max_age().unwrap();
    assert!(
        (115..=120).contains(&max_age),
        "Max-Age {max_age} for a 2m idle timeout"
    );
}

#[tokio::test]
async fn a_configured_session_cookie_name_is_used() {
    let app = spawn_app_with(&[("LATCHKEY_SESSION_COOKIE_NAME", "app_sid")]).await;
    app.create_user("alice").await;

    let resp = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;

    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = cookie_named(&resp, "app_sid").expect("the app_sid cookie is set");
    assert_eq!(app.session_status(&cookie.value).await, StatusCode::OK);
}

#[tokio::test]
async fn session_login_answers_the_user_the_csrf_token_and_the_session() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;

    let login = app.session_log_in("alice").await;

    assert_eq!(login.body["user"], user);
    assert!(
        login.csrf_token.len() >= 22,
        "a short CSRF token: {}",
        login.csrf_token
    );
    let session = &login.body["session"];
    uuid::Uuid::parse_str(session["id"].as_str().unwrap()).expect("session.id is a UUID");
    assert_eq!(session["data"], json!({}));
    let created = rfc3339(&session["created_at"], "created_at");
    let expires = rfc3339(&session["expires_at"], "expires_at");
    let idle = (expires - created).whole_seconds();
    assert!(
        (1795..=1800).contains(&idle),
        "expires_at is {idle}s after created_at"
    );
    assert!(
        (created.unix_timestamp() - now_secs()).abs() < 30,
        "created_at is not now"
    );
}

#[tokio::test]
async fn the_session_id_is_256_random_bits_in_base64url() {
    let app = spawn_app().await;

    let login = app.session_signed_in("alice").await;

    assert_eq!(login.cookie.len(), 43, "{}", login.cookie);
    assert!(
        login
            .cookie
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{}",
        login.cookie
    );
}

#[tokio::test]
async fn session_login_accepts_a_form() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;

    let resp = app
        .session_login_form(
            &plain_client(),
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;

    let login = session_login_from(resp).await;
    assert_eq!(login.body["user"], user);
    let me = json_body(app.session_me(&login.cookie).await, StatusCode::OK).await;
    assert_eq!(me["user"], user);
}

#[tokio::test]
async fn a_form_login_with_a_wrong_password_is_401_invalid_credentials() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let resp = app
        .session_login_form(
            &plain_client(),
            &[("username", "alice"), ("password", WRONG_PASSWORD)],
        )
        .await;

    assert!(cookie_named(&resp, SESSION_COOKIE).is_none());
    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn a_login_missing_a_field_is_400_as_json_and_as_a_form() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let form = app
        .session_login_form(&plain_client(), &[("username", "alice")])
        .await;
    let json = plain_client()
        .post(app.url("/session/login"))
        .json(&json!({ "username": "alice" }))
        .send()
        .await
        .unwrap();

    assert_problem(form, StatusCode::BAD_REQUEST, "invalid_input").await;
    assert_problem(json, StatusCode::BAD_REQUEST, "invalid_input").await;
}

#[tokio::test]
async fn a_wrong_password_is_401_invalid_credentials_and_sets_no_session() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let wrong = app
        .session_login_json(&plain_client(), "alice", WRONG_PASSWORD)
        .await;
    let unknown = app
        .session_login_json(&plain_client(), "nobody", WRONG_PASSWORD)
        .await;

    for resp in [wrong, unknown] {
        assert!(
            cookie_named(&resp, SESSION_COOKIE).is_none_or(|c| c.is_cleared()),
            "a failed login set a session cookie"
        );
        assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
}

#[tokio::test]
async fn a_session_login_from_a_foreign_origin_is_403() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let resp = plain_client()
        .post(app.url("/session/login"))
        .header("origin", EVIL)
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();

    assert!(cookie_named(&resp, SESSION_COOKIE).is_none());
    assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
}

// ---- Throttling -----------------------------------------------------------------------------

#[tokio::test]
async fn failed_token_logins_throttle_session_logins() {
    let app = spawn_app_with(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    app.create_user("alice").await;
    for _ in 0..2 {
        let resp = app.login("alice", WRONG_PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .session_login_json(&plain_client(), "alice", WRONG_PASSWORD)
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;

    let retry = header(resp.headers(), "retry-after").expect("a Retry-After header");
    let seconds: u64 = retry.parse().expect("Retry-After in seconds");
    assert!((1..=900).contains(&seconds), "Retry-After {seconds}");
    assert!(
        cookie_named(&resp, SESSION_COOKIE).is_none(),
        "a throttled login started a session"
    );
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn failed_session_logins_throttle_token_logins() {
    let app = spawn_app_with(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")]).await;
    app.create_user("alice").await;
    for _ in 0..3 {
        let resp = app
            .session_login_form(
                &plain_client(),
                &[("username", "alice"), ("password", WRONG_PASSWORD)],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    let token = app.login("alice", PASSWORD).await;
    let session = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;

    assert!(header(token.headers(), "retry-after").is_some());
    assert_problem(token, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert_problem(session, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

// ---- A new id at every login (fixation) -----------------------------------------------------

#[tokio::test]
async fn every_login_issues_a_new_session_id() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let first = app.session_log_in("alice").await;
    let second = app.session_log_in("alice").await;

    assert_ne!(first.cookie, second.cookie);
    assert_ne!(session_id(&first), session_id(&second));
    assert_ne!(first.csrf_token, second.csrf_token);
    // Two browsers: both sessions live.
    assert_eq!(app.session_status(&first.cookie).await, StatusCode::OK);
    assert_eq!(app.session_status(&second.cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn logging_in_again_in_the_same_browser_ends_the_previous_session() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let jar = browser();
    let first = app.session_log_in_with(&jar, "alice", PASSWORD).await;

    let second = app.session_log_in_with(&jar, "alice", PASSWORD).await;

    assert_ne!(first.cookie, second.cookie, "the id did not change");
    let resp = app.session_me(&first.cookie).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    assert_eq!(app.session_status(&second.cookie).await, StatusCode::OK);
    let me = jar.get(app.url("/session/me")).send().await.unwrap();
    assert_eq!(
        me.status(),
        StatusCode::OK,
        "the browser's jar holds the new id"
    );
}

#[tokio::test]
async fn a_live_session_cookie_sent_to_login_is_ended_and_replaced() {
    let app = spawn_app().await;
    let first = app.session_signed_in("alice").await;

    let resp = app
        .with_session(Method::POST, "/session/login", &first.cookie)
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();

    let second = session_login_from(resp).await;
    assert_ne!(first.cookie, second.cookie);
    assert_eq!(
        app.session_status(&first.cookie).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        stored_session(&app, &first).await.is_none(),
        "the previous session is still in the store"
    );
}

#[tokio::test]
async fn a_planted_session_id_is_never_adopted_at_login() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let planted = "attacker-chosen-session-id-0123456789abcdef";

    let resp = app
        .with_session(Method::POST, "/session/login", planted)
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();

    let login = session_login_from(resp).await;
    assert_ne!(login.cookie, planted);
    assert_eq!(app.session_status(planted).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);
}

// ---- /session/me ----------------------------------------------------------------------------

#[tokio::test]
async fn session_me_returns_the_user_and_the_session_and_is_not_cached() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    let resp = app.session_me(&login.cookie).await;

    assert_no_store(resp.headers(), "/session/me");
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["user"], login.body["user"]);
    assert_eq!(body["session"]["id"], login.body["session"]["id"]);
    assert_eq!(
        body["session"]["created_at"],
        login.body["session"]["created_at"]
    );
    assert_eq!(body["session"]["data"], json!({}));
    rfc3339(&body["session"]["expires_at"], "expires_at");
}

#[tokio::test]
async fn session_me_without_a_cookie_is_401_no_session_and_clears_the_cookie() {
    let app = spawn_app().await;

    let resp = plain_client()
        .get(app.url("/session/me"))
        .send()
        .await
        .unwrap();

    let cleared = cookie_named(&resp, SESSION_COOKIE).expect("the session cookie is cleared");
    assert!(cleared.is_cleared(), "{cleared:?}");
    assert_eq!(cleared.get("Path"), Some("/"), "{cleared:?}");
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn a_forged_session_cookie_is_401_no_session() {
    let app = spawn_app().await;
    app.session_signed_in("alice").await;

    for forged in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "not-a-session".to_owned(),
        String::new(),
        "x".repeat(500),
        "%00%ff".to_owned(),
    ] {
        let resp = app.session_me(&forged).await;
        let body = assert_problem_status(resp, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["code"], "no_session", "forged `{forged}`: {body}");
    }
}

#[tokio::test]
async fn a_tampered_session_cookie_is_401_no_session() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    for tampered in [
        tamper(&login.cookie),
        tamper_at(&login.cookie, 0),
        tamper_at(&login.cookie, login.cookie.len() - 1),
        format!("{}A", login.cookie),
        login.cookie[..login.cookie.len() - 1].to_owned(),
    ] {
        let resp = app.session_me(&tampered).await;
        assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    }
    assert_eq!(
        app.session_status(&login.cookie).await,
        StatusCode::OK,
        "the real cookie stopped working"
    );
}

#[tokio::test]
async fn a_session_past_its_idle_timeout_is_401() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;
    assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);

    // Past the idle timeout (30 minutes by default) on the server's clock.
    app.clock.advance(std::time::Duration::from_secs(31 * 60));

    let resp = app.session_me(&login.cookie).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn a_session_past_its_absolute_timeout_is_401_although_recently_used() {
    let app = spawn_app_with(&[
        ("LATCHKEY_SESSION_IDLE_TIMEOUT", "10m"),
        ("LATCHKEY_SESSION_ABSOLUTE_TIMEOUT", "30m"),
    ])
    .await;
    let login = app.session_signed_in("alice").await;
    assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);

    // Used every 9 minutes (never idle), then past the absolute end on the server's clock.
    for _ in 0..3 {
        app.clock.advance(std::time::Duration::from_secs(9 * 60));
        assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);
    }
    app.clock.advance(std::time::Duration::from_secs(4 * 60));

    let resp = app.session_me(&login.cookie).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn an_expired_session_is_not_listed_and_cannot_be_used_for_auth_routes() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    // Past the idle timeout on the server's clock; a fresh bearer login to look.
    app.clock.advance(std::time::Duration::from_secs(31 * 60));
    let bearer = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app
        .with_session(Method::GET, "/auth/me", &login.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let sessions = app.sessions(&bearer.access_token).await;
    assert!(
        sessions.iter().all(|s| s["kind"] != "session"),
        "an expired session is listed: {sessions:?}"
    );
}

#[tokio::test]
async fn every_request_slides_the_idle_timeout() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;
    let soon = now_ms() + 90_000;
    set_expiry(&app, &login, "idle_expires_at", soon).await;

    let body = json_body(app.session_me(&login.cookie).await, StatusCode::OK).await;

    let stored = stored_i64(&app, &login, "idle_expires_at").await;
    assert!(
        stored > now_ms() + 29 * 60_000,
        "idle_expires_at was not extended: {stored}"
    );
    let expires = rfc3339(&body["session"]["expires_at"], "expires_at");
    assert!(
        expires.unix_timestamp() > now_secs() + 29 * 60,
        "/session/me reports the old idle end: {body}"
    );
}

#[tokio::test]
async fn the_idle_timeout_never_slides_past_the_absolute_timeout() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;
    let absolute = now_ms() + 5 * 60_000;
    set_expiry(&app, &login, "absolute_expires_at", absolute).await;

    let body = json_body(app.session_me(&login.cookie).await, StatusCode::OK).await;

    let expires = rfc3339(&body["session"]["expires_at"], "expires_at");
    assert!(
        expires.unix_timestamp() <= absolute / 1000 + 1,
        "expires_at {expires} is past the absolute end"
    );
    assert!(stored_i64(&app, &login, "idle_expires_at").await <= absolute);
}

#[tokio::test]
async fn the_store_keeps_only_the_sha256_of_the_session_id() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    let row = stored_session(&app, &login).await.expect("the session row");

    let hash: Vec<u8> = row.token_hash.0.to_vec();
    assert_eq!(hash, Sha256::digest(login.cookie.as_bytes()).to_vec());
    let dump: Vec<String> = stored_sessions(&app)
        .await
        .iter()
        .map(|s| {
            format!(
                "{}|{}|{}|{}|{}",
                s.id,
                s.data,
                s.csrf_token,
                s.user_agent.as_deref().unwrap_or_default(),
                s.ip.as_deref().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        dump.iter().all(|text| !text.contains(&login.cookie)),
        "the session id is stored in clear"
    );
}

// ---- Logout ---------------------------------------------------------------------------------

#[tokio::test]
async fn logout_is_204_clears_the_cookie_and_the_old_cookie_is_then_refused() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    let resp = app.session_logout(&login).await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = cookie_named(&resp, SESSION_COOKIE).expect("the cookie is cleared");
    assert!(cleared.is_cleared(), "{cleared:?}");
    assert_eq!(cleared.get("Path"), Some("/"));
    let resp = app.session_me(&login.cookie).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    assert!(stored_session(&app, &login).await.is_none());
}

#[tokio::test]
async fn logout_without_a_session_is_204() {
    let app = spawn_app().await;

    let without = plain_client()
        .post(app.url("/session/logout"))
        .send()
        .await
        .unwrap();
    let unknown = app
        .with_session(Method::POST, "/session/logout", "no-such-session")
        .send()
        .await
        .unwrap();

    assert_eq!(without.status(), StatusCode::NO_CONTENT);
    assert_eq!(unknown.status(), StatusCode::NO_CONTENT);
    assert!(cookie_named(&unknown, SESSION_COOKIE).is_some_and(|c| c.is_cleared()));
}

#[tokio::test]
async fn logout_leaves_the_users_other_sessions_alone() {
    let app = spawn_app().await;
    let phone = app.session_signed_in("alice").await;
    let laptop = app.session_log_in("alice").await;

    app.session_logout(&phone).await;

    assert_eq!(app.session_status(&laptop.cookie).await, StatusCode::OK);
}

// ---- CSRF -----------------------------------------------------------------------------------

#[tokio::test]
async fn state_changing_session_requests_without_a_csrf_token_are_403() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    for (method, path, _) in changing_routes(&session_id(&login)) {
        let resp = send_changing(&app, method.clone(), &path, &login.cookie, None, &[]).await;
        let body = assert_problem_status(resp, StatusCode::FORBIDDEN).await;
        assert_eq!(body["code"], "csrf_rejected", "{method} {path}: {body}");
    }

    // Nothing happened: the session lives, its data and the password are unchanged.
    let me = json_body(app.session_me(&login.cookie).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], json!({}));
    app.session_log_in("alice").await;
}

#[tokio::test]
async fn a_wrong_csrf_token_is_403() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;
    let almost = tamper(&login.csrf_token);

    for token in [
        "",
        "wrong",
        almost.as_str(),
        &login.csrf_token[..login.csrf_token.len() - 1],
        &format!("{}x", login.csrf_token),
    ] {
        for (method, path, _) in changing_routes(&session_id(&login)) {
            let resp =
                send_changing(&app, method.clone(), &path, &login.cookie, Some(token), &[]).await;
            let body = assert_problem_status(resp, StatusCode::FORBIDDEN).await;
            assert_eq!(body["code"], "csrf_rejected", "{method} {path} `{token}`");
        }
    }
    assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn the_csrf_token_of_another_session_is_403() {
    let app = spawn_app().await;
    let mine = app.session_signed_in("alice").await;
    let my_other = app.session_log_in("alice").await;
    let bobs = app.session_signed_in("bob").await;

    for other in [&my_other, &bobs] {
        for (method, path, _) in changing_routes(&session_id(&mine)) {
            let resp = send_changing(
                &app,
                method.clone(),
                &path,
                &mine.cookie,
                Some(&other.csrf_token),
                &[],
            )
            .await;
            let body = assert_problem_status(resp, StatusCode::FORBIDDEN).await;
            assert_eq!(body["code"], "csrf_rejected", "{method} {path}");
        }
    }
    assert_eq!(app.session_status(&mine.cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn the_right_csrf_token_is_accepted_on_every_state_changing_route() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    for (method, path, ok) in changing_routes("") {
        // A fresh session each time: some of these end it.
        let login = app.session_log_in("alice").await;
        let path = if method == Method::DELETE {
            format!("/auth/sessions/{}", session_id(&login))
        } else {
            path
        };
        let resp = send_changing(
            &app,
            method.clone(),
            &path,
            &login.cookie,
            Some(&login.csrf_token),
            &[],
        )
        .await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, ok, "{method} {path}: {text}");
        if path == "/auth/password" {
            // Put the password back for the next round.
            let back = app
                .with_session(Method::POST, "/auth/password", &login.cookie)
                .header("x-csrf-token", &login.csrf_token)
                .json(&json!({ "current_password": NEW_PASSWORD, "new_password": PASSWORD }))
                .send()
                .await
                .unwrap();
            assert_eq!(back.status(), StatusCode::NO_CONTENT);
        }
    }
}

#[tokio::test]
async fn a_foreign_origin_is_403_even_with_the_right_csrf_token() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    for extra in [[("origin", EVIL)], [("sec-fetch-site", "cross-site")]] {
        for (method, path, _) in changing_routes(&session_id(&login)) {
            let resp = send_changing(
                &app,
                method.clone(),
                &path,
                &login.cookie,
                Some(&login.csrf_token),
                &extra,
            )
            .await;
            let body = assert_problem_status(resp, StatusCode::FORBIDDEN).await;
            assert_eq!(body["code"], "csrf_rejected", "{method} {path} {extra:?}");
        }
    }
    assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn the_servers_own_origin_with_the_right_csrf_token_is_accepted() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    let resp = send_changing(
        &app,
        Method::PUT,
        "/session/data",
        &login.cookie,
        Some(&login.csrf_token),
        &[("origin", ISSUER), ("sec-fetch-site", "same-origin")],
    )
    .await;

    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn session_csrf_returns_the_sessions_token_and_is_not_cached() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    let resp = app
        .with_session(Method::GET, "/session/csrf", &login.cookie)
        .send()
        .await
        .unwrap();

    assert_no_store(resp.headers(), "/session/csrf");
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["csrf_token"], login.csrf_token.as_str());
    let resp = plain_client()
        .get(app.url("/session/csrf"))
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn safe_requests_through_a_session_need_no_csrf_token() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    for path in ["/session/me", "/session/csrf", "/auth/me", "/auth/sessions"] {
        let resp = app
            .with_session(Method::GET, path, &login.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    }
}

// ---- Bearer or session ----------------------------------------------------------------------

#[tokio::test]
async fn auth_me_accepts_a_bearer_token_or_a_session_and_refuses_neither() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let by_bearer = json_body(app.me(&token.access_token).await, StatusCode::OK).await;
    let by_session = app
        .with_session(Method::GET, "/auth/me", &session.cookie)
        .send()
        .await
        .unwrap();
    let by_session = json_body(by_session, StatusCode::OK).await;
    let neither = plain_client()
        .get(app.url("/auth/me"))
        .send()
        .await
        .unwrap();

    assert_eq!(me_user(&by_bearer), session.body["user"]);
    assert_eq!(me_user(&by_session), session.body["user"]);
    let www = header(neither.headers(), "www-authenticate").unwrap_or_default();
    assert!(www.starts_with("Bearer"), "WWW-Authenticate `{www}`");
    assert_problem_status(neither, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn auth_me_with_a_dead_session_cookie_is_401() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;
    app.session_logout(&login).await;

    let resp = app
        .with_session(Method::GET, "/auth/me", &login.cookie)
        .send()
        .await
        .unwrap();

    assert_problem_status(resp, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_bad_bearer_token_is_refused_even_beside_a_live_session() {
    let app = spawn_app().await;
    let login = app.session_signed_in("alice").await;

    let resp = app
        .with_session(Method::GET, "/auth/me", &login.cookie)
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();

    assert_invalid_token(resp).await;
}

#[tokio::test]
async fn a_bearer_token_needs_no_csrf_token_even_beside_a_session_cookie() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app
        .with_session(Method::POST, "/auth/logout-all", &session.cookie)
        .bearer_auth(&token.access_token)
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

// ---- /auth/sessions, logout-all, password changes --------------------------------------------

#[tokio::test]
async fn auth_sessions_through_a_session_lists_it_as_current() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;
    let other = app.session_log_in("alice").await;

    let resp = app
        .with_session(Method::GET, "/auth/sessions", &session.cookie)
        .send()
        .await
        .unwrap();

    assert_no_store(resp.headers(), "/auth/sessions");
    let body = json_body(resp, StatusCode::OK).await;
    let list = body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let mine = list
        .iter()
        .find(|s| s["id"] == session_id(&session).as_str())
        .unwrap_or_else(|| panic!("the session is not listed: {list:?}"));
    assert_eq!(mine["kind"], "session");
    assert_eq!(mine["current"], true);
    assert_eq!(mine["user_agent"], USER_AGENT);
    assert_eq!(mine["ip"], "127.0.0.1");
    for field in ["created_at", "last_used_at", "expires_at"] {
        rfc3339(&mine[field], field);
    }
    let theirs = list
        .iter()
        .find(|s| s["id"] == session_id(&other).as_str())
        .expect("the other session is listed");
    assert_eq!(theirs["kind"], "session");
    assert_eq!(theirs["current"], false);
    let family = list
        .iter()
        .find(|s| s["kind"] == "refresh")
        .expect("the refresh family is listed");
    assert_eq!(family["current"], false);
    assert_eq!(
        family["id"],
        crate::kit::decode_jwt(&token.access_token).claims["sid"]
    );
}

#[tokio::test]
async fn auth_sessions_through_a_bearer_token_lists_the_session_as_not_current() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let list = app.sessions(&token.access_token).await;

    let listed = list
        .iter()
        .find(|s| s["kind"] == "session")
        .unwrap_or_else(|| panic!("no session listed: {list:?}"));
    assert_eq!(listed["id"], session_id(&session).as_str());
    assert_eq!(listed["current"], false);
}

#[tokio::test]
async fn deleting_the_session_in_auth_sessions_with_a_bearer_token_ends_it() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app
        .delete_session(&token.access_token, &session_id(&session))
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app.session_me(&session.cookie).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    let list = app.sessions(&token.access_token).await;
    assert!(list.iter().all(|s| s["kind"] != "session"), "{list:?}");
}

#[tokio::test]
async fn a_session_can_end_itself_through_auth_sessions() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;

    let path = format!("/auth/sessions/{}", session_id(&session));
    let resp = send_changing(
        &app,
        Method::DELETE,
        &path,
        &session.cookie,
        Some(&session.csrf_token),
        &[],
    )
    .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.session_status(&session.cookie).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn another_users_session_cannot_be_deleted() {
    let app = spawn_app().await;
    let alices = app.session_signed_in("alice").await;
    app.create_user("bob").await;
    let bob = app.log_in_with(&browser(), "bob", PASSWORD).await;

    let resp = app
        .delete_session(&bob.access_token, &session_id(&alices))
        .await;

    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.session_status(&alices.cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn logout_all_through_a_bearer_token_ends_every_session() {
    let app = spawn_app().await;
    let phone = app.session_signed_in("alice").await;
    let laptop = app.session_log_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app.logout_all(&token.access_token).await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for session in [&phone, &laptop] {
        let resp = app.session_me(&session.cookie).await;
        assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    }
}

#[tokio::test]
async fn logout_all_through_a_session_ends_every_login_including_itself() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let other = app.session_log_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = send_changing(
        &app,
        Method::POST,
        "/auth/logout-all",
        &session.cookie,
        Some(&session.csrf_token),
        &[],
    )
    .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for s in [&session, &other] {
        assert_eq!(
            app.session_status(&s.cookie).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = app.refresh_with_cookie(&token.refresh_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_through_a_bearer_token_ends_every_session() {
    let app = spawn_app().await;
    let phone = app.session_signed_in("alice").await;
    let laptop = app.session_log_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = app
        .change_password(&token.access_token, PASSWORD, NEW_PASSWORD)
        .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for session in [&phone, &laptop] {
        let resp = app.session_me(&session.cookie).await;
        assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    }
}

#[tokio::test]
async fn a_password_change_through_a_session_keeps_it_and_ends_the_other_logins() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let other = app.session_log_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;

    let resp = send_changing(
        &app,
        Method::POST,
        "/auth/password",
        &session.cookie,
        Some(&session.csrf_token),
        &[],
    )
    .await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.session_status(&session.cookie).await, StatusCode::OK);
    assert_eq!(
        app.session_status(&other.cookie).await,
        StatusCode::UNAUTHORIZED
    );
    let resp = app.refresh_with_cookie(&token.refresh_token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app
        .session_login_json(&plain_client(), "alice", NEW_PASSWORD)
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the new password does not work"
    );
}

#[tokio::test]
async fn a_password_change_through_a_session_with_the_wrong_current_password_is_401() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;

    let resp = app
        .with_session(Method::POST, "/auth/password", &session.cookie)
        .header("x-csrf-token", &session.csrf_token)
        .json(&json!({ "current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();

    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.session_status(&session.cookie).await, StatusCode::OK);
}

// ---- The user is loaded on every request ----------------------------------------------------

/// Ended, not suspended: the shared `disabling_the_user_ends_the_session` sees the end;
/// enabling the user again does not bring the session back, and the store holds it no more.
#[tokio::test]
async fn a_session_ended_by_disabling_stays_ended_when_the_user_is_enabled_again() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    app.set_disabled(&session.user_id, true).await;
    eventually_status(
        "/session/me of a disabled user",
        StatusCode::UNAUTHORIZED,
        || app.session_status(&session.cookie),
    )
    .await;

    app.set_disabled(&session.user_id, false).await;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(
        app.session_status(&session.cookie).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(stored_session(&app, &session).await.is_none());
}

#[tokio::test]
async fn a_disabled_user_cannot_start_a_session() {
    let app = spawn_app().await;
    let user = app.create_user("alice").await;

    app.set_disabled(user["id"].as_str().unwrap(), true).await;

    let resp = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;
    assert!(cookie_named(&resp, SESSION_COOKIE).is_none_or(|c| c.is_cleared()));
    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

// ---- Session data ---------------------------------------------------------------------------

#[tokio::test]
async fn session_data_round_trips_and_is_replaced_not_merged() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    let data = json!({ "theme": "dark", "cart": [1, 2, 3], "nested": { "a": null } });

    let resp = app.put_session_data(&session, &data).await;

    assert!(
        cookie_named(&resp, SESSION_COOKIE).is_none_or(|c| c.value == session.cookie),
        "a database session changed its id on a data write"
    );
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["data"], data);
    let me = json_body(app.session_me(&session.cookie).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], data);

    let resp = app
        .put_session_data(&session, &json!({ "lang": "fr" }))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me = json_body(app.session_me(&session.cookie).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], json!({ "lang": "fr" }));
}

#[tokio::test]
async fn session_data_belongs_to_one_session() {
    let app = spawn_app().await;
    let phone = app.session_signed_in("alice").await;
    let laptop = app.session_log_in("alice").await;

    app.put_session_data(&phone, &json!({ "theme": "dark" }))
        .await;

    let me = json_body(app.session_me(&laptop.cookie).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], json!({}));
}

#[tokio::test]
async fn session_data_that_is_not_a_json_object_is_400() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    app.put_session_data(&session, &json!({ "keep": true }))
        .await;

    for data in [
        json!([1, 2]),
        json!("text"),
        json!(42),
        json!(null),
        json!(true),
    ] {
        let resp = app.put_session_data(&session, &data).await;
        let body = assert_problem_status(resp, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["code"], "invalid_input", "data {data}: {body}");
    }
    let missing = app
        .with_session(Method::PUT, "/session/data", &session.cookie)
        .header("x-csrf-token", &session.csrf_token)
        .json(&json!({ "theme": "dark" }))
        .send()
        .await
        .unwrap();
    assert_problem(missing, StatusCode::BAD_REQUEST, "invalid_input").await;
    let me = json_body(app.session_me(&session.cookie).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], json!({ "keep": true }));
}

#[tokio::test]
async fn session_data_is_limited_to_2_kib() {
    let app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    // `{"k":"…"}` is 8 bytes plus the string.
    let fits = json!({ "k": "x".repeat(2048 - 8) });
    let too_big = json!({ "k": "x".repeat(2049 - 8) });
    assert_eq!(fits.to_string().len(), 2048);

    let ok = app.put_session_data(&session, &fits).await;
    let refused = app.put_session_data(&session, &too_big).await;

    assert_eq!(ok.status(), StatusCode::OK);
    assert_problem(refused, StatusCode::BAD_REQUEST, "invalid_input").await;
    let me = json_body(app.session_me(&session.cookie).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], fits);
}

#[tokio::test]
async fn session_data_without_a_session_is_401_no_session() {
    let app = spawn_app().await;

    let resp = plain_client()
        .put(app.url("/session/data"))
        .json(&json!({ "data": {} }))
        .send()
        .await
        .unwrap();

    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

// ---- Persistence ----------------------------------------------------------------------------

#[tokio::test]
async fn sessions_survive_a_restart_and_are_shared_by_servers_on_one_database() {
    let mut app = spawn_app().await;
    let session = app.session_signed_in("alice").await;
    app.put_session_data(&session, &json!({ "theme": "dark" }))
        .await;
    let sibling = app.start_sibling(&[]).await;

    let resp = app
        .with_session_at(
            &format!("http://{}", sibling.addr()),
            Method::GET,
            "/session/me",
            &session.cookie,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "the sibling server");
    sibling.shutdown().await;
    app.restart().await;

    let me = json_body(app.session_me(&session.cookie).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], json!({ "theme": "dark" }));
}

#[tokio::test]
async fn a_failed_login_does_not_end_the_browsers_live_session() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let jar = browser();
    let first = app.session_log_in_with(&jar, "alice", PASSWORD).await;

    let resp = jar
        .post(app.url("/session/login"))
        .json(&serde_json::json!({"username": "alice", "password": "not the password at all"}))
        .send()
        .await
        .unwrap();

    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(app.session_status(&first.cookie).await, StatusCode::OK);
}
