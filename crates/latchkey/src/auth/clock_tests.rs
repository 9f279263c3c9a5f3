//! Expiry decided by the injected clock: a test moves a [`TestClock`] over an expiry instead of
//! sleeping until it.

use std::sync::Arc;
use std::time::Duration;

use latchkey_guard::{TestClock, VerifyError};
use secrecy::{ExposeSecret, SecretString};

use super::{AuthError, AuthService, ClientInfo, Registration};
use crate::config::Config;
use crate::store::sqlite::SqliteStore;

const PASSWORD: &str = "pale-otter-drums-quietly-42";

async fn service(clock: &Arc<TestClock>) -> (AuthService, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("clock.db").display());
    let mut config = Config::for_tests(&url).unwrap();
    config.clock = clock.clone();
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let service = AuthService::open(store, Arc::new(config)).await.unwrap();
    let registration = Registration {
        username: "alice".into(),
        password: SecretString::from(PASSWORD),
        email: None,
        roles: Vec::new(),
    };
    service.register(registration, None).await.unwrap();
    (service, dir)
}

async fn login(service: &AuthService) -> super::Issued {
    match service
        .login("alice", SecretString::from(PASSWORD), ClientInfo::default())
        .await
        .unwrap()
    {
        super::mfa::LoginStep::Done(issued) => issued,
        super::mfa::LoginStep::SecondFactor(_) => panic!("no second factor was enrolled"),
    }
}

#[tokio::test]
async fn an_access_token_stops_verifying_when_the_clock_passes_its_expiry_and_leeway() {
    let clock = TestClock::new();
    let (service, _dir) = service(&clock).await;
    let issued = login(&service).await;
    let token = issued.access_token.expose_secret();
    assert!(service.verifier().verify(token).is_ok());
    let config_ttl = issued.expires_in;
    clock.advance(Duration::from_secs(config_ttl + 30 + 2));
    assert_eq!(service.verifier().verify(token), Err(VerifyError::Expired));
}

#[tokio::test]
async fn a_refresh_token_is_refused_once_the_clock_passes_its_expiry() {
    let clock = TestClock::new();
    let (service, _dir) = service(&clock).await;
    let issued = login(&service).await;
    let refresh = issued.refresh_token.expose_secret().to_owned();
    let rotated = service.refresh(&refresh).await.unwrap();
    let current = rotated.refresh_token.expose_secret().to_owned();
    clock.advance(Duration::from_secs(rotated.refresh_max_age + 1));
    assert!(matches!(
        service.refresh(&current).await,
        Err(AuthError::InvalidRefreshToken)
    ));
}
