//! Stateless classic sessions (`LATCHKEY_SESSION_STORE=cookie`): the session lives in a cookie
//! sealed with AES-256-GCM (`base64url(nonce ‖ ciphertext ‖ tag)`, the cookie name as the
//! associated data) under the keys of `LATCHKEY_SESSION_KEYS` (the first seals, all open).
//! The tests hold the keys, so they can open what the server seals and seal cookies of their
//! own: expired ones, foreign-key ones, ones for another cookie name.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::kit::{
    PASSWORD, SESSION_COOKIE, SessionLogin, TestApp, assert_no_store, assert_problem, b64, browser,
    cookie_named, json_body, plain_client, rfc3339, session_login_from, spawn_app_with, tamper,
    tamper_at, unb64,
};

super::session_twins::session_mode_cases!(spawn_cookie_app(&[&KEY_A]));

const KEY_A: [u8; 32] = [0xA1; 32];
const KEY_B: [u8; 32] = [0xB2; 32];
const MINUTE_MS: i64 = 60_000;
const EVIL_ORIGIN: &str = "http://evil.example";

fn key_text(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

/// A cookie-session server whose keys are `keys` (the first seals).
async fn spawn_cookie_app(keys: &[&[u8; 32]]) -> TestApp {
    let list = keys
        .iter()
        .map(|k| key_text(k))
        .collect::<Vec<_>>()
        .join(",");
    spawn_app_with(&[
        ("LATCHKEY_SESSION_STORE", "cookie"),
        ("LATCHKEY_SESSION_KEYS", &list),
    ])
    .await
}

fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap())
}

/// Seals `payload` the way the server does.
fn seal(key: &[u8; 32], payload: &Value, cookie_name: &str) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).unwrap();
    let mut buffer = serde_json::to_vec(payload).unwrap();
    aead_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(cookie_name.as_bytes()),
            &mut buffer,
        )
        .unwrap();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buffer);
    b64(&out)
}

/// Opens a cookie the server sealed; `None` when `key` does not open it.
fn open(key: &[u8; 32], value: &str, cookie_name: &str) -> Option<Value> {
    let raw = unb64(value);
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let mut buffer = sealed.to_vec();
    let plain = aead_key(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce.try_into().unwrap()),
            Aad::from(cookie_name.as_bytes()),
            &mut buffer,
        )
        .ok()?;
    Some(serde_json::from_slice(plain).expect("the sealed payload is JSON"))
}

/// A session payload for `user_id`, created `age_ms` ago and last used `idle_ms` ago.
fn payload(user_id: &str, age_ms: i64, idle_ms: i64) -> Value {
    let now = now_ms();
    json!({
        "uid": user_id,
        "data": { "crafted": true },
        "csrf": "crafted-csrf-token",
        "iat": now - age_ms,
        "lu": now - idle_ms,
    })
}

fn base(server: &latchkey::Server) -> String {
    format!("http://{}", server.addr())
}

async fn me_at(app: &TestApp, base_url: &str, cookie: &str) -> reqwest::Response {
    app.with_session_at(base_url, Method::GET, "/session/me", cookie)
        .send()
        .await
        .unwrap()
}

// ---- The sealed cookie ----------------------------------------------------------------------

#[tokio::test]
async fn a_cookie_session_login_sets_a_sealed_cookie_with_the_usual_attributes() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    app.create_user("alice").await;

    let resp = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;

    assert_no_store(resp.headers(), "/session/login");
    let login = session_login_from(resp).await;
    let text = &login.set_cookie_text;
    assert_eq!(login.set_cookie.name, SESSION_COOKIE, "{text}");
    assert!(login.set_cookie.has("HttpOnly"), "{text}");
    assert_eq!(login.set_cookie.get("SameSite"), Some("Lax"), "{text}");
    assert_eq!(login.set_cookie.get("Path"), Some("/"), "{text}");
    assert!(!login.set_cookie.has("Secure"), "{text}");
    let max_age = login.set_cookie.max_age().unwrap();
    assert!((1795..=1800).contains(&max_age), "Max-Age {max_age}");
    assert!(
        login.body["session"]["id"].is_null(),
        "a stateless session has no id: {}",
        login.body
    );
}

#[tokio::test]
async fn with_secure_cookies_the_sealed_cookie_is_host_prefixed_and_bound_to_that_name() {
    let app = spawn_app_with(&[
        ("LATCHKEY_SESSION_STORE", "cookie"),
        ("LATCHKEY_SESSION_KEYS", &key_text(&KEY_A)),
        ("LATCHKEY_COOKIE_SECURE", "true"),
    ])
    .await;
    app.create_user("alice").await;

    let resp = app
        .session_login_json(&plain_client(), "alice", PASSWORD)
        .await;

    let login = session_login_from(resp).await;
    let text = &login.set_cookie_text;
    assert!(text.starts_with("__Host-session="), "{text}");
    assert!(login.set_cookie.has("Secure"), "{text}");
    assert!(login.set_cookie.has("HttpOnly"), "{text}");
    assert_eq!(login.set_cookie.get("Path"), Some("/"), "{text}");
    assert!(open(&KEY_A, &login.cookie, "__Host-session").is_some());
}

#[tokio::test]
async fn the_cookie_holds_the_user_id_the_data_and_the_csrf_token_sealed_under_the_first_key() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let before = now_ms();

    let login = app.session_signed_in("alice").await;

    let sealed = open(&KEY_A, &login.cookie, SESSION_COOKIE)
        .expect("the cookie opens with the configured key and the cookie name as AAD");
    assert_eq!(sealed["uid"], login.user_id.as_str());
    assert_eq!(sealed["data"], json!({}));
    assert_eq!(sealed["csrf"], login.csrf_token.as_str());
    let iat = sealed["iat"].as_i64().unwrap();
    assert!(iat >= before - 1000 && iat <= now_ms() + 1000, "iat {iat}");
    assert_eq!(sealed["lu"], sealed["iat"]);
}

#[tokio::test]
async fn the_cookie_reveals_nothing_in_clear() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let resp = app
        .put_session_data(&login, &json!({ "secret_note": "launch-codes-1234" }))
        .await;
    let cookie = cookie_named(&resp, SESSION_COOKIE).expect("a new cookie");

    for value in [&login.cookie, &cookie.value] {
        let raw = unb64(value);
        let haystack = String::from_utf8_lossy(&raw);
        for needle in [
            login.user_id.as_str(),
            login.csrf_token.as_str(),
            "launch-codes",
            "secret_note",
        ] {
            assert!(!haystack.contains(needle), "`{needle}` is readable");
        }
        assert!(!value.contains("launch"), "readable in the cookie text");
    }
}

#[tokio::test]
async fn nothing_is_stored_in_the_database_for_a_cookie_session() {
    let app = spawn_cookie_app(&[&KEY_A]).await;

    app.session_signed_in("alice").await;

    let stored = app
        .store()
        .list_live_sessions(None, 10, time::OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(stored.len(), 0);
}

#[tokio::test]
async fn every_cookie_session_login_seals_a_new_cookie_with_a_new_csrf_token() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    app.create_user("alice").await;
    let jar = browser();

    let first = app.session_log_in_with(&jar, "alice", PASSWORD).await;
    let second = app.session_log_in_with(&jar, "alice", PASSWORD).await;

    assert_ne!(first.cookie, second.cookie);
    assert_ne!(first.csrf_token, second.csrf_token);
}

// ---- /session/me ----------------------------------------------------------------------------

#[tokio::test]
async fn session_me_works_from_the_cookie_alone() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    let resp = app.session_me(&login.cookie).await;

    assert_no_store(resp.headers(), "/session/me");
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["user"], login.body["user"]);
    assert!(body["session"]["id"].is_null());
    assert_eq!(body["session"]["data"], json!({}));
    let created = rfc3339(&body["session"]["created_at"], "created_at");
    let expires = rfc3339(&body["session"]["expires_at"], "expires_at");
    assert!((1795..=1800).contains(&(expires - created).whole_seconds()));
}

#[tokio::test]
async fn a_tampered_sealed_cookie_is_401_no_session_and_cleared() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let len = login.cookie.len();

    // In the nonce, in the ciphertext, in the tag.
    for tampered in [
        tamper_at(&login.cookie, 3),
        tamper(&login.cookie),
        tamper_at(&login.cookie, len - 5),
    ] {
        assert_ne!(tampered, login.cookie);
        let resp = app.session_me(&tampered).await;
        let cleared = cookie_named(&resp, SESSION_COOKIE).expect("the cookie is cleared");
        assert!(cleared.is_cleared(), "{cleared:?}");
        assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    }
    assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);
}

#[tokio::test]
async fn a_forged_sealed_cookie_is_401_no_session() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let unsealed = b64(payload(&login.user_id, 0, 0).to_string().as_bytes());

    for forged in [
        String::new(),
        "garbage!".to_owned(),
        b64(&[0u8; 12]),
        b64(&[7u8; 64]),
        unsealed,
        "A".repeat(5000),
    ] {
        let resp = app.session_me(&forged).await;
        assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    }
}

#[tokio::test]
async fn a_cookie_sealed_with_the_right_key_by_someone_else_is_accepted() {
    // The control for the tests below: a cookie the test seals itself opens on the server,
    // so what they change is the only reason for a refusal.
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    let crafted = seal(&KEY_A, &payload(&login.user_id, 0, 0), SESSION_COOKIE);

    let body = json_body(app.session_me(&crafted).await, StatusCode::OK).await;
    assert_eq!(body["user"]["id"], login.user_id.as_str());
    assert_eq!(body["session"]["data"], json!({ "crafted": true }));
}

#[tokio::test]
async fn a_cookie_sealed_with_a_foreign_key_is_401_no_session() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    let foreign = seal(&[0x55; 32], &payload(&login.user_id, 0, 0), SESSION_COOKIE);

    let resp = app.session_me(&foreign).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn a_cookie_sealed_for_another_cookie_name_is_401_no_session() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    let elsewhere = seal(&KEY_A, &payload(&login.user_id, 0, 0), "other_cookie");

    let resp = app.session_me(&elsewhere).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn a_sealed_cookie_for_an_unknown_user_is_401_no_session() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    app.session_signed_in("alice").await;

    let ghost = seal(
        &KEY_A,
        &payload(&uuid::Uuid::new_v4().to_string(), 0, 0),
        SESSION_COOKIE,
    );

    let resp = app.session_me(&ghost).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn a_sealed_cookie_past_its_idle_timeout_is_401_no_session() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    // The default idle timeout is 30 minutes.
    let idle = seal(
        &KEY_A,
        &payload(&login.user_id, 31 * MINUTE_MS, 31 * MINUTE_MS),
        SESSION_COOKIE,
    );

    let resp = app.session_me(&idle).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn a_sealed_cookie_past_its_absolute_timeout_is_401_although_recently_used() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    // The default absolute timeout is 12 hours; last used a second ago.
    let old = seal(
        &KEY_A,
        &payload(&login.user_id, 12 * 60 * MINUTE_MS + 1_000, 1_000),
        SESSION_COOKIE,
    );

    let resp = app.session_me(&old).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn the_configured_timeouts_apply_to_sealed_cookies() {
    let app = spawn_app_with(&[
        ("LATCHKEY_SESSION_STORE", "cookie"),
        ("LATCHKEY_SESSION_KEYS", &key_text(&KEY_A)),
        ("LATCHKEY_SESSION_IDLE_TIMEOUT", "1m"),
        ("LATCHKEY_SESSION_ABSOLUTE_TIMEOUT", "10m"),
    ])
    .await;
    let login = app.session_signed_in("alice").await;
    let cookie = |age_ms, idle_ms| {
        seal(
            &KEY_A,
            &payload(&login.user_id, age_ms, idle_ms),
            SESSION_COOKIE,
        )
    };

    assert_eq!(
        app.session_status(&cookie(30_000, 30_000)).await,
        StatusCode::OK
    );
    assert_eq!(
        app.session_status(&cookie(2 * MINUTE_MS, 2 * MINUTE_MS))
            .await,
        StatusCode::UNAUTHORIZED,
        "idle for 2m with a 1m idle timeout"
    );
    assert_eq!(
        app.session_status(&cookie(11 * MINUTE_MS, 10_000)).await,
        StatusCode::UNAUTHORIZED,
        "11m old with a 10m absolute timeout"
    );
}

#[tokio::test]
async fn a_sealed_cookie_in_use_is_resealed_to_slide_its_idle_timeout() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let age = 10 * MINUTE_MS;
    let crafted = seal(
        &KEY_A,
        &payload(&login.user_id, age, 5 * MINUTE_MS),
        SESSION_COOKIE,
    );

    let resp = app.session_me(&crafted).await;

    let renewed = cookie_named(&resp, SESSION_COOKIE).expect("a re-sealed cookie");
    assert_eq!(resp.status(), StatusCode::OK);
    let max_age = renewed.max_age().unwrap();
    assert!((1795..=1800).contains(&max_age), "Max-Age {max_age}");
    assert_eq!(renewed.get("SameSite"), Some("Lax"));
    assert!(renewed.has("HttpOnly"));
    let sealed = open(&KEY_A, &renewed.value, SESSION_COOKIE).expect("opens");
    let lu = sealed["lu"].as_i64().unwrap();
    assert!((now_ms() - lu).abs() < 10_000, "lu was not moved to now");
    let iat = sealed["iat"].as_i64().unwrap();
    assert!(
        (now_ms() - age - iat).abs() < 10_000,
        "iat changed: the absolute timeout would slide too"
    );
    assert_eq!(sealed["data"], json!({ "crafted": true }));
    assert_eq!(sealed["csrf"], "crafted-csrf-token");
}

#[tokio::test]
async fn the_resealed_cookie_never_outlives_the_absolute_timeout() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    // 12h absolute: 5 minutes left.
    let crafted = seal(
        &KEY_A,
        &payload(
            &login.user_id,
            12 * 60 * MINUTE_MS - 5 * MINUTE_MS,
            2 * MINUTE_MS,
        ),
        SESSION_COOKIE,
    );

    let resp = app.session_me(&crafted).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let renewed = cookie_named(&resp, SESSION_COOKIE).expect("a re-sealed cookie");
    let max_age = renewed.max_age().unwrap();
    assert!(
        (290..=300).contains(&max_age),
        "Max-Age {max_age} goes past the absolute end"
    );
}

// ---- Session data lives in the cookie ----------------------------------------------------

#[tokio::test]
async fn putting_data_issues_a_new_cookie_that_carries_it() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let data = json!({ "theme": "dark", "cart": [1, 2, 3] });

    let resp = app.put_session_data(&login, &data).await;

    let cookie = cookie_named(&resp, SESSION_COOKIE).expect("a new session cookie");
    assert_ne!(cookie.value, login.cookie);
    assert!(cookie.has("HttpOnly"));
    assert_eq!(cookie.get("Path"), Some("/"));
    assert_eq!(json_body(resp, StatusCode::OK).await["data"], data);
    let sealed = open(&KEY_A, &cookie.value, SESSION_COOKIE).unwrap();
    assert_eq!(sealed["data"], data);
    assert_eq!(
        sealed["csrf"],
        login.csrf_token.as_str(),
        "the CSRF token changed"
    );
    let me = json_body(app.session_me(&cookie.value).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], data);
    // The old cookie carries the old data (and, stateless, still works).
    let old = json_body(app.session_me(&login.cookie).await, StatusCode::OK).await;
    assert_eq!(old["session"]["data"], json!({}));
}

#[tokio::test]
async fn the_largest_allowed_data_still_fits_in_a_cookie_the_server_opens() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let fits = json!({ "k": "x".repeat(2048 - 8) });
    let too_big = json!({ "k": "x".repeat(2049 - 8) });

    let resp = app.put_session_data(&login, &fits).await;
    let cookie = cookie_named(&resp, SESSION_COOKIE).expect("a new cookie");
    assert_eq!(resp.status(), StatusCode::OK);
    let refused = app.put_session_data(&login, &too_big).await;

    assert_problem(refused, StatusCode::BAD_REQUEST, "invalid_input").await;
    assert!(
        cookie.value.len() < 4000,
        "a {}-byte cookie is over browser limits",
        cookie.value.len()
    );
    let me = json_body(app.session_me(&cookie.value).await, StatusCode::OK).await;
    assert_eq!(me["session"]["data"], fits);
}

#[tokio::test]
async fn session_data_that_is_not_a_json_object_is_400_in_cookie_mode() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    for data in [json!([1]), json!("text"), json!(null)] {
        let resp = app.put_session_data(&login, &data).await;
        assert!(
            cookie_named(&resp, SESSION_COOKIE).is_none(),
            "a refused write set a cookie"
        );
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

// ---- Key rotation ---------------------------------------------------------------------------

#[tokio::test]
async fn after_rotation_a_cookie_sealed_with_the_old_key_is_still_accepted() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let rotated = app
        .start_sibling(&[(
            "LATCHKEY_SESSION_KEYS",
            &format!("{},{}", key_text(&KEY_B), key_text(&KEY_A)),
        )])
        .await;

    let resp = me_at(&app, &base(&rotated), &login.cookie).await;

    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["user"]["id"], login.user_id.as_str());
}

#[tokio::test]
async fn once_the_old_key_is_dropped_its_cookies_are_refused() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let only_b = app
        .start_sibling(&[("LATCHKEY_SESSION_KEYS", &key_text(&KEY_B))])
        .await;

    let resp = me_at(&app, &base(&only_b), &login.cookie).await;

    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
}

#[tokio::test]
async fn after_rotation_new_cookies_are_sealed_with_the_new_first_key() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    app.create_user("alice").await;
    let rotated = app
        .start_sibling(&[(
            "LATCHKEY_SESSION_KEYS",
            &format!("{},{}", key_text(&KEY_B), key_text(&KEY_A)),
        )])
        .await;

    let resp = plain_client()
        .post(format!("{}/session/login", base(&rotated)))
        .json(&json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let login = session_login_from(resp).await;

    assert!(
        open(&KEY_B, &login.cookie, SESSION_COOKIE).is_some(),
        "not sealed with B"
    );
    assert!(open(&KEY_A, &login.cookie, SESSION_COOKIE).is_none());
    let resp = app.session_me(&login.cookie).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "no_session").await;
    let resp = me_at(&app, &base(&rotated), &login.cookie).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_old_key_cookie_resealed_after_rotation_moves_to_the_new_key() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let crafted = seal(
        &KEY_A,
        &payload(&login.user_id, 5 * MINUTE_MS, 2 * MINUTE_MS),
        SESSION_COOKIE,
    );
    let rotated = app
        .start_sibling(&[(
            "LATCHKEY_SESSION_KEYS",
            &format!("{},{}", key_text(&KEY_B), key_text(&KEY_A)),
        )])
        .await;

    let resp = me_at(&app, &base(&rotated), &crafted).await;

    assert_eq!(resp.status(), StatusCode::OK);
    let renewed = cookie_named(&resp, SESSION_COOKIE).expect("a re-sealed cookie");
    assert!(open(&KEY_B, &renewed.value, SESSION_COOKIE).is_some());
}

#[tokio::test]
async fn without_configured_keys_the_key_kept_in_the_store_survives_a_restart() {
    let mut app = spawn_app_with(&[("LATCHKEY_SESSION_STORE", "cookie")]).await;
    let login = app.session_signed_in("alice").await;
    let sibling = app.start_sibling(&[]).await;

    let resp = me_at(&app, &base(&sibling), &login.cookie).await;
    assert_eq!(resp.status(), StatusCode::OK, "the sibling server");
    sibling.shutdown().await;
    app.restart().await;

    assert_eq!(app.session_status(&login.cookie).await, StatusCode::OK);
    // And that generated key is not one of the test keys, nor a trivial one.
    for key in [&KEY_A, &KEY_B, &[0u8; 32]] {
        assert!(open(key, &login.cookie, SESSION_COOKIE).is_none());
    }
}

// ---- Logout: the documented trade-off ---------------------------------------------------------

#[tokio::test]
async fn logout_clears_the_cookie_but_a_copy_kept_earlier_still_works() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    let resp = app.session_logout(&login).await;

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cleared = cookie_named(&resp, SESSION_COOKIE).expect("the cookie is cleared");
    assert!(cleared.is_cleared(), "{cleared:?}");
    assert_eq!(cleared.get("Path"), Some("/"));
    // README: a stateless session cannot be revoked before it expires.
    assert_eq!(
        app.session_status(&login.cookie).await,
        StatusCode::OK,
        "the documented trade-off changed: update the README"
    );
}

#[tokio::test]
async fn logout_of_a_cookie_due_for_resealing_clears_it_and_does_not_reseal_it() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let crafted = seal(
        &KEY_A,
        &payload(&login.user_id, 5 * MINUTE_MS, 2 * MINUTE_MS),
        SESSION_COOKIE,
    );

    let resp = app
        .with_session(Method::POST, "/session/logout", &crafted)
        .header("x-csrf-token", "crafted-csrf-token")
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // `cookie_named` fails if the cookie is set twice.
    let cookie = cookie_named(&resp, SESSION_COOKIE).expect("the cookie is cleared");
    assert!(
        cookie.is_cleared(),
        "logout re-sealed the cookie: {cookie:?}"
    );
}

// ---- CSRF -----------------------------------------------------------------------------------

async fn put_data(
    app: &TestApp,
    session: &SessionLogin,
    csrf: Option<&str>,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut req = app.with_session(Method::PUT, "/session/data", &session.cookie);
    if let Some(token) = csrf {
        req = req.header("x-csrf-token", token);
    }
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.json(&json!({ "data": { "x": 1 } }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cookie_sessions_need_their_own_csrf_token_to_change_state() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let mine = app.session_signed_in("alice").await;
    let other = app.session_log_in("alice").await;

    let missing = put_data(&app, &mine, None, None).await;
    let wrong = put_data(&app, &mine, Some("wrong"), None).await;
    let others = put_data(&app, &mine, Some(&other.csrf_token), None).await;
    let foreign_origin = put_data(&app, &mine, Some(&mine.csrf_token), Some(EVIL_ORIGIN)).await;
    let right = put_data(&app, &mine, Some(&mine.csrf_token), None).await;

    for resp in [missing, wrong, others, foreign_origin] {
        assert!(cookie_named(&resp, SESSION_COOKIE).is_none());
        assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
    }
    assert_eq!(right.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_and_password_changes_through_a_cookie_session_need_the_csrf_token() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let body = json!({ "current_password": PASSWORD, "new_password": crate::kit::NEW_PASSWORD });

    let logout = app
        .with_session(Method::POST, "/session/logout", &login.cookie)
        .send()
        .await
        .unwrap();
    let password = app
        .with_session(Method::POST, "/auth/password", &login.cookie)
        .json(&body)
        .send()
        .await
        .unwrap();

    assert_problem(logout, StatusCode::FORBIDDEN, "csrf_rejected").await;
    assert_problem(password, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let resp = app
        .with_session(Method::POST, "/auth/password", &login.cookie)
        .header("x-csrf-token", &login.csrf_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_csrf_token_of_a_crafted_cookie_is_the_one_sealed_in_it() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;
    let crafted = seal(&KEY_A, &payload(&login.user_id, 0, 0), SESSION_COOKIE);
    let session = SessionLogin {
        cookie: crafted,
        csrf_token: "crafted-csrf-token".into(),
        ..login
    };

    let csrf = app
        .with_session(Method::GET, "/session/csrf", &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_body(csrf, StatusCode::OK).await["csrf_token"],
        "crafted-csrf-token"
    );
    let resp = app.put_session_data(&session, &json!({ "ok": 1 })).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

// ---- Bearer or session; the user loaded on every request -----------------------------------

#[tokio::test]
async fn auth_sessions_through_a_cookie_session_lists_no_server_side_session() {
    let app = spawn_cookie_app(&[&KEY_A]).await;
    let login = app.session_signed_in("alice").await;

    let resp = app
        .with_session(Method::GET, "/auth/sessions", &login.cookie)
        .send()
        .await
        .unwrap();

    let body = json_body(resp, StatusCode::OK).await;
    let list = body["sessions"].as_array().unwrap();
    assert!(list.iter().all(|s| s["kind"] != "session"), "{list:?}");
}
