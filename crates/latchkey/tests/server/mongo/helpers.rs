//! The MongoDB area's harness: a SecantusDB server of the test's own, the kit's [`TestApp`]
//! on it, and the few endpoint helpers these tests add.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::kit::{PASSWORD, Secantus, TestApp, assert_problem, json_body, plain_client};

/// A database on a SecantusDB server of this test; `None` (skip) when it is not installed.
pub struct Mongo {
    pub server: Secantus,
    pub url: String,
}

impl Mongo {
    pub fn start() -> Option<Self> {
        let server = Secantus::start()?;
        let url = server.url("latchkey");
        Some(Self { server, url })
    }
}

/// Starts a server on `database_url` with the test defaults overridden by `extra`.
pub async fn spawn_app(database_url: &str, extra: &[(&str, &str)]) -> TestApp {
    TestApp::builder()
        .database_url(database_url)
        .vars(extra)
        .start()
        .await
}

impl TestApp {
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// A refresh that owns what it needs, for spawning concurrent ones.
    pub fn refresh_owned(
        &self,
        refresh_token: &str,
    ) -> impl Future<Output = Response> + Send + 'static {
        let request = plain_client()
            .post(self.url("/auth/refresh"))
            .header("cookie", format!("{}={refresh_token}", crate::kit::COOKIE));
        async move { request.send().await.expect("request") }
    }

    /// A registration that owns what it needs, for spawning concurrent ones.
    pub fn register_owned(
        &self,
        username: &str,
    ) -> impl Future<Output = Response> + Send + 'static {
        let request = plain_client()
            .post(self.url("/auth/register"))
            .json(&json!({ "username": username, "password": PASSWORD }));
        async move { request.send().await.expect("request") }
    }

    /// The kids the JWKS publishes.
    pub async fn published_kids(&self) -> Vec<String> {
        let jwks = json_body(self.get("/.well-known/jwks.json").await, StatusCode::OK).await;
        jwks["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_owned())
            .collect()
    }
}

/// Asserts 503 `store_unavailable` with `Retry-After`.
pub async fn assert_unavailable(resp: Response) {
    let retry_after = resp.headers().contains_key("retry-after");
    assert_problem(resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable").await;
    assert!(retry_after, "no Retry-After");
}

/// The `kid` in an access token's header.
pub fn kid_of(access_token: &str) -> String {
    let header = access_token.split('.').next().expect("a JWS");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("JSON");
    header["kid"].as_str().expect("kid").to_owned()
}

/// Polls `check` every 100 ms until it is true or `within` has passed; returns whether it
/// became true.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
