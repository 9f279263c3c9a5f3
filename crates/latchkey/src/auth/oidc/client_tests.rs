//! Tests of the provider client against a small in-process provider (discovery, JWKS, token
//! endpoint) whose answers the tests change.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::*;

#[derive(Clone)]
struct Fake {
    issuer: String,
    announced_issuer: String,
    jwks_calls: Arc<AtomicUsize>,
    kids: Arc<RwLock<Vec<String>>>,
    methods: Vec<String>,
    seen: Arc<RwLock<Vec<String>>>,
}

fn jwk(kid: &str) -> Value {
    // An Ed25519 public key (RFC 8037 appendix A.2); only its kid matters here.
    json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA",
           "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
}

async fn discovery(State(f): State<Fake>) -> Json<Value> {
    let i = &f.issuer;
    Json(json!({
        "issuer": f.announced_issuer,
        "authorization_endpoint": format!("{i}/auth"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "token_endpoint_auth_methods_supported": f.methods,
    }))
}

async fn jwks(State(f): State<Fake>) -> Json<Value> {
    f.jwks_calls.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<Value> = f.kids.read().iter().map(|k| jwk(k)).collect();
    Json(json!({ "keys": keys }))
}

async fn token(State(f): State<Fake>, headers: HeaderMap, body: String) -> Json<Value> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    f.seen.write().push(format!("{auth} | {body}"));
    Json(json!({ "id_token": "x.y.z", "access_token": "at" }))
}

async fn start(announce_other_issuer: bool, methods: &[&str]) -> (ProviderClient, Fake) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake {
        announced_issuer: if announce_other_issuer {
            "https://elsewhere.example".into()
        } else {
            issuer.clone()
        },
        issuer: issuer.clone(),
        jwks_calls: Arc::default(),
        kids: Arc::new(RwLock::new(vec!["k1".into()])),
        methods: methods.iter().map(|m| (*m).to_owned()).collect(),
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = crate::config::OAuthProviderConfig {
        name: "fake".into(),
        issuer,
        client_id: "my client".into(),
        client_secret: SecretString::from("p@ss:word"),
        scopes: vec!["openid".into()],
        display_name: "Fake".into(),
    };
    (ProviderClient::new(config, reqwest::Client::new()), fake)
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_but_not_more_often_than_allowed() {
    let (mut client, fake) = start(false, &[]).await;
    assert!(client.keys(Some("k1")).await.unwrap().knows("k1"));
    assert!(client.keys(Some("k1")).await.unwrap().knows("k1"));
    assert_eq!(fake.jwks_calls.load(Ordering::SeqCst), 1, "cached");
    // The provider rotates its key: within the minimum interval the cache answers...
    *fake.kids.write() = vec!["k2".into()];
    assert!(!client.keys(Some("k2")).await.unwrap().knows("k2"));
    assert_eq!(fake.jwks_calls.load(Ordering::SeqCst), 1);
    // ...after it, the unknown kid makes one refetch.
    client.min_refetch = Duration::ZERO;
    assert!(client.keys(Some("k2")).await.unwrap().knows("k2"));
    assert_eq!(fake.jwks_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let (client, _fake) = start(true, &[]).await;
    assert!(matches!(
        client.metadata().await,
        Err(OAuthError::ProviderUnavailable(_))
    ));
}

#[tokio::test]
async fn the_client_secret_goes_by_basic_unless_only_post_is_offered() {
    let verifier = SecretString::from("verifier");
    let (client, fake) = start(false, &["client_secret_basic", "client_secret_post"]).await;
    let metadata = client.metadata().await.unwrap();
    client
        .exchange_code(&metadata, "the code", "http://rp/cb", &verifier)
        .await
        .unwrap();
    let seen = fake.seen.read()[0].clone();
    // RFC 6749 section 2.3.1: form-urlencoded, then Base64 ("my+client:p%40ss%3Aword").
    assert!(
        seen.starts_with("Basic bXkrY2xpZW50OnAlNDBzcyUzQXdvcmQ= | "),
        "{seen}"
    );
    assert!(seen.contains("code_verifier=verifier") && !seen.contains("client_secret"));

    let (client, fake) = start(false, &["client_secret_post"]).await;
    let metadata = client.metadata().await.unwrap();
    client
        .exchange_code(&metadata, "the code", "http://rp/cb", &verifier)
        .await
        .unwrap();
    let seen = fake.seen.read()[0].clone();
    assert!(seen.starts_with("none | "), "{seen}");
    assert!(seen.contains("client_id=my+client") && seen.contains("client_secret=p%40ss%3Aword"));
}
