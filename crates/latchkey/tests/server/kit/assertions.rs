//! Assertions on responses: problem+json bodies, Bearer challenges, security headers.

use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use serde_json::Value;

/// Asserts the status and returns the JSON body (the text is shown when it is not JSON).
pub async fn json_body(resp: Response, status: StatusCode) -> Value {
    let got = resp.status();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
}

/// Asserts an RFC 9457 problem with `status` and `code`, and returns its body.
pub async fn assert_problem(resp: Response, status: StatusCode, code: &str) -> Value {
    let body = assert_problem_status(resp, status).await;
    assert_eq!(body["code"], code, "unexpected problem code: {body}");
    body
}

/// Asserts an RFC 9457 problem with `status`, whatever its code, and returns its body.
pub async fn assert_problem_status(resp: Response, status: StatusCode) -> Value {
    let got = resp.status();
    let content_type = header(resp.headers(), "content-type").unwrap_or_default();
    let text = resp.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type `{content_type}` is not application/problem+json; body: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("problem is not JSON ({e}): {text}"));
    for field in ["type", "title", "code"] {
        assert!(body[field].is_string(), "problem lacks `{field}`: {body}");
    }
    assert_eq!(
        body["status"],
        status.as_u16(),
        "problem status field: {body}"
    );
    body
}

/// Asserts the RFC 6750 answer to a bad Bearer token.
pub async fn assert_invalid_token(resp: Response) {
    let www = header(resp.headers(), "www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer") && www.contains(r#"error="invalid_token""#),
        "WWW-Authenticate was `{www}`"
    );
    assert_problem_status(resp, StatusCode::UNAUTHORIZED).await;
}

/// A header's value as text.
pub fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| v.to_str().expect("ASCII header").to_owned())
}

/// The security headers of API.md, with their exact values.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];

/// helmet's default Content-Security-Policy, one directive per entry.
pub const HELMET_CSP: &[&str] = &[
    "default-src 'self'",
    "base-uri 'self'",
    "font-src 'self' https: data:",
    "form-action 'self'",
    "frame-ancestors 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "script-src 'self'",
    "script-src-attr 'none'",
    "style-src 'self' https: 'unsafe-inline'",
    "upgrade-insecure-requests",
];

/// Asserts every security header of API.md and the absence of banners.
pub fn assert_security_headers(headers: &HeaderMap, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            header(headers, name).as_deref(),
            Some(*value),
            "{what}: header {name}"
        );
    }
    let csp = header(headers, "content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    let mut got: Vec<String> = csp
        .split(';')
        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|d| !d.is_empty())
        .collect();
    got.sort();
    let mut want: Vec<String> = HELMET_CSP.iter().map(|d| (*d).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "{what}: Content-Security-Policy `{csp}`");
    assert!(
        headers.get("x-powered-by").is_none(),
        "{what}: X-Powered-By is sent"
    );
    assert!(
        headers.get("server").is_none(),
        "{what}: a Server banner is sent"
    );
}

/// Asserts `Cache-Control: no-store`.
pub fn assert_no_store(headers: &HeaderMap, what: &str) {
    let cc = header(headers, "cache-control").unwrap_or_default();
    assert!(
        cc.split(',')
            .any(|d| d.trim().eq_ignore_ascii_case("no-store")),
        "{what}: Cache-Control is `{cc}`, not no-store"
    );
}

/// The `user` of `/auth/me` without its `identities` and `mfa_enabled` (which only
/// `/auth/me` shows), after checking that they are there as an array and a boolean.
pub fn me_user(body: &serde_json::Value) -> serde_json::Value {
    let mut user = body["user"].clone();
    let identities = user
        .as_object_mut()
        .and_then(|u| u.remove("identities"))
        .expect("/auth/me lists the user's identities");
    assert!(identities.is_array(), "identities: {identities}");
    let mfa = user
        .as_object_mut()
        .and_then(|u| u.remove("mfa_enabled"))
        .expect("/auth/me says whether MFA is on");
    assert!(mfa.is_boolean(), "mfa_enabled: {mfa}");
    user
}
