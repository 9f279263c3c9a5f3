//! Tests of the OAuth store operations on a real SQLite file.

use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::prelude::*;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    IdentityRecord, OAuthStateRecord, StoreError, TokenHash, UnlinkOutcome, UserRecord,
};

async fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (SqliteStore::open(&url).await.unwrap(), dir)
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).unwrap()
}

fn user(name: &str, password: bool, email: Option<&str>) -> UserRecord {
    UserRecord {
        id: Uuid::now_v7(),
        username: name.into(),
        username_key: name.to_lowercase(),
        email: email.map(str::to_owned),
        password_hash: password.then(|| "$argon2id$stub".to_owned()),
        roles: Vec::new(),
        disabled: false,
        email_verified: false,
        generation: 0,
        created_at: at(0),
    }
}

fn identity(provider: &str, subject: &str, user_id: Uuid) -> IdentityRecord {
    IdentityRecord {
        provider: provider.into(),
        subject: subject.into(),
        user_id,
        email: Some(format!("{subject}@example.com")),
        created_at: at(0),
    }
}

fn state(hash: u8, expires_at: OffsetDateTime) -> OAuthStateRecord {
    OAuthStateRecord {
        state_hash: TokenHash([hash; 32]),
        provider: "google".into(),
        binding_hash: TokenHash([9; 32]),
        nonce: "nonce".into(),
        pkce_verifier: SecretString::from("verifier"),
        redirect_to: "https://app.example.com/".into(),
        link_user_id: None,
        created_at: at(0),
        expires_at,
    }
}

#[tokio::test]
async fn a_state_is_taken_once_and_never_after_it_expires() {
    let (s, _dir) = store().await;
    s.save_oauth_state(&state(1, at(600))).await.unwrap();
    s.save_oauth_state(&state(2, at(600))).await.unwrap();
    let taken = s
        .take_oauth_state(TokenHash([1; 32]), at(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.nonce, "nonce");
    assert_eq!(taken.binding_hash, TokenHash([9; 32]));
    assert!(
        s.take_oauth_state(TokenHash([1; 32]), at(10))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.take_oauth_state(TokenHash([2; 32]), at(601))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.take_oauth_state(TokenHash([2; 32]), at(10))
            .await
            .unwrap()
            .is_none(),
        "gone"
    );
}

#[tokio::test]
async fn an_identity_belongs_to_one_user_and_a_user_has_one_per_provider() {
    let (s, _dir) = store().await;
    let (a, b) = (user("a", true, None), user("b", true, None));
    s.create_user(&a).await.unwrap();
    s.create_user(&b).await.unwrap();
    s.link_identity(&identity("google", "1", a.id))
        .await
        .unwrap();
    let taken = s.link_identity(&identity("google", "1", b.id)).await;
    assert!(matches!(taken, Err(StoreError::Conflict)));
    let second = s.link_identity(&identity("google", "2", a.id)).await;
    assert!(matches!(second, Err(StoreError::Conflict)));
    s.link_identity(&identity("corp", "1", a.id)).await.unwrap();
    let found = s.find_identity("google", "1").await.unwrap().unwrap();
    assert_eq!(found.user_id, a.id);
    assert_eq!(s.list_identities(a.id).await.unwrap().len(), 2);
    assert!(s.list_identities(b.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_last_way_to_log_in_is_never_unlinked() {
    let (s, _dir) = store().await;
    let u = user("u", false, None);
    s.create_user_with_identity(&u, &identity("google", "1", u.id))
        .await
        .unwrap();
    assert_eq!(
        s.unlink_identity(u.id, "google").await.unwrap(),
        UnlinkOutcome::LastLoginMethod
    );
    s.link_identity(&identity("corp", "1", u.id)).await.unwrap();
    assert_eq!(
        s.unlink_identity(u.id, "google").await.unwrap(),
        UnlinkOutcome::Unlinked
    );
    assert_eq!(
        s.unlink_identity(u.id, "google").await.unwrap(),
        UnlinkOutcome::NotLinked
    );
    assert_eq!(
        s.unlink_identity(u.id, "corp").await.unwrap(),
        UnlinkOutcome::LastLoginMethod
    );
    let p = user("p", true, None);
    s.create_user_with_identity(&p, &identity("google", "2", p.id))
        .await
        .unwrap();
    assert_eq!(
        s.unlink_identity(p.id, "google").await.unwrap(),
        UnlinkOutcome::Unlinked
    );
}

#[tokio::test]
async fn creating_a_user_with_an_identity_is_all_or_nothing() {
    let (s, _dir) = store().await;
    let first = user("first", false, None);
    s.create_user_with_identity(&first, &identity("google", "1", first.id))
        .await
        .unwrap();
    // The identity is taken: the user must not be created either.
    let second = user("second", false, None);
    let clash = s
        .create_user_with_identity(&second, &identity("google", "1", second.id))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict)));
    assert!(s.find_user_by_id(second.id).await.unwrap().is_none());
    // The username is taken: the identity must not be linked either.
    let third = UserRecord {
        id: Uuid::now_v7(),
        ..user("first", false, None)
    };
    let clash = s
        .create_user_with_identity(&third, &identity("google", "3", third.id))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict)));
    assert!(s.find_identity("google", "3").await.unwrap().is_none());
    assert_eq!(s.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn users_are_found_by_email_without_regard_to_case() {
    let (s, _dir) = store().await;
    s.create_user(&user("a", true, Some("Jane@Example.com")))
        .await
        .unwrap();
    s.create_user(&user("b", true, None)).await.unwrap();
    let found = s.find_users_by_email("jane@example.COM", 2).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].username, "a");
    assert!(
        s.find_users_by_email("nobody@example.com", 2)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn expired_states_are_purged() {
    let (s, _dir) = store().await;
    s.save_oauth_state(&state(1, at(600))).await.unwrap();
    s.save_oauth_state(&state(2, at(60))).await.unwrap();
    let now = at(120);
    assert!(s.purge_expired(now).await.unwrap() >= 1);
    assert!(
        s.take_oauth_state(TokenHash([1; 32]), now)
            .await
            .unwrap()
            .is_some()
    );
}
