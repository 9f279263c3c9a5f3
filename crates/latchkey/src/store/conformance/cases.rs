//! The behaviours every [`Store`] must show, one async function per test. Times are a day
//! ahead of the clock, so a TTL monitor (which uses the real clock) never deletes a record a
//! test still reads: expiry here is always decided by the `now` the test passes.

use std::collections::HashSet;
use std::sync::Arc;

use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{make_mongo, make_sqlite};
use crate::store::copy::{CopyError, copy};
use crate::store::{
    FamilyRecord, RotateOutcome, RotateRequest, SecretRecord, SigningKeyRecord, Store, StoreError,
    TokenHash, UserRecord,
};

type S = Arc<dyn Store>;

/// "Now" for the tests: a day ahead, at the stores' millisecond precision.
fn base() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() + Duration::days(1);
    t.replace_millisecond(t.millisecond()).unwrap()
}

fn user(name: &str, at: OffsetDateTime) -> UserRecord {
    UserRecord {
        id: Uuid::now_v7(),
        username: name.to_owned(),
        username_key: name.to_lowercase(),
        email: Some(format!("{name}@example.com")),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        roles: vec!["reader".into()],
        disabled: false,
        created_at: at,
    }
}

async fn saved_user(store: &S, name: &str, at: OffsetDateTime) -> UserRecord {
    let u = user(name, at);
    store.create_user(&u).await.unwrap();
    u
}

fn h(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

fn family(user_id: Uuid, at: OffsetDateTime) -> FamilyRecord {
    FamilyRecord {
        id: Uuid::new_v4(),
        user_id,
        current_hash: h(1),
        previous_hash: None,
        generation: 0,
        rotated_at: None,
        token_expires_at: at + Duration::hours(1),
        expires_at: at + Duration::hours(2),
        created_at: at,
        last_used_at: at,
        user_agent: Some("conformance".into()),
        ip: Some("192.0.2.1".into()),
    }
}

async fn saved_family(store: &S, at: OffsetDateTime) -> FamilyRecord {
    let owner = saved_user(store, &format!("owner{}", Uuid::new_v4().simple()), at).await;
    let f = family(owner.id, at);
    store.create_family(&f).await.unwrap();
    f
}

fn rotate(
    f: &FamilyRecord,
    presented: TokenHash,
    successor: TokenHash,
    now: OffsetDateTime,
) -> RotateRequest {
    RotateRequest {
        family_id: f.id,
        presented,
        successor,
        now,
        successor_expires_at: now + Duration::hours(1),
        reuse_interval: Duration::seconds(10),
    }
}

fn key(kid: &str, at: OffsetDateTime) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "EdDSA".into(),
        private_der: vec![7u8; 48].into(),
        created_at: at,
        retired_at: None,
    }
}

pub async fn ping_answers(store: &S) {
    store.ping().await.unwrap();
}

pub async fn users_are_created_and_found_by_name_and_id(store: &S) {
    let mut u = user("Mary", base());
    u.email = None;
    u.roles = vec![];
    store.create_user(&u).await.unwrap();
    assert_eq!(
        store.find_user_by_username("mary").await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(store.find_user_by_id(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        store.find_user_by_username("Mary").await.unwrap(),
        None,
        "the key is exact"
    );
    assert_eq!(store.find_user_by_id(Uuid::now_v7()).await.unwrap(), None);
    saved_user(store, "bob", base()).await;
    assert_eq!(store.count_users().await.unwrap(), 2);
}

pub async fn a_taken_username_or_id_is_a_conflict(store: &S) {
    let first = saved_user(store, "mary", base()).await;
    let again = user("mary", base());
    assert!(matches!(
        store.create_user(&again).await,
        Err(StoreError::Conflict)
    ));
    let mut same_id = user("other", base());
    same_id.id = first.id;
    assert!(matches!(
        store.create_user(&same_id).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.count_users().await.unwrap(), 1);
}

pub async fn concurrent_registrations_of_one_name_create_one_user(store: &S) {
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_user(&user("race", base())).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => created += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.count_users().await.unwrap(), 1);
}

pub async fn user_updates_say_whether_the_user_exists(store: &S) {
    let u = saved_user(store, "mary", base()).await;
    let nobody = Uuid::now_v7();
    assert!(
        store
            .set_password_hash(u.id, "$argon2id$new")
            .await
            .unwrap()
    );
    assert!(!store.set_password_hash(nobody, "x").await.unwrap());
    let roles = vec!["admin".to_owned(), "reader".to_owned()];
    assert!(store.set_roles(u.id, &roles).await.unwrap());
    assert!(!store.set_roles(nobody, &roles).await.unwrap());
    assert!(store.set_disabled(u.id, true).await.unwrap());
    assert!(!store.set_disabled(nobody, true).await.unwrap());
    let read = store.find_user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(read.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(read.roles, roles);
    assert!(read.disabled);
    assert!(store.set_disabled(u.id, false).await.unwrap());
    assert!(!store.find_user_by_id(u.id).await.unwrap().unwrap().disabled);
}

pub async fn users_are_listed_by_page_in_id_order(store: &S) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(saved_user(store, &format!("user{i}"), base()).await.id);
    }
    ids.sort();
    let first = store.list_users(None, 2).await.unwrap();
    assert_eq!(first.iter().map(|u| u.id).collect::<Vec<_>>(), ids[..2]);
    let second = store.list_users(Some(ids[1]), 2).await.unwrap();
    assert_eq!(second.iter().map(|u| u.id).collect::<Vec<_>>(), ids[2..4]);
    let last = store.list_users(Some(ids[3]), 2).await.unwrap();
    assert_eq!(last.iter().map(|u| u.id).collect::<Vec<_>>(), ids[4..]);
    assert!(store.list_users(Some(ids[4]), 2).await.unwrap().is_empty());
}

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

pub async fn a_server_secret_is_stored_once_and_agreed_on(store: &S) {
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.server_secret("refresh", &[i; 32]).await.unwrap() })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        seen.insert(task.await.unwrap());
    }
    assert_eq!(seen.len(), 1, "concurrent first starts agree");
    let value = seen.into_iter().next().unwrap();
    assert_eq!(
        store.server_secret("refresh", &[99; 32]).await.unwrap(),
        value
    );
    assert_eq!(
        store.server_secret("other", &[5; 3]).await.unwrap(),
        vec![5; 3]
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
    assert_eq!(store.server_secret("s", &[0]).await.unwrap(), vec![1, 2, 3]);
    let listed = store.server_secrets().await.unwrap();
    assert_eq!((listed[0].name.as_str(), listed[0].created_at), ("s", now));
    let counts = store.counts(now).await.unwrap();
    assert_eq!(
        (
            counts.users,
            counts.families,
            counts.signing_keys,
            counts.server_secrets
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        store.counts(f.token_expires_at).await.unwrap().families,
        0,
        "live ones only"
    );
}

pub async fn copying_moves_everything_and_refuses_a_full_target(store: &S) {
    let now = base() - Duration::days(1); // copy() decides liveness by the real clock
    for i in 0..3 {
        let f = saved_family(store, now).await;
        store
            .rotate_refresh(&rotate(&f, h(1), h(2 + i), now))
            .await
            .unwrap();
    }
    saved_family(store, now - Duration::days(40)).await; // long expired: not copied
    store.add_signing_key(&key("k1", now)).await.unwrap();
    store
        .add_signing_key(&key("k2", now + Duration::seconds(1)))
        .await
        .unwrap();
    let secret = store.server_secret("refresh", &[3; 32]).await.unwrap();
    // Across backends when MongoDB is there: to MongoDB, then back to SQLite.
    let middle = match make_mongo().await {
        Some(m) => m,
        None => make_sqlite().await.unwrap(),
    };
    let report = copy(&**store, &*middle.store, false).await.unwrap();
    assert_eq!(
        (report.copied.users, report.copied.families),
        (4, 3),
        "live families only"
    );
    assert_eq!(
        (report.copied.signing_keys, report.copied.server_secrets),
        (2, 1)
    );
    let last = make_sqlite().await.unwrap();
    copy(&*middle.store, &*last.store, false).await.unwrap();
    let (from, to) = (store, &last.store);
    assert_eq!(
        from.list_users(None, 10).await.unwrap(),
        to.list_users(None, 10).await.unwrap()
    );
    assert_eq!(
        from.list_live_families(None, 10, now).await.unwrap(),
        to.list_live_families(None, 10, now).await.unwrap()
    );
    let kids = |keys: Vec<SigningKeyRecord>| {
        keys.into_iter()
            .map(|k| (k.kid, k.created_at, k.retired_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kids(from.signing_keys().await.unwrap()),
        kids(to.signing_keys().await.unwrap())
    );
    assert_eq!(to.server_secret("refresh", &[4; 32]).await.unwrap(), secret);
    let refused = copy(&**store, &*last.store, false).await;
    assert!(
        matches!(refused, Err(CopyError::TargetNotEmpty(_))),
        "{refused:?}"
    );
    let forced = copy(&**store, &*last.store, true).await.unwrap();
    assert_eq!(forced.target.users, 4, "overwritten, not duplicated");
}
