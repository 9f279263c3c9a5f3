//! Linking provider accounts to existing users, by request or by verified email, and
//! unlinking them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::helpers::{APP, Browser, PROVIDER, param, password_user, setup, start_app};
use crate::kit::{TestApp, listener};

/// Starts linking for the holder of `token`; the provider URL to walk.
async fn start_link(browser: &Browser, app: &TestApp, token: &str) -> String {
    let response = browser
        .http
        .post(format!("{}/auth/oauth/{PROVIDER}/link", app.base_url))
        .bearer_auth(token)
        .json(&json!({ "redirect_to": APP }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["authorization_url"].as_str().unwrap().to_owned()
}

async fn unlink(browser: &Browser, app: &TestApp, token: &str) -> reqwest::Response {
    browser
        .http
        .delete(format!("{}/auth/oauth/{PROVIDER}/link", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_logged_in_user_links_a_provider_account_and_then_signs_in_with_it() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    let token = password_user(&browser, &app, "peggy", None).await;
    let url = start_link(&browser, &app, &token).await;
    let landed = browser
        .walk(&url, "peggy-google", |u| u.starts_with(APP))
        .await;
    assert_eq!(landed, APP);
    let me = browser.me(&app, &token).await;
    assert_eq!(me["identities"][0]["subject"], "peggy-google");
    let other = Browser::new();
    other.sign_in(&app, "peggy-google").await;
    assert_eq!(
        other.me(&app, &other.refresh(&app).await).await["id"],
        me["id"]
    );
    assert_eq!(
        unlink(&browser, &app, &token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(browser.me(&app, &token).await["identities"], json!([]));
    assert_eq!(
        unlink(&browser, &app, &token).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_last_way_to_log_in_cannot_be_unlinked() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    browser.sign_in(&app, "quentin").await;
    let token = browser.refresh(&app).await;
    let response = unlink(&browser, &app, &token).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "last_login_method");
    assert_eq!(
        browser.me(&app, &token).await["identities"][0]["subject"],
        "quentin"
    );
}

#[tokio::test]
async fn an_account_linked_to_someone_else_cannot_be_linked_again() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    Browser::new().sign_in(&app, "carol").await;
    let browser = Browser::new();
    let token = password_user(&browser, &app, "carl", None).await;
    let url = start_link(&browser, &app, &token).await;
    let landed = browser.walk(&url, "carol", |u| u.starts_with(APP)).await;
    assert_eq!(param(&landed, "error").as_deref(), Some("identity_taken"));
    assert_eq!(browser.me(&app, &token).await["identities"], json!([]));
}

#[tokio::test]
async fn linking_needs_a_logged_in_user() {
    let app = start_app(listener(), "http://127.0.0.1:9", &[]).await;
    let response = Browser::new()
        .http
        .post(format!("{}/auth/oauth/{PROVIDER}/link", app.base_url))
        .json(&json!({ "redirect_to": APP }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Marks the user's email as verified by Latchkey, as the email-verification flow will.
async fn verify_email(app: &TestApp, username: &str) {
    let store = app.store();
    let mut user = store
        .find_user_by_username(username)
        .await
        .unwrap()
        .expect("the user exists");
    user.email_verified = true;
    store.import_user(&user).await.unwrap();
}

#[tokio::test]
async fn an_unverified_local_email_neither_blocks_nor_receives_a_provider_sign_up() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    // Someone registers a password account with dave's address before dave ever signs in.
    password_user(&Browser::new(), &app, "squatter", Some("dave@example.com")).await;
    let browser = Browser::new();
    assert_eq!(
        browser.sign_in(&app, "dave").await,
        APP,
        "no account_exists"
    );
    let user = browser.me(&app, &browser.refresh(&app).await).await;
    assert_eq!(user["username"], "dave", "a new account of dave's own");
    assert_eq!(app.user_count().await, 2);
}

#[tokio::test]
async fn a_latchkey_verified_email_of_an_existing_account_blocks_sign_up_unless_auto_linking() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    password_user(&Browser::new(), &app, "dave", Some("dave@example.com")).await;
    verify_email(&app, "dave").await;
    let landed = Browser::new().sign_in(&app, "dave").await;
    assert_eq!(param(&landed, "error").as_deref(), Some("account_exists"));
    assert_eq!(app.user_count().await, 1);
    // An email the provider does not vouch for never links, and never blocks.
    password_user(
        &Browser::new(),
        &app,
        "eve",
        Some("unverified-eve@example.com"),
    )
    .await;
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app, "unverified-eve").await, APP);
    let user = browser.me(&app, &browser.refresh(&app).await).await;
    assert_eq!(user["email"], Value::Null);
    assert_eq!(app.user_count().await, 3);
}

#[tokio::test]
async fn auto_linking_never_links_into_an_account_whose_email_latchkey_did_not_verify() {
    let Some((_provider, app)) =
        setup(&[], &[("LATCHKEY_OAUTH_AUTO_LINK_VERIFIED_EMAIL", "true")]).await
    else {
        return;
    };
    // The attacker registers with the victim's address and knows the password.
    let attacker = Browser::new();
    let token = password_user(&attacker, &app, "mallory", Some("Dave@Example.com")).await;
    let attacker_id = attacker.me(&app, &token).await["id"].clone();
    let victim = Browser::new();
    assert_eq!(victim.sign_in(&app, "dave").await, APP);
    let user = victim.me(&app, &victim.refresh(&app).await).await;
    assert_ne!(
        user["id"], attacker_id,
        "not signed in to the attacker's account"
    );
    assert_eq!(user["identities"][0]["subject"], "dave");
    let attackers = attacker.me(&app, &token).await;
    assert_eq!(attackers["identities"], serde_json::json!([]));
    assert_eq!(app.user_count().await, 2);
}

#[tokio::test]
async fn with_auto_linking_on_a_verified_email_signs_in_to_the_existing_account() {
    let Some((_provider, app)) =
        setup(&[], &[("LATCHKEY_OAUTH_AUTO_LINK_VERIFIED_EMAIL", "true")]).await
    else {
        return;
    };
    let owner = Browser::new();
    let token = password_user(&owner, &app, "dave", Some("Dave@Example.com")).await;
    verify_email(&app, "dave").await;
    let id = owner.me(&app, &token).await["id"].clone();
    let browser = Browser::new();
    assert_eq!(browser.sign_in(&app, "dave").await, APP);
    let user = browser.me(&app, &browser.refresh(&app).await).await;
    assert_eq!(user["id"], id);
    assert_eq!(user["identities"][0]["subject"], "dave");
    assert_eq!(app.user_count().await, 1);
}
