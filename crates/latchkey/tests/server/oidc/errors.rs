//! Every way a sign-in can fail: each ends at the app with `?error=CODE` (or a 400 problem
//! when no allowed `redirect_to` is known), and nothing is left half-created in the store.

use reqwest::StatusCode;
use serde_json::Value;

use super::helpers::{APP, Browser, PROVIDER, param, setup, start_app, urlencode};
use crate::kit::listener;

fn error_of(url: &str) -> Option<String> {
    assert!(url.starts_with(APP), "{url}");
    param(url, "error")
}

async fn problem_code(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    body["code"].as_str().unwrap().to_owned()
}

fn is_callback(url: &str) -> bool {
    url.contains(&format!("/auth/oauth/{PROVIDER}/callback"))
}

#[tokio::test]
async fn an_unknown_provider_or_redirect_target_is_refused() {
    let app = start_app(listener(), "http://127.0.0.1:9", &[]).await;
    let browser = Browser::new();
    let unknown = format!(
        "{}/auth/oauth/nope/authorize?redirect_to={}",
        app.base_url,
        urlencode(APP)
    );
    let response = browser.get(&unknown).await;
    assert_eq!(
        error_of(&Browser::location(&unknown, &response)).as_deref(),
        Some("unknown_provider")
    );
    let evil = format!(
        "{}/auth/oauth/{PROVIDER}/authorize?redirect_to={}",
        app.base_url,
        urlencode("https://evil.example/steal")
    );
    assert_eq!(
        problem_code(browser.get(&evil).await).await,
        "invalid_redirect_to"
    );
    let none = format!("{}/auth/oauth/{PROVIDER}/authorize", app.base_url);
    assert_eq!(
        problem_code(browser.get(&none).await).await,
        "invalid_redirect_to"
    );
}

#[tokio::test]
async fn a_provider_that_is_down_at_the_start_is_reported() {
    // Nothing listens on the discard port.
    let app = start_app(listener(), "http://127.0.0.1:9", &[]).await;
    let browser = Browser::new();
    let start = app.authorize_url();
    let response = browser.get(&start).await;
    let landed = Browser::location(&start, &response);
    assert_eq!(error_of(&landed).as_deref(), Some("provider_unavailable"));
}

#[tokio::test]
async fn a_provider_that_goes_down_before_the_code_exchange_is_reported() {
    let Some((mut provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    let callback = browser
        .walk(&app.authorize_url(), "grace", is_callback)
        .await;
    provider.stop();
    let response = browser.get(&callback).await;
    let landed = Browser::location(&callback, &response);
    assert_eq!(error_of(&landed).as_deref(), Some("provider_unavailable"));
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn declining_at_the_provider_comes_back_as_access_denied() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    // Stop at the provider's login page and press its Cancel link.
    let login_page = browser
        .walk(&app.authorize_url(), "heidi", |u| {
            u.contains("/interaction/")
        })
        .await;
    let html = browser.get(&login_page).await.text().await.unwrap();
    let abort = html
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.ends_with("/abort"))
        .expect("a cancel link");
    let abort = url::Url::parse(&login_page).unwrap().join(abort).unwrap();
    let landed = browser
        .walk(abort.as_str(), "heidi", |u| u.starts_with(APP))
        .await;
    assert_eq!(error_of(&landed).as_deref(), Some("access_denied"));
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_made_up_state_is_refused_with_a_problem() {
    let app = start_app(listener(), "http://127.0.0.1:9", &[]).await;
    let url = format!(
        "{}/auth/oauth/{PROVIDER}/callback?code=abc&state=made-up",
        app.base_url
    );
    assert_eq!(
        problem_code(Browser::new().get(&url).await).await,
        "invalid_state"
    );
    let url = format!("{}/auth/oauth/{PROVIDER}/callback?code=abc", app.base_url);
    assert_eq!(
        problem_code(Browser::new().get(&url).await).await,
        "invalid_state"
    );
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    let callback = browser
        .walk(&app.authorize_url(), "ivan", is_callback)
        .await;
    let first = browser.get(&callback).await;
    assert_eq!(Browser::location(&callback, &first), APP);
    let again = browser.get(&callback).await;
    assert_eq!(problem_code(again).await, "invalid_state");
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn a_callback_opened_in_another_browser_is_refused() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    // The attacker's sign-in, planted in the victim's browser (no binding cookie there).
    let attacker = Browser::new();
    let callback = attacker
        .walk(&app.authorize_url(), "mallory", is_callback)
        .await;
    let victim = Browser::new();
    let response = victim.get(&callback).await;
    let landed = Browser::location(&callback, &response);
    assert_eq!(error_of(&landed).as_deref(), Some("invalid_state"));
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    let start = app.authorize_url();
    let to_provider = Browser::location(&start, &browser.get(&start).await);
    let mut url = url::Url::parse(&to_provider).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                "someone-elses-nonce".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let landed = browser
        .walk(url.as_str(), "judy", |u| u.starts_with(APP))
        .await;
    assert_eq!(error_of(&landed).as_deref(), Some("nonce_mismatch"));
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn an_authorization_response_from_another_issuer_is_refused() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    let callback = browser.walk(&app.authorize_url(), "ken", is_callback).await;
    assert!(
        param(&callback, "iss").is_some(),
        "the provider sends RFC 9207 iss"
    );
    let forged = callback.replace("iss=", "iss=https%3A%2F%2Fevil.example&was=");
    let landed = Browser::location(&forged, &browser.get(&forged).await);
    assert_eq!(error_of(&landed).as_deref(), Some("issuer_mismatch"));
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn an_id_token_signed_by_another_key_is_refused() {
    let Some((_provider, app)) = setup(&[("ROGUE_JWKS", "1")], &[]).await else {
        return;
    };
    let browser = Browser::new();
    let landed = browser.sign_in(&app, "oscar").await;
    assert_eq!(error_of(&landed).as_deref(), Some("invalid_id_token"));
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_with_the_provider() {
    let Some((_provider, app)) = setup(&[], &[]).await else {
        return;
    };
    let browser = Browser::new();
    browser.sign_in(&app, "zoe").await;
    let id = browser.me(&app, &browser.refresh(&app).await).await["id"].clone();
    let id = uuid::Uuid::parse_str(id.as_str().unwrap()).unwrap();
    assert!(app.store().set_disabled(id, true).await.unwrap());
    let landed = Browser::new().sign_in(&app, "zoe").await;
    assert_eq!(error_of(&landed).as_deref(), Some("account_disabled"));
}
