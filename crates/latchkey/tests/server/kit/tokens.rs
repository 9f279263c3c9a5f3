//! Cookies and tokens: `Set-Cookie` parsing, compact JWS decoding and forging helpers.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Response;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::COOKIE;

/// One parsed `Set-Cookie` header.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes in order, names as sent.
    pub attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub fn parse(line: &str) -> SetCookie {
        let mut parts = line.split(';');
        let pair = parts.next().unwrap_or_default();
        let (name, value) = pair.split_once('=').expect("name=value");
        let attrs = parts
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| match a.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                None => (a.to_owned(), None),
            })
            .collect();
        SetCookie {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attrs,
        }
    }

    /// Whether the attribute is present (case-insensitive name).
    pub fn has(&self, attr: &str) -> bool {
        self.attrs.iter().any(|(k, _)| k.eq_ignore_ascii_case(attr))
    }

    /// The attribute's value (case-insensitive name).
    pub fn get(&self, attr: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn max_age(&self) -> Option<i64> {
        self.get("Max-Age")
            .map(|v| v.parse().expect("numeric Max-Age"))
    }

    /// Whether this header removes the cookie.
    pub fn is_cleared(&self) -> bool {
        self.max_age() == Some(0) || (self.value.is_empty() && self.has("Expires"))
    }
}

/// Every `Set-Cookie` header of a response.
pub fn set_cookies(resp: &Response) -> Vec<SetCookie> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| SetCookie::parse(v.to_str().expect("ASCII Set-Cookie")))
        .collect()
}

/// The refresh cookie set by a response, if any.
pub fn refresh_cookie(resp: &Response) -> Option<SetCookie> {
    cookie_named(resp, COOKIE)
}

pub fn cookie_named(resp: &Response, name: &str) -> Option<SetCookie> {
    let mut found: Vec<SetCookie> = set_cookies(resp)
        .into_iter()
        .filter(|c| c.name == name)
        .collect();
    assert!(
        found.len() <= 1,
        "the cookie `{name}` is set more than once: {found:?}"
    );
    found.pop()
}

/// Asserts that the response clears the refresh cookie.
pub fn assert_cookie_cleared(resp: &Response) {
    let cookie = refresh_cookie(resp).expect("the response clears the refresh cookie");
    assert!(
        cookie.is_cleared(),
        "the refresh cookie is not cleared: {cookie:?}"
    );
}

/// A decoded compact JWS.
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    /// `header.payload`, the signed bytes.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

pub fn decode_jwt(token: &str) -> Jwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS has three parts: {token}");
    let json =
        |part: &str| -> Value { serde_json::from_slice(&unb64(part)).expect("a JSON JWT segment") };
    Jwt {
        header: json(parts[0]),
        claims: json(parts[1]),
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: unb64(parts[2]),
    }
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64_json(value: &Value) -> String {
    b64(value.to_string().as_bytes())
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(text)
        .expect("base64url without padding")
}

/// HMAC-SHA-256 (RFC 2104), to forge HS256 tokens.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// The JWK with `kid` from a JWKS document.
pub fn jwk_for<'a>(jwks: &'a Value, kid: &str) -> &'a Value {
    jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS: {jwks}"))
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Parses an RFC 3339 timestamp, panicking with the field name otherwise.
pub fn rfc3339(value: &Value, what: &str) -> time::OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{what} `{text}` is not RFC 3339: {e}"))
}
