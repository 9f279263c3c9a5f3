//! The PostgreSQL area's harness: a fresh database on the test server (or a cluster of the
//! test's own), the kit's [`TestApp`] on it, and the checks these tests add.

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};

use crate::kit::{COOKIE, TestApp, assert_problem, pg, plain_client};

pub use pg::PgCluster;

/// A fresh database on the test server; `None` (skip) when there is none.
pub fn fresh_database() -> Option<String> {
    pg::fresh_database()
}

/// Starts a server on `database_url` with the test defaults overridden by `extra`.
pub async fn spawn_app(database_url: &str, extra: &[(&str, &str)]) -> TestApp {
    TestApp::builder()
        .database_url(database_url)
        .vars(extra)
        .start()
        .await
}

/// `GET path` on `app`, without cookies.
pub async fn get(app: &TestApp, path: &str) -> Response {
    plain_client()
        .get(app.url(path))
        .send()
        .await
        .expect("request")
}

/// A refresh with `refresh_token` that owns what it needs, for spawning concurrent ones.
pub fn refresh_owned(
    app: &TestApp,
    refresh_token: &str,
) -> impl Future<Output = Response> + Send + 'static {
    let request = plain_client()
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("{COOKIE}={refresh_token}"));
    async move { request.send().await.expect("request") }
}

/// Asserts 503 `store_unavailable` with `Retry-After`.
pub async fn assert_unavailable(resp: Response) {
    let retry_after = resp.headers().contains_key("retry-after");
    assert_problem(resp, StatusCode::SERVICE_UNAVAILABLE, "store_unavailable").await;
    assert!(retry_after, "no Retry-After");
}

/// Polls `check` every 100 ms until it is true or `within` has passed; returns whether it
/// became true.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `latchkey store copy` from `from` to `to`, the URLs in the default variables (as the
/// README shows: no password on the command line).
pub fn store_copy(from: &str, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["store", "copy"])
        .env("LATCHKEY_COPY_FROM", from)
        .env("LATCHKEY_COPY_TO", to)
        .env("LATCHKEY_LOG", "warn")
        .env_remove("LATCHKEY_DATABASE_URL")
        .output()
        .expect("running latchkey")
}

/// Asserts that a copy succeeded and reported `counts` (e.g. "copied 1 users, 0 identities,
/// 1 refresh families"); returns its standard output.
pub fn assert_copied(out: &std::process::Output, counts: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(counts), "{stdout}");
    stdout
}
