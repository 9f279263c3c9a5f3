//! Starting Latchkey and files-api together on free ports, and client helpers.

use std::collections::HashMap;
use std::sync::Arc;

use latchkey::auth::{AuthService, Registration};
use latchkey_guard::{Verifier, VerifierSettings};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

pub const PASSWORD: &str = "quartz lantern ferry mosaic 71";

/// Latchkey plus files-api, each with its own database in a temporary directory.
pub struct Stack {
    pub issuer: String,
    pub files: String,
    pub latchkey_env: HashMap<String, String>,
    latchkey: Option<latchkey::Server>,
    files_api: Option<files_api::Running>,
    _dir: tempfile::TempDir,
}

/// A logged-in user with their own cookie jar.
pub struct Session {
    pub client: Client,
    pub token: String,
    pub id: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn env(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Starts both servers; `files_extra` adds or overrides `FILES_*` settings.
pub async fn spawn_stack_with(files_extra: &[(&str, &str)]) -> Stack {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let latchkey_env = env(&[
        ("LATCHKEY_LISTEN", format!("127.0.0.1:{port}")),
        ("LATCHKEY_ISSUER", issuer.clone()),
        (
            "LATCHKEY_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("latchkey.db").display()),
        ),
        ("LATCHKEY_ARGON2_MEMORY_KIB", "1024".into()),
        ("LATCHKEY_ARGON2_ITERATIONS", "1".into()),
        ("LATCHKEY_COOKIE_SECURE", "false".into()),
        ("LATCHKEY_ACCESS_TOKEN_TTL", "1m".into()),
        ("LATCHKEY_KEY_RELOAD_INTERVAL", "1s".into()),
        // A short key publication delay: the JWKS max-age is then 1 s, and files-api refreshes
        // its keys every second.
        ("LATCHKEY_KEY_PUBLISH_AHEAD", "3s".into()),
    ]);
    let latchkey = latchkey::Server::start(latchkey::Config::from_env_map(&latchkey_env).unwrap())
        .await
        .unwrap();
    let mut files_env = env(&[
        ("FILES_LISTEN", "127.0.0.1:0".into()),
        ("FILES_ISSUER", issuer.clone()),
        (
            "FILES_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("files.db").display()),
        ),
    ]);
    for (k, v) in files_extra {
        files_env.insert((*k).to_owned(), (*v).to_owned());
    }
    let files_api = files_api::serve(files_api::Config::from_env_map(&files_env).unwrap())
        .await
        .unwrap();
    Stack {
        issuer,
        files: format!("http://{}", files_api.addr()),
        latchkey_env,
        latchkey: Some(latchkey),
        files_api: Some(files_api),
        _dir: dir,
    }
}

pub async fn spawn_stack() -> Stack {
    spawn_stack_with(&[]).await
}

fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Stack {
    pub fn file_url(&self, path: &str) -> String {
        format!("{}{path}", self.files)
    }

    /// A service on Latchkey's database, as the CLI builds one.
    pub async fn auth_service(&self) -> AuthService {
        let config = Arc::new(latchkey::Config::from_env_map(&self.latchkey_env).unwrap());
        let store = latchkey::store::open(&config.database_url).await.unwrap();
        let verifier = Arc::new(Verifier::new(VerifierSettings::new(
            config.issuer.clone(),
            config.audience.clone(),
        )));
        AuthService::new(store, config, verifier).await.unwrap()
    }

    /// Creates `username` with `roles` (as `latchkey user create` does) and logs them in.
    pub async fn user_with_roles(&self, username: &str, roles: &[&str]) -> Session {
        self.auth_service()
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
        self.login(username).await
    }

    pub async fn user(&self, username: &str) -> Session {
        self.user_with_roles(username, &[]).await
    }

    pub async fn login(&self, username: &str) -> Session {
        let client = client();
        let response = client
            .post(format!("{}/auth/login", self.issuer))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        Session {
            client,
            token: body["access_token"].as_str().unwrap().to_owned(),
            id: body["user"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /auth/refresh` with the session's cookie.
    pub async fn refresh(&self, session: &Session) -> Response {
        session
            .client
            .post(format!("{}/auth/refresh", self.issuer))
            .send()
            .await
            .unwrap()
    }

    /// A request to files-api carrying `token`.
    pub fn files_request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
    ) -> RequestBuilder {
        Client::new()
            .request(method, self.file_url(path))
            .bearer_auth(token)
    }

    /// `GET /files/{id}` with `token`; the status.
    pub async fn read_status(&self, id: &str, token: &str) -> StatusCode {
        self.files_request(reqwest::Method::GET, &format!("/files/{id}"), token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Creates a file owned by `owner`; returns its id.
    pub async fn create_file(&self, owner: &Session, name: &str) -> String {
        let response = self
            .files_request(reqwest::Method::POST, "/files", &owner.token)
            .json(&json!({ "name": name, "content": "hello" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["file"]["owner"], owner.id.as_str());
        body["file"]["id"].as_str().unwrap().to_owned()
    }

    /// Shares file `id` of `owner` with `user`.
    pub async fn share(&self, owner: &Session, id: &str, user: &Session, permission: &str) {
        let response = self
            .files_request(
                reqwest::Method::POST,
                &format!("/files/{id}/shares"),
                &owner.token,
            )
            .json(&json!({ "user_id": user.id, "permission": permission }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Stops Latchkey (files-api keeps running).
    pub async fn stop_latchkey(&mut self) {
        if let Some(server) = self.latchkey.take() {
            server.shutdown().await;
        }
    }

    pub async fn shutdown(mut self) {
        self.stop_latchkey().await;
        if let Some(files) = self.files_api.take() {
            files.shutdown().await;
        }
    }
}

/// Asserts a problem+json answer with `status` and `code`.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
}
