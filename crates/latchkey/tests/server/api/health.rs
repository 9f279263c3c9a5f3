//! GET /healthz and GET /readyz.

use reqwest::StatusCode;

use crate::kit::{assert_security_headers, plain_client, spawn_app};

#[tokio::test]
async fn healthz_is_200_without_authentication() {
    let app = spawn_app().await;

    let resp = plain_client()
        .get(app.url("/healthz"))
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::OK);
    assert_security_headers(resp.headers(), "healthz");
}

#[tokio::test]
async fn readyz_is_200_while_the_database_is_reachable() {
    let app = spawn_app().await;

    let resp = plain_client().get(app.url("/readyz")).send().await.unwrap();

    assert_eq!(resp.status(), StatusCode::OK);
    assert_security_headers(resp.headers(), "readyz");
}

#[tokio::test]
async fn health_endpoints_ignore_a_bad_bearer_token() {
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz"] {
        let resp = plain_client()
            .get(app.url(path))
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn health_endpoints_answer_head_requests_and_refuse_posts() {
    let app = spawn_app().await;

    for path in ["/healthz", "/readyz"] {
        let head = plain_client().head(app.url(path)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK, "HEAD {path}");
        let post = plain_client().post(app.url(path)).send().await.unwrap();
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
    }
}

#[tokio::test]
async fn the_server_answers_right_after_start() {
    let app = spawn_app().await;

    let (healthz, readyz) = tokio::join!(
        plain_client().get(app.url("/healthz")).send(),
        plain_client().get(app.url("/readyz")).send()
    );

    assert_eq!(healthz.unwrap().status(), StatusCode::OK);
    assert_eq!(readyz.unwrap().status(), StatusCode::OK);
}
