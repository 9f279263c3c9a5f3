//! Browser safety: the security headers, `Cache-Control: no-store`, the Origin /
//! `Sec-Fetch-Site` CSRF check on cookie-authenticated endpoints, and CORS.

use reqwest::{Method, Response, StatusCode};
use serde_json::json;

use crate::kit::{
    ISSUER, PASSWORD, TestApp, assert_no_store, assert_problem, assert_security_headers, header,
    spawn_app, spawn_app_with,
};

const ALLOWED: &str = "https://app.example";
const ALSO_ALLOWED: &str = "https://admin.example";
const EVIL: &str = "http://evil.example";

async fn spawn_with_origins() -> TestApp {
    spawn_app_with(&[(
        "LATCHKEY_ALLOWED_ORIGINS",
        &format!("{ALLOWED},{ALSO_ALLOWED}"),
    )])
    .await
}

/// A refresh with the default client's cookie and extra headers.
async fn refresh_with_headers(app: &TestApp, headers: &[(&str, &str)]) -> Response {
    let mut req = app.client.post(app.url("/auth/refresh"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = spawn_app().await;
    app.create_user("alice").await;
    let c = &app.client;

    let responses = [
        ("healthz", c.get(app.url("/healthz")).send().await.unwrap()),
        (
            "jwks",
            c.get(app.url("/.well-known/jwks.json"))
                .send()
                .await
                .unwrap(),
        ),
        ("login 200", app.login("alice", PASSWORD).await),
        (
            "login 401",
            app.login("alice", "Wrong-Passphrase-For-Alice-12").await,
        ),
        ("logout 204", app.logout().await),
        ("me 401", c.get(app.url("/auth/me")).send().await.unwrap()),
        ("404", c.get(app.url("/no/such/path")).send().await.unwrap()),
        ("405", c.get(app.url("/auth/login")).send().await.unwrap()),
        (
            "415",
            c.post(app.url("/auth/login"))
                .body("x")
                .send()
                .await
                .unwrap(),
        ),
        (
            "413",
            app.post_json("/auth/login", &json!({ "pad": "x".repeat(70 * 1024) }))
                .await,
        ),
        (
            "csrf 403",
            refresh_with_headers(&app, &[("origin", EVIL)]).await,
        ),
    ];
    for (what, resp) in &responses {
        assert_security_headers(resp.headers(), what);
    }
}

#[tokio::test]
async fn cors_preflights_carry_the_security_headers() {
    let app = spawn_with_origins().await;

    let resp = preflight(&app, "/auth/refresh", ALLOWED).await;

    assert_security_headers(resp.headers(), "preflight");
}

#[tokio::test]
async fn responses_with_tokens_or_user_data_are_not_cached() {
    let app = spawn_app().await;

    let register = app.register("alice", PASSWORD).await;
    assert_no_store(register.headers(), "register");
    let login = app.login("alice", PASSWORD).await;
    assert_no_store(login.headers(), "login");
    let token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_no_store(app.refresh().await.headers(), "refresh");
    assert_no_store(app.me(&token).await.headers(), "me");
    assert_no_store(
        app.get_authed("/auth/sessions", &token).await.headers(),
        "sessions",
    );
}

#[tokio::test]
async fn refresh_from_a_foreign_origin_is_403_csrf_rejected_and_rotates_nothing() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;

    let resp = refresh_with_headers(&app, &[("origin", EVIL)]).await;

    assert!(
        crate::kit::refresh_cookie(&resp).is_none(),
        "a rejected request touched the cookie"
    );
    assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
    let resp = app.refresh_with_cookie(&login.refresh_token).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the token was consumed by a rejected request"
    );
}

#[tokio::test]
async fn refresh_with_an_opaque_null_origin_is_403_csrf_rejected() {
    let app = spawn_app().await;
    app.signed_in("alice").await;

    let resp = refresh_with_headers(&app, &[("origin", "null")]).await;

    assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
}

#[tokio::test]
async fn refresh_marked_cross_site_by_fetch_metadata_is_403_csrf_rejected() {
    let app = spawn_app().await;
    app.signed_in("alice").await;

    let resp = refresh_with_headers(&app, &[("sec-fetch-site", "cross-site")]).await;

    assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_from_a_foreign_origin_is_403_and_the_session_survives() {
    let app = spawn_app().await;
    app.signed_in("alice").await;

    for headers in [[("origin", EVIL)], [("sec-fetch-site", "cross-site")]] {
        let mut req = app.client.post(app.url("/auth/logout"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
    }
    assert_eq!(
        app.refresh().await.status(),
        StatusCode::OK,
        "a rejected logout revoked the session"
    );
}

#[tokio::test]
async fn refresh_from_the_servers_own_origin_is_allowed() {
    let app = spawn_app().await;
    app.signed_in("alice").await;

    let resp = refresh_with_headers(
        &app,
        &[("origin", ISSUER), ("sec-fetch-site", "same-origin")],
    )
    .await;

    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_from_a_configured_origin_is_allowed() {
    let app = spawn_with_origins().await;
    app.signed_in("alice").await;

    for origin in [ALLOWED, ALSO_ALLOWED] {
        let resp = refresh_with_headers(&app, &[("origin", origin)]).await;
        assert_eq!(resp.status(), StatusCode::OK, "origin {origin}");
    }
    let resp = refresh_with_headers(&app, &[("origin", EVIL)]).await;
    assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
}

#[tokio::test]
async fn origins_are_matched_exactly() {
    let app = spawn_with_origins().await;
    app.signed_in("alice").await;

    for origin in [
        "https://app.example.evil.example",
        "http://app.example",
        "https://app.example:8443",
    ] {
        let resp = refresh_with_headers(&app, &[("origin", origin)]).await;
        assert_problem(resp, StatusCode::FORBIDDEN, "csrf_rejected").await;
    }
}

#[tokio::test]
async fn the_cors_preflight_allows_a_configured_origin_with_credentials() {
    let app = spawn_with_origins().await;

    for path in ["/auth/refresh", "/auth/login"] {
        let resp = preflight(&app, path, ALLOWED).await;
        assert!(
            resp.status().is_success(),
            "{path}: preflight status {}",
            resp.status()
        );
        let h = resp.headers();
        assert_eq!(
            header(h, "access-control-allow-origin").as_deref(),
            Some(ALLOWED),
            "{path}"
        );
        assert_eq!(
            header(h, "access-control-allow-credentials").as_deref(),
            Some("true"),
            "{path}"
        );
        let methods = header(h, "access-control-allow-methods")
            .unwrap_or_default()
            .to_uppercase();
        assert!(
            methods.contains("POST") || methods == "*",
            "{path}: allow-methods `{methods}`"
        );
    }
}

#[tokio::test]
async fn the_cors_preflight_does_not_allow_other_origins() {
    let app = spawn_with_origins().await;

    let resp = preflight(&app, "/auth/refresh", EVIL).await;

    let h = resp.headers();
    // Without Access-Control-Allow-Origin the browser grants nothing (Fetch standard, CORS
    // check); a stray Access-Control-Allow-Credentials alone does not open anything.
    assert!(
        h.get("access-control-allow-origin").is_none(),
        "allowed for {EVIL}: {h:?}"
    );
}

#[tokio::test]
async fn cors_responses_echo_only_configured_origins() {
    let app = spawn_with_origins().await;
    let login = app.signed_in("alice").await;

    let allowed = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&login.access_token)
        .header("origin", ALLOWED);
    let resp = allowed.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(resp.headers(), "access-control-allow-origin").as_deref(),
        Some(ALLOWED)
    );
    assert_eq!(
        header(resp.headers(), "access-control-allow-credentials").as_deref(),
        Some("true")
    );

    let other = app
        .client
        .get(app.url("/auth/me"))
        .bearer_auth(&login.access_token)
        .header("origin", EVIL);
    let resp = other.send().await.unwrap();
    assert!(
        resp.headers().get("access-control-allow-origin").is_none(),
        "ACAO sent for {EVIL}"
    );
}

#[tokio::test]
async fn without_configured_origins_no_origin_is_granted_cors() {
    let app = spawn_app().await;

    let resp = preflight(&app, "/auth/refresh", ALLOWED).await;

    let acao = header(resp.headers(), "access-control-allow-origin");
    assert!(
        acao.is_none(),
        "ACAO `{acao:?}` without any configured origin"
    );
}
