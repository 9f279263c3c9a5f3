//! `docs/openapi.yaml` against the router: every route served is documented, every documented
//! operation is served, and every other method on a documented path answers 405.
//!
//! The document is read with a small line parser (it is block-style YAML with two-space
//! indentation, as written today), so no YAML crate is needed; the full OpenAPI validation
//! (`openapi-spec-validator`) and the fuzzing of every operation run in `scripts/fuzz.sh`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};

use crate::kit::{assert_problem, plain_client, spawn_app};

/// Paths the router serves that are deliberately left out of the document (say why).
const UNDOCUMENTED_ROUTES: &[&str] = &[];

/// The methods probed on every documented path (HEAD and OPTIONS are left to axum and CORS).
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn document() -> String {
    let path = crate_dir().join("../../docs/openapi.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The operations of the document: path → upper-case methods.
fn documented_operations(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut ops: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line.trim_end() == "paths:";
            current = None;
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").and_then(yaml_key)
            && !line.starts_with("   ")
        {
            assert!(
                key.starts_with('/'),
                "a path key not starting with /: {line}"
            );
            assert!(
                ops.insert(key.clone(), BTreeSet::new()).is_none(),
                "path {key} is listed twice"
            );
            current = Some(key);
        } else if let Some(key) = line.strip_prefix("    ").and_then(yaml_key)
            && !line.starts_with("     ")
        {
            let path = current.as_ref().expect("an operation outside a path");
            let method = key.to_ascii_uppercase();
            if [
                "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE",
            ]
            .contains(&method.as_str())
            {
                ops.get_mut(path).expect("the path").insert(method);
            }
        }
    }
    assert!(!ops.is_empty(), "no paths found in docs/openapi.yaml");
    ops
}

/// The operations (path, upper-case method) that document `status` among their responses.
fn operations_answering(doc: &str, status: u16) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut in_paths = false;
    let (mut path, mut method) = (String::new(), String::new());
    let wanted = format!("        '{status}':");
    for line in doc.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_paths = line.trim_end() == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").and_then(yaml_key)
            && !line.starts_with("   ")
        {
            path = key;
        } else if let Some(key) = line.strip_prefix("    ").and_then(yaml_key)
            && !line.starts_with("     ")
        {
            method = key.to_ascii_uppercase();
        } else if line.trim_end() == wanted {
            found.push((path.clone(), method.clone()));
        }
    }
    found
}

/// `path` with every `{parameter}` replaced by a well-formed UUID (accepted by every
/// parameter type today).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "00000000-0000-7000-8000-000000000000"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `key` of a `key:` line (quotes removed), when the line is a mapping key with no value.
fn yaml_key(rest: &str) -> Option<String> {
    let key = rest.trim_end().strip_suffix(':')?;
    if key.is_empty() || key.starts_with('-') || key.starts_with('#') || key.contains(": ") {
        return None;
    }
    Some(key.trim_matches(|c| c == '\'' || c == '"').to_owned())
}

/// Every `.route("…"` / `.route_service("…"` path literal in the crate's sources, test code
/// (files named `*tests.rs`, and everything after a `#[cfg(test)]` line) and comments aside.
fn routed_paths() -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&crate_dir().join("src"), &mut files);
    let mut paths = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source file");
        let code: String = text
            .lines()
            .take_while(|l| l.trim() != "#[cfg(test)]")
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !code.contains(".nest(") && !code.contains(".nest_service("),
            "{} nests a router: teach this test to prefix its paths",
            file.display()
        );
        for call in [".route(", ".route_service("] {
            for (at, _) in code.match_indices(call) {
                let rest = code[at + call.len()..].trim_start();
                let Some(literal) = rest.strip_prefix('"') else {
                    panic!(
                        "{}: a route whose path is not a string literal: {}",
                        file.display(),
                        &rest[..rest.len().min(60)]
                    );
                };
                let end = literal.find('"').expect("a closing quote");
                paths.insert(literal[..end].to_owned());
            }
        }
    }
    assert!(!paths.is_empty(), "no routes found in the sources");
    paths
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !path
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().ends_with("tests"))
        {
            out.push(path);
        }
    }
}

#[test]
fn every_route_of_the_router_is_documented_and_nothing_else() {
    let documented: BTreeSet<String> = documented_operations(&document()).into_keys().collect();
    let routed: BTreeSet<String> = routed_paths()
        .into_iter()
        .filter(|p| !UNDOCUMENTED_ROUTES.contains(&p.as_str()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not in docs/openapi.yaml: {missing:?}; documented but not served: {extra:?}"
    );
}

#[test]
fn references_resolve_and_operation_ids_are_unique() {
    let doc = document();
    // components: section → names.
    let mut components: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut in_components = false;
    let mut section = String::new();
    for line in doc.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_components = line.trim_end() == "components:";
            continue;
        }
        if !in_components {
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").and_then(yaml_key)
            && !line.starts_with("   ")
        {
            section = key;
        } else if let Some(key) = line.strip_prefix("    ").and_then(yaml_key)
            && !line.starts_with("     ")
        {
            components.entry(section.clone()).or_default().insert(key);
        }
    }
    let mut refs = 0;
    for line in doc.lines() {
        let Some((_, target)) = line.split_once("$ref:") else {
            continue;
        };
        let target = target.trim().trim_matches(|c| c == '\'' || c == '"');
        let parts: Vec<&str> = target.split('/').collect();
        assert!(
            parts.len() == 4 && parts[0] == "#" && parts[1] == "components",
            "a $ref outside #/components/<section>/<name>: {target}"
        );
        assert!(
            components
                .get(parts[2])
                .is_some_and(|s| s.contains(parts[3])),
            "$ref to a component that does not exist: {target}"
        );
        refs += 1;
    }
    assert!(
        refs > 10,
        "only {refs} references found: is the parser broken?"
    );
    let mut ids = BTreeSet::new();
    for line in doc.lines() {
        if let Some(id) = line.trim_start().strip_prefix("operationId:") {
            assert!(
                ids.insert(id.trim().to_owned()),
                "operationId {id} is used twice"
            );
        }
    }
}

#[tokio::test]
async fn documented_methods_are_served_and_the_others_answer_405() {
    let app = spawn_app().await;
    let ops = documented_operations(&document());
    let mut failures = Vec::new();
    for (path, methods) in &ops {
        let concrete = concrete(path);
        for method in METHODS {
            let resp = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&concrete),
                )
                .send()
                .await
                .expect("request");
            let status = resp.status();
            if methods.contains(method) {
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    failures.push(format!("{method} {path} is documented but answers 405"));
                }
            } else if status == StatusCode::METHOD_NOT_ALLOWED {
                assert_problem(resp, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
            } else {
                failures.push(format!(
                    "{method} {path} is served ({status}) but not documented"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Every operation documenting 413 (or 415) answers an oversized (or non-JSON) body with that
/// problem, signed in as a user with a Bearer token and a classic session with its CSRF token.
/// The admin routes check the role first: a non-admin gets their documented 403.
#[tokio::test]
async fn documented_413_and_415_are_answered_as_problems() {
    let app = spawn_app().await;
    let user = app.signed_in("body-limits").await;
    let session = app.session_log_in("body-limits").await;
    let cookie = format!("{}={}", app.session_cookie_name(), session.cookie);
    let doc = document();
    let oversized = format!("{{\"data\":\"{}\"}}", "a".repeat(70 * 1024));
    let cases = [
        (
            413,
            "application/json",
            oversized.as_str(),
            "payload_too_large",
        ),
        (415, "text/plain", "{}", "unsupported_media_type"),
    ];
    for (status, content_type, body, code) in cases {
        let operations = operations_answering(&doc, status);
        assert!(
            operations.len() > 3,
            "only {operations:?} document {status}"
        );
        for (path, method) in operations {
            let resp = plain_client()
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&concrete(&path)),
                )
                .bearer_auth(&user.access_token)
                .header("cookie", &cookie)
                .header("x-csrf-token", &session.csrf_token)
                .header("content-type", content_type)
                .body(body.to_owned())
                .send()
                .await
                .expect("request");
            let got = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let (want_status, want_code) = if path.starts_with("/admin/") {
                (StatusCode::FORBIDDEN, "insufficient_permission")
            } else {
                (StatusCode::from_u16(status).unwrap(), code)
            };
            assert_eq!(
                got, want_status,
                "{method} {path} with a {content_type} body: {text}"
            );
            assert!(
                text.contains(&format!("\"code\":\"{want_code}\"")),
                "{method} {path}: {text}"
            );
        }
    }
}
