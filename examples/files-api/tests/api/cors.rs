//! CORS: a configured browser origin may call the API with a Bearer token; others get nothing.

use reqwest::{Client, Method, StatusCode};

use crate::helpers::spawn_stack_with;

const APP: &str = "http://localhost:5173";

#[tokio::test]
async fn a_configured_origin_gets_a_preflight_and_readable_answers() {
    let stack = spawn_stack_with(&[("FILES_ALLOWED_ORIGINS", APP)]).await;
    let olive = stack.user("olive").await;
    let preflight = Client::new()
        .request(Method::OPTIONS, stack.file_url("/files"))
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(h.get("access-control-allow-credentials").is_none());

    let listed = stack
        .files_request(Method::GET, "/files", &olive.token)
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.headers()["access-control-allow-origin"], APP);

    // A 401 stays readable, and its challenge is exposed to the page.
    let refused = Client::new()
        .get(stack.file_url("/files"))
        .header("origin", APP)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["access-control-allow-origin"], APP);
    let exposed = refused.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
}

#[tokio::test]
async fn other_origins_and_the_default_get_no_cors_headers() {
    for origins in [&[("FILES_ALLOWED_ORIGINS", APP)][..], &[][..]] {
        let stack = spawn_stack_with(origins).await;
        let olive = stack.user("olive").await;
        for origin in ["http://evil.test:5173", "null"] {
            let response = stack
                .files_request(Method::GET, "/files", &olive.token)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            assert!(
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{origin}"
            );
            let preflight = Client::new()
                .request(Method::OPTIONS, stack.file_url("/files"))
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization")
                .send()
                .await
                .unwrap();
            assert!(
                preflight
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none(),
                "{origin}"
            );
        }
    }
}
