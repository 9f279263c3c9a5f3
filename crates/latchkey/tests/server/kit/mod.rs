//! The test kit: one [`TestApp`] (a real Latchkey server in-process, on a listener the kit
//! already holds, with the test clock and the store it runs on), the backend switch
//! ([`Backend`], `LATCHKEY_TEST_STORE=sqlite|mongodb|postgres`), the one rule for a missing
//! service ([`service_missing`]), a real HTTP client and endpoint helpers; `assertions` and
//! `tokens` hold the checks and the cookie/JWT utilities.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use latchkey::store::Store;
use latchkey::{Config, Server};
use latchkey_guard::TestClock;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

mod assertions;
#[path = "../../support/postgres.rs"]
pub mod pg;
#[path = "../../support/secantus.rs"]
pub mod secantus;
mod tokens;

pub use assertions::*;
pub use secantus::Secantus;
pub use secantus::required::service_missing;
pub use tokens::*;

/// The issuer every test server uses (requests go to `base_url`; this is only the `iss` claim
/// and the server's own origin for the CSRF check), unless it is built with
/// [`AppBuilder::issuer_is_base`].
pub const ISSUER: &str = latchkey::config::TEST_ISSUER;
/// A password that passes the default policy (15+ characters, not guessable).
pub const PASSWORD: &str = "Gl4cier-Marmot-Tandem-Quill-77";
/// Another strong password, for password changes.
pub const NEW_PASSWORD: &str = "Velvet-Orbit-Canyon-Lantern-31";
/// The refresh cookie's name when `LATCHKEY_COOKIE_SECURE=false`.
pub const COOKIE: &str = "refresh_token";
/// The User-Agent every test client sends.
pub const USER_AGENT: &str = "latchkey-api-tests/1.0";

/// The store the test servers run on, chosen by `LATCHKEY_TEST_STORE` (`sqlite`, the default,
/// `mongodb` or `postgres`; `scripts/test.sh` runs the binary once per backend). A new backend is one
/// variant and one arm in each match below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's temporary directory.
    Sqlite,
    /// A fresh database on this process's SecantusDB server.
    Mongodb,
    /// A fresh database on the PostgreSQL server `scripts/postgres.sh` started
    /// (`LATCHKEY_TEST_POSTGRES_URL`).
    Postgres,
}

impl Backend {
    /// The backend of this run.
    pub fn current() -> Self {
        match std::env::var("LATCHKEY_TEST_STORE").as_deref() {
            Err(_) | Ok("" | "sqlite") => Self::Sqlite,
            Ok("mongodb") => Self::Mongodb,
            Ok("postgres") => Self::Postgres,
            Ok(other) => {
                panic!("LATCHKEY_TEST_STORE={other}: expected sqlite, mongodb or postgres")
            }
        }
    }

    /// A fresh database for one test (`dir` is the test's own temporary directory).
    pub fn fresh_database_url(self, dir: &Path) -> String {
        match self {
            Self::Sqlite => format!("sqlite://{}", dir.join("latchkey.db").display()),
            Self::Mongodb => {
                let server = Secantus::shared()
                    .expect("LATCHKEY_TEST_STORE=mongodb needs SecantusDB: run scripts/test.sh");
                let server = server.lock().expect("server lock");
                server.url(&Secantus::fresh_database())
            }
            Self::Postgres => pg::fresh_database().expect(
                "LATCHKEY_TEST_STORE=postgres needs LATCHKEY_TEST_POSTGRES_URL: run scripts/test.sh",
            ),
        }
    }
}

/// A listener on a port of 127.0.0.1 the system picked, held until a server takes it (no
/// port races: nothing else can bind it in between).
pub fn listener() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener on port 0");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    listener
}

/// A running server plus what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base_url: String,
    /// A browser-like client: cookie store on, redirects off.
    pub client: Client,
    pub db_dir: TempDir,
    pub server: Option<Server>,
    pub vars: HashMap<String, String>,
    /// The clock the server reads; `app.clock.advance(d)` instead of sleeping.
    pub clock: Arc<TestClock>,
}

/// What a successful login handed out.
pub struct Login {
    pub user_id: String,
    pub access_token: String,
    /// The value of the refresh cookie.
    pub refresh_token: String,
    pub body: Value,
}

/// How a [`TestApp`] starts: the test settings, then these.
#[derive(Default)]
pub struct AppBuilder {
    extra: Vec<(String, String)>,
    database_url: Option<String>,
    backend: Option<Backend>,
    listener: Option<std::net::TcpListener>,
    issuer_is_base: bool,
}

impl AppBuilder {
    /// Settings on top of the test settings.
    pub fn vars(mut self, extra: &[(&str, &str)]) -> Self {
        self.extra.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self
    }

    /// This database instead of a fresh one of the run's [`Backend`] (the MongoDB area's).
    #[cfg_attr(not(feature = "mongodb"), allow(dead_code))]
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// This backend whatever the run's (for what only one store has, like a database file).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Serve on this listener (when the test needs the address before the server starts).
    pub fn listener(mut self, listener: std::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// The issuer is the server's own URL (`http://127.0.0.1:PORT`), as sign-in callbacks need.
    pub fn issuer_is_base(mut self) -> Self {
        self.issuer_is_base = true;
        self
    }

    /// Starts the server.
    pub async fn start(self) -> TestApp {
        init_test_log();
        let db_dir = tempfile::tempdir().expect("temp dir");
        let database_url = self.database_url.unwrap_or_else(|| {
            self.backend
                .unwrap_or_else(Backend::current)
                .fresh_database_url(db_dir.path())
        });
        let listener = self.listener.unwrap_or_else(listener);
        let addr = listener.local_addr().expect("the listener's address");
        let mut vars = Config::test_vars(&database_url);
        if self.issuer_is_base {
            vars.insert("LATCHKEY_ISSUER".to_owned(), format!("http://{addr}"));
        }
        vars.extend(self.extra);
        let clock = TestClock::new();
        let server = start_server(&vars, &clock, listener).await;
        TestApp {
            addr,
            base_url: format!("http://{addr}"),
            client: browser(),
            db_dir,
            server: Some(server),
            vars,
            clock,
        }
    }
}

/// Starts a server with the test defaults.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().start().await
}

/// Starts a server with the test defaults overridden by `extra`.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    TestApp::builder().vars(extra).start().await
}

async fn start_server(
    vars: &HashMap<String, String>,
    clock: &Arc<TestClock>,
    listener: std::net::TcpListener,
) -> Server {
    let mut config = Config::from_env_map(vars).expect("the test configuration is valid");
    config.clock = clock.clone();
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    Server::start_on(config, listener)
        .await
        .expect("the server starts")
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
    /// A server to be configured before it starts.
    pub fn builder() -> AppBuilder {
        AppBuilder::default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The store the running server uses (the same instance, not a second connection).
    pub fn store(&self) -> Arc<dyn Store> {
        self.server.as_ref().expect("the server is running").store()
    }

    /// Stops the server.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// Stops the server and starts a new one on the same database, settings and clock.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        let listener = listener();
        self.addr = listener.local_addr().expect("the listener's address");
        self.base_url = format!("http://{}", self.addr);
        self.server = Some(start_server(&self.vars, &self.clock, listener).await);
    }

    /// Starts a second server on the same database and clock, with `overrides` on top of this
    /// one's settings. Its URL is `http://{server.addr()}`.
    pub async fn start_sibling(&self, overrides: &[(&str, &str)]) -> Server {
        let mut vars = self.vars.clone();
        for (k, v) in overrides {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        start_server(&vars, &self.clock, listener()).await
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

    /// Disables or enables a user through the server's store (there is no admin API yet).
    pub async fn set_disabled(&self, user_id: &str, disabled: bool) {
        let id = uuid::Uuid::parse_str(user_id).expect("a user id");
        assert!(
            self.store()
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
