//! The test harness: a real Latchkey server on a random port with a fresh SQLite database,
//! a real HTTP client and endpoint helpers; `assertions` and `tokens` hold the checks and the
//! cookie/JWT utilities.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use latchkey::{Config, Server};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

mod assertions;
mod tokens;

pub use assertions::*;
pub use tokens::*;

/// The issuer every test server uses (requests go to `base_url`; this is only the `iss` claim
/// and the server's own origin for the CSRF check).
pub const ISSUER: &str = "http://latchkey.test";
/// A password that passes the default policy (15+ characters, not guessable).
pub const PASSWORD: &str = "Gl4cier-Marmot-Tandem-Quill-77";
/// Another strong password, for password changes.
pub const NEW_PASSWORD: &str = "Velvet-Orbit-Canyon-Lantern-31";
/// The refresh cookie's name when `LATCHKEY_COOKIE_SECURE=false`.
pub const COOKIE: &str = "refresh_token";
/// The User-Agent every test client sends.
pub const USER_AGENT: &str = "latchkey-api-tests/1.0";

/// A running server plus what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    /// A browser-like client: cookie store on, redirects off.
    pub client: Client,
    pub db_dir: TempDir,
    pub server: Option<Server>,
    pub vars: HashMap<String, String>,
}

/// What a successful login handed out.
pub struct Login {
    pub user_id: String,
    pub access_token: String,
    /// The value of the refresh cookie.
    pub refresh_token: String,
    pub body: Value,
}

/// Starts a server with the test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts a server with the test defaults overridden by `extra`.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    init_test_log();
    let db_dir = tempfile::tempdir().expect("temp dir");
    let db = db_dir.path().join("latchkey.db");
    let mut vars: HashMap<String, String> = [
        ("LATCHKEY_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "LATCHKEY_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        ),
        ("LATCHKEY_ISSUER", ISSUER.to_owned()),
        ("LATCHKEY_COOKIE_SECURE", "false".to_owned()),
        ("LATCHKEY_ARGON2_MEMORY_KIB", "1024".to_owned()),
        ("LATCHKEY_ARGON2_ITERATIONS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let server = start_server(&vars).await;
    let addr = server.addr();
    TestApp {
        addr,
        base_url: format!("http://{addr}"),
        client: browser(),
        db_dir,
        server: Some(server),
        vars,
    }
}

async fn start_server(vars: &HashMap<String, String>) -> Server {
    let config = Config::from_env_map(vars).expect("the test configuration is valid");
    Server::start(config).await.expect("the server starts")
}

fn init_test_log() {
    static INIT: Once = Once::new();
    if std::env::var_os("TEST_LOG").is_some() {
        INIT.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
                .with_test_writer()
                .try_init();
        });
    }
}

/// A new browser-like client (its own cookie jar: another device or browser).
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A client without a cookie store, for sending explicit `Cookie` headers.
pub fn plain_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Stops the server and starts a new one on the same database and settings.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let server = start_server(&self.vars).await;
        self.addr = server.addr();
        self.base_url = format!("http://{}", self.addr);
        self.server = Some(server);
    }

    /// Starts a second server on the same database, with `overrides` on top of this one's
    /// settings. Its URL is `http://{server.addr()}`.
    pub async fn start_sibling(&self, overrides: &[(&str, &str)]) -> Server {
        let mut vars = self.vars.clone();
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        start_server(&vars).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, username: &str, password: &str) -> Response {
        self.post_json(
            "/auth/register",
            &json!({ "username": username, "password": password }),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.login_with(&self.client, username, password).await
    }

    pub async fn login_with(&self, client: &Client, username: &str, password: &str) -> Response {
        client
            .post(self.url("/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// Refreshes with the cookie in the default client's jar.
    pub async fn refresh(&self) -> Response {
        self.refresh_with(&self.client).await
    }

    pub async fn refresh_with(&self, client: &Client) -> Response {
        client
            .post(self.url("/auth/refresh"))
            .send()
            .await
            .expect("request")
    }

    /// Refreshes with an explicit refresh token, outside any cookie jar.
    pub async fn refresh_with_cookie(&self, token: &str) -> Response {
        plain_client()
            .post(self.url("/auth/refresh"))
            .header("cookie", format!("{COOKIE}={token}"))
            .send()
            .await
            .expect("request")
    }

    pub async fn logout(&self) -> Response {
        self.logout_with(&self.client).await
    }

    pub async fn logout_with(&self, client: &Client) -> Response {
        client
            .post(self.url("/auth/logout"))
            .send()
            .await
            .expect("request")
    }

    pub async fn logout_with_cookie(&self, token: &str) -> Response {
        plain_client()
            .post(self.url("/auth/logout"))
            .header("cookie", format!("{COOKIE}={token}"))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_authed(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get_authed("/auth/me", token).await
    }

    /// The caller's sessions; panics unless the answer is 200.
    pub async fn sessions(&self, token: &str) -> Vec<Value> {
        let resp = self.get_authed("/auth/sessions", token).await;
        let body = json_body(resp, StatusCode::OK).await;
        body["sessions"]
            .as_array()
            .expect("a sessions array")
            .clone()
    }

    pub async fn delete_session(&self, token: &str, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/auth/sessions/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Response {
        self.client
            .post(self.url("/auth/password"))
            .bearer_auth(token)
            .json(&json!({ "current_password": current, "new_password": new }))
            .send()
            .await
            .expect("request")
    }

    pub async fn logout_all(&self, token: &str) -> Response {
        self.client
            .post(self.url("/auth/logout-all"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn jwks(&self) -> Value {
        let resp = self
            .client
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("request");
        json_body(resp, StatusCode::OK).await
    }

    /// Registers `username` with [`PASSWORD`]; panics unless it is 201.
    pub async fn create_user(&self, username: &str) -> Value {
        let resp = self.register(username, PASSWORD).await;
        json_body(resp, StatusCode::CREATED).await["user"].clone()
    }

    /// Registers `username` and logs in with the default client.
    pub async fn signed_in(&self, username: &str) -> Login {
        self.create_user(username).await;
        self.log_in_with(&self.client, username, PASSWORD).await
    }

    /// Logs in an existing user with `client`; panics unless it is 200 with a cookie.
    pub async fn log_in_with(&self, client: &Client, username: &str, password: &str) -> Login {
        let resp = self.login_with(client, username, password).await;
        login_from(resp).await
    }
}

/// Reads a successful token response (login or refresh): the body and the refresh cookie.
pub async fn login_from(resp: Response) -> Login {
    let cookie = refresh_cookie(&resp).expect("a refresh cookie is set");
    let body = json_body(resp, StatusCode::OK).await;
    Login {
        user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
        access_token: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh_token: cookie.value,
        body,
    }
}
