//! A known sequence, then exact counts from a parsed scrape; where metrics are (not) served.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::helpers::{Scrape, metrics_addr, parser, scrape};
use crate::kit::{PASSWORD, TestApp, login_from, plain_client, spawn_app, spawn_app_with};

const ON: &[(&str, &str)] = &[
    ("LATCHKEY_METRICS_LISTEN", "127.0.0.1:0"),
    ("LATCHKEY_METRICS_SAMPLE_INTERVAL", "1s"),
];

/// Refreshes with an explicit token: its status, and the successor when it is 200.
async fn refresh(app: &TestApp, token: &str) -> (StatusCode, Option<String>) {
    let resp = app.refresh_with_cookie(token).await;
    match resp.status() {
        StatusCode::OK => (StatusCode::OK, Some(login_from(resp).await.refresh_token)),
        status => (status, None),
    }
}

/// Scrapes until the sampled gauges show what the store holds (the sampler runs every second).
async fn scrape_sampled(app: &TestApp, python: &std::path::PathBuf, want: [f64; 3]) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let scrape = scrape(app, python).await;
        let have = [
            scrape.get("latchkey_users", &[]),
            scrape.get("latchkey_live_refresh_families", &[]),
            scrape.get("latchkey_live_sessions", &[]),
        ];
        if have == want.map(Some) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "the sampled gauges stayed at {have:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_known_sequence_is_counted_exactly() {
    let Some(python) = parser() else { return };
    let app = spawn_app_with(ON).await;

    app.create_user("alice").await;
    for (username, password) in [
        ("alice", "wrong password, twice"),
        ("alice", "wrong password, twice"),
        ("nobody", PASSWORD),
    ] {
        let resp = app.login_with(&plain_client(), username, password).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let first = login_from(app.login_with(&plain_client(), "alice", PASSWORD).await).await;

    for _ in 0..3 {
        assert_eq!(app.me(&first.access_token).await.status(), StatusCode::OK);
    }
    assert_eq!(
        app.me("not-a-token").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let resp = app.delete_session(&first.access_token, &unknown).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    for path in ["/no/such/path", "/metrics"] {
        let resp = plain_client().get(app.url(path)).send().await.unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::NOT_FOUND,
            "{path} on the main listener"
        );
    }

    let r0 = first.refresh_token.clone();
    let (status, r1) = refresh(&app, &r0).await; // rotated
    assert_eq!(status, StatusCode::OK);
    let r1 = r1.unwrap();
    let (status, again) = refresh(&app, &r0).await; // the predecessor, in the interval
    assert_eq!(
        (status, again.as_deref()),
        (StatusCode::OK, Some(r1.as_str()))
    );
    let (status, r2) = refresh(&app, &r1).await; // rotated
    assert_eq!(status, StatusCode::OK);
    let r2 = r2.unwrap();
    assert_eq!(refresh(&app, &r0).await.0, StatusCode::UNAUTHORIZED); // reuse: revoked
    assert_eq!(refresh(&app, &r2).await.0, StatusCode::UNAUTHORIZED); // family gone
    assert_eq!(refresh(&app, "forged").await.0, StatusCode::UNAUTHORIZED);

    login_from(app.login_with(&plain_client(), "alice", PASSWORD).await).await;
    app.session_log_in("alice").await;

    let s = scrape_sampled(&app, &python, [1.0, 1.0, 1.0]).await;

    // Logins by method and outcome.
    let logins = |method, outcome| {
        s.value(
            "latchkey_logins_total",
            &[("method", method), ("outcome", outcome)],
        )
    };
    assert_eq!(logins("password", "success"), 2.0);
    assert_eq!(logins("password", "invalid_credentials"), 3.0);
    assert_eq!(logins("cookie_session", "success"), 1.0);
    assert_eq!(s.family_type("latchkey_logins"), Some("counter".into()));

    // Refreshes.
    let refreshes = |outcome| s.value("latchkey_refreshes_total", &[("outcome", outcome)]);
    assert_eq!(refreshes("rotated"), 2.0);
    assert_eq!(refreshes("reissued"), 1.0);
    assert_eq!(refreshes("reuse_detected"), 1.0);
    assert_eq!(refreshes("refused"), 2.0);
    assert_eq!(refreshes("error"), 0.0);

    // Token verifications: the first /auth/me checks in full, the next three calls (two
    // /auth/me, one DELETE) hit the cache, the made-up token is refused.
    let tokens = |result| s.value("latchkey_token_verifications_total", &[("result", result)]);
    assert_eq!(tokens("verified"), 1.0);
    assert_eq!(tokens("cache_hit"), 3.0);
    assert_eq!(tokens("refused"), 1.0);
    assert_eq!(s.value("latchkey_token_cache_hit_ratio", &[]), 0.6);

    // Password hashing: one new hash (registration), six checks (five password logins, one
    // session login; the unknown user is checked against the dummy hash), none left running.
    let hashes = |kind| {
        s.value(
            "latchkey_password_hash_duration_seconds_count",
            &[("kind", kind)],
        )
    };
    assert_eq!(hashes("hash"), 1.0);
    assert_eq!(hashes("verify"), 6.0);
    assert_eq!(
        s.family_type("latchkey_password_hash_duration_seconds"),
        Some("histogram".into())
    );
    assert_eq!(s.value("latchkey_password_hashes_in_flight", &[]), 0.0);
    for queue in ["login", "registration"] {
        assert_eq!(
            s.value("latchkey_password_hashes_waiting", &[("queue", queue)]),
            0.0
        );
    }

    // HTTP requests by route template, method and status.
    let http = |route, method, status| {
        s.get(
            "latchkey_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(http("/auth/register", "POST", "201"), 1.0);
    assert_eq!(http("/auth/login", "POST", "401"), 3.0);
    assert_eq!(http("/auth/login", "POST", "200"), 2.0);
    assert_eq!(http("/auth/me", "GET", "200"), 3.0);
    assert_eq!(http("/auth/me", "GET", "401"), 1.0);
    assert_eq!(http("/auth/sessions/{id}", "DELETE", "404"), 1.0);
    assert_eq!(http("/auth/refresh", "POST", "200"), 3.0);
    assert_eq!(http("/auth/refresh", "POST", "401"), 3.0);
    assert_eq!(http("/session/login", "POST", "200"), 1.0);
    assert_eq!(http("unmatched", "GET", "404"), 2.0);
    assert_eq!(
        s.value(
            "latchkey_http_request_duration_seconds_count",
            &[("route", "/auth/me"), ("method", "GET")]
        ),
        4.0
    );
    assert_eq!(
        s.value(
            "latchkey_http_request_duration_seconds_bucket",
            &[("route", "/auth/me"), ("method", "GET"), ("le", "+Inf")]
        ),
        4.0
    );
    for sample in &s.samples {
        let labels = sample["labels"].to_string();
        assert!(
            !labels.contains(&unknown) && !labels.contains("/no/such/path"),
            "a raw path or id in a label: {sample}"
        );
    }

    // Store operations: five rotation attempts (two rotated, three not current) and three
    // families read after a failed rotation. Changes recorded in the audit trail (the
    // registration, the reuse revocation, the logins' records) go through `audited`.
    let store = |operation, outcome| {
        s.value(
            "latchkey_store_operations_total",
            &[("operation", operation), ("outcome", outcome)],
        )
    };
    assert_eq!(store("rotate_if_current", "ok"), 5.0);
    assert_eq!(store("find_family", "ok"), 3.0);
    assert!(store("audited", "ok") >= 1.0);
    assert_eq!(store("audited", "conflict"), 0.0);
    assert_eq!(
        s.value(
            "latchkey_store_operation_duration_seconds_count",
            &[("operation", "rotate_if_current")]
        ),
        5.0
    );

    // Build info.
    assert_eq!(
        s.value(
            "latchkey_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                (
                    "git_sha",
                    option_env!("LATCHKEY_GIT_SHA").unwrap_or("unknown")
                )
            ]
        ),
        1.0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_metrics_listener_serves_only_metrics() {
    let app = spawn_app_with(ON).await;
    let addr = metrics_addr(&app);
    assert_ne!(addr, app.addr);
    for path in ["/", "/auth/me", "/healthz", "/metrics/x"] {
        let resp = plain_client()
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let resp = plain_client()
        .post(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_are_off_by_default_and_never_on_the_main_listener() {
    let app = spawn_app().await;
    assert_eq!(app.server.as_ref().unwrap().metrics_addr(), None);
    let resp = plain_client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    app.shutdown().await;
}
