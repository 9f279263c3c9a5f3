//! `latchkey doctor` through the real binary: a production configuration passes (exit 0),
//! each unsafe setting fails it (exit 1) naming the check and the variable, warnings fail only
//! `--strict`, the store is read (admin role holders, the signing key's age, the SQLite
//! file's filesystem) and no secret is ever printed.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use latchkey::{Config, Server};
use latchkey_guard::TestClock;
use serde_json::Value;
use tempfile::TempDir;

use crate::kit::{Backend, PASSWORD, listener};

/// A production configuration on a fresh SQLite file in `dir`.
fn production(dir: &TempDir) -> HashMap<String, String> {
    let url = Backend::Sqlite.fresh_database_url(dir.path());
    [
        ("LATCHKEY_DATABASE_URL", url.as_str()),
        ("LATCHKEY_LISTEN", "127.0.0.1:0"),
        ("LATCHKEY_ISSUER", "https://auth.example.com"),
        ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.com"),
        ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8"),
        ("LATCHKEY_LOG", "warn"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn latchkey(vars: &HashMap<String, String>, dir: &TempDir, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env_clear()
        .envs(vars)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the latchkey binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("latchkey finishes")
}

/// `doctor --json` (plus `extra` arguments): the exit code and the report.
fn doctor(vars: &HashMap<String, String>, dir: &TempDir, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let out = latchkey(vars, dir, &args, "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().expect("an exit code"), report)
}

fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {report:#}"))
}

fn with(vars: &HashMap<String, String>, pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars = vars.clone();
    for (k, v) in pairs {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    vars
}

fn create_admin(vars: &HashMap<String, String>, dir: &TempDir) {
    let out = latchkey(
        vars,
        dir,
        &[
            "user",
            "create",
            "--username",
            "root",
            "--role",
            "admin",
            "--password-stdin",
        ],
        PASSWORD,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_production_configuration_passes() {
    let dir = tempfile::tempdir().unwrap();
    let vars = production(&dir);
    create_admin(&vars, &dir);
    let (code, report) = tokio::task::block_in_place(|| doctor(&vars, &dir, &[]));
    assert_eq!(report["unsafe"], 0, "{report:#}");
    assert_eq!(report["warnings"], 0, "{report:#}");
    assert_eq!(code, 0);
    for check in [
        "store.reachable",
        "admin.exists",
        "keys.age",
        "sqlite.filesystem",
    ] {
        assert_eq!(finding(&report, check)["severity"], "ok", "{check}");
    }
    // The text report says the same, and exits 0 under --strict too.
    let out = latchkey(&vars, &dir, &["doctor", "--strict"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.starts_with("latchkey doctor: 0 unsafe, 0 warning(s)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_unsafe_setting_fails_the_check_and_is_named_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let good = production(&dir);
    create_admin(&good, &dir);
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[("LATCHKEY_COOKIE_SECURE", "false")],
            "cookies.secure",
            "LATCHKEY_COOKIE_SECURE",
        ),
        (
            &[("LATCHKEY_ISSUER", "http://auth.example.com")],
            "issuer.https",
            "LATCHKEY_ISSUER",
        ),
        (
            &[
                ("LATCHKEY_COOKIE_SAMESITE", "None"),
                ("LATCHKEY_ALLOWED_ORIGINS", ""),
            ],
            "cookies.samesite",
            "LATCHKEY_COOKIE_SAMESITE",
        ),
        (
            &[("LATCHKEY_ALLOWED_ORIGINS", "http://app.example.com")],
            "origins.https",
            "LATCHKEY_ALLOWED_ORIGINS",
        ),
        (
            &[
                ("LATCHKEY_ARGON2_MEMORY_KIB", "8192"),
                ("LATCHKEY_ARGON2_ITERATIONS", "2"),
            ],
            "passwords.argon2",
            "LATCHKEY_ARGON2_MEMORY_KIB",
        ),
        (
            &[("LATCHKEY_TRUSTED_PROXIES", "0.0.0.0/0")],
            "proxies.trusted",
            "LATCHKEY_TRUSTED_PROXIES",
        ),
        (
            &[("LATCHKEY_METRICS_LISTEN", "0.0.0.0:9090")],
            "metrics.listen",
            "LATCHKEY_METRICS_LISTEN",
        ),
    ];
    for (pairs, check, variable) in cases {
        let vars = with(&good, pairs);
        let (code, report) = tokio::task::block_in_place(|| doctor(&vars, &dir, &[]));
        assert_eq!(code, 1, "{pairs:?}: {report:#}");
        let f = finding(&report, check);
        assert_eq!(f["severity"], "unsafe", "{pairs:?}: {f}");
        assert_eq!(f["variable"], *variable, "{pairs:?}");
        assert!(f["fix"].as_str().is_some_and(|s| !s.is_empty()), "{f}");
        assert!(report["unsafe"].as_u64().unwrap() >= 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn warnings_pass_unless_strict_and_the_store_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let vars = production(&dir);
    // A store whose signing key was made 200 days ago, and no admin.
    let clock = TestClock::new();
    clock.rewind(Duration::from_secs(200 * 86_400));
    let mut config = Config::from_env_map(&vars).unwrap();
    config.clock = clock;
    let listener = tokio::net::TcpListener::from_std(listener()).unwrap();
    Server::start_on(config, listener)
        .await
        .unwrap()
        .shutdown()
        .await;

    let (code, report) = tokio::task::block_in_place(|| doctor(&vars, &dir, &[]));
    assert_eq!(code, 0, "warnings only: {report:#}");
    assert_eq!(report["unsafe"], 0);
    let admin = finding(&report, "admin.exists");
    assert_eq!(admin["severity"], "warning");
    assert!(admin["fix"].as_str().unwrap().contains("--role admin"));
    let age = finding(&report, "keys.age");
    assert_eq!(age["severity"], "warning", "{age}");
    assert!(
        age["message"].as_str().unwrap().contains("200 days"),
        "{age}"
    );
    assert!(age["fix"].as_str().unwrap().contains("keys rotate"));

    let (code, _) = tokio::task::block_in_place(|| doctor(&vars, &dir, &["--strict"]));
    assert_eq!(code, 1, "--strict fails on warnings");
    let (_, report) =
        tokio::task::block_in_place(|| doctor(&vars, &dir, &["--max-key-age", "365d"]));
    assert_eq!(finding(&report, "keys.age")["severity"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_store_is_unsafe_and_no_secret_is_printed() {
    let dir = tempfile::tempdir().unwrap();
    let vars = with(
        &production(&dir),
        &[
            (
                "LATCHKEY_DATABASE_URL",
                "postgres://latchkey:hunter2-db-secret@127.0.0.1:9/latchkey",
            ),
            ("LATCHKEY_SIGNING_ALG", "HS256"),
            (
                "LATCHKEY_HS256_SECRET",
                "an-hs256-secret-that-is-long-enough-1",
            ),
        ],
    );
    for json in [true, false] {
        let args: &[&str] = if json {
            &["doctor", "--json"]
        } else {
            &["doctor"]
        };
        let out = tokio::task::block_in_place(|| latchkey(&vars, &dir, args, ""));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(all.contains("store.reachable"), "{all}");
        assert!(!all.contains("hunter2"), "{all}");
        assert!(!all.contains("hs256-secret"), "{all}");
    }
}
