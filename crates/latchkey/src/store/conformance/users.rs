//! Conformance: users, their uniqueness (also under a race), updates and paging.

use uuid::Uuid;

use super::fixtures::*;
use crate::store::StoreError;

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
