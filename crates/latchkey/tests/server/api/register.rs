//! POST /auth/register: the user object, username rules and the password policy.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::kit::{PASSWORD, assert_problem, header, json_body, rfc3339, spawn_app, spawn_app_with};

#[tokio::test]
async fn registering_a_new_user_returns_201_with_the_user() {
    let app = spawn_app().await;

    let resp = app.register("alice", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::CREATED);
    let content_type = header(resp.headers(), "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "content-type {content_type}"
    );
    let text = resp.text().await.unwrap();
    assert!(!text.contains(PASSWORD), "the password is echoed: {text}");
    assert!(
        !text.to_lowercase().contains("argon2"),
        "a hash is exposed: {text}"
    );
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let user = &body["user"];
    assert!(
        user["id"].as_str().is_some_and(|id| !id.is_empty()),
        "user.id: {user}"
    );
    assert_eq!(user["username"], "alice");
    assert!(user["email"].is_null(), "email should be null: {user}");
    assert!(user["roles"].is_array(), "roles: {user}");
    let created = rfc3339(&user["created_at"], "created_at");
    let age = time::OffsetDateTime::now_utc() - created;
    assert!(
        age.whole_seconds().abs() < 60,
        "created_at is not now: {created}"
    );
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| !k.contains("password") && !k.contains("hash")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn registering_with_an_email_returns_the_email() {
    let app = spawn_app().await;

    let resp = app
        .post_json(
            "/auth/register",
            &json!({ "username": "alice", "password": PASSWORD, "email": "alice@example.com" }),
        )
        .await;

    let body = json_body(resp, StatusCode::CREATED).await;
    assert_eq!(body["user"]["email"], "alice@example.com");
}

#[tokio::test]
async fn two_users_get_distinct_ids() {
    let app = spawn_app().await;

    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;

    assert_ne!(alice["id"], bob["id"]);
}

#[tokio::test]
async fn registering_a_taken_username_is_409_username_taken() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    let resp = app
        .register("alice", "Another-Distinct-Passphrase-93")
        .await;

    assert_problem(resp, StatusCode::CONFLICT, "username_taken").await;
}

#[tokio::test]
async fn usernames_differing_only_in_case_are_the_same_username() {
    let app = spawn_app().await;
    app.create_user("alice").await;

    for variant in ["Alice", "ALICE", "aLiCe"] {
        let resp = app.register(variant, PASSWORD).await;
        assert_problem(resp, StatusCode::CONFLICT, "username_taken").await;
    }
}

#[tokio::test]
async fn usernames_are_compared_after_nfkc_normalization() {
    let app = spawn_app().await;
    app.create_user("bob").await;

    // Fullwidth letters normalize (NFKC) to plain "bob".
    let resp = app.register("\u{ff42}\u{ff4f}\u{ff42}", PASSWORD).await;

    assert_problem(resp, StatusCode::CONFLICT, "username_taken").await;
}

#[tokio::test]
async fn a_username_with_whitespace_is_400_invalid_input() {
    let app = spawn_app().await;

    for name in [
        "alice smith",
        "alice\tsmith",
        "alice\nsmith",
        " alice",
        "alice\u{a0}smith",
        "alice\u{3000}smith",
    ] {
        let resp = app.register(name, PASSWORD).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

#[tokio::test]
async fn a_username_with_control_characters_is_400_invalid_input() {
    let app = spawn_app().await;

    for name in [
        "ali\u{7}ce",
        "alice\u{0}",
        "alice\u{1b}[31m",
        "al\u{7f}ice",
        "al\u{85}ice",
    ] {
        let resp = app.register(name, PASSWORD).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

#[tokio::test]
async fn an_empty_or_over_long_username_is_400_invalid_input() {
    let app = spawn_app().await;

    for name in [String::new(), "a".repeat(65), "\u{e9}".repeat(65)] {
        let resp = app.register(&name, PASSWORD).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

#[tokio::test]
async fn usernames_of_1_to_64_characters_are_accepted() {
    let app = spawn_app().await;

    // 64 two-byte characters: the limit counts characters, not bytes.
    for name in ["a".to_owned(), "b".repeat(64), "\u{e9}".repeat(64)] {
        let resp = app.register(&name, PASSWORD).await;
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "username of {} chars",
            name.chars().count()
        );
    }
}

#[tokio::test]
async fn a_password_shorter_than_15_characters_is_400_invalid_input() {
    let app = spawn_app().await;

    let resp = app.register("alice", "Xq7#kLp2@vN9zR").await; // 14 characters

    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
}

#[tokio::test]
async fn the_minimum_password_length_is_configurable() {
    let app = spawn_app_with(&[("LATCHKEY_PASSWORD_MIN_LENGTH", "20")]).await;

    let short = app.register("alice", "Xq7#kLp2@vN9zRwT4!m").await; // 19 characters
    assert_problem(short, StatusCode::BAD_REQUEST, "invalid_input").await;

    let enough = app.register("alice", "Xq7#kLp2@vN9zRwT4!mY").await; // 20 characters
    assert_eq!(enough.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_minimum_password_length_below_8_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let vars: HashMap<String, String> = [
        ("LATCHKEY_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "LATCHKEY_DATABASE_URL",
            format!("sqlite://{}/latchkey.db", dir.path().display()),
        ),
        ("LATCHKEY_ISSUER", "http://latchkey.test".to_owned()),
        ("LATCHKEY_PASSWORD_MIN_LENGTH", "7".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    let result = latchkey::Config::from_env_map(&vars);

    assert!(result.is_err(), "a minimum of 7 is accepted");
}

#[tokio::test]
async fn common_or_easily_guessed_passwords_are_400_invalid_input() {
    let app = spawn_app().await;

    for password in [
        "passwordpassword",
        "aaaaaaaaaaaaaaaaaaaa",
        "1234567890123456789",
    ] {
        let resp = app.register("alice", password).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

#[tokio::test]
async fn a_password_of_1024_bytes_is_accepted_and_1025_bytes_refused() {
    let app = spawn_app().await;
    let random: String = (0..40)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();

    let too_long = app.register("alice", &random[..1025]).await;
    assert_problem(too_long, StatusCode::BAD_REQUEST, "invalid_input").await;

    let longest = app.register("alice", &random[..1024]).await;
    assert_eq!(longest.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_refused_registration_creates_no_user() {
    let app = spawn_app().await;
    let refused = app.register("alice", "short").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let resp = app.register("alice", PASSWORD).await;

    assert_eq!(resp.status(), StatusCode::CREATED);
}
