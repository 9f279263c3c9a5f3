//! The admin area's vocabulary on the kit's [`TestApp`]: users made with roles the way the
//! CLI makes them, logged-in users with their own cookie jar.

use std::sync::Arc;

use latchkey::Config;
use latchkey::auth::{AuthService, Registration};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::kit::{PASSWORD, TestApp, browser, decode_jwt};

/// A logged-in user with their own cookie jar.
pub struct Session {
    pub client: Client,
    pub token: String,
    pub user_id: String,
}

/// The claims of a JWT, decoded without verification (the test only reads them).
pub fn claims(token: &str) -> Value {
    decode_jwt(token).claims
}

impl TestApp {
    /// Registers `username` over HTTP; returns the user id.
    pub async fn register_user(&self, username: &str) -> String {
        let response = self.register(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["user"]["id"].as_str().unwrap().to_owned()
    }

    /// A second service on the server's store, as the CLI builds one.
    pub async fn auth_service(&self) -> AuthService {
        let mut config = Config::from_env_map(&self.vars).unwrap();
        config.clock = self.clock.clone();
        let config = Arc::new(config);
        let verifier = latchkey::auth::verifier_for(&config);
        AuthService::new(self.store(), config, verifier)
            .await
            .unwrap()
    }

    /// Creates a user with `roles` the way `latchkey user create --role ...` does.
    pub async fn create_with_roles(&self, username: &str, roles: &[&str]) -> String {
        let user = self
            .auth_service()
            .await
            .register(
                Registration {
                    username: username.to_owned(),
                    password: PASSWORD.to_owned().into(),
                    email: None,
                    roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                },
                None,
            )
            .await
            .unwrap();
        user.id.to_string()
    }

    /// Logs `username` in with a fresh cookie jar.
    pub async fn login_session(&self, username: &str) -> Session {
        let client = browser();
        let response = self.try_login_as(&client, username).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        Session {
            client,
            token: body["access_token"].as_str().unwrap().to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn try_login_as(&self, client: &Client, username: &str) -> Response {
        client
            .post(self.url("/auth/login"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap()
    }

    /// Registers and logs in `username`.
    pub async fn user(&self, username: &str) -> Session {
        self.register_user(username).await;
        self.login_session(username).await
    }

    /// Creates an admin and logs them in.
    pub async fn admin(&self, username: &str) -> Session {
        self.create_with_roles(username, &["admin"]).await;
        self.login_session(username).await
    }

    /// Calls `POST /auth/refresh` with the session's cookie.
    pub async fn refresh_session(&self, session: &Session) -> Response {
        session
            .client
            .post(self.url("/auth/refresh"))
            .send()
            .await
            .unwrap()
    }
}
