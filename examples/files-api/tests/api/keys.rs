//! Living with the issuer: key rotation without restart, roles and account state that change
//! at refresh, and an issuer that goes away.

use std::time::Duration;

use latchkey::auth::keys::generate_key;
use latchkey::config::SigningAlg;
use latchkey_guard::jsonwebtoken::decode_header;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::helpers::{assert_problem, spawn_stack};

fn kid(token: &str) -> String {
    decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn after_a_key_rotation_new_tokens_are_accepted_and_old_ones_still_verify() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    // A token of the old key that files-api has not seen yet (so not in its verified cache).
    let old_unseen = stack.login("olive").await;

    // `latchkey keys rotate`, as the CLI does it: a new current key in the store.
    let config = latchkey::Config::from_env_map(&stack.latchkey_env).unwrap();
    let store = latchkey::store::open(&config.database_url).await.unwrap();
    let key = generate_key(SigningAlg::EdDSA, OffsetDateTime::now_utc()).unwrap();
    store.add_signing_key(&key).await.unwrap();
    // The running Latchkey picks it up at its next key reload (1 s in these tests).
    let mut fresh = stack.login("olive").await;
    for _ in 0..50 {
        if kid(&fresh.token) == key.kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fresh = stack.login("olive").await;
    }
    assert_eq!(
        kid(&fresh.token),
        key.kid,
        "Latchkey signs with the rotated key"
    );
    assert_ne!(kid(&old_unseen.token), key.kid);

    assert_eq!(
        stack.read_status(&id, &fresh.token).await,
        StatusCode::OK,
        "new key fetched on demand"
    );
    assert_eq!(
        stack.read_status(&id, &old_unseen.token).await,
        StatusCode::OK,
        "old key still published"
    );
    assert_eq!(stack.read_status(&id, &owner.token).await, StatusCode::OK);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_role_granted_by_an_admin_counts_at_files_api_after_the_users_refresh() {
    let stack = spawn_stack().await;
    let admin = stack.user_with_roles("ada", &["admin"]).await;
    let owner = stack.user("olive").await;
    let mary = stack.user("mary").await;
    let id = stack.create_file(&owner, "a.txt").await;
    assert_eq!(
        stack.read_status(&id, &mary.token).await,
        StatusCode::NOT_FOUND
    );

    let grant = admin
        .client
        .put(format!("{}/admin/users/{}/roles", stack.issuer, mary.id))
        .bearer_auth(&admin.token)
        .json(&json!({ "roles": ["admin"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), StatusCode::OK);
    // Her current token was issued before the grant: still no admin.
    assert_eq!(
        stack.read_status(&id, &mary.token).await,
        StatusCode::NOT_FOUND
    );
    let refreshed: Value = stack.refresh(&mary).await.json().await.unwrap();
    let token = refreshed["access_token"].as_str().unwrap();
    assert_eq!(stack.read_status(&id, token).await, StatusCode::OK);
    stack.shutdown().await;
}

#[tokio::test]
async fn a_disabled_users_refresh_fails_and_their_last_token_lives_only_until_it_expires() {
    let stack = spawn_stack().await;
    let admin = stack.user_with_roles("ada", &["admin"]).await;
    let mary = stack.user("mary").await;
    let id = stack.create_file(&mary, "a.txt").await;
    let disable = admin
        .client
        .post(format!("{}/admin/users/{}/disable", stack.issuer, mary.id))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(disable.status(), StatusCode::NO_CONTENT);
    assert_problem(
        stack.refresh(&mary).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    // Access tokens are verified offline: the one she holds works until its `exp` (at most the
    // access-token lifetime, 1 minute here). That is the price of not calling the issuer.
    assert_eq!(stack.read_status(&id, &mary.token).await, StatusCode::OK);
    stack.shutdown().await;
}

#[tokio::test]
async fn files_api_keeps_verifying_from_its_cached_keys_while_the_issuer_is_down() {
    let mut stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    let unseen = stack.login("olive").await;
    stack.stop_latchkey().await;
    assert_eq!(stack.read_status(&id, &unseen.token).await, StatusCode::OK);
    // A token naming an unknown key tries one refetch, which fails fast: a 401, not a hang.
    let started = std::time::Instant::now();
    let bogus = format!(
        "{}.e30.c2ln",
        base64_json(&json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": "nope" }))
    );
    assert_eq!(
        stack.read_status(&id, &bogus).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(stack.read_status(&id, &owner.token).await, StatusCode::OK);
    stack.shutdown().await;
}

fn base64_json(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}
