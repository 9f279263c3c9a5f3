//! `latchkey audit tail [--follow] [--json]` through the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::kit::{PASSWORD, TestApp};

fn tail(app: &TestApp, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LATCHKEY_DATABASE_URL", &app.vars["LATCHKEY_DATABASE_URL"])
        .env("LATCHKEY_LOG", "error")
        .current_dir(app.db_dir.path())
        .args(["audit", "tail"])
        .args(args);
    command
}

#[tokio::test]
async fn audit_tail_prints_the_latest_records_and_follows_new_ones() {
    let app = TestApp::builder().start().await;
    app.register_user("tailed").await;
    let _ = app.login("tailed", PASSWORD).await;

    let out = tail(&app, &["--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["user.registered", "login"]);

    let out = tail(&app, &["-n", "1"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("login") && text.contains("success"), "{text}");

    let mut child = tail(&app, &["--follow", "--json", "-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let first = lines_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(first.contains("\"login\""), "{first}");
    let _ = app.login("tailed", "a-wrong-password-again").await;
    let next = lines_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let next: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(next["event"], "login");
    assert_eq!(next["outcome"], "failure");
    assert_eq!(next["details"]["reason"], "bad_password");
    child.kill().unwrap();
    let _ = child.wait();
}
