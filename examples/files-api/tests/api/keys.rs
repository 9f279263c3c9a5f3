//! Living with the issuer: key rotation without restart, roles and account state that change
//! at refresh, and an issuer that goes away.

use std::time::Duration;

use latchkey::auth::keys::rollover;
use latchkey::config::SigningAlg;
use latchkey_guard::jsonwebtoken::decode_header;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_stack};

fn kid(token: &str) -> String {
    decode_header(token).unwrap().kid.unwrap()
}

/// `latchkey keys rotate` (or `--now`), as the CLI does it, on the stack's Latchkey store.
async fn rotate(
    stack: &crate::helpers::Stack,
    now: bool,
) -> latchkey::auth::keys::rollover::Rotation {
    let config = latchkey::Config::from_env_map(&stack.latchkey_env).unwrap();
    let store = latchkey::store::open(&config.database_url).await.unwrap();
    rollover::rotate(&*store, SigningAlg::EdDSA, config.key_publish_ahead, now)
        .await
        .unwrap()
}

#[tokio::test]
async fn after_a_key_rotation_new_tokens_are_accepted_and_old_ones_still_verify() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    // A token of the old key that files-api has not seen yet (so not in its verified cache).
    let old_unseen = stack.login("olive").await;

    let rotation = rotate(&stack, false).await;
    // The new key signs after the publication delay (3 s in these tests).
    let mut fresh = stack.login("olive").await;
    for _ in 0..60 {
        if kid(&fresh.token) == rotation.kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fresh = stack.login("olive").await;
    }
    assert_eq!(
        kid(&fresh.token),
        rotation.kid,
        "Latchkey signs with the rotated key"
    );
    assert_ne!(kid(&old_unseen.token), rotation.kid);

    assert_eq!(
        stack.read_status(&id, &fresh.token).await,
        StatusCode::OK,
        "new key known before it signed"
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
async fn every_token_verifies_on_the_first_try_through_a_rotation_under_a_stream_of_unknown_kids() {
    let stack = std::sync::Arc::new(spawn_stack().await);
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    // The attacker: a made-up kid every 100 ms, so files-api's on-demand refetch is always in
    // its cooldown (10 s) when a real new kid would need it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let (stack, stop, id) = (stack.clone(), stop.clone(), id.clone());
        tokio::spawn(async move {
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let bogus = format!(
                    "{}.e30.c2ln",
                    base64_json(
                        &json!({ "alg": "EdDSA", "typ": "at+jwt", "kid": format!("made-up-{sent}") })
                    )
                );
                assert_eq!(
                    stack.read_status(&id, &bogus).await,
                    StatusCode::UNAUTHORIZED
                );
                sent += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let old_kid = kid(&stack.login("olive").await.token);
    let rotation = rotate(&stack, false).await;
    let started = std::time::Instant::now();
    let (mut old_tokens, mut new_tokens) = (Vec::new(), 0u32);
    // Every token Latchkey issues, before and after the switch (3 s after the rotation), is
    // used at files-api at once: each must verify on its first try.
    while started.elapsed() < Duration::from_secs(6) {
        let session = stack.login("olive").await;
        let token_kid = kid(&session.token);
        assert_eq!(
            stack.read_status(&id, &session.token).await,
            StatusCode::OK,
            "a token of key {token_kid} was refused {:?} after the rotation",
            started.elapsed()
        );
        if token_kid == rotation.kid {
            new_tokens += 1;
        } else {
            assert_eq!(token_kid, old_kid);
            old_tokens.push(session.token);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = attacker.await.unwrap();
    eprintln!(
        "rollover under attack: {sent} made-up kids, {} tokens of the old key and {new_tokens} of \
         the new one, all verified on the first try",
        old_tokens.len()
    );
    assert!(sent >= 10, "the attack ran ({sent} made-up kids)");
    assert!(
        !old_tokens.is_empty() && new_tokens > 0,
        "the switch happened during the run ({} old, {new_tokens} new)",
        old_tokens.len()
    );
    // The old key stays published: its tokens still verify after the switch.
    assert_eq!(
        stack.read_status(&id, old_tokens.last().unwrap()).await,
        StatusCode::OK
    );
    match std::sync::Arc::try_unwrap(stack) {
        Ok(stack) => stack.shutdown().await,
        Err(_) => panic!("the stack is still shared"),
    }
}

#[tokio::test]
async fn rotate_now_withdraws_the_old_key_everywhere() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    let old_unseen = stack.login("olive").await;
    let rotation = rotate(&stack, true).await;
    assert_eq!(rotation.withdrawn, 1);
    // Latchkey reloads within 1 s; files-api refreshes on the 1 s max-age.
    let mut refused = false;
    for _ in 0..50 {
        if stack.read_status(&id, &old_unseen.token).await == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "a token of the withdrawn key is refused");
    let fresh = stack.login("olive").await;
    assert_eq!(kid(&fresh.token), rotation.kid, "the new key signs at once");
    assert_eq!(stack.read_status(&id, &fresh.token).await, StatusCode::OK);
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
