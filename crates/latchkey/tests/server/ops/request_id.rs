//! Request ids: generated and returned on every answer, an incoming `X-Request-Id` honoured
//! only from a trusted proxy (and only when sane), and carried by the JSON log lines of the
//! real binary (`LATCHKEY_LOG_FORMAT=json`), one access line per request.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::kit::{TestApp, header, plain_client};

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn request_id(app: &TestApp, path: &str, incoming: Option<&str>) -> (StatusCode, String) {
    let mut request = plain_client().get(app.url(path));
    if let Some(id) = incoming {
        request = request.header("x-request-id", id);
    }
    let resp = request.send().await.expect("request");
    let id = header(resp.headers(), "x-request-id").expect("an X-Request-Id on every answer");
    (resp.status(), id)
}

#[tokio::test]
async fn every_answer_carries_a_fresh_request_id_and_a_strangers_is_ignored() {
    let app = TestApp::builder().start().await;
    let (status, first) = request_id(&app, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(is_generated(&first), "{first}");
    let (_, second) = request_id(&app, "/healthz", None).await;
    assert_ne!(first, second, "one id per request");
    // Errors and unknown paths too.
    let (status, id) = request_id(&app, "/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(is_generated(&id));
    let (status, id) = request_id(&app, "/auth/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(is_generated(&id));
    // No proxy is trusted: a client's id is not taken.
    let (_, id) = request_id(&app, "/healthz", Some("chosen-by-client")).await;
    assert!(is_generated(&id), "{id}");
}

#[tokio::test]
async fn a_trusted_proxys_request_id_is_kept_when_sane() {
    let app = TestApp::builder()
        .vars(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.0/8")])
        .start()
        .await;
    let (_, id) = request_id(&app, "/healthz", Some("edge-7f3a/42")).await;
    assert_eq!(id, "edge-7f3a/42");
    let (status, id) = request_id(&app, "/nowhere", Some("edge-404")).await;
    assert_eq!((status, id.as_str()), (StatusCode::NOT_FOUND, "edge-404"));
    for insane in ["has space", &"x".repeat(129), "tab\there"] {
        let (_, id) = request_id(&app, "/healthz", Some(insane)).await;
        assert!(is_generated(&id), "{insane:?} was replaced, got {id}");
    }
}

/// The real binary serving with JSON logs; its log lines arrive on `lines`.
struct Binary {
    child: Child,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("serve")
            .env_clear()
            .envs(latchkey::Config::test_vars(&url))
            .env("LATCHKEY_LISTEN", "127.0.0.1:0")
            .env("LATCHKEY_LOG_FORMAT", "json")
            .envs(extra.iter().copied())
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the latchkey binary runs");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            _dir: dir,
        }
    }

    /// Every line up to and including the first JSON line `matching`, within 20 s.
    fn until(&self, what: &str, matching: impl Fn(&Value) -> bool) -> (Value, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let value: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
                    seen.push(line);
                    if matching(&value) {
                        return (value, seen);
                    }
                }
                Err(_) => panic!("no log line {what} within 20 s; saw {seen:#?}"),
            }
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_carry_the_request_id_on_every_line_of_the_request() {
    let server = Binary::start(&[("LATCHKEY_TRUSTED_PROXIES", "127.0.0.0/8")]);
    let (listening, _) = tokio::task::block_in_place(|| {
        server.until("saying where it listens", |v| {
            v["message"] == "latchkey listening"
        })
    });
    for field in ["timestamp", "level", "target"] {
        assert!(listening[field].is_string(), "{field} in {listening}");
    }
    let base = format!("http://{}", listening["addr"].as_str().expect("addr"));

    // A generated id: on the answer, and on the request's access line.
    let resp = plain_client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    let id = header(resp.headers(), "x-request-id").unwrap();
    let (access, _) = tokio::task::block_in_place(|| {
        server.until("for the health check", |v| v["request_id"] == id.as_str())
    });
    assert_eq!(access["target"], "latchkey::access");
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["route"], "/healthz");
    assert_eq!(access["status"], 200);
    assert_eq!(access["client_ip"], "127.0.0.1");
    assert!(access["latency_ms"].as_f64().is_some(), "{access}");
    time::OffsetDateTime::parse(
        access["timestamp"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("an RFC 3339 timestamp");

    // A proxy's id, on a request that logs more than its access line (a failed login is
    // logged by the domain): every line of it carries the id.
    let resp = plain_client()
        .post(format!("{base}/auth/login"))
        .header("x-request-id", "edge-login-1")
        .header("x-forwarded-for", "198.51.100.7")
        .json(&serde_json::json!({"username": "nobody", "password": "wrong-password-123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(resp.headers(), "x-request-id").unwrap(),
        "edge-login-1"
    );
    let (access, seen) = tokio::task::block_in_place(|| {
        server.until("for the login", |v| {
            v["request_id"] == "edge-login-1" && v["target"] == "latchkey::access"
        })
    });
    assert_eq!(access["route"], "/auth/login");
    assert_eq!(access["method"], "POST");
    assert_eq!(access["status"], 401);
    assert_eq!(access["client_ip"], "198.51.100.7");
    let of_request: Vec<Value> = seen
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["request_id"] == "edge-login-1")
        .collect();
    assert!(
        of_request.len() >= 2,
        "the failed login logs a line besides the access line: {seen:#?}"
    );
}
