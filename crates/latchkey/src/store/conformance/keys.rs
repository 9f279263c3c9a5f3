//! Conformance: signing keys, server secrets, failed-login counters and purging.

use std::collections::HashSet;

use secrecy::ExposeSecret;
use time::Duration;

use super::fixtures::*;
use crate::store::StoreError;

pub async fn a_new_signing_key_retires_the_current_one(store: &S) {
    let now = base();
    store.add_signing_key(&key("k1", now)).await.unwrap();
    store
        .add_signing_key(&key("k2", now + Duration::seconds(1)))
        .await
        .unwrap();
    let keys = store.signing_keys().await.unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.retired_at))
        .collect();
    assert_eq!(
        summary,
        vec![("k1", Some(now + Duration::seconds(1))), ("k2", None)]
    );
    assert_eq!(keys[1].private_der.expose_secret(), &[7u8; 48][..]);
    assert_eq!(keys[1].created_at, now + Duration::seconds(1));
    let duplicate = store
        .add_signing_key(&key("k2", now + Duration::seconds(2)))
        .await;
    assert!(matches!(duplicate, Err(StoreError::Conflict)));
    let current: Vec<_> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .collect();
    assert_eq!(current.len(), 1, "a refused key retires nothing for good");
    assert_eq!(current[0].kid, "k2");
}

pub async fn a_pending_key_retires_the_current_one_when_it_activates(store: &S) {
    let now = base();
    store.add_signing_key(&key("k1", now)).await.unwrap();
    let mut pending = key("k2", now + Duration::seconds(1));
    pending.activates_at = now + Duration::minutes(15);
    store.add_signing_key(&pending).await.unwrap();
    let keys = store.signing_keys().await.unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.activates_at, k.retired_at, k.revoked_at))
        .collect();
    let activates = now + Duration::minutes(15);
    assert_eq!(
        summary,
        vec![
            ("k1", now, Some(activates), None),
            ("k2", activates, None, None)
        ],
        "the current key signs until the pending one activates"
    );
}

pub async fn revoking_withdraws_every_other_key_at_once(store: &S) {
    let now = base();
    store.add_signing_key(&key("k1", now)).await.unwrap();
    let mut pending = key("k2", now + Duration::seconds(1));
    pending.activates_at = now + Duration::minutes(15);
    store.add_signing_key(&pending).await.unwrap();
    let at = now + Duration::seconds(2);
    store.add_signing_key(&key("k3", at)).await.unwrap();
    assert_eq!(store.revoke_signing_keys("k3", at).await.unwrap(), 2);
    let mut summary: Vec<_> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.retired_at, k.revoked_at))
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        vec![
            ("k1".to_owned(), Some(at), Some(at)),
            ("k2".to_owned(), Some(at), Some(at)),
            ("k3".to_owned(), None, None),
        ]
    );
    assert_eq!(
        store
            .revoke_signing_keys("k3", at + Duration::seconds(1))
            .await
            .unwrap(),
        0,
        "withdrawn once"
    );
}

pub async fn a_server_secret_is_stored_once_and_agreed_on(store: &S) {
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .server_secret("refresh", &[i; 32], base())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "concurrent first starts agree");
    let value = seen.into_iter().next().unwrap();
    let later = base() + Duration::minutes(1);
    assert_eq!(
        store
            .server_secret("refresh", &[99; 32], base())
            .await
            .unwrap(),
        value
    );
    assert_eq!(
        store.server_secret("other", &[5; 3], later).await.unwrap(),
        vec![5; 3]
    );
    let other = store.server_secrets().await.unwrap();
    assert_eq!(
        other
            .iter()
            .find(|s| s.name == "other")
            .map(|s| s.created_at),
        Some(later),
        "created at the time given"
    );
}

pub async fn failed_logins_count_within_a_window(store: &S) {
    let now = base();
    let window = Duration::minutes(15);
    for n in 1..=3 {
        let count = store
            .throttle_hit("user:mary", now + Duration::seconds(n), window)
            .await
            .unwrap();
        assert_eq!(count.failures, u32::try_from(n).unwrap());
        assert_eq!(
            count.window_ends_at,
            now + Duration::seconds(1) + window,
            "the window is fixed"
        );
    }
    let open = store
        .throttle_get("user:mary", now + Duration::minutes(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(open.failures, 3);
    let after = now + Duration::seconds(1) + window;
    assert_eq!(
        store.throttle_get("user:mary", after).await.unwrap(),
        None,
        "closed"
    );
    let fresh = store
        .throttle_hit("user:mary", after, window)
        .await
        .unwrap();
    assert_eq!(
        (fresh.failures, fresh.window_ends_at),
        (1, after + window),
        "a new window"
    );
    assert_eq!(store.throttle_get("ip:192.0.2.1", now).await.unwrap(), None);
    store.throttle_clear("user:mary").await.unwrap();
    assert_eq!(store.throttle_get("user:mary", after).await.unwrap(), None);
    store.throttle_clear("user:nobody").await.unwrap();
}

pub async fn concurrent_throttle_hits_are_all_counted(store: &S) {
    let now = base();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .throttle_hit("ip:198.51.100.7", now, Duration::minutes(15))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut highest = 0;
    for task in tasks {
        highest = highest.max(task.await.unwrap().failures);
    }
    // The stored count is what matters: no hit lost, none counted twice. (What each hit
    // returns may include a concurrent one's on SecantusDB, see `upsert_returning`.)
    let stored = store
        .throttle_get("ip:198.51.100.7", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.failures, highest),
        (20, 20),
        "every hit counted once"
    );
}

pub async fn purge_removes_expired_families_and_windows(store: &S) {
    let now = base();
    let live = saved_family(store, now).await;
    let mut ended = family(live.user_id, now - Duration::hours(3));
    ended.token_expires_at = now - Duration::hours(2);
    ended.expires_at = now - Duration::hours(1);
    store.create_family(&ended).await.unwrap();
    store
        .throttle_hit("old", now - Duration::hours(1), Duration::minutes(15))
        .await
        .unwrap();
    store
        .throttle_hit("new", now, Duration::minutes(15))
        .await
        .unwrap();
    assert_eq!(store.purge_expired(now).await.unwrap(), 2);
    assert!(store.find_family(live.id, now).await.unwrap().is_some());
    assert_eq!(
        store
            .find_family(ended.id, now - Duration::hours(2))
            .await
            .unwrap(),
        None
    );
    assert!(store.throttle_get("new", now).await.unwrap().is_some());
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);
}
