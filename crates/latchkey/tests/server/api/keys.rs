//! Key rollover through the real `latchkey` binary: `keys rotate` publishes a pending key that
//! signs only after the publication delay, `keys rotate --now` withdraws the old key, `keys
//! list` states; the JWKS `Cache-Control`; `nbf`; and `store copy` without passwords in
//! arguments.

use std::process::Output;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey::config::DatabaseUrl;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::kit::{TestApp, decode_jwt, header, now_secs, spawn_app, spawn_app_with};

/// Reload every second, publish 3 s ahead: the JWKS max-age is 1 s.
const FAST: [(&str, &str); 2] = [
    ("LATCHKEY_KEY_RELOAD_INTERVAL", "1s"),
    ("LATCHKEY_KEY_PUBLISH_AHEAD", "3s"),
];

/// Runs the `latchkey` binary on the app's store (its settings only, no `.env`), with `stdin`.
async fn cli(app: &TestApp, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(args)
        .env_clear()
        .envs(&app.vars)
        .envs(env.iter().copied())
        .current_dir(app.db_dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let stdin = stdin.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = command.spawn().expect("the latchkey binary runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("latchkey finishes")
    })
    .await
    .expect("join")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "latchkey failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `keys list` as (kid, state word) pairs.
async fn key_states(app: &TestApp) -> Vec<(String, String)> {
    stdout(&cli(app, &["keys", "list"], &[], "").await)
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words[0].to_owned(), words[4].to_owned())
        })
        .collect()
}

fn kid(token: &str) -> String {
    decode_jwt(token).header["kid"]
        .as_str()
        .expect("kid")
        .to_owned()
}

fn published(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// The kid `keys rotate` printed.
fn rotated_kid(output: &Output) -> String {
    stdout(output)
        .split_whitespace()
        .nth(3)
        .expect("new signing key <kid>")
        .to_owned()
}

#[tokio::test]
async fn the_jwks_max_age_is_a_third_of_the_publication_delay_and_at_most_five_minutes() {
    for (ahead, want) in [
        (None, "public, max-age=300"),
        (Some("30s"), "public, max-age=10"),
        (Some("3s"), "public, max-age=1"),
    ] {
        let mut vars = vec![("LATCHKEY_KEY_RELOAD_INTERVAL", "1s")];
        if let Some(ahead) = ahead {
            vars.push(("LATCHKEY_KEY_PUBLISH_AHEAD", ahead));
        }
        let app = spawn_app_with(&vars).await;
        let resp = app
            .client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            header(resp.headers(), "cache-control").as_deref(),
            Some(want),
            "publish ahead {ahead:?}"
        );
    }
}

#[tokio::test]
async fn a_rotated_key_is_published_at_once_and_signs_after_the_publication_delay() {
    let app = spawn_app_with(&FAST).await;
    let before = app.signed_in("mary").await;
    let old = kid(&before.access_token);
    let rotated = cli(&app, &["keys", "rotate"], &[], "").await;
    let rotated_at = std::time::Instant::now();
    let new = rotated_kid(&rotated);
    assert!(
        stdout(&rotated).contains("signs from"),
        "{}",
        stdout(&rotated)
    );
    assert_eq!(
        key_states(&app).await,
        vec![
            (old.clone(), "current".into()),
            (new.clone(), "pending".into())
        ]
    );
    // Published within the reload interval, while the old key still signs.
    let mut seen = false;
    while rotated_at.elapsed() < Duration::from_millis(2_000) {
        if published(&app.jwks().await).contains(&new) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen,
        "the pending key is published within the reload interval"
    );
    let login = app
        .log_in_with(&app.client, "mary", crate::kit::PASSWORD)
        .await;
    if rotated_at.elapsed() < Duration::from_millis(2_500) {
        assert_eq!(
            kid(&login.access_token),
            old,
            "the pending key does not sign yet"
        );
    }
    tokio::time::sleep(Duration::from_millis(3_200).saturating_sub(rotated_at.elapsed())).await;
    let after = app
        .log_in_with(&app.client, "mary", crate::kit::PASSWORD)
        .await;
    assert_eq!(
        kid(&after.access_token),
        new,
        "the new key signs after the delay"
    );
    assert_eq!(
        key_states(&app).await,
        vec![(old.clone(), "retiring".into()), (new, "current".into())]
    );
    let jwks = app.jwks().await;
    assert!(
        published(&jwks).contains(&old),
        "the old key stays published"
    );
    assert_eq!(app.me(&before.access_token).await.status(), StatusCode::OK);
    assert_eq!(app.me(&after.access_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn rotate_now_signs_at_once_and_withdraws_the_old_key() {
    let app = spawn_app_with(&FAST).await;
    let before = app.signed_in("mary").await;
    let old = kid(&before.access_token);
    assert_eq!(app.me(&before.access_token).await.status(), StatusCode::OK);
    let rotated = cli(&app, &["keys", "rotate", "--now"], &[], "").await;
    let new = rotated_kid(&rotated);
    assert!(stdout(&rotated).contains("1 old key(s) withdrawn"));
    let states = key_states(&app).await;
    assert_eq!(
        states,
        vec![
            (old.clone(), "retired".into()),
            (new.clone(), "current".into())
        ]
    );
    // The server drops the old key at its next reload (1 s here).
    let mut refused = false;
    for _ in 0..40 {
        if app.me(&before.access_token).await.status() == StatusCode::UNAUTHORIZED {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "a token of the withdrawn key is refused by /auth/me"
    );
    assert!(!published(&app.jwks().await).contains(&old));
    let after = app
        .log_in_with(&app.client, "mary", crate::kit::PASSWORD)
        .await;
    assert_eq!(kid(&after.access_token), new);
    assert_eq!(app.me(&after.access_token).await.status(), StatusCode::OK);
}

/// Re-signs `token`'s claims plus `nbf` with the server's current key, read from its store.
async fn with_nbf(app: &TestApp, token: &str, nbf: i64) -> String {
    let url = DatabaseUrl::new(&app.vars["LATCHKEY_DATABASE_URL"]);
    let store = latchkey::store::open(&url).await.expect("store");
    let kid = kid(token);
    let keys = store.signing_keys().await.expect("keys");
    let key = keys.iter().find(|k| k.kid == kid).expect("the signing key");
    let mut claims = decode_jwt(token).claims;
    claims["nbf"] = nbf.into();
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid);
    let key = EncodingKey::from_ed_der(key.private_der.expose_secret());
    jsonwebtoken::encode(&header, &claims, &key).expect("sign")
}

#[tokio::test]
async fn a_token_not_valid_before_a_time_beyond_the_leeway_is_refused() {
    let app = spawn_app().await;
    let login = app.signed_in("mary").await;
    let now = now_secs();
    let soon = with_nbf(&app, &login.access_token, now + 10).await;
    assert_eq!(
        app.me(&soon).await.status(),
        StatusCode::OK,
        "within the 30 s leeway"
    );
    let later = with_nbf(&app, &login.access_token, now + 120).await;
    let resp = app.me(&later).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.expect("problem");
    assert_eq!(body["detail"], "the token is not valid yet", "{body}");
}

async fn copied_users(url: &str) -> Vec<String> {
    let store = latchkey::store::open(&DatabaseUrl::new(url))
        .await
        .expect("target");
    let counts = store
        .counts(time::OffsetDateTime::now_utc())
        .await
        .expect("counts");
    vec![counts.users.to_string()]
}

#[tokio::test]
async fn store_copy_reads_urls_from_the_environment_or_standard_input() {
    let app = spawn_app().await;
    app.create_user("mary").await;
    let from = app.vars["LATCHKEY_DATABASE_URL"].clone();
    let target = |name: &str| format!("sqlite://{}", app.db_dir.path().join(name).display());

    // Default variables.
    let to = target("env.db");
    let out = cli(
        &app,
        &["store", "copy"],
        &[("LATCHKEY_COPY_FROM", &from), ("LATCHKEY_COPY_TO", &to)],
        "",
    )
    .await;
    assert!(stdout(&out).contains("copied 1 users"), "{}", stdout(&out));
    assert_eq!(copied_users(&to).await, vec!["1"]);

    // Named variables.
    let to = target("named.db");
    let out = cli(
        &app,
        &[
            "store",
            "copy",
            "--from-env",
            "SOURCE_DB",
            "--to-env",
            "TARGET_DB",
        ],
        &[("SOURCE_DB", &from), ("TARGET_DB", &to)],
        "",
    )
    .await;
    stdout(&out);
    assert_eq!(copied_users(&to).await, vec!["1"]);

    // Standard input: the source line, then the target line.
    let to = target("stdin.db");
    let out = cli(
        &app,
        &["store", "copy", "--from", "-", "--to", "-"],
        &[],
        &format!("{from}\n{to}\n"),
    )
    .await;
    stdout(&out);
    assert_eq!(copied_users(&to).await, vec!["1"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "no warning without a password in the arguments"
    );

    // Nothing given: a clear error, no copy.
    let out = cli(&app, &["store", "copy"], &[], "").await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--from-env") && stderr.contains("LATCHKEY_COPY_FROM"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_password_in_a_store_copy_argument_draws_a_warning_and_is_never_echoed() {
    let app = spawn_app().await;
    let secret = "hunter2-Sesame-Cobalt";
    let out = cli(
        &app,
        &[
            "store",
            "copy",
            "--from",
            &format!("mongodb://admin:{secret}@127.0.0.1:1/none"),
            "--to",
            &format!("sqlite://{}", app.db_dir.path().join("x.db").display()),
        ],
        &[],
        "",
    )
    .await;
    assert!(!out.status.success(), "no such source store");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: --from holds a password"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    // A URL read from the environment draws no warning.
    let out = cli(
        &app,
        &["store", "copy", "--to", "-"],
        &[(
            "LATCHKEY_COPY_FROM",
            &format!("mongodb://admin:{secret}@127.0.0.1:1/none"),
        )],
        &format!("sqlite://{}\n", app.db_dir.path().join("y.db").display()),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(!stderr.contains(secret), "{stderr}");
}
