//! Email: verification, forgotten passwords and resets, and the outbox, against a real SMTP
//! server (aiosmtpd from PyPI, in `.venv`, started per test by [`SmtpSink`]) whose mail the
//! tests read and follow. Runs on every backend (`LATCHKEY_TEST_STORE`).

mod outbox;
mod reset;
mod verification;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::kit::{Login, PASSWORD, TestApp, json_body, service_missing};

/// A message the SMTP server received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The token of the link in the message (`…#token=TOKEN`), checked to be in both bodies.
    pub fn token(&self) -> String {
        let start = self.text.find("#token=").expect("a link with a token") + "#token=".len();
        let token: String = self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert_eq!(token.len(), 43, "{}", self.text);
        assert!(self.html.contains(&token), "the HTML has the link too");
        token
    }
}

/// A real SMTP server on 127.0.0.1 writing what it receives into a directory.
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    dir: TempDir,
}

fn python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        service_missing(
            "the email tests",
            "aiosmtpd",
            "not installed in .venv: run `bash scripts/test.sh` (it installs it)",
        );
        None
    }
}

/// A port of 127.0.0.1 nothing listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl SmtpSink {
    /// Starts a server on a free port; `None` (after saying why) when aiosmtpd is missing.
    pub fn start() -> Option<Self> {
        Self::start_on(free_port())
    }

    /// Starts a server on `port`.
    pub fn start_on(port: u16) -> Option<Self> {
        let python = python()?;
        let dir = tempfile::tempdir().expect("a temp dir");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/server/email/smtp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the SMTP server starts");
        let stdout = child.stdout.take().expect("its stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the SMTP server says it is ready");
        assert_eq!(line.trim(), "READY", "the SMTP server did not start");
        Some(Self { port, child, dir })
    }

    /// The `LATCHKEY_SMTP_URL` of this server (plain SMTP on loopback).
    pub fn url(&self) -> String {
        smtp_url(self.port)
    }

    /// Every message received so far, oldest first.
    pub fn received(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("the mail directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let v: Value =
                    serde_json::from_str(&std::fs::read_to_string(p).expect("a mail file"))
                        .expect("a JSON mail");
                Mail {
                    to: v["to"]
                        .as_array()
                        .expect("to")
                        .iter()
                        .map(|t| t.as_str().expect("an address").to_owned())
                        .collect(),
                    subject: v["subject"].as_str().unwrap_or_default().to_owned(),
                    text: v["text"].as_str().unwrap_or_default().to_owned(),
                    html: v["html"].as_str().unwrap_or_default().to_owned(),
                }
            })
            .collect()
    }

    /// The messages to `address`, oldest first.
    pub fn received_by(&self, address: &str) -> Vec<Mail> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == address))
            .collect()
    }

    /// Waits (up to 15 s) until `address` has received `count` messages; returns the last.
    pub async fn wait_for(&self, address: &str, count: usize) -> Mail {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mails = self.received_by(address);
            if mails.len() >= count {
                return mails[count - 1].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{address} received {} message(s) in 15 s, expected {count}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `LATCHKEY_SMTP_URL` of a plain SMTP server on loopback at `port`.
pub fn smtp_url(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}?tls=none")
}

/// The settings of a test server that mails through `smtp_url`, polling its outbox often.
pub fn mail_vars(smtp_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LATCHKEY_SMTP_URL", smtp_url.to_owned()),
        (
            "LATCHKEY_MAIL_FROM",
            "Latchkey <no-reply@latchkey.test>".to_owned(),
        ),
        ("LATCHKEY_PUBLIC_URL", "https://app.example".to_owned()),
        ("LATCHKEY_MAIL_POLL_INTERVAL", "100ms".to_owned()),
        ("LATCHKEY_EMAIL_MAX_PER_IP", "1000".to_owned()),
        ("LATCHKEY_EMAIL_MAX_GLOBAL", "10000".to_owned()),
    ]
}

/// A server mailing through `smtp_url`, with `extra` settings on top.
pub async fn app_mailing_to(smtp_url: &str, extra: &[(&str, &str)]) -> TestApp {
    let vars = mail_vars(smtp_url);
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    all.extend_from_slice(extra);
    TestApp::builder().vars(&all).start().await
}

/// The address tests give `username`.
pub fn address(username: &str) -> String {
    format!("{username}@mail.test")
}

impl TestApp {
    /// Registers `username` with [`PASSWORD`] and the address [`address`]; returns the user.
    pub async fn register_with_email(&self, username: &str) -> Value {
        let resp = self
            .post_json(
                "/auth/register",
                &json!({ "username": username, "password": PASSWORD, "email": address(username) }),
            )
            .await;
        json_body(resp, StatusCode::CREATED).await["user"].clone()
    }

    /// Registers `username` with an address and logs in with the default client.
    pub async fn signed_in_with_email(&self, username: &str) -> Login {
        self.register_with_email(username).await;
        self.log_in_with(&self.client, username, PASSWORD).await
    }

    /// `POST /auth/email/verify/request` with a Bearer token.
    pub async fn request_verification(&self, token: &str) -> Response {
        self.client
            .post(self.url("/auth/email/verify/request"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// `POST /auth/email/verify {token}`.
    pub async fn verify_email(&self, token: &str) -> Response {
        self.post_json("/auth/email/verify", &json!({ "token": token }))
            .await
    }

    /// `POST /auth/password/forgot` with `body`.
    pub async fn forgot(&self, body: &Value) -> Response {
        self.post_json("/auth/password/forgot", body).await
    }

    /// `POST /auth/password/reset {token, new_password}`.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Response {
        self.post_json(
            "/auth/password/reset",
            &json!({ "token": token, "new_password": new_password }),
        )
        .await
    }

    /// Whether `/auth/me` says the caller's email is verified.
    pub async fn email_verified(&self, access_token: &str) -> bool {
        let me = json_body(self.me(access_token).await, StatusCode::OK).await;
        me["user"]["email_verified"]
            .as_bool()
            .expect("email_verified")
    }
}
