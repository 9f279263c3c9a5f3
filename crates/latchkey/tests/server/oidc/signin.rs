//! The happy paths: a new user signs in, comes back, and gets Latchkey's own tokens.

use super::helpers::{APP, Browser, PROVIDER, param, password_user, setup, start_app};
use crate::kit::listener;

async fn signs_in_with_an_id_token_signed_by(alg: &str) {
    let Some((_provider, app)) = setup(&[("ID_TOKEN_ALG", alg)], &[]).await else {
        return;
    };
    let browser = Browser::new();
    let landed = browser.sign_in(&app, "alice").await;
    assert_eq!(landed, APP, "no token and no error in the URL");
    let token = browser.refresh(&app).await;
    let user = browser.me(&app, &token).await;
    assert_eq!(user["username"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(
        user["identities"],
        serde_json::json!([{"provider": PROVIDER, "subject": "alice", "email": "alice@example.com"}])
    );
}

#[tokio::test]
async fn a_new_user_signs_in_with_an_rs256_id_token_and_gets_a_refresh_cookie() {
    signs_in_with_an_id_token_signed_by("RS256").await;
}

#[tokio::test]
async fn es256_id_tokens_are_accepted() {
    signs_in_with_an_id_token_signed_by("ES256").await;
}

#[tokio::test]
async fn eddsa_id_tokens_are_accepted() {
    signs_in_with_an_id_token_signed_by("EdDSA").await;
}

#[tokio::test]
async fn signing_in_again_finds_the_same_user() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let first = Browser::new();
    first.sign_in(&app, "frank").await;
    let first_id = first.me(&app, &first.refresh(&app).await).await["id"].clone();
    let second = Browser::new();
    assert_eq!(second.sign_in(&app, "frank").await, APP);
    let second_id = second.me(&app, &second.refresh(&app).await).await["id"].clone();
    assert_eq!(first_id, second_id);
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn a_taken_username_is_made_unique_for_the_new_account() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    password_user(&browser, &app, "bob", None).await;
    let other = Browser::new();
    other.sign_in(&app, "bob").await;
    let user = other.me(&app, &other.refresh(&app).await).await;
    let name = user["username"].as_str().unwrap();
    assert!(name != "bob" && name.len() > 3, "{name}");
    assert_eq!(app.user_count().await, 2);
}

#[tokio::test]
async fn the_provider_list_names_the_authorize_urls() {
    let app = start_app(listener(), "http://127.0.0.1:9", &[]).await;
    let body: serde_json::Value = reqwest::get(format!("{}/auth/oauth/providers", app.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["providers"][0]["name"], PROVIDER);
    assert_eq!(
        body["providers"][0]["authorize_url"],
        format!("{}/auth/oauth/{PROVIDER}/authorize", app.base_url)
    );
    assert!(param(&app.authorize_url(), "redirect_to").is_some());
}
