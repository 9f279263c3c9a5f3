//! `latchkey store copy`: a SQLite deployment moves to MongoDB with its users and live logins.

use std::process::Command;

use reqwest::StatusCode;

use super::helpers::{Mongo, spawn_app};
use crate::kit::{PASSWORD, login_from};

fn store_copy(from: &str, to: &str, force: bool) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command.args(["store", "copy", "--from", from, "--to", to]);
    if force {
        command.arg("--force");
    }
    command
        .env("LATCHKEY_LOG", "warn")
        .env_remove("LATCHKEY_DATABASE_URL")
        .output()
        .expect("running latchkey")
}

#[tokio::test]
async fn a_sqlite_deployment_moves_to_mongodb_with_its_logins() {
    let Some(db) = Mongo::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let old = spawn_app(&sqlite, &[]).await;
    let login = old.signed_in("mary").await;
    old.shutdown().await;

    let copied = store_copy(&sqlite, &db.url, false);
    let stdout = String::from_utf8_lossy(&copied.stdout);
    assert!(
        copied.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert!(
        stdout.contains("copied 1 users, 0 identities, 1 refresh families"),
        "{stdout}"
    );

    let new = spawn_app(&db.url, &[]).await;
    let refreshed = login_from(new.refresh_with_cookie(&login.refresh_token).await).await;
    assert_eq!(
        new.me(&refreshed.access_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        new.me(&login.access_token).await.status(),
        StatusCode::OK,
        "same signing key"
    );
    assert_eq!(new.login("mary", PASSWORD).await.status(), StatusCode::OK);

    let refused = store_copy(&sqlite, &db.url, false);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    let forced = store_copy(&sqlite, &db.url, true);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
}
