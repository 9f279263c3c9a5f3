//! Conformance: passkeys (unique credential ids, per-user listing, rename and delete scoped to
//! the owner, compare-and-set of the counter) and WebAuthn ceremonies (taken once, never after
//! expiry, purged).

use std::sync::Arc;

use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::store::{CeremonyRecord, PasskeyRecord, PasskeyUse, StoreError};

fn passkey(user_id: Uuid, credential: u8, at: time::OffsetDateTime) -> PasskeyRecord {
    PasskeyRecord {
        id: Uuid::now_v7(),
        user_id,
        credential_id: vec![credential; 16],
        public_key: vec![1, 2, 3],
        state: vec![0; 7],
        sign_count: 0,
        transports: vec!["internal".into(), "hybrid".into()],
        backup_eligible: true,
        backup_state: false,
        name: format!("key {credential}"),
        created_at: at,
        last_used_at: None,
    }
}

fn ceremony(n: u8, user_id: Option<Uuid>, expires_at: time::OffsetDateTime) -> CeremonyRecord {
    CeremonyRecord {
        id_hash: h(n),
        kind: "login".into(),
        user_id,
        state: vec![n; 40],
        expires_at,
    }
}

pub async fn a_ceremony_is_taken_once_and_never_after_it_expires(store: &S) {
    let now = base();
    let u = saved_user(store, "pia", now).await;
    let live = ceremony(1, Some(u.id), now + Duration::minutes(5));
    store.create_ceremony(&live).await.unwrap();
    store
        .create_ceremony(&ceremony(2, None, now + Duration::minutes(5)))
        .await
        .unwrap();
    store
        .create_ceremony(&ceremony(3, None, now + Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(store.take_ceremony(h(1), now).await.unwrap(), Some(live));
    assert_eq!(store.take_ceremony(h(1), now).await.unwrap(), None);
    // Expired: not given, and gone.
    let later = now + Duration::seconds(2);
    assert_eq!(store.take_ceremony(h(3), later).await.unwrap(), None);
    assert_eq!(store.take_ceremony(h(9), now).await.unwrap(), None);
    // Concurrent takes: exactly one wins.
    let store2 = Arc::clone(store);
    let store3 = Arc::clone(store);
    let (a, b) = tokio::join!(
        tokio::spawn(async move { store2.take_ceremony(h(2), now).await.unwrap() }),
        tokio::spawn(async move { store3.take_ceremony(h(2), now).await.unwrap() }),
    );
    assert_eq!(
        usize::from(a.unwrap().is_some()) + usize::from(b.unwrap().is_some()),
        1
    );
    store
        .create_ceremony(&ceremony(4, None, now + Duration::minutes(1)))
        .await
        .unwrap();
    assert_eq!(
        store
            .purge_expired_ceremonies(now + Duration::minutes(2))
            .await
            .unwrap(),
        1
    );
}

pub async fn passkeys_are_unique_listed_renamed_and_deleted_per_user(store: &S) {
    let now = base();
    let ann = saved_user(store, "ann", now).await;
    let bob = saved_user(store, "bob", now).await;
    let first = passkey(ann.id, 1, now);
    let second = passkey(ann.id, 2, now + Duration::seconds(1));
    store.create_passkey(&first).await.unwrap();
    store.create_passkey(&second).await.unwrap();
    let clash = passkey(bob.id, 1, now);
    assert!(matches!(
        store.create_passkey(&clash).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.list_passkeys(ann.id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert!(store.list_passkeys(bob.id).await.unwrap().is_empty());
    assert_eq!(
        store.find_passkey_by_credential(&[1; 16]).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.find_passkey_by_credential(&[7; 16]).await.unwrap(),
        None
    );
    // Rename and delete only the owner's.
    assert!(!store.rename_passkey(bob.id, first.id, "x").await.unwrap());
    assert!(
        store
            .rename_passkey(ann.id, first.id, "Laptop")
            .await
            .unwrap()
    );
    let read = store
        .find_passkey_by_credential(&[1; 16])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.name, "Laptop");
    assert!(!store.delete_passkey(bob.id, first.id).await.unwrap());
    assert!(store.delete_passkey(ann.id, first.id).await.unwrap());
    assert!(!store.delete_passkey(ann.id, first.id).await.unwrap());
    assert_eq!(store.delete_user_passkeys(ann.id).await.unwrap(), 1);
    assert!(store.list_passkeys(ann.id).await.unwrap().is_empty());
}

pub async fn a_passkey_use_is_recorded_only_from_the_expected_counter(store: &S) {
    let now = base();
    let u = saved_user(store, "cy", now).await;
    let p = passkey(u.id, 5, now);
    store.create_passkey(&p).await.unwrap();
    let used = PasskeyUse {
        state: vec![1; 7],
        sign_count: 3,
        backup_eligible: true,
        backup_state: true,
        used_at: now + Duration::minutes(1),
    };
    assert!(store.record_passkey_use(p.id, 0, &used).await.unwrap());
    // The counter moved on: a use computed from the old one is refused.
    assert!(!store.record_passkey_use(p.id, 0, &used).await.unwrap());
    let read = store
        .find_passkey_by_credential(&[5; 16])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.sign_count, 3);
    assert!(read.backup_state);
    assert_eq!(read.state, vec![1; 7]);
    assert_eq!(read.last_used_at, Some(now + Duration::minutes(1)));
    assert!(
        !store
            .record_passkey_use(Uuid::now_v7(), 3, &used)
            .await
            .unwrap()
    );
}
