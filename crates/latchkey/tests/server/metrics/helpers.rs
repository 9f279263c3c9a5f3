//! Scraping the metrics listener and parsing the answer with `prometheus_client`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::kit::{TestApp, plain_client, service_missing};

/// Prints every sample of the exposition read from stdin as JSON: family name and type,
/// sample name, labels and value.
const PARSE: &str = r#"
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        value = s.value if math.isfinite(s.value) else str(s.value)
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": value})
print(json.dumps(out))
"#;

fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// The parser, when `.venv` has `prometheus_client`; otherwise reports it missing (a failure
/// under CI) and answers `None`.
pub fn parser() -> Option<PathBuf> {
    let python = python();
    let ok = Command::new(&python)
        .args(["-c", "import prometheus_client.parser"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(python)
    } else {
        service_missing(
            "the metrics tests",
            "Python's prometheus_client in .venv",
            "run scripts/test.sh (it installs it)",
        );
        None
    }
}

/// The samples of one scrape.
pub struct Scrape {
    pub samples: Vec<Value>,
}

impl Scrape {
    /// The value of the sample `name` whose labels are exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s["name"] == name && {
                    let have = s["labels"].as_object().expect("labels");
                    have.len() == labels.len()
                        && labels
                            .iter()
                            .all(|(k, v)| have.get(*k).and_then(Value::as_str) == Some(*v))
                }
            })
            .map(|s| s["value"].as_f64().expect("a finite value"))
    }

    /// As [`Scrape::get`], panicking when the sample is missing.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| {
            panic!(
                "no sample {name}{labels:?}; samples of that name: {:#?}",
                self.samples
                    .iter()
                    .filter(|s| s["name"] == name)
                    .collect::<Vec<_>>()
            )
        })
    }

    /// The family's type as the parser read it from `# TYPE`.
    pub fn family_type(&self, family: &str) -> Option<String> {
        self.samples
            .iter()
            .find(|s| s["family"] == family)
            .and_then(|s| s["type"].as_str().map(str::to_owned))
    }
}

/// The metrics listener's address; panics when metrics are off.
pub fn metrics_addr(app: &TestApp) -> SocketAddr {
    app.server
        .as_ref()
        .expect("running")
        .metrics_addr()
        .expect("the metrics listener is on")
}

/// `GET /metrics` on the metrics listener, parsed by `python`.
pub async fn scrape(app: &TestApp, python: &PathBuf) -> Scrape {
    let resp = plain_client()
        .get(format!("http://{}/metrics", metrics_addr(app)))
        .send()
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = resp.text().await.unwrap();
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    Scrape { samples }
}
