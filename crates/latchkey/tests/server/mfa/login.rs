//! Logins that wait for their second factor: `POST /auth/login` and `/session/login` answer
//! `{"mfa_required": true, "mfa_token", "methods"}` and issue nothing; `POST /auth/login/mfa`
//! completes them as the endpoint that started them would have.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::kit::{
    PASSWORD, TestApp, assert_no_store, assert_problem, browser, decode_jwt, json_body,
    refresh_cookie, session_login_from,
};

#[tokio::test]
async fn a_password_login_stops_for_the_second_factor_and_issues_nothing() {
    let app = TestApp::builder().start().await;
    app.enrolled("ada").await;
    let resp = app.login("ada", PASSWORD).await;
    assert!(
        resp.headers().get("set-cookie").is_none(),
        "no cookie before the second factor"
    );
    assert_no_store(resp.headers(), "an mfa_token");
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["mfa_required"], true);
    assert_eq!(body["methods"], json!(["totp", "recovery_code"]));
    assert!(body["mfa_token"].as_str().unwrap().len() >= 43);
    assert_eq!(body["expires_in"], 300);
    assert!(body.get("access_token").is_none());
    // A wrong password is still refused as before, with no hint of the second factor.
    let wrong = app.login("ada", "Wrong-Password-Not-This-One-1").await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

#[tokio::test]
async fn a_totp_code_completes_the_login_with_amr_and_auth_time_kept_through_refreshes() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("bo").await;
    let mfa_token = app.mfa_token("bo").await;
    let signed_in_at = app.unix();
    app.clock.advance(Duration::from_secs(5));
    let resp = app
        .login_mfa(json!({ "mfa_token": mfa_token, "totp": app.code(&user.secret) }))
        .await;
    assert!(
        refresh_cookie(&resp).is_some(),
        "the refresh cookie, like /auth/login"
    );
    assert_no_store(resp.headers(), "tokens");
    let body = json_body(resp, StatusCode::OK).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["id"], user.user_id.as_str());
    let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    let auth_time = claims["auth_time"].as_u64().unwrap();
    assert!(auth_time >= signed_in_at && auth_time <= app.unix());

    app.clock.advance(Duration::from_secs(120));
    let refreshed = json_body(app.refresh().await, StatusCode::OK).await;
    let claims = decode_jwt(refreshed["access_token"].as_str().unwrap()).claims;
    assert_eq!(
        claims["amr"],
        json!(["pwd", "otp", "mfa"]),
        "kept through rotation"
    );
    assert_eq!(claims["auth_time"].as_u64(), Some(auth_time));
    let me = json_body(
        app.me(refreshed["access_token"].as_str().unwrap()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["user"]["mfa_enabled"], true);
}

#[tokio::test]
async fn a_password_only_login_says_pwd() {
    let app = TestApp::builder().start().await;
    let (token, _) = app.password_user("cy").await;
    let claims = decode_jwt(&token).claims;
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["auth_time"].is_u64());
}

#[tokio::test]
async fn a_code_is_accepted_once() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("dee").await;
    let code = app.code(&user.secret);
    let first = app.mfa_token("dee").await;
    let ok = app
        .login_mfa(json!({ "mfa_token": first, "totp": code }))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    // The same code again, within its window, on another login attempt: a replay.
    let second = app.mfa_token("dee").await;
    let replay = app
        .login_mfa(json!({ "mfa_token": second, "totp": code }))
        .await;
    assert_problem(replay, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    // The code of the previous step is in the skew window but older than the accepted one.
    let previous = super::helpers::totp(&user.secret, app.unix() - 30);
    let older = app
        .login_mfa(json!({ "mfa_token": second, "totp": previous }))
        .await;
    assert_problem(older, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    // The next step's code works, on the same pending login.
    app.next_step();
    let next = app
        .login_mfa(json!({ "mfa_token": second, "totp": app.code(&user.secret) }))
        .await;
    assert_eq!(next.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_completions_with_one_code_succeed_once() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("eli").await;
    let (a, b) = (app.mfa_token("eli").await, app.mfa_token("eli").await);
    let code = app.code(&user.secret);
    let (ra, rb) = tokio::join!(
        app.login_mfa(json!({ "mfa_token": a, "totp": code })),
        app.login_mfa(json!({ "mfa_token": b, "totp": code }))
    );
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
}

#[tokio::test]
async fn each_recovery_code_works_once() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("fay").await;
    let code = &user.recovery_codes[0];
    let token = app.mfa_token("fay").await;
    // Typed in capitals with a space instead of the dash: the same code.
    let typed = code.to_uppercase().replace('-', " ");
    let done = app
        .login_mfa(json!({ "mfa_token": token, "recovery_code": typed }))
        .await;
    let body = json_body(done, StatusCode::OK).await;
    let claims = decode_jwt(body["access_token"].as_str().unwrap()).claims;
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    let again = app.mfa_token("fay").await;
    let reused = app
        .login_mfa(json!({ "mfa_token": again, "recovery_code": code }))
        .await;
    assert_problem(reused, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    let other = app
        .login_mfa(json!({ "mfa_token": again, "recovery_code": user.recovery_codes[1] }))
        .await;
    assert_eq!(other.status(), StatusCode::OK);
    let token = body["access_token"].as_str().unwrap();
    let status = json_body(app.get_authed("/auth/mfa", token).await, StatusCode::OK).await;
    assert_eq!(status["recovery_codes_left"], 8);
}

#[tokio::test]
async fn an_mfa_token_is_single_use_short_lived_and_bound_to_its_attempt() {
    let app = TestApp::builder().start().await;
    let ann = app.enrolled("ann").await;
    let ben = app.enrolled("ben").await;
    // Used twice.
    let token = app.mfa_token("ann").await;
    let ok = app
        .login_mfa(json!({ "mfa_token": token, "totp": app.code(&ann.secret) }))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    app.next_step();
    let twice = app
        .login_mfa(json!({ "mfa_token": token, "totp": app.code(&ann.secret) }))
        .await;
    assert_problem(twice, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
    // Another user's attempt: Ben's token takes only Ben's codes.
    let bens = app.mfa_token("ben").await;
    let crossed = app
        .login_mfa(json!({ "mfa_token": bens, "totp": app.code(&ann.secret) }))
        .await;
    assert_problem(crossed, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    let crossed = app
        .login_mfa(json!({ "mfa_token": bens, "recovery_code": ann.recovery_codes[0] }))
        .await;
    assert_problem(crossed, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    // Expired.
    app.clock.advance(Duration::from_secs(301));
    let late = app
        .login_mfa(json!({ "mfa_token": bens, "totp": app.code(&ben.secret) }))
        .await;
    assert_problem(late, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
    // Made up.
    for made_up in ["", "x", &"A".repeat(43), &"A".repeat(2000)] {
        let resp = app
            .login_mfa(json!({ "mfa_token": made_up, "totp": "123456" }))
            .await;
        assert!(
            matches!(resp.status().as_u16(), 400 | 401),
            "{made_up}: {}",
            resp.status()
        );
    }
    // Nothing of Ann's recovery codes was spent by the crossed attempt.
    let mine = app.mfa_token("ann").await;
    let ok = app
        .login_mfa(json!({ "mfa_token": mine, "recovery_code": ann.recovery_codes[0] }))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_pending_login_takes_a_few_wrong_codes_then_is_withdrawn() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("gus").await;
    let token = app.mfa_token("gus").await;
    let wrong = format!(
        "{:06}",
        (app.code(&user.secret).parse::<u32>().unwrap() + 7) % 1_000_000
    );
    for _ in 0..5 {
        let resp = app
            .login_mfa(json!({ "mfa_token": token, "totp": wrong }))
            .await;
        assert_problem(resp, StatusCode::BAD_REQUEST, "invalid_mfa_code").await;
    }
    let right = app
        .login_mfa(json!({ "mfa_token": token, "totp": app.code(&user.secret) }))
        .await;
    assert_problem(right, StatusCode::UNAUTHORIZED, "invalid_mfa_token").await;
}

#[tokio::test]
async fn second_factor_attempts_are_throttled_per_user_across_pending_logins() {
    let app = TestApp::builder()
        .vars(&[("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")])
        .start()
        .await;
    let user = app.enrolled("hal").await;
    let wrong = format!(
        "{:06}",
        (app.code(&user.secret).parse::<u32>().unwrap() + 3) % 1_000_000
    );
    let mut last = None;
    for _ in 0..4 {
        let token = app.mfa_token("hal").await; // a fresh pending login each time
        last = Some(
            app.login_mfa(json!({ "mfa_token": token, "totp": wrong }))
                .await,
        );
    }
    let resp = last.unwrap();
    assert!(resp.headers().get("retry-after").is_some());
    assert_problem(resp, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    // Even the right code waits for the window.
    let token = app.mfa_token("hal").await;
    let right = app
        .login_mfa(json!({ "mfa_token": token, "totp": app.code(&user.secret) }))
        .await;
    assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    app.clock.advance(Duration::from_secs(16 * 60));
    let token = app.mfa_token("hal").await;
    let right = app
        .login_mfa(json!({ "mfa_token": token, "totp": app.code(&user.secret) }))
        .await;
    assert_eq!(right.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_session_login_completes_as_a_session_login() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("ivy").await;
    let client = browser();
    let first = client
        .post(app.url("/session/login"))
        .json(&json!({ "username": "ivy", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(
        first.headers().get("set-cookie").is_none(),
        "no session before the second factor"
    );
    let body = json_body(first, StatusCode::OK).await;
    assert_eq!(body["mfa_required"], true);
    let done = client
        .post(app.url("/auth/login/mfa"))
        .json(&json!({ "mfa_token": body["mfa_token"], "totp": app.code(&user.secret) }))
        .send()
        .await
        .unwrap();
    let login = session_login_from(done).await;
    assert_eq!(login.user_id, user.user_id);
    assert!(!login.csrf_token.is_empty());
    let me = app.session_me(&login.cookie).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_second_steps_are_clear_problems_that_change_nothing() {
    let app = TestApp::builder().start().await;
    let user = app.enrolled("jo").await;
    let token = app.mfa_token("jo").await;
    let cases: [(Value, u16, &str); 4] = [
        (json!({ "mfa_token": token }), 400, "invalid_input"),
        (
            json!({ "mfa_token": token, "totp": "123456", "recovery_code": "abcde-fghij" }),
            400,
            "invalid_input",
        ),
        (json!({ "totp": "123456" }), 400, "invalid_input"),
        (
            json!({ "mfa_token": token, "totp": 123456 }),
            400,
            "invalid_input",
        ),
    ];
    for (body, status, code) in cases {
        let resp = app.login_mfa(body.clone()).await;
        assert_problem(resp, StatusCode::from_u16(status).unwrap(), code).await;
    }
    let text = app
        .client
        .post(app.url("/auth/login/mfa"))
        .header("content-type", "text/plain")
        .body("mfa_token=x")
        .send()
        .await
        .unwrap();
    assert_problem(
        text,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // None of it used up the pending login.
    let ok = app
        .login_mfa(json!({ "mfa_token": token, "totp": app.code(&user.secret) }))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let _ = Method::GET;
}
