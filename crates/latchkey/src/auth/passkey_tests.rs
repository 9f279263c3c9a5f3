//! The passkey second factor and `amr`, through the domain (the MFA login step that calls
//! [`AuthService::verify_assertion_for_user`] is wired by the coordinator): a software
//! authenticator (the black-box tests' one) against a real SQLite store.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::passkeys::PasskeyError;
use super::{AuthError, AuthService, ClientInfo, Registration};
use crate::config::Config;
use crate::store::sqlite::SqliteStore;

#[path = "../../tests/server/passkeys/authenticator.rs"]
#[allow(dead_code)]
mod authenticator;

use authenticator::SoftKey;

async fn service() -> (AuthService, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("passkeys.db").display());
    let config = Config::for_tests(&url).unwrap();
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let service = AuthService::open(store, Arc::new(config)).await.unwrap();
    (service, dir)
}

async fn user(service: &AuthService, name: &str) -> Uuid {
    let registration = Registration {
        username: name.into(),
        password: SecretString::from("pale-otter-drums-quietly-42"),
        email: None,
        roles: Vec::new(),
    };
    service.register(registration, None).await.unwrap().id
}

async fn enrol(service: &AuthService, user_id: Uuid, key: &mut SoftKey) {
    let start = service.passkey_register_start(user_id).await.unwrap();
    let credential = key.register(&start.options).to_string();
    service
        .passkey_register_finish(
            user_id,
            start.challenge_id.expose_secret(),
            credential.as_bytes(),
            None,
        )
        .await
        .unwrap();
}

fn challenge(options: &serde_json::Value) -> String {
    options["challenge"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_passkey_is_a_second_factor_for_its_own_user_only() {
    let (service, _dir) = service().await;
    let ann = user(&service, "ann").await;
    let bob = user(&service, "bob").await;
    let mut ann_key = SoftKey::new();
    let mut bob_key = SoftKey::new();
    enrol(&service, ann, &mut ann_key).await;
    enrol(&service, bob, &mut bob_key).await;
    assert!(service.has_passkeys(ann).await.unwrap());

    let start = service.passkey_mfa_start(ann).await.unwrap();
    let assertion = ann_key.assert(&challenge(&start.options)).to_string();
    let used = service
        .verify_assertion_for_user(
            ann,
            start.challenge_id.expose_secret(),
            assertion.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(used.user_id, ann);
    // Backup eligible (synced) passkey, user verified.
    assert_eq!(used.amr, vec!["swk", "mfa"]);
    // Used up.
    let again = service
        .verify_assertion_for_user(
            ann,
            start.challenge_id.expose_secret(),
            assertion.as_bytes(),
        )
        .await;
    assert!(matches!(
        again,
        Err(AuthError::Passkey(PasskeyError::UnknownCeremony))
    ));

    // Bob's passkey on Ann's second step.
    let start = service.passkey_mfa_start(ann).await.unwrap();
    let assertion = bob_key.assert(&challenge(&start.options)).to_string();
    let refused = service
        .verify_assertion_for_user(
            ann,
            start.challenge_id.expose_secret(),
            assertion.as_bytes(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(AuthError::Passkey(PasskeyError::UnknownCredential))
    ));

    // Ann's ceremony finished as Bob's step.
    let start = service.passkey_mfa_start(ann).await.unwrap();
    let assertion = bob_key.assert(&challenge(&start.options)).to_string();
    let refused = service
        .verify_assertion_for_user(
            bob,
            start.challenge_id.expose_secret(),
            assertion.as_bytes(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(AuthError::Passkey(PasskeyError::UnknownCeremony))
    ));

    // A second-factor ceremony cannot sign in without a password, nor the reverse.
    let start = service.passkey_mfa_start(ann).await.unwrap();
    let assertion = ann_key.assert(&challenge(&start.options)).to_string();
    let refused = service
        .passkey_login_finish(
            start.challenge_id.expose_secret(),
            assertion.as_bytes(),
            ClientInfo::default(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(AuthError::Passkey(PasskeyError::UnknownCeremony))
    ));
    let start = service
        .passkey_login_start(&ClientInfo::default())
        .await
        .unwrap();
    let assertion = ann_key.assert(&challenge(&start.options)).to_string();
    let refused = service
        .verify_assertion_for_user(
            ann,
            start.challenge_id.expose_secret(),
            assertion.as_bytes(),
        )
        .await;
    assert!(matches!(
        refused,
        Err(AuthError::Passkey(PasskeyError::UnknownCeremony))
    ));
}

#[tokio::test]
async fn a_device_bound_passkey_signs_in_with_hwk_and_mfa() {
    let (service, _dir) = service().await;
    let cy = user(&service, "cy").await;
    let mut key = SoftKey::new();
    key.backup_eligible = false;
    enrol(&service, cy, &mut key).await;
    let start = service
        .passkey_login_start(&ClientInfo::default())
        .await
        .unwrap();
    let assertion = key.assert(&challenge(&start.options)).to_string();
    let login = service
        .passkey_login_finish(
            start.challenge_id.expose_secret(),
            assertion.as_bytes(),
            ClientInfo::default(),
        )
        .await
        .unwrap();
    assert_eq!(login.amr, vec!["hwk", "mfa"]);
    assert_eq!(login.issued.user.id, cy);
}

/// Server time of the passkey steps on SQLite (a temporary file), median of 200:
/// `cargo test --release -p latchkey --lib passkey_tests::timing -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn timing() {
    let (service, _dir) = service().await;
    let dee = user(&service, "dee").await;
    let mut key = SoftKey::new();
    enrol(&service, dee, &mut key).await;
    let (mut starts, mut finishes) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let t = std::time::Instant::now();
        let start = service.passkey_mfa_start(dee).await.unwrap();
        starts.push(t.elapsed());
        let assertion = key.assert(&challenge(&start.options)).to_string();
        let t = std::time::Instant::now();
        service
            .verify_assertion_for_user(
                dee,
                start.challenge_id.expose_secret(),
                assertion.as_bytes(),
            )
            .await
            .unwrap();
        finishes.push(t.elapsed());
    }
    starts.sort();
    finishes.sort();
    println!(
        "passkey start median {:?}, finish (verify ES256 + take ceremony + record use) median {:?}",
        starts[100], finishes[100]
    );
}
