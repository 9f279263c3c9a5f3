//! The access matrix: owner, reader, writer, stranger and admin against every files route.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Session, Stack, assert_problem, spawn_stack};

struct Cast {
    owner: Session,
    reader: Session,
    writer: Session,
    stranger: Session,
    admin: Session,
}

async fn cast(stack: &Stack) -> Cast {
    Cast {
        owner: stack.user("olive").await,
        reader: stack.user("rita").await,
        writer: stack.user("walt").await,
        stranger: stack.user("sam").await,
        admin: stack.user_with_roles("ada", &["admin"]).await,
    }
}

impl Cast {
    fn everyone(&self) -> [(&'static str, &Session); 5] {
        [
            ("owner", &self.owner),
            ("reader", &self.reader),
            ("writer", &self.writer),
            ("stranger", &self.stranger),
            ("admin", &self.admin),
        ]
    }
}

/// A fresh file of the owner, shared for reading with the reader and for writing with the writer.
async fn shared_file(stack: &Stack, cast: &Cast) -> String {
    let id = stack.create_file(&cast.owner, "notes.txt").await;
    stack.share(&cast.owner, &id, &cast.reader, "read").await;
    stack.share(&cast.owner, &id, &cast.writer, "write").await;
    id
}

fn code_for(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::FORBIDDEN => Some("insufficient_permission"),
        StatusCode::NOT_FOUND => Some("not_found"),
        _ => None,
    }
}

#[tokio::test]
async fn every_route_decides_by_owner_share_and_role() {
    let stack = spawn_stack().await;
    let cast = cast(&stack).await;
    let (ok, no_content, forbidden, hidden) = (
        StatusCode::OK,
        StatusCode::NO_CONTENT,
        StatusCode::FORBIDDEN,
        StatusCode::NOT_FOUND,
    );
    // owner, reader, writer, stranger, admin
    let matrix: [(Method, &str, Option<Value>, [StatusCode; 5]); 4] = [
        (Method::GET, "", None, [ok, ok, ok, hidden, ok]),
        (
            Method::PUT,
            "",
            Some(json!({ "content": "changed" })),
            [ok, forbidden, ok, hidden, ok],
        ),
        (
            Method::DELETE,
            "",
            None,
            [no_content, forbidden, forbidden, hidden, no_content],
        ),
        (
            Method::POST,
            "/shares",
            Some(json!({ "user_id": "someone-else", "permission": "read" })),
            [ok, forbidden, forbidden, hidden, forbidden],
        ),
    ];
    for (method, suffix, body, expected) in matrix {
        for ((who, session), want) in cast.everyone().into_iter().zip(expected) {
            let id = shared_file(&stack, &cast).await;
            let mut request = stack.files_request(
                method.clone(),
                &format!("/files/{id}{suffix}"),
                &session.token,
            );
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let got = response.status();
            assert_eq!(got, want, "{who} {method} /files/{{id}}{suffix}");
            if let Some(code) = code_for(got) {
                assert_problem(response, got, code).await;
            }
            // A refused request changes nothing: the owner still reads the original content.
            let check = stack
                .files_request(Method::GET, &format!("/files/{id}"), &cast.owner.token)
                .send()
                .await
                .unwrap();
            if got.is_client_error() {
                let body: Value = check.json().await.unwrap();
                assert_eq!(body["file"]["content"], "hello", "{who} {method}");
            }
        }
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn the_listing_shows_own_and_shared_files_with_the_callers_access() {
    let stack = spawn_stack().await;
    let cast = cast(&stack).await;
    let id = shared_file(&stack, &cast).await;
    let expected = [
        ("owner", Some("owner")),
        ("reader", Some("read")),
        ("writer", Some("write")),
        ("stranger", None),
        ("admin", None),
    ];
    for ((who, session), (_, access)) in cast.everyone().into_iter().zip(expected) {
        let body: Value = stack
            .files_request(Method::GET, "/files", &session.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let entry = body["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id.as_str())
            .cloned();
        assert_eq!(
            entry.as_ref().map(|f| f["access"].as_str().unwrap()),
            access,
            "{who}"
        );
        if let Some(entry) = entry {
            assert_eq!(entry["name"], "notes.txt");
            assert!(
                entry.get("content").is_none(),
                "the listing leaves contents out"
            );
        }
    }
    // Any authenticated caller may create files; the admin reads the reader's new file.
    let mine = stack.create_file(&cast.reader, "mine.txt").await;
    assert_eq!(
        stack.read_status(&mine, &cast.admin.token).await,
        StatusCode::OK
    );
    assert_eq!(
        stack.read_status(&mine, &cast.owner.token).await,
        StatusCode::NOT_FOUND
    );
    stack.shutdown().await;
}

#[tokio::test]
async fn a_share_grants_access_and_a_new_share_replaces_the_old_one() {
    let stack = spawn_stack().await;
    let cast = cast(&stack).await;
    let id = stack.create_file(&cast.owner, "plan.txt").await;
    assert_eq!(
        stack.read_status(&id, &cast.stranger.token).await,
        StatusCode::NOT_FOUND
    );
    stack.share(&cast.owner, &id, &cast.stranger, "read").await;
    assert_eq!(
        stack.read_status(&id, &cast.stranger.token).await,
        StatusCode::OK
    );
    let put = |token: String| {
        let stack = &stack;
        let id = id.clone();
        async move {
            stack
                .files_request(Method::PUT, &format!("/files/{id}"), &token)
                .json(&json!({ "content": "v2" }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        put(cast.stranger.token.clone()).await,
        StatusCode::FORBIDDEN
    );
    stack.share(&cast.owner, &id, &cast.stranger, "write").await;
    assert_eq!(put(cast.stranger.token.clone()).await, StatusCode::OK);
    let body: Value = stack
        .files_request(Method::GET, &format!("/files/{id}"), &cast.owner.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["file"]["content"], "v2");
    stack.shutdown().await;
}

#[tokio::test]
async fn requests_without_a_token_are_401_on_every_route() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    for (method, path) in [
        (Method::GET, "/files".to_owned()),
        (Method::POST, "/files".to_owned()),
        (Method::GET, format!("/files/{id}")),
        (Method::PUT, format!("/files/{id}")),
        (Method::DELETE, format!("/files/{id}")),
        (Method::POST, format!("/files/{id}/shares")),
    ] {
        let response = reqwest::Client::new()
            .request(method.clone(), stack.file_url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"latchkey\"",
            "{method} {path}"
        );
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
    stack.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_a_400_problem_and_security_headers_are_always_on() {
    let stack = spawn_stack().await;
    let owner = stack.user("olive").await;
    let id = stack.create_file(&owner, "a.txt").await;
    let cases: [(Method, String, Value); 6] = [
        (
            Method::POST,
            "/files".into(),
            json!({ "name": "", "content": "x" }),
        ),
        (
            Method::POST,
            "/files".into(),
            json!({ "name": "a\u{0}b", "content": "x" }),
        ),
        (
            Method::POST,
            "/files".into(),
            json!({ "content": "no name" }),
        ),
        (
            Method::PUT,
            format!("/files/{id}"),
            json!({ "content": 42 }),
        ),
        (
            Method::POST,
            format!("/files/{id}/shares"),
            json!({ "user_id": "x", "permission": "admin" }),
        ),
        (
            Method::POST,
            format!("/files/{id}/shares"),
            json!({ "user_id": owner.id, "permission": "read" }),
        ),
    ];
    for (method, path, body) in cases {
        let response = stack
            .files_request(method, &path, &owner.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(response.headers().contains_key("content-security-policy"));
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_input").await;
    }
    let not_json = stack
        .files_request(Method::POST, "/files", &owner.token)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, StatusCode::BAD_REQUEST, "invalid_input").await;
    let text = stack
        .files_request(Method::POST, "/files", &owner.token)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_problem(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = json!({ "name": "big", "content": "x".repeat(2 * 1024 * 1024) });
    let too_big = stack
        .files_request(Method::POST, "/files", &owner.token)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_problem(too_big, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    for path in [
        "/files/not-a-uuid",
        "/files/0190a5e4-0000-7000-8000-000000000000",
    ] {
        let response = stack
            .files_request(Method::GET, path, &owner.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store");
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let elsewhere = stack
        .files_request(Method::GET, "/nowhere", &owner.token)
        .send()
        .await
        .unwrap();
    assert_problem(elsewhere, StatusCode::NOT_FOUND, "not_found").await;
    let wrong_method = stack
        .files_request(Method::PATCH, "/files", &owner.token)
        .send()
        .await
        .unwrap();
    assert_problem(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    stack.shutdown().await;
}
