//! Passkeys: register while signed in, list, rename, delete, passwordless sign-in, backup
//! flags, counters, and the refusals (another challenge or origin, a replayed or expired
//! ceremony, an unknown credential), with a software authenticator standing in for the
//! browser (the real browser runs in clients/browser/test/browser/passkeys.test.mjs).

mod authenticator;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use self::authenticator::{ORIGIN, RP_ID, SoftKey};
use crate::kit::{Login, PASSWORD, TestApp, assert_problem, json_body, login_from};

async fn post_authed(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

/// Registers a passkey held by `key` for the signed-in `login`; returns the passkey view.
async fn register(app: &TestApp, login: &Login, key: &mut SoftKey, name: &str) -> Value {
    let start = post_authed(
        app,
        "/auth/passkeys/register/start",
        &login.access_token,
        &json!({}),
    )
    .await;
    let start = json_body(start, StatusCode::OK).await;
    let credential = key.register(&start["options"]);
    let finish = post_authed(
        app,
        "/auth/passkeys/register/finish",
        &login.access_token,
        &json!({ "challenge_id": start["challenge_id"], "credential": credential, "name": name }),
    )
    .await;
    json_body(finish, StatusCode::CREATED).await["passkey"].clone()
}

/// Starts a passwordless sign-in: (challenge_id, challenge).
async fn login_start(app: &TestApp) -> (String, String) {
    let resp = app
        .post_json("/auth/passkeys/login/start", &json!({}))
        .await;
    let body = json_body(resp, StatusCode::OK).await;
    (
        body["challenge_id"].as_str().unwrap().to_owned(),
        body["options"]["challenge"].as_str().unwrap().to_owned(),
    )
}

async fn login_finish(app: &TestApp, challenge_id: &str, credential: &Value) -> reqwest::Response {
    app.post_json(
        "/auth/passkeys/login/finish",
        &json!({ "challenge_id": challenge_id, "credential": credential }),
    )
    .await
}

async fn sign_in(app: &TestApp, key: &mut SoftKey) -> reqwest::Response {
    let (id, challenge) = login_start(app).await;
    let credential = key.assert(&challenge);
    login_finish(app, &id, &credential).await
}

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let resp = app.get_authed("/auth/passkeys", token).await;
    json_body(resp, StatusCode::OK).await["passkeys"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_passkey_is_registered_listed_renamed_signs_in_and_is_deleted() {
    let app = TestApp::builder().start().await;
    let login = app.signed_in("pat").await;
    let mut key = SoftKey::new();

    // The creation options ask for a discoverable credential with user verification.
    let start = post_authed(
        &app,
        "/auth/passkeys/register/start",
        &login.access_token,
        &json!({}),
    )
    .await;
    let start = json_body(start, StatusCode::OK).await;
    let options = &start["options"];
    assert_eq!(options["rp"]["id"], RP_ID);
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    let algs: Vec<i64> = options["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    for alg in [-8, -7, -257] {
        assert!(algs.contains(&alg), "alg {alg} missing from {algs:?}");
    }

    let passkey = register(&app, &login, &mut key, "Laptop").await;
    assert_eq!(passkey["name"], "Laptop");
    assert_eq!(passkey["backup_eligible"], true);
    assert_eq!(passkey["transports"], json!(["hybrid", "internal"]));
    let id = passkey["id"].as_str().unwrap().to_owned();

    // A second registration of the same credential is refused, and excluded in the options.
    let again = post_authed(
        &app,
        "/auth/passkeys/register/start",
        &login.access_token,
        &json!({}),
    )
    .await;
    let again = json_body(again, StatusCode::OK).await;
    assert_eq!(
        again["options"]["excludeCredentials"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let credential = key.register(&again["options"]);
    let resp = post_authed(
        &app,
        "/auth/passkeys/register/finish",
        &login.access_token,
        &json!({ "challenge_id": again["challenge_id"], "credential": credential }),
    )
    .await;
    assert_problem(resp, StatusCode::CONFLICT, "passkey_exists").await;

    let resp = app
        .client
        .patch(app.url(&format!("/auth/passkeys/{id}")))
        .bearer_auth(&login.access_token)
        .json(&json!({ "name": "Work laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let listed = list(&app, &login.access_token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Work laptop");
    assert!(listed[0]["last_used_at"].is_null());

    // Passwordless sign-in: empty allowCredentials (conditional UI), then what /auth/login issues.
    let resp = app
        .post_json("/auth/passkeys/login/start", &json!({}))
        .await;
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["options"]["allowCredentials"], json!([]));
    assert_eq!(body["options"]["rpId"], RP_ID);
    let credential = key.assert(body["options"]["challenge"].as_str().unwrap());
    let resp = login_finish(&app, body["challenge_id"].as_str().unwrap(), &credential).await;
    let signed = login_from(resp).await;
    assert_eq!(signed.user_id, login.user_id);
    let me = json_body(app.me(&signed.access_token).await, StatusCode::OK).await;
    assert_eq!(me["user"]["username"], "pat");
    // The refresh cookie works like a password login's.
    let refreshed = login_from(app.refresh_with_cookie(&signed.refresh_token).await).await;
    assert_eq!(refreshed.user_id, login.user_id);

    // A second sign-in.
    let second = login_from(sign_in(&app, &mut key).await).await;
    assert_eq!(second.user_id, login.user_id);
    assert!(!list(&app, &login.access_token).await[0]["last_used_at"].is_null());

    // Another user cannot touch it.
    let other = app.signed_in("quinn").await;
    let resp = app
        .client
        .delete(app.url(&format!("/auth/passkeys/{id}")))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;

    let resp = app
        .client
        .delete(app.url(&format!("/auth/passkeys/{id}")))
        .bearer_auth(&login.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(list(&app, &login.access_token).await.is_empty());
    let resp = sign_in(&app, &mut key).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "unknown_passkey").await;
}

#[tokio::test]
async fn deleting_a_passkey_needs_a_recent_sign_in_or_the_password() {
    let app = TestApp::builder()
        .vars(&[("LATCHKEY_REAUTH_MAX_AGE", "1m")])
        .start()
        .await;
    let login = app.signed_in("rae").await;
    let mut key = SoftKey::new();
    let id = register(&app, &login, &mut key, "Phone").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.clock.advance(Duration::from_secs(120));
    let token = login_from(app.refresh_with_cookie(&login.refresh_token).await)
        .await
        .access_token;
    let url = app.url(&format!("/auth/passkeys/{id}"));
    let resp = app
        .client
        .delete(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "reauthentication_required").await;
    assert_eq!(list(&app, &token).await.len(), 1);
    let resp = app
        .client
        .delete(&url)
        .bearer_auth(&token)
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_change_of_backup_flags_updates_them_and_never_locks_out() {
    let app = TestApp::builder().start().await;
    let login = app.signed_in("sam").await;
    let mut key = SoftKey::new();
    key.backup_eligible = false;
    register(&app, &login, &mut key, "Key").await;
    // Becomes a synced passkey and is backed up.
    key.backup_eligible = true;
    key.backup_state = true;
    login_from(sign_in(&app, &mut key).await).await;
    let listed = list(&app, &login.access_token).await;
    assert_eq!(
        (
            listed[0]["backup_eligible"].clone(),
            listed[0]["backup_state"].clone()
        ),
        (json!(true), json!(true))
    );
    // Backup turned off again, then not eligible any more: still signs in.
    key.backup_state = false;
    login_from(sign_in(&app, &mut key).await).await;
    key.backup_eligible = false;
    login_from(sign_in(&app, &mut key).await).await;
    let listed = list(&app, &login.access_token).await;
    assert_eq!(
        (
            listed[0]["backup_eligible"].clone(),
            listed[0]["backup_state"].clone()
        ),
        (json!(false), json!(false))
    );
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_zero_is_accepted() {
    let app = TestApp::builder().start().await;
    let login = app.signed_in("tia").await;
    let mut key = SoftKey::new();
    register(&app, &login, &mut key, "Key").await;
    // Synced passkeys report 0 every time.
    login_from(sign_in(&app, &mut key).await).await;
    login_from(sign_in(&app, &mut key).await).await;
    key.counter = 5;
    login_from(sign_in(&app, &mut key).await).await; // 6
    assert_eq!(list(&app, &login.access_token).await[0]["sign_count"], 6);
    key.counter = 2; // a clone: 3 < 6
    let resp = sign_in(&app, &mut key).await;
    assert!(resp.headers().get("set-cookie").is_none());
    assert_problem(resp, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    assert_eq!(list(&app, &login.access_token).await[0]["sign_count"], 6);
    key.counter = 9;
    login_from(sign_in(&app, &mut key).await).await;
}

#[tokio::test]
async fn forged_replayed_and_expired_assertions_are_refused_and_change_nothing() {
    let app = TestApp::builder().start().await;
    let login = app.signed_in("uma").await;
    let mut key = SoftKey::new();
    key.counter = 1;
    register(&app, &login, &mut key, "Key").await;
    let before = list(&app, &login.access_token).await;

    // Signed over another ceremony's challenge.
    let (id_a, _) = login_start(&app).await;
    let (_, challenge_b) = login_start(&app).await;
    let credential = key.assert(&challenge_b);
    let resp = login_finish(&app, &id_a, &credential).await;
    assert!(resp.headers().get("set-cookie").is_none());
    assert_problem(resp, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    // That ceremony is used up.
    let resp = login_finish(&app, &id_a, &credential).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "unknown_ceremony").await;

    // Another origin.
    key.origin = "http://evil.test".into();
    let resp = sign_in(&app, &mut key).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "passkey_rejected").await;
    key.origin = ORIGIN.into();

    // A replay of a good assertion.
    let (id, challenge) = login_start(&app).await;
    let credential = key.assert(&challenge);
    login_from(login_finish(&app, &id, &credential).await).await;
    let after_good = list(&app, &login.access_token).await;
    let resp = login_finish(&app, &id, &credential).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "unknown_ceremony").await;
    assert_eq!(list(&app, &login.access_token).await, after_good);

    // An unknown credential.
    let mut stranger = SoftKey::new();
    stranger.user_handle = key.user_handle.clone();
    let resp = sign_in(&app, &mut stranger).await;
    assert_problem(resp, StatusCode::UNAUTHORIZED, "unknown_passkey").await;

    // An expired ceremony.
    let (id, challenge) = login_start(&app).await;
    app.clock.advance(Duration::from_secs(301));
    let credential = key.assert(&challenge);
    let resp = login_finish(&app, &id, &credential).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "unknown_ceremony").await;

    // Malformed input.
    let resp = login_finish(&app, "nope", &json!({ "id": 1 })).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    let resp = app
        .post_json(
            "/auth/passkeys/login/finish",
            &json!({ "challenge_id": "x", "credential": "y" }),
        )
        .await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;

    // A registration ceremony cannot finish a sign-in (nor another user's registration).
    let start = post_authed(
        &app,
        "/auth/passkeys/register/start",
        &login.access_token,
        &json!({}),
    )
    .await;
    let start = json_body(start, StatusCode::OK).await;
    let credential = key.assert(start["options"]["challenge"].as_str().unwrap());
    let resp = login_finish(&app, start["challenge_id"].as_str().unwrap(), &credential).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "unknown_ceremony").await;

    // Only the good sign-in moved the counter.
    let now = list(&app, &login.access_token).await;
    assert_eq!(now[0]["sign_count"], after_good[0]["sign_count"]);
    assert_ne!(before[0]["sign_count"], now[0]["sign_count"]);
}

#[tokio::test]
async fn a_ceremony_started_on_one_instance_finishes_on_another() {
    let app = TestApp::builder().start().await;
    let login = app.signed_in("vic").await;
    let mut key = SoftKey::new();
    register(&app, &login, &mut key, "Key").await;
    let sibling = app.start_sibling(&[]).await;
    let (id, challenge) = login_start(&app).await;
    let credential = key.assert(&challenge);
    let resp = app
        .client
        .post(format!(
            "http://{}/auth/passkeys/login/finish",
            sibling.addr()
        ))
        .json(&json!({ "challenge_id": id, "credential": credential }))
        .send()
        .await
        .unwrap();
    login_from(resp).await;
    sibling.shutdown().await;
}

#[tokio::test]
async fn sign_in_starts_are_rate_limited_per_address() {
    let app = TestApp::builder()
        .vars(&[("LATCHKEY_PASSKEY_LOGIN_MAX_PER_IP", "2")])
        .start()
        .await;
    login_start(&app).await;
    login_start(&app).await;
    let resp = app
        .post_json("/auth/passkeys/login/start", &json!({}))
        .await;
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn with_an_ip_issuer_and_nothing_set_passkeys_are_off() {
    let app = TestApp::builder()
        .vars(&[("LATCHKEY_ISSUER", "http://127.0.0.1:9")])
        .start()
        .await;
    let resp = app
        .post_json("/auth/passkeys/login/start", &json!({}))
        .await;
    assert_problem(resp, StatusCode::NOT_FOUND, "passkeys_disabled").await;
}
