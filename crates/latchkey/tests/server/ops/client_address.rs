//! `LATCHKEY_TRUSTED_PROXIES`: forwarded headers count only from a trusted peer, and then the
//! rightmost untrusted address is the client, for throttling and for the `ip` of logins. The
//! tests connect from 127.0.0.1 (trusted when configured) and 127.0.0.2 (never trusted here).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::header::HeaderValue;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::json;

use crate::kit::{PASSWORD, TestApp, USER_AGENT, assert_problem, json_body, login_from};

/// Only 127.0.0.1 is a proxy; at most two registrations per client address.
const SETTINGS: [(&str, &str); 3] = [
    ("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1/32"),
    ("LATCHKEY_REGISTER_MAX_PER_IP", "2"),
    ("LATCHKEY_REGISTER_MAX_GLOBAL", "1000"),
];

/// A client whose connections come from `127.0.0.x`.
fn from_address(last: u8) -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn register(app: &TestApp, client: &Client, username: &str) -> RequestBuilder {
    client
        .post(app.url("/auth/register"))
        .json(&json!({"username": username, "password": PASSWORD}))
}

fn login(app: &TestApp, client: &Client, username: &str) -> RequestBuilder {
    client
        .post(app.url("/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
}

/// Logs in with `request` (a login request with headers) and returns the `ip` its login was
/// recorded with (`GET /auth/sessions`).
async fn ip_of_login(app: &TestApp, request: RequestBuilder) -> String {
    let resp = request.send().await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK, "the login succeeds");
    let login = login_from(resp).await;
    let session = app
        .sessions(&login.access_token)
        .await
        .into_iter()
        .find(|s| s["current"] == json!(true))
        .expect("the current login is listed");
    session["ip"].as_str().expect("an ip").to_owned()
}

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
    let app = TestApp::builder().vars(&SETTINGS).start().await;
    let stranger = from_address(2);
    // Each registration claims another address: all are counted against the peer's.
    for (i, claimed) in ["198.51.100.1", "198.51.100.2"].iter().enumerate() {
        let resp = register(&app, &stranger, &format!("user{i}"))
            .header("x-forwarded-for", *claimed)
            .header("forwarded", format!("for={claimed}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let resp = register(&app, &stranger, "user2")
        .header("x-forwarded-for", "198.51.100.3")
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;

    // The login is recorded with the peer's address, not the claimed one.
    let ip = ip_of_login(
        &app,
        login(&app, &stranger, "user0").header("x-forwarded-for", "198.51.100.9"),
    )
    .await;
    assert_eq!(ip, "127.0.0.2");
}

#[tokio::test]
async fn forwarded_headers_from_a_trusted_peer_name_the_rightmost_untrusted_hop() {
    let app = TestApp::builder().vars(&SETTINGS).start().await;
    let proxy = from_address(1);
    // Two registrations from one client behind the proxy; a third from it is refused...
    for i in 0..2 {
        let resp = register(&app, &proxy, &format!("user{i}"))
            .header("x-forwarded-for", "198.51.100.1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let resp = register(&app, &proxy, "user2")
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // ...while another client behind the same proxy is not held back by it. The entry left of
    // the proxy-appended one is the client's own claim and counts for nothing.
    let resp = register(&app, &proxy, "user2")
        .header("x-forwarded-for", "198.51.100.1, 198.51.100.2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    // The recorded login address: the rightmost untrusted hop, trusted hops skipped.
    let ip = ip_of_login(
        &app,
        login(&app, &proxy, "user0").header("x-forwarded-for", "6.6.6.6, 198.51.100.7, 127.0.0.1"),
    )
    .await;
    assert_eq!(ip, "198.51.100.7");
    let ip = ip_of_login(
        &app,
        login(&app, &proxy, "user0").header("x-forwarded-for", "[2001:db8::7]:443"),
    )
    .await;
    assert_eq!(ip, "2001:db8::7");
    // Without a header, the proxy is the client.
    let ip = ip_of_login(&app, login(&app, &proxy, "user0")).await;
    assert_eq!(ip, "127.0.0.1");

    // Cookie sessions are recorded with the same address.
    let resp = proxy
        .post(app.url("/session/login"))
        .header("x-forwarded-for", "198.51.100.8")
        .json(&json!({"username": "user1", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    json_body(resp, StatusCode::OK).await;
    let token = login_from(
        login(&app, &proxy, "user1")
            .header("x-forwarded-for", "198.51.100.9")
            .send()
            .await
            .unwrap(),
    )
    .await
    .access_token;
    let sessions = app.sessions(&token).await;
    let cookie = sessions
        .iter()
        .find(|s| s["kind"] == "session")
        .expect("the cookie session is listed");
    assert_eq!(cookie["ip"], "198.51.100.8", "{sessions:?}");
}

#[tokio::test]
async fn the_forwarded_header_is_read_when_configured_and_then_only_it() {
    let mut settings = SETTINGS.to_vec();
    settings.push(("LATCHKEY_FORWARDED_HEADER", "forwarded"));
    let app = TestApp::builder().vars(&settings).start().await;
    app.create_user("alice").await;
    let proxy = from_address(1);
    let ip = ip_of_login(
        &app,
        login(&app, &proxy, "alice")
            .header(
                "forwarded",
                "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https",
            )
            .header("x-forwarded-for", "198.51.100.1"),
    )
    .await;
    assert_eq!(ip, "2001:db8:cafe::17");
    // X-Forwarded-For alone is a client's claim in this mode.
    let ip = ip_of_login(
        &app,
        login(&app, &proxy, "alice").header("x-forwarded-for", "198.51.100.1"),
    )
    .await;
    assert_eq!(ip, "127.0.0.1");
}

#[tokio::test]
async fn malformed_forwarded_headers_fall_back_to_the_peer_and_never_fail() {
    let app = TestApp::builder().vars(&SETTINGS).start().await;
    app.create_user("alice").await;
    let proxy = from_address(1);
    let long = vec!["198.51.100.1"; 2_000].join(",");
    let cases: Vec<HeaderValue> = vec![
        HeaderValue::from_static("198.51.100.7, nonsense"),
        HeaderValue::from_static("unknown"),
        HeaderValue::from_static(","),
        HeaderValue::from_static("[2001:db8::7"),
        HeaderValue::from_static("198.51.100.7:99999"),
        HeaderValue::from_bytes(b"198.51.100.7\xff").unwrap(),
    ];
    for value in cases {
        let ip = ip_of_login(
            &app,
            login(&app, &proxy, "alice").header("x-forwarded-for", value.clone()),
        )
        .await;
        assert_eq!(ip, "127.0.0.1", "{value:?}");
    }
    // A long chain costs nothing: the rightmost hop is untrusted, so it is the client.
    let ip = ip_of_login(
        &app,
        login(&app, &proxy, "alice").header("x-forwarded-for", long),
    )
    .await;
    assert_eq!(ip, "198.51.100.1");
}
