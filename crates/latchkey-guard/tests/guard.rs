//! The guard as a resource server uses it: keys from a source (refetched on an unknown `kid`,
//! at most once per interval), keys from a fake issuer over HTTP, and role requirements.

// Test helpers outside `#[test]` functions fail loudly too (clippy.toml covers only the latter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use latchkey_guard::jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use latchkey_guard::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use latchkey_guard::{
    Admin, Authenticated, KeyFetchError, KeySource, RemoteKeys, RequireRole, Verifier,
    VerifierSettings, VerifyError, require_role,
};
use parking_lot::Mutex;
use serde_json::json;
use tower::ServiceExt;

const ISSUER: &str = "https://auth.test";
const KEY_A: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIObljVnu3+xvB8SRkb/1+4Rqr7ei8m4Hw5QVRKC3lZh5\n-----END PRIVATE KEY-----\n";
const KEY_B: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIEmqTuF/WW7iWmm+EQPNILFxgikfnsZMdH+XF80qfJlc\n-----END PRIVATE KEY-----\n";

fn private(pem: &str) -> EncodingKey {
    EncodingKey::from_ed_pem(pem.as_bytes()).unwrap()
}

fn jwks(keys: &[(&str, &str)]) -> JwkSet {
    let keys = keys
        .iter()
        .map(|(kid, pem)| {
            let mut jwk = Jwk::from_encoding_key(&private(pem), Algorithm::EdDSA).unwrap();
            jwk.common.key_id = Some((*kid).to_owned());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
            jwk
        })
        .collect();
    JwkSet { keys }
}

fn token(kid: &str, pem: &str, roles: &[&str]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    let claims = json!({
        "iss": ISSUER, "sub": "user-1", "aud": ISSUER, "exp": now + 60, "iat": now,
        "jti": format!("{kid}-{now}"), "roles": roles,
    });
    encode(&header, &claims, &private(pem)).unwrap()
}

/// A key source that counts its fetches and serves whatever the test puts in it.
struct Counting {
    fetches: AtomicUsize,
    answer: Mutex<Result<JwkSet, KeyFetchError>>,
}

impl Counting {
    fn new(jwks: JwkSet) -> Arc<Self> {
        Arc::new(Self {
            fetches: AtomicUsize::new(0),
            answer: Mutex::new(Ok(jwks)),
        })
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeySource for Counting {
    async fn fetch(&self) -> Result<JwkSet, KeyFetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.answer.lock().clone()
    }
}

fn verifier(source: Arc<Counting>, interval: Duration) -> Arc<Verifier> {
    Arc::new(Verifier::new(VerifierSettings::new(ISSUER, ISSUER)).with_key_source(source, interval))
}

#[tokio::test]
async fn a_token_with_a_new_kid_triggers_one_refetch_and_verifies() {
    let source = Counting::new(jwks(&[("a", KEY_A)]));
    let verifier = verifier(source.clone(), Duration::from_secs(10));
    assert_eq!(
        verifier.verify(&token("a", KEY_A, &[])),
        Err(VerifyError::UnknownKey)
    );
    let claims = verifier
        .authenticate(&token("a", KEY_A, &[]))
        .await
        .unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(source.fetches(), 1);
    verifier
        .authenticate(&token("a", KEY_A, &["x"]))
        .await
        .unwrap();
    assert_eq!(source.fetches(), 1, "a known kid needs no fetch");
}

#[tokio::test]
async fn made_up_kids_cause_at_most_one_fetch_per_interval() {
    let source = Counting::new(jwks(&[("a", KEY_A)]));
    let verifier = verifier(source.clone(), Duration::from_secs(10));
    let attempts = (0..200).map(|i| {
        let verifier = verifier.clone();
        tokio::spawn(async move {
            verifier
                .authenticate(&token(&format!("junk-{i}"), KEY_B, &[]))
                .await
        })
    });
    for attempt in attempts {
        assert_eq!(attempt.await.unwrap(), Err(VerifyError::UnknownKey));
    }
    assert_eq!(source.fetches(), 1);
    // The periodic refresh is not rate-limited, and a real new key still gets in afterwards
    // through it.
    *source.answer.lock() = Ok(jwks(&[("a", KEY_A), ("b", KEY_B)]));
    verifier.refresh_keys().await.unwrap();
    verifier
        .authenticate(&token("b", KEY_B, &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_next_unknown_kid_after_the_interval_fetches_again() {
    let source = Counting::new(jwks(&[("a", KEY_A)]));
    let verifier = verifier(source.clone(), Duration::from_millis(200));
    assert!(
        verifier
            .authenticate(&token("b", KEY_B, &[]))
            .await
            .is_err()
    );
    *source.answer.lock() = Ok(jwks(&[("a", KEY_A), ("b", KEY_B)]));
    assert!(
        verifier
            .authenticate(&token("b", KEY_B, &[]))
            .await
            .is_err(),
        "too soon"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    verifier
        .authenticate(&token("b", KEY_B, &[]))
        .await
        .unwrap();
    assert_eq!(source.fetches(), 2);
}

#[tokio::test]
async fn a_failing_source_leaves_the_cached_keys_in_use() {
    let source = Counting::new(jwks(&[("a", KEY_A)]));
    let verifier = verifier(source.clone(), Duration::from_secs(10));
    verifier.refresh_keys().await.unwrap();
    *source.answer.lock() = Err(KeyFetchError::Status {
        url: "x".into(),
        status: 503,
    });
    assert!(verifier.refresh_keys().await.is_err());
    verifier
        .authenticate(&token("a", KEY_A, &[]))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_background_refresh_installs_new_keys_and_removed_keys_stop_verifying() {
    let source = Counting::new(jwks(&[("a", KEY_A)]));
    let verifier = verifier(source.clone(), Duration::from_secs(10));
    verifier.refresh_keys().await.unwrap();
    let old = token("a", KEY_A, &[]);
    verifier.authenticate(&old).await.unwrap();
    let _task = verifier.spawn_key_refresh(Duration::from_secs(1));
    *source.answer.lock() = Ok(jwks(&[("b", KEY_B)]));
    for _ in 0..40 {
        if verifier.knows_kid("b") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(verifier.knows_kid("b"));
    // Key `a` left the set: its token, though cached as verified, no longer passes.
    assert_eq!(verifier.verify(&old), Err(VerifyError::UnknownKey));
}

/// A fake issuer: discovery (naming `claimed_issuer`) and a JWKS, counting requests.
async fn fake_issuer(
    claimed_issuer: Option<&str>,
    jwks_status: StatusCode,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = claimed_issuer.map_or_else(|| base.clone(), str::to_owned);
    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (hits.clone(), hits.clone());
    let jwks_uri = format!("{base}/keys");
    let body = serde_json::to_string(&jwks(&[("a", KEY_A)])).unwrap();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || async move {
                h1.fetch_add(1, Ordering::SeqCst);
                axum::Json(json!({ "issuer": issuer, "jwks_uri": jwks_uri }))
            }),
        )
        .route(
            "/keys",
            get(move || async move {
                h2.fetch_add(1, Ordering::SeqCst);
                (jwks_status, body)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

#[tokio::test]
async fn remote_keys_follow_the_discovery_document_of_the_exact_issuer() {
    let (base, hits) = fake_issuer(None, StatusCode::OK).await;
    let keys = RemoteKeys::new(&base, Duration::from_secs(2)).unwrap();
    let set = keys.fetch().await.unwrap();
    assert_eq!(set.keys[0].common.key_id.as_deref(), Some("a"));
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // With a trailing slash the configured issuer is not the one the document names.
    let slashed = RemoteKeys::new(&format!("{base}/"), Duration::from_secs(2)).unwrap();
    assert!(matches!(
        slashed.fetch().await,
        Err(KeyFetchError::IssuerMismatch { .. })
    ));
}

#[tokio::test]
async fn remote_keys_refuse_a_document_naming_another_issuer_and_report_http_errors() {
    let (base, _) = fake_issuer(Some("https://evil.test"), StatusCode::OK).await;
    let keys = RemoteKeys::new(&base, Duration::from_secs(2)).unwrap();
    assert!(matches!(
        keys.fetch().await,
        Err(KeyFetchError::IssuerMismatch { .. })
    ));
    let (base, _) = fake_issuer(None, StatusCode::INTERNAL_SERVER_ERROR).await;
    let keys = RemoteKeys::new(&base, Duration::from_secs(2)).unwrap();
    assert!(matches!(
        keys.fetch().await,
        Err(KeyFetchError::Status { status: 500, .. })
    ));
    let down = RemoteKeys::new("http://127.0.0.1:1", Duration::from_secs(2)).unwrap();
    assert!(matches!(
        down.fetch().await,
        Err(KeyFetchError::Http { .. })
    ));
    assert!(matches!(
        RemoteKeys::new("ftp://x", Duration::from_secs(1)),
        Err(KeyFetchError::InvalidIssuer(_))
    ));
}

async fn status_and_code(app: Router, token: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get("/").body(Body::empty()).unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

#[tokio::test]
async fn a_role_requirement_is_401_without_a_token_403_without_the_role_and_200_with_it() {
    let verifier = Arc::new(Verifier::new(VerifierSettings::new(ISSUER, ISSUER)));
    verifier.replace_keys(&jwks(&[("a", KEY_A)])).unwrap();
    let by_extractor = Router::new()
        .route(
            "/",
            get(|RequireRole(claims, ..): RequireRole<Admin>| async move { claims.sub.clone() }),
        )
        .with_state(verifier.clone());
    let by_layer = Router::new()
        .route(
            "/",
            get(|Authenticated(claims): Authenticated| async move { claims.sub.clone() }),
        )
        .route_layer(require_role(verifier.clone(), "admin"))
        .with_state(verifier.clone());
    for app in [by_extractor, by_layer] {
        assert_eq!(
            status_and_code(app.clone(), None).await,
            (StatusCode::UNAUTHORIZED, "invalid_token".into())
        );
        assert_eq!(
            status_and_code(app.clone(), Some("junk")).await,
            (StatusCode::UNAUTHORIZED, "invalid_token".into())
        );
        let user = token("a", KEY_A, &["editor"]);
        assert_eq!(
            status_and_code(app.clone(), Some(&user)).await,
            (StatusCode::FORBIDDEN, "insufficient_permission".into())
        );
        let admin = token("a", KEY_A, &["admin"]);
        assert_eq!(status_and_code(app, Some(&admin)).await.0, StatusCode::OK);
    }
}
