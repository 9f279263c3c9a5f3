//! Conformance: bulk reads and verbatim writes, and `store copy` across backends.

use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use super::{make_mongo, make_sqlite};
use crate::store::copy::{CopyError, copy};
use crate::store::{IdentityRecord, SecretRecord, SigningKeyRecord, StoreError};

pub async fn imported_records_read_back_as_given(store: &S) {
    let now = base();
    let mut u = user("imported", now);
    store.import_user(&u).await.unwrap();
    u.roles = vec!["admin".into()];
    store.import_user(&u).await.unwrap(); // overwrites
    assert_eq!(store.find_user_by_id(u.id).await.unwrap(), Some(u.clone()));
    let mut clash = user("imported", now);
    clash.id = Uuid::now_v7();
    assert!(matches!(
        store.import_user(&clash).await,
        Err(StoreError::Conflict)
    ));
    let mut f = family(u.id, now);
    f.previous_hash = Some(h(9));
    f.generation = 7;
    f.rotated_at = Some(now);
    store.import_family(&f).await.unwrap();
    assert_eq!(
        store.list_live_families(None, 10, now).await.unwrap(),
        vec![f.clone()]
    );
    assert!(
        store
            .list_live_families(Some(f.id), 10, now)
            .await
            .unwrap()
            .is_empty()
    );
    let mut k = key("kid-1", now);
    k.retired_at = Some(now);
    store.import_signing_key(&k).await.unwrap();
    let read = store.signing_keys().await.unwrap();
    assert_eq!(
        (read[0].kid.as_str(), read[0].retired_at),
        ("kid-1", Some(now)),
        "kept retired"
    );
    let secret = SecretRecord {
        name: "s".into(),
        value: vec![1, 2, 3].into(),
        created_at: now,
    };
    store.import_server_secret(&secret).await.unwrap();
    assert_eq!(
        store.server_secret("s", &[0], now).await.unwrap(),
        vec![1, 2, 3]
    );
    let listed = store.server_secrets().await.unwrap();
    assert_eq!((listed[0].name.as_str(), listed[0].created_at), ("s", now));
    let mut s = session(u.id, 5, now);
    store.import_session(&s).await.unwrap();
    s.data = serde_json::json!({ "overwritten": true });
    store.import_session(&s).await.unwrap();
    assert_eq!(
        store.list_live_sessions(None, 10, now).await.unwrap(),
        vec![s.clone()]
    );
    let counts = store.counts(now).await.unwrap();
    let all = (counts.users, counts.families, counts.sessions);
    assert_eq!(all, (1, 1, 1));
    assert_eq!((counts.signing_keys, counts.server_secrets), (1, 1));
    assert_eq!(store.counts(s.idle_expires_at).await.unwrap().sessions, 0);
    assert_eq!(
        store.counts(f.token_expires_at).await.unwrap().families,
        0,
        "live ones only"
    );
}

pub async fn copying_moves_everything_and_refuses_a_full_target(store: &S) {
    let now = base() - Duration::days(1); // copy() is asked what is live at this time
    for i in 0..3 {
        let f = saved_family(store, now).await;
        store
            .rotate_refresh(&rotate(&f, h(1), h(2 + i), now))
            .await
            .unwrap();
    }
    let old = saved_family(store, now - Duration::days(40)).await; // long expired: not copied
    let linked = IdentityRecord {
        provider: "google".into(),
        subject: "42".into(),
        user_id: old.user_id,
        email: None,
        created_at: now,
    };
    store.link_identity(&linked).await.unwrap();
    let passkey = crate::store::PasskeyRecord {
        id: uuid::Uuid::now_v7(),
        user_id: old.user_id,
        credential_id: vec![9; 20],
        public_key: vec![1; 33],
        state: vec![0; 7],
        sign_count: 4,
        transports: vec!["usb".into()],
        backup_eligible: false,
        backup_state: false,
        name: "YubiKey".into(),
        created_at: now,
        last_used_at: Some(now),
    };
    store.create_passkey(&passkey).await.unwrap();
    store
        .create_session(&session(old.user_id, 7, now))
        .await
        .unwrap();
    let mut ended = session(old.user_id, 8, now - Duration::days(1));
    ended.absolute_expires_at = now - Duration::hours(1);
    store.create_session(&ended).await.unwrap();
    store.add_signing_key(&key("k1", now)).await.unwrap();
    store
        .add_signing_key(&key("k2", now + Duration::seconds(1)))
        .await
        .unwrap();
    let secret = store
        .server_secret("refresh", &[3; 32], base())
        .await
        .unwrap();
    // Across backends when MongoDB is there: to MongoDB, then back to SQLite.
    let middle = match make_mongo().await {
        Some(m) => m,
        None => make_sqlite().await.unwrap(),
    };
    let report = copy(&**store, &*middle.store, false, now).await.unwrap();
    assert_eq!(
        (report.copied.users, report.copied.families),
        (4, 3),
        "live families only"
    );
    assert_eq!(report.copied.sessions, 1, "live sessions only");
    assert_eq!(report.copied.identities, 1);
    assert_eq!(
        (report.copied.signing_keys, report.copied.server_secrets),
        (2, 1)
    );
    let last = make_sqlite().await.unwrap();
    copy(&*middle.store, &*last.store, false, now)
        .await
        .unwrap();
    let (from, to) = (store, &last.store);
    assert_eq!(
        from.list_users(None, 10).await.unwrap(),
        to.list_users(None, 10).await.unwrap()
    );
    assert_eq!(
        from.list_live_families(None, 10, now).await.unwrap(),
        to.list_live_families(None, 10, now).await.unwrap()
    );
    assert_eq!(
        from.list_live_sessions(None, 10, now).await.unwrap(),
        to.list_live_sessions(None, 10, now).await.unwrap()
    );
    assert_eq!(
        to.find_identity("google", "42").await.unwrap(),
        Some(linked)
    );
    assert_eq!(to.list_passkeys(old.user_id).await.unwrap(), vec![passkey]);
    let kids = |keys: Vec<SigningKeyRecord>| {
        keys.into_iter()
            .map(|k| (k.kid, k.created_at, k.retired_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kids(from.signing_keys().await.unwrap()),
        kids(to.signing_keys().await.unwrap())
    );
    assert_eq!(
        to.server_secret("refresh", &[4; 32], base()).await.unwrap(),
        secret
    );
    let refused = copy(&**store, &*last.store, false, now).await;
    assert!(
        matches!(refused, Err(CopyError::TargetNotEmpty(_))),
        "{refused:?}"
    );
    let forced = copy(&**store, &*last.store, true, now).await.unwrap();
    assert_eq!(forced.target.users, 4, "overwritten, not duplicated");
}
