//! Starting a server on a free port with a fresh database, and small client helpers.

use std::collections::HashMap;
use std::sync::Arc;

use latchkey::auth::{AuthService, Registration};
use latchkey::{Config, Server};
use latchkey_guard::{Verifier, VerifierSettings};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

/// A password every test user can have: long and not guessable.
pub const PASSWORD: &str = "quartz lantern ferry mosaic 71";

/// A running server with its own database.
pub struct TestApp {
    pub base: String,
    pub map: HashMap<String, String>,
    server: Option<Server>,
    _dir: tempfile::TempDir,
}

/// A logged-in user with their own cookie jar.
pub struct Session {
    pub client: Client,
    pub token: String,
    pub user_id: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
}

/// Starts a server on a free port with a fresh database, fast Argon2 and plain-http cookies.
pub async fn spawn_app() -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let map: HashMap<String, String> = [
        ("LATCHKEY_LISTEN", format!("127.0.0.1:{port}")),
        ("LATCHKEY_ISSUER", format!("http://127.0.0.1:{port}")),
        (
            "LATCHKEY_DATABASE_URL",
            crate::secantus::test_database_url(&dir.path().join("latchkey.db")),
        ),
        ("LATCHKEY_ARGON2_MEMORY_KIB", "1024".into()),
        ("LATCHKEY_ARGON2_ITERATIONS", "1".into()),
        ("LATCHKEY_COOKIE_SECURE", "false".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let server = Server::start(Config::from_env_map(&map).unwrap())
        .await
        .unwrap();
    TestApp {
        base: format!("http://{}", server.addr()),
        map,
        server: Some(server),
        _dir: dir,
    }
}

fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers `username` over HTTP; returns the user id.
    pub async fn register(&self, username: &str) -> String {
        let response = client()
            .post(self.url("/auth/register"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["user"]["id"].as_str().unwrap().to_owned()
    }

    /// A second service on the server's database, as the CLI builds one.
    pub async fn auth_service(&self) -> AuthService {
        let config = Arc::new(Config::from_env_map(&self.map).unwrap());
        let store = latchkey::store::open(&config.database_url).await.unwrap();
        let verifier = Arc::new(Verifier::new(VerifierSettings::new(
            config.issuer.clone(),
            config.audience.clone(),
        )));
        AuthService::new(store, config, verifier).await.unwrap()
    }

    /// Creates a user with `roles` the way `latchkey user create --role ...` does.
    pub async fn create_with_roles(&self, username: &str, roles: &[&str]) -> String {
        let user = self
            .auth_service()
            .await
            .register(
                Registration {
                    username: username.to_owned(),
                    password: PASSWORD.to_owned().into(),
                    email: None,
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                },
                None,
            )
            .await
            .unwrap();
        user.id.to_string()
    }

    /// Logs `username` in with a fresh cookie jar.
    pub async fn login(&self, username: &str) -> Session {
        let client = client();
        let response = self.try_login(&client, username).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        Session {
            client,
            token: body["access_token"].as_str().unwrap().to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn try_login(&self, client: &Client, username: &str) -> Response {
        client
            .post(self.url("/auth/login"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap()
    }

    /// Registers and logs in `username`.
    pub async fn user(&self, username: &str) -> Session {
        self.register(username).await;
        self.login(username).await
    }

    /// Creates an admin and logs them in.
    pub async fn admin(&self, username: &str) -> Session {
        self.create_with_roles(username, &["admin"]).await;
        self.login(username).await
    }

    /// Calls `POST /auth/refresh` with the session's cookie.
    pub async fn refresh(&self, session: &Session) -> Response {
        session
            .client
            .post(self.url("/auth/refresh"))
            .send()
            .await
            .unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// The claims of a JWT, decoded without verification (the test only reads them).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Asserts a problem+json answer with `status` and `code`.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
}
