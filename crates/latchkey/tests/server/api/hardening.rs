//! The attack review's fixes, each shown failing for the attacker: a bounded hashing queue,
//! no reuse grace at an interval of zero, sealed sessions ending with logout-all and password
//! changes, re-authentication for provider links, look-alike usernames, logout headers,
//! slow and hoarded connections, and a database file only its owner can read.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::kit::{
    PASSWORD, assert_problem, browser, header, json_body, login_from, spawn_app, spawn_app_with,
};

#[tokio::test]
async fn a_registration_flood_gets_fast_503s_while_a_login_still_goes_through() {
    // Slow hashes, room for one waiting registration: most of the flood is refused at once.
    let app = spawn_app_with(&[
        ("LATCHKEY_ARGON2_MEMORY_KIB", "32768"),
        ("LATCHKEY_ARGON2_ITERATIONS", "3"),
        ("LATCHKEY_PASSWORD_QUEUE", "4"),
        ("LATCHKEY_REGISTER_MAX_PER_IP", "1000"),
        ("LATCHKEY_REGISTER_MAX_GLOBAL", "1000"),
    ])
    .await;
    app.create_user("alice").await;
    let url = app.url("/auth/register");
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..40 {
        let request = app
            .client
            .post(&url)
            .json(&json!({"username": format!("bot{i}"), "password": PASSWORD}));
        flood.spawn(async move { request.send().await.expect("request") });
    }
    // Logins wait in their own queue and are taken first.
    let login = app.login("alice", PASSWORD).await;
    json_body(login, StatusCode::OK).await;

    let mut overloaded = 0;
    while let Some(resp) = flood.join_next().await {
        let resp = resp.unwrap();
        match resp.status() {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(header(resp.headers(), "retry-after").as_deref(), Some("1"));
                assert_problem(resp, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
                overloaded += 1;
            }
            other => panic!("unexpected {other}: {}", resp.text().await.unwrap()),
        }
    }
    assert!(overloaded > 0, "the queue is bounded");
}

#[tokio::test]
async fn passwords_over_1024_bytes_are_refused_on_every_path_that_hashes() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let long = "x".repeat(60 * 1024 - 100);

    let resp = app
        .change_password(&login.access_token, &long, "Another-Long-Passphrase-42")
        .await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    let resp = app
        .client
        .post(app.url("/session/login"))
        .json(&json!({"username": "alice", "password": long}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    let resp = app.register("bob", &long).await;
    assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
}

#[tokio::test]
async fn with_no_reuse_interval_two_concurrent_refreshes_of_one_token_cannot_both_succeed() {
    let app = spawn_app_with(&[("LATCHKEY_REFRESH_REUSE_INTERVAL", "0s")]).await;
    let login = app.signed_in("alice").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = crate::kit::plain_client()
            .post(app.url("/auth/refresh"))
            .header("cookie", format!("refresh_token={}", login.refresh_token));
        tasks.spawn(async move { request.send().await.expect("request").status() });
    }
    let mut ok = 0;
    while let Some(status) = tasks.join_next().await {
        if status.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert!(ok <= 1, "{ok} refreshes of one token succeeded");
}

#[tokio::test]
async fn a_sealed_cookie_session_ends_with_logout_all_and_with_a_password_change() {
    let app = spawn_app_with(&[("LATCHKEY_SESSION_STORE", "cookie")]).await;
    let session = app.session_signed_in("alice").await;
    assert_eq!(app.session_status(&session.cookie).await, StatusCode::OK);
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;
    let resp = app.logout_all(&token.access_token).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.session_status(&session.cookie).await,
        StatusCode::UNAUTHORIZED,
        "the sealed cookie died with logout-all"
    );

    let session = app.session_log_in("alice").await;
    let token = app.log_in_with(&browser(), "alice", PASSWORD).await;
    let resp = app
        .change_password(&token.access_token, PASSWORD, "Another-Long-Passphrase-42")
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.session_status(&session.cookie).await,
        StatusCode::UNAUTHORIZED,
        "the sealed cookie died with the password change"
    );
}

#[tokio::test]
async fn access_tokens_carry_the_time_of_the_sign_in_through_refreshes() {
    let app = spawn_app().await;
    let login = app.signed_in("alice").await;
    let first = crate::kit::decode_jwt(&login.access_token).claims;
    let auth_time = first["auth_time"].as_u64().expect("auth_time");
    assert!(auth_time <= first["iat"].as_u64().unwrap());
    let refreshed = login_from(app.refresh().await).await;
    let claims = crate::kit::decode_jwt(&refreshed.access_token).claims;
    assert_eq!(claims["auth_time"].as_u64(), Some(auth_time));
}

#[tokio::test]
async fn linking_or_unlinking_a_provider_with_an_old_sign_in_needs_the_password() {
    let mut settings = crate::api::throttling::DOWN_PROVIDER.to_vec();
    settings.push(("LATCHKEY_REAUTH_MAX_AGE", "1s"));
    let app = spawn_app_with(&settings).await;
    let login = app.signed_in("alice").await;
    // A token stolen a while after its sign-in.
    app.clock.advance(Duration::from_millis(2_100));
    let link = |body: serde_json::Value| {
        app.client
            .post(app.url("/auth/oauth/corp/link"))
            .bearer_auth(&login.access_token)
            .json(&body)
            .send()
    };
    let resp = link(json!({"redirect_to": "https://app.example.com/done"}))
        .await
        .unwrap();
    let challenge = header(resp.headers(), "www-authenticate").unwrap();
    assert!(
        challenge.contains("insufficient_user_authentication") && challenge.contains("max_age=1"),
        "{challenge}"
    );
    assert_problem(resp, StatusCode::UNAUTHORIZED, "reauthentication_required").await;
    let resp = link(json!({"redirect_to": "https://app.example.com/done", "password": "guess"}))
        .await
        .unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    // With the password it gets past the check (to the provider, which is down here).
    let resp = link(json!({"redirect_to": "https://app.example.com/done", "password": PASSWORD}))
        .await
        .unwrap();
    assert_ne!(resp.status(), StatusCode::UNAUTHORIZED);

    let unlink = || {
        app.client
            .delete(app.url("/auth/oauth/corp/link"))
            .bearer_auth(&login.access_token)
    };
    let resp = unlink().send().await.unwrap();
    assert_problem(resp, StatusCode::UNAUTHORIZED, "reauthentication_required").await;
    let resp = unlink()
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_problem(resp, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn usernames_with_invisible_characters_are_refused() {
    let app = spawn_app().await;
    app.create_user("dave").await;
    for name in [
        "dave\u{200b}",
        "d\u{200d}ave",
        "\u{feff}dave",
        "dave\u{202e}",
    ] {
        let resp = app.register(name, PASSWORD).await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
}

#[tokio::test]
async fn logout_answers_are_not_cached_and_clear_the_site_cookies() {
    let app = spawn_app().await;
    app.signed_in("alice").await;
    let token_logout = app.logout().await;
    let session = app.session_log_in("alice").await;
    let session_logout = app.session_logout(&session).await;
    for resp in [token_logout, session_logout] {
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let headers = resp.headers();
        assert_eq!(
            header(headers, "cache-control").as_deref(),
            Some("no-store")
        );
        assert_eq!(
            header(headers, "clear-site-data").as_deref(),
            Some("\"cookies\"")
        );
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app = spawn_app_with(&[("LATCHKEY_HEADER_READ_TIMEOUT", "1s")]).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // Closed by the server (EOF, possibly after a 408), well before this bound.
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the half-sent request was still open after 20 s"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let app = spawn_app_with(&[
        ("LATCHKEY_MAX_CONNECTIONS", "2"),
        ("LATCHKEY_HEADER_READ_TIMEOUT", "3s"),
    ])
    .await;
    let idle_a = TcpStream::connect(app.addr).await.unwrap();
    let idle_b = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    assert!(
        quick.get(app.url("/healthz")).send().await.is_err(),
        "a third connection is not served while two are held"
    );
    drop((idle_a, idle_b));
    let resp = crate::kit::plain_client()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_file_is_private_and_a_readable_one_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    // The file is SQLite's, whatever the run's backend.
    let mut app = crate::kit::TestApp::builder()
        .backend(crate::kit::Backend::Sqlite)
        .start()
        .await;
    app.signed_in("alice").await;
    let db = app.db_dir.path().join("latchkey.db");
    for file in [
        db.clone(),
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
    ] {
        if let Ok(meta) = std::fs::metadata(&file) {
            assert_eq!(
                meta.permissions().mode() & 0o777,
                0o600,
                "{}",
                file.display()
            );
        }
    }
    app.server.take().unwrap().shutdown().await;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let vars: HashMap<String, String> = app.vars.clone();
    let config = latchkey::Config::from_env_map(&vars).unwrap();
    let error = latchkey::Server::start(config)
        .await
        .err()
        .expect("refuses to start");
    let message = format!("{error:#}");
    assert!(message.contains("chmod 600"), "{message}");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    app.restart().await;
    let resp = app.login("alice", PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_database_path_error_never_prints_a_password_from_the_url() {
    let url = latchkey::config::DatabaseUrl::new("sqlite:///no-such-dir/admin:S3CRET@host/x.db");
    let Err(error) = latchkey::store::open(&url).await else {
        panic!("opened a file in a missing directory");
    };
    let message = error.to_string();
    assert!(!message.contains("S3CRET"), "{message}");
    assert!(message.contains("host/x.db"), "{message}");
}
