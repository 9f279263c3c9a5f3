//! The cases both session modes share (`LATCHKEY_SESSION_STORE=database` in `sessions.rs`,
//! `cookie` in `cookie_sessions.rs`): each file invokes [`session_mode_cases!`] with the
//! expression that starts its kind of server, and keeps only what is its mode's own.

/// Defines the shared session tests in the invoking module; `$spawn` starts a server of the
/// module's session mode (an expression of type `impl Future<Output = TestApp>`).
macro_rules! session_mode_cases {
    ($spawn:expr) => {
        #[tokio::test]
        async fn session_me_through_the_browsers_jar_works() {
            let app = $spawn.await;
            app.create_user("alice").await;
            let jar = $crate::kit::browser();
            let login = app
                .session_log_in_with(&jar, "alice", $crate::kit::PASSWORD)
                .await;

            let resp = jar.get(app.url("/session/me")).send().await.unwrap();

            let body = $crate::kit::json_body(resp, reqwest::StatusCode::OK).await;
            assert_eq!(body["user"]["id"], login.user_id.as_str());
        }

        #[tokio::test]
        async fn session_data_through_the_browsers_jar_round_trips() {
            let app = $spawn.await;
            app.create_user("alice").await;
            let jar = $crate::kit::browser();
            let login = app
                .session_log_in_with(&jar, "alice", $crate::kit::PASSWORD)
                .await;

            let resp = jar
                .put(app.url("/session/data"))
                .header("x-csrf-token", &login.csrf_token)
                .json(&serde_json::json!({ "data": { "lang": "fr" } }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), reqwest::StatusCode::OK);

            let me = jar.get(app.url("/session/me")).send().await.unwrap();
            let me = $crate::kit::json_body(me, reqwest::StatusCode::OK).await;
            assert_eq!(me["session"]["data"], serde_json::json!({ "lang": "fr" }));
        }

        #[tokio::test]
        async fn logout_through_the_browsers_jar_forgets_the_session() {
            let app = $spawn.await;
            app.create_user("alice").await;
            let jar = $crate::kit::browser();
            let login = app
                .session_log_in_with(&jar, "alice", $crate::kit::PASSWORD)
                .await;

            let resp = jar
                .post(app.url("/session/logout"))
                .header("x-csrf-token", &login.csrf_token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), reqwest::StatusCode::NO_CONTENT);

            let resp = jar.get(app.url("/session/me")).send().await.unwrap();
            $crate::kit::assert_problem(resp, reqwest::StatusCode::UNAUTHORIZED, "no_session")
                .await;
        }

        #[tokio::test]
        async fn auth_me_accepts_a_session_and_refuses_a_tampered_one() {
            let app = $spawn.await;
            let login = app.session_signed_in("alice").await;

            let resp = app
                .with_session(reqwest::Method::GET, "/auth/me", &login.cookie)
                .send()
                .await
                .unwrap();
            let tampered = app
                .with_session(
                    reqwest::Method::GET,
                    "/auth/me",
                    &$crate::kit::tamper(&login.cookie),
                )
                .send()
                .await
                .unwrap();

            assert_eq!(
                $crate::kit::me_user(
                    &$crate::kit::json_body(resp, reqwest::StatusCode::OK).await
                ),
                login.body["user"]
            );
            $crate::kit::assert_problem_status(tampered, reqwest::StatusCode::UNAUTHORIZED)
                .await;
        }

        #[tokio::test]
        async fn disabling_the_user_ends_the_session() {
            let app = $spawn.await;
            let login = app.session_signed_in("alice").await;
            assert_eq!(
                app.session_status(&login.cookie).await,
                reqwest::StatusCode::OK
            );

            app.set_disabled(&login.user_id, true).await;

            $crate::kit::eventually_status(
                "/session/me of a disabled user",
                reqwest::StatusCode::UNAUTHORIZED,
                || app.session_status(&login.cookie),
            )
            .await;
            let resp = app.session_me(&login.cookie).await;
            $crate::kit::assert_problem(resp, reqwest::StatusCode::UNAUTHORIZED, "no_session")
                .await;
            let resp = app
                .with_session(reqwest::Method::GET, "/auth/me", &login.cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);
        }
    };
}

pub(crate) use session_mode_cases;
