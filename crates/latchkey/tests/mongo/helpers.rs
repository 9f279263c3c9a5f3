//! The harness: Latchkey servers on random ports backed by a SecantusDB (MongoDB wire
//! protocol) server of the test's own, a real HTTP client, and endpoint helpers.

use std::collections::HashMap;
use std::sync::Once;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::{Config, Server};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub use crate::secantus::Secantus;

pub const ISSUER: &str = "http://latchkey.test";
pub const PASSWORD: &str = "Gl4cier-Marmot-Tandem-Quill-77";
pub const COOKIE: &str = "refresh_token";

/// A database on a SecantusDB server of this test; `None` (skip) when it is not installed.
pub struct Mongo {
    pub server: Secantus,
    pub url: String,
}

impl Mongo {
    pub fn start() -> Option<Self> {
        init_test_log();
        let server = Secantus::start()?;
        let url = server.url("latchkey");
        Some(Self { server, url })
    }
}

/// A running Latchkey server.
pub struct TestApp {
    pub base_url: String,
    pub client: Client,
    pub server: Option<Server>,
}

fn init_test_log() {
    static INIT: Once = Once::new();
    if std::env::var_os("TEST_LOG").is_some() {
        INIT.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("debug,mongodb=info"))
                .with_test_writer()
                .try_init();
        });
    }
}

/// The test settings on `database_url`, overridden by `extra`.
pub fn vars(database_url: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("LATCHKEY_LISTEN", "127.0.0.1:0"),
        ("LATCHKEY_DATABASE_URL", database_url),
        ("LATCHKEY_ISSUER", ISSUER),
        ("LATCHKEY_COOKIE_SECURE", "false"),
        ("LATCHKEY_ARGON2_MEMORY_KIB", "1024"),
        ("LATCHKEY_ARGON2_ITERATIONS", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    vars
}

/// Starts a server on `database_url` with the test defaults overridden by `extra`.
pub async fn spawn_app(database_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let config = Config::from_env_map(&vars(database_url, extra)).expect("valid test config");
    let server = Server::start(config).await.expect("the server starts");
    TestApp {
        base_url: format!("http://{}", server.addr()),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        server: Some(server),
    }
}

/// What a successful login or refresh handed out.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, username: &str) -> Response {
        let body = json!({ "username": username, "password": PASSWORD });
        self.post_json("/auth/register", &body).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        let body = json!({ "username": username, "password": password });
        self.post_json("/auth/login", &body).await
    }

    /// Registers `username` and logs in; panics unless both succeed.
    pub async fn signed_in(&self, username: &str) -> Tokens {
        assert_eq!(self.register(username).await.status(), StatusCode::CREATED);
        tokens(self.login(username, PASSWORD).await).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/auth/refresh"))
            .header("cookie", format!("{COOKIE}={refresh_token}"))
            .send()
            .await
            .expect("request")
    }

    /// A refresh that owns what it needs, for spawning concurrent ones.
    pub fn refresh_owned(
        &self,
        refresh_token: &str,
    ) -> impl Future<Output = Response> + Send + 'static {
        let request = self
            .client
            .post(self.url("/auth/refresh"))
            .header("cookie", format!("{COOKIE}={refresh_token}"));
        async move { request.send().await.expect("request") }
    }

    /// A registration that owns what it needs, for spawning concurrent ones.
    pub fn register_owned(
        &self,
        username: &str,
    ) -> impl Future<Output = Response> + Send + 'static {
        let request = self
            .client
            .post(self.url("/auth/register"))
            .json(&json!({ "username": username, "password": PASSWORD }));
        async move { request.send().await.expect("request") }
    }

    pub async fn logout(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/auth/logout"))
            .header("cookie", format!("{COOKIE}={refresh_token}"))
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn me(&self, access_token: &str) -> Response {
        self.client
            .get(self.url("/auth/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("request")
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

/// Reads a token response: the access token and the refresh cookie.
pub async fn tokens(resp: Response) -> Tokens {
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            pair.strip_prefix(&format!("{COOKIE}=")).map(str::to_owned)
        })
        .filter(|v| !v.is_empty());
    let body = json_body(resp, StatusCode::OK).await;
    Tokens {
        access_token: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh_token: cookie.expect("a refresh cookie"),
    }
}

/// Asserts the status and returns the JSON body.
pub async fn json_body(resp: Response, status: StatusCode) -> Value {
    let got = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a problem+json answer with `status` and `code`.
pub async fn assert_problem(resp: Response, status: StatusCode, code: &str) -> Value {
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{content_type}"
    );
    let body = json_body(resp, status).await;
    assert_eq!(body["code"], code, "{body}");
    body
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
