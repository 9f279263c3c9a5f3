//! Conformance: server-side sessions, used (and slid) atomically while alive, their data, and
//! their deletion.

use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::store::{SessionRecord, StoreError};

async fn saved_session(store: &S, token: u8) -> SessionRecord {
    let owner = saved_user(store, &format!("owner{}", Uuid::new_v4().simple()), base()).await;
    let s = session(owner.id, token, base());
    store.create_session(&s).await.unwrap();
    s
}

pub async fn a_session_is_used_while_alive_and_slides_up_to_its_end(store: &S) {
    let s = saved_session(store, 1).await;
    let at = s.created_at + Duration::minutes(10);
    let used = store
        .use_session(s.token_hash, at, at + Duration::minutes(30))
        .await
        .unwrap();
    let want = SessionRecord {
        last_used_at: at,
        idle_expires_at: at + Duration::minutes(30),
        ..s.clone()
    };
    assert_eq!(used, Some(want));
    let late = s.created_at + Duration::minutes(35); // still within the slid idle end
    let capped = store
        .use_session(s.token_hash, late, late + Duration::hours(3))
        .await
        .unwrap();
    assert_eq!(
        capped.unwrap().idle_expires_at,
        s.absolute_expires_at,
        "capped at the end"
    );
    assert_eq!(
        store.use_session(h(99), at, at).await.unwrap(),
        None,
        "unknown"
    );
    let ended = store
        .use_session(s.token_hash, s.absolute_expires_at, s.absolute_expires_at)
        .await;
    assert_eq!(ended.unwrap(), None, "past its absolute end");
}

pub async fn an_idle_session_is_not_used(store: &S) {
    let s = saved_session(store, 1).await;
    let idle = s.idle_expires_at;
    assert_eq!(
        store
            .use_session(s.token_hash, idle, idle + Duration::minutes(30))
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .list_sessions(s.user_id, idle)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_session_token_or_id_is_unique(store: &S) {
    let s = saved_session(store, 1).await;
    let mut same_token = session(s.user_id, 1, base());
    assert!(matches!(
        store.create_session(&same_token).await,
        Err(StoreError::Conflict)
    ));
    same_token.token_hash = h(2);
    same_token.id = s.id;
    assert!(matches!(
        store.create_session(&same_token).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn session_data_is_replaced_and_read_back_exactly(store: &S) {
    let s = saved_session(store, 1).await;
    let data = serde_json::json!({
        "cart": [1, 2.5, "three", null, { "nested": true }],
        "$odd key": { "with.dots": -9_007_199_254_740_993_i64 },
        "big": 18_446_744_073_709_551_615_u64,
        "unicode": "çà ✓",
    });
    assert!(store.set_session_data(s.token_hash, &data).await.unwrap());
    let at = s.created_at + Duration::minutes(1);
    let used = store
        .use_session(s.token_hash, at, at + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(used.unwrap().data, data);
    assert!(
        !store.set_session_data(h(99), &data).await.unwrap(),
        "no such session"
    );
}

pub async fn sessions_are_deleted_by_token_by_id_or_per_user(store: &S) {
    let a = saved_session(store, 1).await;
    let [b, c] = [2, 3].map(|t| session(a.user_id, t, base()));
    for s in [&b, &c] {
        store.create_session(s).await.unwrap();
    }
    let other = saved_session(store, 4).await;
    assert!(store.delete_session(a.token_hash).await.unwrap());
    assert!(
        !store.delete_session(a.token_hash).await.unwrap(),
        "already gone"
    );
    assert!(
        !store
            .delete_session_by_id(b.id, other.user_id)
            .await
            .unwrap(),
        "not theirs"
    );
    assert!(store.delete_session_by_id(b.id, a.user_id).await.unwrap());
    store.create_session(&b).await.unwrap();
    assert_eq!(
        store
            .delete_user_sessions(a.user_id, Some(c.id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.list_sessions(a.user_id, base()).await.unwrap(),
        vec![c.clone()]
    );
    assert_eq!(
        store.delete_user_sessions(a.user_id, None).await.unwrap(),
        1
    );
    assert_eq!(
        store.list_sessions(other.user_id, base()).await.unwrap(),
        vec![other]
    );
}

pub async fn sessions_are_listed_newest_first_and_purged_when_ended(store: &S) {
    let now = base();
    let owner = saved_user(store, "mary", now).await;
    let older = session(owner.id, 1, now - Duration::minutes(5));
    let newer = session(owner.id, 2, now);
    let mut ended = session(owner.id, 3, now - Duration::hours(3));
    ended.idle_expires_at = now - Duration::hours(1);
    for s in [&older, &newer, &ended] {
        store.create_session(s).await.unwrap();
    }
    let listed = store.list_sessions(owner.id, now).await.unwrap();
    assert_eq!(listed, vec![newer.clone(), older.clone()]);
    assert_eq!(store.purge_expired(now).await.unwrap(), 1);
    assert_eq!(
        store
            .list_sessions(owner.id, now - Duration::hours(2))
            .await
            .unwrap()
            .len(),
        2
    );
}
