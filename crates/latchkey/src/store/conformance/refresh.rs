//! Conformance: refresh families and their atomic rotation, reuse detection and deletion.

use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::store::{FamilyRecord, RotateOutcome};

pub async fn families_are_found_and_listed_while_alive(store: &S) {
    let now = base();
    let owner = saved_user(store, "mary", now).await;
    let older = family(owner.id, now - Duration::minutes(5));
    let newer = family(owner.id, now);
    let mut stale = family(owner.id, now - Duration::minutes(1));
    stale.token_expires_at = now - Duration::seconds(1); // token expired, family alive
    for f in [&older, &newer, &stale] {
        store.create_family(f).await.unwrap();
    }
    assert_eq!(
        store.find_family(newer.id, now).await.unwrap(),
        Some(newer.clone())
    );
    assert_eq!(
        store.find_family(newer.id, newer.expires_at).await.unwrap(),
        None
    );
    assert!(
        store.find_family(stale.id, now).await.unwrap().is_some(),
        "only the family's end counts"
    );
    let listed = store.list_families(owner.id, now).await.unwrap();
    assert_eq!(listed, vec![newer, older], "live ones, newest first");
    assert!(
        store
            .list_families(Uuid::now_v7(), now)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn rotating_the_current_token_installs_the_successor(store: &S) {
    let now = base();
    let f = saved_family(store, now - Duration::minutes(1)).await;
    let mut request = rotate(&f, h(1), h(2), now);
    request.successor_expires_at = f.expires_at + Duration::hours(5);
    let RotateOutcome::Rotated(got) = store.rotate_refresh(&request).await.unwrap() else {
        panic!("not rotated")
    };
    let want = FamilyRecord {
        current_hash: h(2),
        previous_hash: Some(h(1)),
        generation: 1,
        rotated_at: Some(now),
        token_expires_at: f.expires_at, // capped at the family's end
        last_used_at: now,
        ..f.clone()
    };
    assert_eq!(got, want);
    assert_eq!(store.find_family(f.id, now).await.unwrap(), Some(want));
}

pub async fn the_predecessor_within_the_interval_is_reissued(store: &S) {
    let now = base();
    let f = saved_family(store, now).await;
    store
        .rotate_refresh(&rotate(&f, h(1), h(2), now))
        .await
        .unwrap();
    let later = now + Duration::seconds(10);
    let outcome = store
        .rotate_refresh(&rotate(&f, h(1), h(3), later))
        .await
        .unwrap();
    let RotateOutcome::Reissued(got) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (got.current_hash, got.generation),
        (h(2), 1),
        "nothing changes"
    );
    assert_eq!(store.find_family(f.id, later).await.unwrap(), Some(got));
}

pub async fn the_predecessor_after_the_interval_revokes_the_family(store: &S) {
    let now = base();
    let f = saved_family(store, now).await;
    store
        .rotate_refresh(&rotate(&f, h(1), h(2), now))
        .await
        .unwrap();
    let later = now + Duration::seconds(11);
    let outcome = store
        .rotate_refresh(&rotate(&f, h(1), h(3), later))
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::Reused { user_id: f.user_id });
    assert_eq!(store.find_family(f.id, later).await.unwrap(), None);
    let current = store
        .rotate_refresh(&rotate(&f, h(2), h(3), later))
        .await
        .unwrap();
    assert_eq!(
        current,
        RotateOutcome::Invalid,
        "the current token died with its family"
    );
}

pub async fn an_older_token_revokes_the_family(store: &S) {
    let now = base();
    let f = saved_family(store, now).await;
    store
        .rotate_refresh(&rotate(&f, h(1), h(2), now))
        .await
        .unwrap();
    store
        .rotate_refresh(&rotate(&f, h(2), h(3), now))
        .await
        .unwrap();
    let outcome = store
        .rotate_refresh(&rotate(&f, h(1), h(4), now))
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::Reused { user_id: f.user_id });
    assert_eq!(store.find_family(f.id, now).await.unwrap(), None);
}

pub async fn unknown_and_expired_tokens_are_invalid(store: &S) {
    let now = base();
    let f = saved_family(store, now).await;
    let mut unknown = rotate(&f, h(1), h(2), now);
    unknown.family_id = Uuid::new_v4();
    assert_eq!(
        store.rotate_refresh(&unknown).await.unwrap(),
        RotateOutcome::Invalid
    );
    let token_expired = rotate(&f, h(1), h(2), f.token_expires_at);
    assert_eq!(
        store.rotate_refresh(&token_expired).await.unwrap(),
        RotateOutcome::Invalid
    );
    assert!(
        store.find_family(f.id, now).await.unwrap().is_some(),
        "an expired token revokes nothing"
    );
    let family_ended = rotate(&f, h(1), h(2), f.expires_at);
    assert_eq!(
        store.rotate_refresh(&family_ended).await.unwrap(),
        RotateOutcome::Invalid
    );
}

pub async fn concurrent_rotations_with_one_token_rotate_exactly_once(store: &S) {
    let now = base();
    let f = saved_family(store, now).await;
    let tasks: Vec<_> = (0..16u8)
        .map(|i| {
            let (store, request) = (store.clone(), rotate(&f, h(1), h(100 + i), now));
            tokio::spawn(async move { store.rotate_refresh(&request).await.unwrap() })
        })
        .collect();
    let (mut rotated, mut reissued) = (Vec::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            RotateOutcome::Rotated(f) => rotated.push(f),
            RotateOutcome::Reissued(_) => reissued += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated.len(), reissued), (1, 15));
    let stored = store.find_family(f.id, now).await.unwrap().unwrap();
    assert_eq!(stored, rotated[0]);
    assert_eq!(stored.generation, 1);
}

pub async fn families_are_deleted_singly_or_per_user(store: &S) {
    let now = base();
    let owner = saved_user(store, "mary", now).await;
    let [a, b, c] = [0, 1, 2].map(|_| family(owner.id, now));
    for f in [&a, &b, &c] {
        store.create_family(f).await.unwrap();
    }
    let other = saved_family(store, now).await;
    assert!(
        !store
            .delete_family(a.id, Some(other.user_id))
            .await
            .unwrap(),
        "not theirs"
    );
    assert!(store.delete_family(a.id, Some(owner.id)).await.unwrap());
    assert!(
        !store.delete_family(a.id, None).await.unwrap(),
        "already gone"
    );
    assert_eq!(
        store
            .delete_user_families(owner.id, Some(b.id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.list_families(owner.id, now).await.unwrap(),
        vec![b.clone()]
    );
    assert_eq!(store.delete_user_families(owner.id, None).await.unwrap(), 1);
    assert!(
        store.find_family(other.id, now).await.unwrap().is_some(),
        "others untouched"
    );
}
