//! Conformance: the store side of the hardening — no reuse grace at an interval of zero, a
//! throttle count given back, the login generation, and the verified-email flag.

use time::Duration;

use super::fixtures::*;
use crate::store::RotateOutcome;

pub async fn with_no_reuse_interval_the_predecessor_is_reuse_even_at_once(store: &S) {
    let now = base();
    let f = saved_family(store, now - Duration::minutes(1)).await;
    let mut first = rotate(&f, h(1), h(2), now);
    first.reuse_interval = Duration::ZERO;
    assert!(matches!(
        store.rotate_refresh(&first).await.unwrap(),
        RotateOutcome::Rotated(_)
    ));
    // The same token again, in the same millisecond: with no interval there is no grace.
    let mut again = rotate(&f, h(1), h(3), now);
    again.reuse_interval = Duration::ZERO;
    assert_eq!(
        store.rotate_refresh(&again).await.unwrap(),
        RotateOutcome::Reused { user_id: f.user_id }
    );
    assert_eq!(store.find_family(f.id, now).await.unwrap(), None);
}

pub async fn a_throttle_count_is_given_back_but_never_below_zero(store: &S) {
    let now = base();
    let window = Duration::minutes(15);
    for _ in 0..3 {
        store
            .throttle_hit("ip:192.0.2.9", now, window)
            .await
            .unwrap();
    }
    store.throttle_release("ip:192.0.2.9").await.unwrap();
    let count = store
        .throttle_get("ip:192.0.2.9", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.failures, 2);
    for _ in 0..5 {
        store.throttle_release("ip:192.0.2.9").await.unwrap();
    }
    let count = store
        .throttle_get("ip:192.0.2.9", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(count.failures, 0);
    let next = store
        .throttle_hit("ip:192.0.2.9", now, window)
        .await
        .unwrap();
    assert_eq!(next.failures, 1);
    store.throttle_release("ip:nobody").await.unwrap();
    assert_eq!(store.throttle_get("ip:nobody", now).await.unwrap(), None);
}

pub async fn the_login_generation_moves_on_and_the_flags_read_back(store: &S) {
    let now = base();
    let mut u = user("gina", now);
    u.email_verified = true;
    store.create_user(&u).await.unwrap();
    assert!(store.bump_generation(u.id).await.unwrap());
    assert!(store.bump_generation(u.id).await.unwrap());
    let read = store.find_user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(read.generation, 2);
    assert!(read.email_verified);
    assert!(!store.bump_generation(uuid::Uuid::now_v7()).await.unwrap());
}
