//! Conformance: pending OAuth sign-ins (single use, expiring) and linked identities (one user
//! per identity, one identity per provider per user, never the last way to log in).

use secrecy::SecretString;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::fixtures::*;
use crate::store::{
    IdentityRecord, OAuthStateRecord, StoreError, TokenHash, UnlinkOutcome, UserRecord,
};

fn person(name: &str, password: bool, email: Option<&str>) -> UserRecord {
    UserRecord {
        email: email.map(str::to_owned),
        password_hash: password.then(|| "$argon2id$stub".to_owned()),
        ..user(name, base())
    }
}

/// A fixed linking time, so that records compare equal.
fn linked_at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()
}

fn identity(provider: &str, subject: &str, user_id: Uuid) -> IdentityRecord {
    IdentityRecord {
        provider: provider.into(),
        subject: subject.into(),
        user_id,
        email: Some(format!("{subject}@example.com")),
        created_at: linked_at(),
    }
}

fn state(n: u8, expires_at: OffsetDateTime) -> OAuthStateRecord {
    OAuthStateRecord {
        state_hash: h(n),
        provider: "google".into(),
        binding_hash: TokenHash([9; 32]),
        nonce: "nonce".into(),
        pkce_verifier: SecretString::from("verifier"),
        redirect_to: "https://app.example.com/".into(),
        link_user_id: None,
        created_at: base(),
        expires_at,
    }
}

pub async fn an_oauth_state_is_taken_once_and_never_after_it_expires(store: &S) {
    let now = base();
    let end = now + Duration::minutes(10);
    store.save_oauth_state(&state(1, end)).await.unwrap();
    store.save_oauth_state(&state(2, end)).await.unwrap();
    let taken = store.take_oauth_state(h(1), now).await.unwrap().unwrap();
    let want = state(1, end);
    assert_eq!(
        (taken.nonce, taken.binding_hash),
        (want.nonce, want.binding_hash)
    );
    assert_eq!(
        (taken.redirect_to, taken.expires_at),
        (want.redirect_to, end)
    );
    assert_eq!(taken.link_user_id, None);
    let linker = person("linker", true, None);
    store.create_user(&linker).await.unwrap();
    let linking = OAuthStateRecord {
        link_user_id: Some(linker.id),
        ..state(4, end)
    };
    store.save_oauth_state(&linking).await.unwrap();
    let taken = store.take_oauth_state(h(4), now).await.unwrap().unwrap();
    assert_eq!(taken.link_user_id, Some(linker.id));
    assert!(
        store.take_oauth_state(h(1), now).await.unwrap().is_none(),
        "single use"
    );
    assert!(
        store.take_oauth_state(h(2), end).await.unwrap().is_none(),
        "expired"
    );
    assert!(
        store.take_oauth_state(h(2), now).await.unwrap().is_none(),
        "and gone"
    );
    let duplicate = store.save_oauth_state(&state(3, end)).await;
    assert!(duplicate.is_ok());
    assert!(matches!(
        store.save_oauth_state(&state(3, end)).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn an_identity_belongs_to_one_user_and_a_user_has_one_per_provider(store: &S) {
    let (a, b) = (person("a", true, None), person("b", true, None));
    store.create_user(&a).await.unwrap();
    store.create_user(&b).await.unwrap();
    store
        .link_identity(&identity("google", "1", a.id))
        .await
        .unwrap();
    let taken = store.link_identity(&identity("google", "1", b.id)).await;
    assert!(matches!(taken, Err(StoreError::Conflict)), "{taken:?}");
    let second = store.link_identity(&identity("google", "2", a.id)).await;
    assert!(matches!(second, Err(StoreError::Conflict)), "{second:?}");
    let mut corp = identity("corp", "1", a.id);
    corp.created_at = linked_at() + Duration::seconds(1);
    store.link_identity(&corp).await.unwrap();
    let found = store.find_identity("google", "1").await.unwrap().unwrap();
    assert_eq!(found, identity("google", "1", a.id));
    assert_eq!(store.find_identity("google", "9").await.unwrap(), None);
    let listed = store.list_identities(a.id).await.unwrap();
    assert_eq!(
        listed,
        vec![identity("google", "1", a.id), corp],
        "oldest first"
    );
    assert!(store.list_identities(b.id).await.unwrap().is_empty());
    assert_eq!(
        store.find_user_by_id(a.id).await.unwrap(),
        Some(a),
        "the user is unchanged"
    );
}

pub async fn the_last_way_to_log_in_is_never_unlinked(store: &S) {
    let u = person("u", false, None);
    store
        .create_user_with_identity(&u, &identity("google", "1", u.id))
        .await
        .unwrap();
    let unlink = |provider: &'static str| store.unlink_identity(u.id, provider);
    assert_eq!(
        unlink("google").await.unwrap(),
        UnlinkOutcome::LastLoginMethod
    );
    store
        .link_identity(&identity("corp", "1", u.id))
        .await
        .unwrap();
    assert_eq!(unlink("google").await.unwrap(), UnlinkOutcome::Unlinked);
    assert_eq!(unlink("google").await.unwrap(), UnlinkOutcome::NotLinked);
    assert_eq!(
        unlink("corp").await.unwrap(),
        UnlinkOutcome::LastLoginMethod
    );
    let p = person("p", true, None);
    store
        .create_user_with_identity(&p, &identity("google", "2", p.id))
        .await
        .unwrap();
    assert_eq!(
        store.unlink_identity(p.id, "google").await.unwrap(),
        UnlinkOutcome::Unlinked
    );
    store
        .link_identity(&identity("google", "1", p.id))
        .await
        .unwrap();
}

pub async fn concurrent_unlinks_never_leave_a_user_without_a_login(store: &S) {
    let u = person("u", false, None);
    store
        .create_user_with_identity(&u, &identity("google", "1", u.id))
        .await
        .unwrap();
    store
        .link_identity(&identity("corp", "1", u.id))
        .await
        .unwrap();
    let tasks: Vec<_> = ["google", "corp"]
        .into_iter()
        .map(|provider| {
            let store = store.clone();
            tokio::spawn(async move { store.unlink_identity(u.id, provider).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        vec![UnlinkOutcome::LastLoginMethod, UnlinkOutcome::Unlinked]
    );
    assert_eq!(store.list_identities(u.id).await.unwrap().len(), 1);
}

pub async fn creating_a_user_with_an_identity_is_all_or_nothing(store: &S) {
    let first = person("first", false, None);
    store
        .create_user_with_identity(&first, &identity("google", "1", first.id))
        .await
        .unwrap();
    let second = person("second", false, None);
    let clash = store
        .create_user_with_identity(&second, &identity("google", "1", second.id))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict)), "{clash:?}");
    assert!(
        store.find_user_by_id(second.id).await.unwrap().is_none(),
        "no user without it"
    );
    let third = person("first", false, None);
    let clash = store
        .create_user_with_identity(&third, &identity("google", "3", third.id))
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict)), "{clash:?}");
    assert!(
        store.find_identity("google", "3").await.unwrap().is_none(),
        "no identity either"
    );
    assert_eq!(store.count_users().await.unwrap(), 1);
}

pub async fn users_are_found_by_email_without_regard_to_case(store: &S) {
    store
        .create_user(&person("a", true, Some("Jane@Example.com")))
        .await
        .unwrap();
    store.create_user(&person("b", true, None)).await.unwrap();
    let c = person("c", false, Some("JANE@example.com"));
    store
        .create_user_with_identity(&c, &identity("google", "1", c.id))
        .await
        .unwrap();
    let found = store
        .find_users_by_email("jane@example.COM", 5)
        .await
        .unwrap();
    let names: Vec<_> = found.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["a", "c"], "in id order");
    assert_eq!(
        store
            .find_users_by_email("jane@example.com", 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .find_users_by_email("nobody@example.com", 2)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn expired_oauth_states_are_purged(store: &S) {
    let now = base();
    store
        .save_oauth_state(&state(1, now + Duration::minutes(10)))
        .await
        .unwrap();
    store
        .save_oauth_state(&state(2, now - Duration::minutes(1)))
        .await
        .unwrap();
    assert_eq!(store.purge_expired(now).await.unwrap(), 1);
    assert!(store.take_oauth_state(h(1), now).await.unwrap().is_some());
}
