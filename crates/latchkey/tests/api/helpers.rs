//! The test harness: a real Latchkey server on a random port with a fresh SQLite database,
//! a real HTTP client and endpoint helpers; `assertions` and `tokens` hold the checks and the
//! cookie/JWT utilities.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use latchkey::{Config, Server};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
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
        // SQLite, or MongoDB in the second run (the tests that open the SQLite file directly
        // are left out of that one by scripts/test.sh).
        (
            "LATCHKEY_DATABASE_URL",
            crate::secantus::test_database_url(&db),
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

// ---- Classic sessions (`/session/*`) ----------------------------------------------------

/// The session cookie's name when `LATCHKEY_COOKIE_SECURE=false`.
pub const SESSION_COOKIE: &str = "session";

/// What a successful `POST /session/login` handed out.
pub struct SessionLogin {
    pub user_id: String,
    pub csrf_token: String,
    /// The value of the session cookie.
    pub cookie: String,
    /// The session cookie as set, attributes included.
    pub set_cookie: SetCookie,
    /// The raw `Set-Cookie` text of the session cookie.
    pub set_cookie_text: String,
    pub body: Value,
}

/// Reads a successful session login: the body and the session cookie.
pub async fn session_login_from(resp: Response) -> SessionLogin {
    let set_cookie_text = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ASCII Set-Cookie").to_owned())
        .find(|line| SetCookie::parse(line).name.ends_with(SESSION_COOKIE))
        .unwrap_or_else(|| panic!("no session cookie is set: {:?}", resp.headers()));
    let set_cookie = SetCookie::parse(&set_cookie_text);
    let body = json_body(resp, StatusCode::OK).await;
    SessionLogin {
        user_id: body["user"]["id"].as_str().expect("user.id").to_owned(),
        csrf_token: body["csrf_token"].as_str().expect("csrf_token").to_owned(),
        cookie: set_cookie.value.clone(),
        set_cookie,
        set_cookie_text,
        body,
    }
}

/// The same text with one character in the middle changed (still base64url).
pub fn tamper(value: &str) -> String {
    tamper_at(value, value.len() / 2)
}

/// The same text with the character at `index` changed (still base64url).
pub fn tamper_at(value: &str, index: usize) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

impl TestApp {
    /// `POST /session/login` with a JSON body.
    pub async fn session_login_json(
        &self,
        client: &Client,
        username: &str,
        password: &str,
    ) -> Response {
        client
            .post(self.url("/session/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// `POST /session/login` with an `application/x-www-form-urlencoded` body.
    pub async fn session_login_form(&self, client: &Client, fields: &[(&str, &str)]) -> Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        client
            .post(self.url("/session/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// Logs an existing user in through `/session/login`; panics unless it is 200 with a cookie.
    pub async fn session_log_in_with(
        &self,
        client: &Client,
        username: &str,
        password: &str,
    ) -> SessionLogin {
        session_login_from(self.session_login_json(client, username, password).await).await
    }

    /// Logs an existing user in through `/session/login` from a new, jar-less client.
    pub async fn session_log_in(&self, username: &str) -> SessionLogin {
        self.session_log_in_with(&plain_client(), username, PASSWORD)
            .await
    }

    /// Registers `username` and starts a session for it (from a jar-less client).
    pub async fn session_signed_in(&self, username: &str) -> SessionLogin {
        self.create_user(username).await;
        self.session_log_in(username).await
    }

    /// A request carrying `cookie` as the session cookie, from a jar-less client.
    pub fn with_session(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: &str,
    ) -> RequestBuilder {
        self.with_session_at(&self.base_url, method, path, cookie)
    }

    /// As [`TestApp::with_session`], to another server (`base_url` like `http://127.0.0.1:1234`).
    pub fn with_session_at(
        &self,
        base_url: &str,
        method: reqwest::Method,
        path: &str,
        cookie: &str,
    ) -> RequestBuilder {
        let name = self.session_cookie_name();
        plain_client()
            .request(method, format!("{base_url}{path}"))
            .header("cookie", format!("{name}={cookie}"))
    }

    /// The session cookie name this server uses.
    pub fn session_cookie_name(&self) -> String {
        self.vars
            .get("LATCHKEY_SESSION_COOKIE_NAME")
            .cloned()
            .unwrap_or_else(|| SESSION_COOKIE.to_owned())
    }

    /// `GET /session/me` with an explicit session cookie.
    pub async fn session_me(&self, cookie: &str) -> Response {
        self.with_session(reqwest::Method::GET, "/session/me", cookie)
            .send()
            .await
            .expect("request")
    }

    /// The status of `GET /session/me` with `cookie`.
    pub async fn session_status(&self, cookie: &str) -> StatusCode {
        self.session_me(cookie).await.status()
    }

    /// `PUT /session/data` with the session's cookie and CSRF token.
    pub async fn put_session_data(&self, session: &SessionLogin, data: &Value) -> Response {
        self.with_session(reqwest::Method::PUT, "/session/data", &session.cookie)
            .header("x-csrf-token", &session.csrf_token)
            .json(&json!({ "data": data }))
            .send()
            .await
            .expect("request")
    }

    /// `POST /session/logout` with the session's cookie and CSRF token.
    pub async fn session_logout(&self, session: &SessionLogin) -> Response {
        self.with_session(reqwest::Method::POST, "/session/logout", &session.cookie)
            .header("x-csrf-token", &session.csrf_token)
            .send()
            .await
            .expect("request")
    }

    /// The test database, opened directly (to move expiry times, read what is stored).
    pub async fn db(&self) -> sqlx::SqlitePool {
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect(&self.vars["LATCHKEY_DATABASE_URL"])
            .await
            .expect("the test database opens")
    }

    /// Disables or enables a user through the store (there is no admin API yet).
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) {
        let url = latchkey::config::DatabaseUrl::new(&self.vars["LATCHKEY_DATABASE_URL"]);
        let store = latchkey::store::open(&url).await.expect("the store opens");
        let id = uuid::Uuid::parse_str(user_id).expect("a user id");
        assert!(
            store
                .set_disabled(id, disabled)
                .await
                .expect("set_disabled"),
            "no such user {user_id}"
        );
    }
}

/// Polls `probe` until it returns `want` (users are cached by the server for up to 5 s).
pub async fn eventually_status<F, Fut>(what: &str, want: StatusCode, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let got = probe().await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {got} after 8 s, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
