//! Test harness: a real OpenID Provider (npm `oidc-provider`, started with node), a Latchkey
//! server in-process, and a cookie-keeping HTTP client that walks the browser flow, following
//! redirects by hand and submitting the provider's login and consent forms.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;
use url::Url;

use crate::kit::{TestApp, listener, service_missing};

/// The app page the tests allow as `redirect_to`.
pub const APP: &str = "https://app.example.com/signed-in";
/// The provider's name in Latchkey.
pub const PROVIDER: &str = "test";
const CLIENT_ID: &str = "latchkey-test";
/// URL-safe, as the provider prefers for Basic authentication.
const CLIENT_SECRET: &str = "s3cr3t-Of_the-test-client-0123456789";

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/server/oidc")
}

/// Whether node and the installed provider package are there; when they are not, the kit's
/// rule for a missing service applies (a failure under CI, a printed skip otherwise).
pub fn node_ready() -> bool {
    let installed = provider_dir()
        .join("node_modules/oidc-provider/package.json")
        .exists();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if installed && node {
        return true;
    }
    let (service, why) = if node {
        (
            "the OpenID provider",
            "not installed (run: cd crates/latchkey/tests/server/oidc && npm ci)",
        )
    } else {
        ("node", "not on the PATH")
    };
    service_missing("the OIDC tests", service, why);
    false
}

/// A running provider; killed when dropped.
pub struct Provider {
    child: Child,
    /// Its issuer, exactly as it announces it.
    pub issuer: String,
}

impl Provider {
    /// Stops the provider now (to test an unreachable provider).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the provider with a client whose redirect URI is Latchkey's callback on `app_port`.
///
/// Starting takes a second or two, but far longer on a machine busy compiling: node loads a
/// few hundred modules and generates RSA, EC and Ed25519 keys. Once in a few hundred starts
/// (seen in one fresh-clone CI run) a node process never printed its address at all, so a
/// start that is silent for 90 s is killed and tried again, three times in all.
pub async fn start_provider(app_port: u16, env: &[(&str, &str)]) -> Provider {
    for attempt in 1..=3 {
        match try_start_provider(app_port, env, Duration::from_secs(90)).await {
            Ok(provider) => return provider,
            Err(why) => eprintln!("provider start {attempt} of 3 failed: {why}"),
        }
    }
    panic!("the provider did not start listening in three tries (run with TEST_LOG=1)")
}

async fn try_start_provider(
    app_port: u16,
    env: &[(&str, &str)],
    wait: Duration,
) -> Result<Provider, &'static str> {
    let redirect = format!("http://127.0.0.1:{app_port}/auth/oauth/{PROVIDER}/callback");
    let mut command = Command::new("node");
    command
        .arg("provider.mjs")
        .current_dir(provider_dir())
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .env("REDIRECT_URIS", redirect)
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("node starts");
    let stdout = child.stdout.take().expect("piped stdout");
    // Read until the provider says where it listens, then keep draining its output (it logs
    // to stdout, and a closed pipe would kill it).
    let (ready, reading) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(issuer) = line.strip_prefix("listening ")
                && let Some(ready) = ready.take()
            {
                let _ = ready.send(issuer.trim().to_owned());
            } else if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("provider: {line}");
            }
        }
    });
    // Dropping the provider on a failed start kills the process.
    let mut provider = Provider {
        child,
        issuer: String::new(),
    };
    match tokio::time::timeout(wait, reading).await {
        Ok(Ok(issuer)) => provider.issuer = issuer,
        Ok(Err(_)) => return Err("the provider exited before listening"),
        Err(_) => return Err("the provider did not print its address in time"),
    }
    Ok(provider)
}

/// Starts Latchkey on `listener` (its address is the issuer and the provider's redirect
/// target) with the test provider at `issuer`, plus `extra` variables.
pub async fn start_app(
    listener: std::net::TcpListener,
    issuer: &str,
    extra: &[(&str, &str)],
) -> TestApp {
    TestApp::builder()
        .listener(listener)
        .issuer_is_base()
        .vars(&[
            ("LATCHKEY_OAUTH_PROVIDERS", PROVIDER),
            ("LATCHKEY_OAUTH_TEST_ISSUER", issuer),
            ("LATCHKEY_OAUTH_TEST_CLIENT_ID", CLIENT_ID),
            ("LATCHKEY_OAUTH_TEST_CLIENT_SECRET", CLIENT_SECRET),
            ("LATCHKEY_OAUTH_REDIRECT_ALLOWLIST", APP),
        ])
        .vars(extra)
        .start()
        .await
}

impl TestApp {
    /// How many users the server's store holds.
    pub async fn user_count(&self) -> u64 {
        self.store().count_users().await.expect("count")
    }

    /// The URL that starts a sign-in with the test provider.
    pub fn authorize_url(&self) -> String {
        format!(
            "{}/auth/oauth/{PROVIDER}/authorize?redirect_to={}",
            self.base_url,
            urlencode(APP)
        )
    }
}

/// Form-urlencodes `text`.
pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A provider and a Latchkey that trusts it; `None` (skip) when node is missing outside CI.
pub async fn setup(
    provider_env: &[(&str, &str)],
    app_env: &[(&str, &str)],
) -> Option<(Provider, TestApp)> {
    if !node_ready() {
        return None;
    }
    let listener = listener();
    let port = listener
        .local_addr()
        .expect("the listener's address")
        .port();
    let provider = start_provider(port, provider_env).await;
    let app = start_app(listener, &provider.issuer, app_env).await;
    Some((provider, app))
}

/// A browser: a path-aware cookie jar, no automatic redirects.
pub struct Browser {
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

/// The query parameter `name` of `url`.
pub fn param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Browser {
    /// A fresh browser with an empty cookie jar.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        Self { http }
    }

    /// GET `url`.
    pub async fn get(&self, url: &str) -> Response {
        self.http.get(url).send().await.expect("GET")
    }

    /// The `Location` of a redirect answer, resolved against `base`.
    pub fn location(base: &str, response: &Response) -> String {
        assert!(
            response.status().is_redirection(),
            "expected a redirect from {base}, got {}",
            response.status()
        );
        let location = response.headers()[reqwest::header::LOCATION]
            .to_str()
            .expect("ascii location");
        Url::parse(base)
            .and_then(|b| b.join(location))
            .expect("resolvable location")
            .into()
    }

    /// Walks from `start`: follows redirects and submits the provider's forms (logging in as
    /// `login`, then consenting) until a redirect goes to a URL for which `stop` is true, and
    /// returns that URL without requesting it.
    pub async fn walk(&self, start: &str, login: &str, stop: impl Fn(&str) -> bool) -> String {
        let mut url = start.to_owned();
        let mut response = self.get(&url).await;
        for _ in 0..20 {
            if response.status().is_redirection() {
                let next = Self::location(&url, &response);
                if stop(&next) {
                    return next;
                }
                url = next;
                response = self.get(&url).await;
                continue;
            }
            let status = response.status();
            let body = response.text().await.expect("body");
            assert_eq!(status, StatusCode::OK, "at {url}: {body}");
            let (action, fields) =
                parse_form(&body, login).unwrap_or_else(|| panic!("no form at {url}: {body}"));
            url = Url::parse(&url)
                .and_then(|b| b.join(&action))
                .expect("action")
                .into();
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            response = self
                .http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("POST form");
        }
        panic!("the flow did not end within 20 steps (last: {url})");
    }

    /// The whole sign-in: from Latchkey's authorize URL to the redirect back to the app.
    pub async fn sign_in(&self, app: &TestApp, login: &str) -> String {
        self.walk(&app.authorize_url(), login, |u| u.starts_with(APP))
            .await
    }

    /// `POST /auth/refresh` with the cookie; the access token.
    pub async fn refresh(&self, app: &TestApp) -> String {
        let response = self
            .http
            .post(format!("{}/auth/refresh", app.base_url))
            .send()
            .await
            .expect("refresh");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// `GET /auth/me` with `token`.
    pub async fn me(&self, app: &TestApp, token: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/auth/me", app.base_url))
            .bearer_auth(token)
            .send()
            .await
            .expect("me");
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.expect("json")["user"].clone()
    }
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&"))
}

/// The first form of `html`: its action and fields, with `login` and a password filled in.
fn parse_form(html: &str, login: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let end = html[start..].find("</form>")? + start;
    let form = &html[start..end];
    let action = attribute(&form[..form.find('>')?], "action")?;
    let mut fields = Vec::new();
    for piece in form.split("<input").skip(1) {
        let tag = &piece[..piece.find('>')?];
        let Some(name) = attribute(tag, "name") else {
            continue;
        };
        let value = match name.as_str() {
            "login" => login.to_owned(),
            "password" => "any password".to_owned(),
            _ => attribute(tag, "value").unwrap_or_default(),
        };
        fields.push((name, value));
    }
    Some((action, fields))
}

/// Registers a password user and logs in; the access token.
pub async fn password_user(
    browser: &Browser,
    app: &TestApp,
    username: &str,
    email: Option<&str>,
) -> String {
    let password = "correct horse battery staple 42";
    let response = browser
        .http
        .post(format!("{}/auth/register", app.base_url))
        .json(&serde_json::json!({"username": username, "password": password, "email": email}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = browser
        .http
        .post(format!("{}/auth/login", app.base_url))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["access_token"].as_str().expect("token").to_owned()
}
