//! RFC 6238 computed independently, and the MFA vocabulary on the kit's [`TestApp`].

use hmac::{Hmac, KeyInit, Mac};
use latchkey_guard::Clock as _;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::kit::{PASSWORD, TestApp, json_body};

/// Decodes RFC 4648 base32 (no padding), as authenticator apps read the secret.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 character") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// HOTP (RFC 4226 section 5.3) of `counter`: 6 digits.
pub fn hotp(key: &[u8], counter: u64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).unwrap();
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = (u32::from(digest[offset] & 0x7f) << 24)
        | (u32::from(digest[offset + 1]) << 16)
        | (u32::from(digest[offset + 2]) << 8)
        | u32::from(digest[offset + 3]);
    format!("{:06}", binary % 1_000_000)
}

/// TOTP (RFC 6238) at `unix` seconds: 30 s steps from the epoch.
pub fn totp(secret_b32: &str, unix: u64) -> String {
    hotp(&base32_decode(secret_b32), unix / 30)
}

#[test]
fn the_test_totp_matches_rfc_6238_appendix_b() {
    // The SHA-1 seed of RFC 6238 appendix B, 8-digit vectors truncated to 6 digits.
    let key = b"12345678901234567890";
    assert_eq!(hotp(key, 59 / 30), "287082");
    assert_eq!(hotp(key, 1_111_111_109 / 30), "081804");
    assert_eq!(hotp(key, 1_234_567_890 / 30), "005924");
    assert_eq!(hotp(key, 2_000_000_000 / 30), "279037");
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), key);
}

/// A user with TOTP on.
pub struct Enrolled {
    pub username: String,
    pub user_id: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

impl TestApp {
    /// The server's clock, in seconds since the epoch.
    pub fn unix(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// The current TOTP code of `secret` on the server's clock.
    pub fn code(&self, secret: &str) -> String {
        totp(secret, self.unix())
    }

    /// Moves the clock to the next 30 s step, so that a fresh code is not a replay.
    pub fn next_step(&self) {
        self.clock.advance(std::time::Duration::from_secs(30));
    }

    pub async fn send(
        &self,
        client: &Client,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// Registers and logs in `username` (password only); returns the access token.
    pub async fn password_user(&self, username: &str) -> (String, String) {
        assert_eq!(
            self.register(username, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        let body = json_body(self.login(username, PASSWORD).await, StatusCode::OK).await;
        (
            body["access_token"].as_str().unwrap().to_owned(),
            body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// Registers `username` and turns TOTP on; the clock is moved past the confirming code's
    /// step.
    pub async fn enrolled(&self, username: &str) -> Enrolled {
        let (token, user_id) = self.password_user(username).await;
        let started = self
            .send(
                &self.client,
                reqwest::Method::POST,
                "/auth/mfa/totp",
                Some(&token),
                None,
            )
            .await;
        let started = json_body(started, StatusCode::OK).await;
        let secret = started["secret"].as_str().unwrap().to_owned();
        let confirmed = self
            .send(
                &self.client,
                reqwest::Method::POST,
                "/auth/mfa/totp/confirm",
                Some(&token),
                Some(json!({ "code": self.code(&secret) })),
            )
            .await;
        let confirmed = json_body(confirmed, StatusCode::OK).await;
        let recovery_codes = confirmed["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        self.next_step();
        Enrolled {
            username: username.to_owned(),
            user_id,
            secret,
            recovery_codes,
        }
    }

    /// The first step of a login of a user with a second factor: the `mfa_token`.
    pub async fn mfa_token(&self, username: &str) -> String {
        let body = json_body(self.login(username, PASSWORD).await, StatusCode::OK).await;
        assert_eq!(body["mfa_required"], true, "{body}");
        body["mfa_token"].as_str().unwrap().to_owned()
    }

    pub async fn login_mfa(&self, body: Value) -> Response {
        self.post_json("/auth/login/mfa", &body).await
    }
}
