//! Test support: PostgreSQL. Tests use the server `scripts/postgres.sh` started (its URL in
//! `LATCHKEY_TEST_POSTGRES_URL`), each on a fresh database of its own; outage tests start a
//! throw-away cluster of their own with the same script, which they stop and restart.
//!
//! Shared by the store conformance suite (`src/store/conformance.rs`) and the black-box
//! tests. Without `LATCHKEY_TEST_POSTGRES_URL` the tests print a skip message and pass, except
//! under `CI=true`, where they fail.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The variable holding the URL of the test server (its `postgres` database, as superuser).
pub const URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh")
}

/// The test server's URL; `None` (after printing why) when it is not set, a failure under CI.
pub fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            // The one rule of `required.rs` (not included here: secantus.rs includes it where
            // both are loaded, and a file may be loaded as a module only once).
            let why = format!(
                "{URL_VAR} is not set: run `bash scripts/test.sh`, or \
                 `scripts/postgres.sh -- cargo nextest run ...`"
            );
            let under_ci =
                std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
            assert!(
                !under_ci,
                "the PostgreSQL tests need a PostgreSQL server under CI: {why}"
            );
            eprintln!("SKIPPED (the PostgreSQL tests): a PostgreSQL server is missing: {why}");
            None
        }
    }
}

/// `url` with its database (the path) replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).expect("a PostgreSQL URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// Creates a database with a fresh name on the server at `server` (an admin URL) and returns
/// its URL. Blocking: it runs on a thread of its own, so it may be called from async tests.
pub fn fresh_database_at(server: &str) -> String {
    let name = format!("latchkey_test_{}", uuid::Uuid::new_v4().simple());
    let admin = server.to_owned();
    let statement = format!("CREATE DATABASE \"{name}\"");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connecting to the test PostgreSQL server");
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .expect("CREATE DATABASE");
            let _ = conn.close().await;
        });
    })
    .join()
    .expect("creating a database");
    with_database(server, &name)
}

/// A fresh database on the test server; `None` (skip) when there is none.
pub fn fresh_database() -> Option<String> {
    server_url().map(|server| fresh_database_at(&server))
}

/// A cluster of the test's own (for outages), in a temporary folder, removed when dropped.
pub struct PgCluster {
    dir: tempfile::TempDir,
    /// Its `postgres` database as superuser.
    pub admin_url: String,
}

fn run_script(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        // fsync on: an immediate stop is a crash, which must not lose committed logins.
        .env("LATCHKEY_PG_DURABLE", "1")
        .output()
        .expect("running scripts/postgres.sh");
    assert!(
        out.status.success(),
        "scripts/postgres.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl PgCluster {
    /// Initializes and starts a cluster on a free port; `None` when PostgreSQL tests are not
    /// set up here (see [`server_url`]).
    pub fn start() -> Option<Self> {
        server_url()?;
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = dir.path().join("cluster");
        let admin_url = run_script(&["init", cluster.to_str().expect("a UTF-8 path")]);
        let cluster = Self { dir, admin_url };
        cluster.restart();
        Some(cluster)
    }

    fn cluster_dir(&self) -> String {
        self.dir.path().join("cluster").display().to_string()
    }

    /// Stops the server at once (`-m immediate`: connections are cut, as in a crash).
    pub fn stop(&self) {
        run_script(&["stop", &self.cluster_dir()]);
    }

    /// Starts the server again (same port, same data) and waits until it accepts connections.
    pub fn restart(&self) {
        run_script(&["start", &self.cluster_dir()]);
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["destroy", &self.cluster_dir()])
            .output();
    }
}
