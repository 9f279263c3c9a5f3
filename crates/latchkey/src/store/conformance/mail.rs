//! Conformance: email tokens (issued with their message, used once, the newest of a purpose
//! only), the reset's one step (password, token, logins), and the outbox's claims and leases.

use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::store::{EmailPurpose, EmailTokenRecord, OutboxMessage, TokenHash, UserRecord};

fn token(
    user: &UserRecord,
    hash: TokenHash,
    purpose: EmailPurpose,
    at: time::OffsetDateTime,
) -> EmailTokenRecord {
    EmailTokenRecord {
        hash,
        purpose,
        user_id: user.id,
        email: user.email.clone().unwrap(),
        created_at: at,
        expires_at: at + Duration::minutes(30),
    }
}

fn message(to: &str, at: time::OffsetDateTime) -> OutboxMessage {
    OutboxMessage::new(
        to.to_owned(),
        "Subject".into(),
        "text with a link".into(),
        "<p>html</p>".into(),
        at,
        at + Duration::minutes(30),
    )
}

pub async fn an_email_token_is_stored_with_its_message_and_only_the_newest_lives(store: &S) {
    let now = base();
    let alice = saved_user(store, "alice", now).await;
    let first = token(&alice, h(1), EmailPurpose::Reset, now);
    store
        .issue_email_token(&first, &message("alice@example.com", now))
        .await
        .unwrap();
    assert_eq!(
        store
            .find_email_token(h(1), EmailPurpose::Reset, now)
            .await
            .unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.count_mail().await.unwrap(), 1);
    // Another purpose does not find it; after its expiry nothing does.
    assert_eq!(
        store
            .find_email_token(h(1), EmailPurpose::Verify, now)
            .await
            .unwrap(),
        None
    );
    let later = now + Duration::minutes(30);
    assert_eq!(
        store
            .find_email_token(h(1), EmailPurpose::Reset, later)
            .await
            .unwrap(),
        None
    );
    // A newer token of the purpose replaces it; one of another purpose does not.
    let verify = token(&alice, h(3), EmailPurpose::Verify, now);
    store
        .issue_email_token(&verify, &message("alice@example.com", now))
        .await
        .unwrap();
    let second = token(&alice, h(2), EmailPurpose::Reset, now);
    store
        .issue_email_token(&second, &message("alice@example.com", now))
        .await
        .unwrap();
    let find = |hash, purpose| store.find_email_token(hash, purpose, now);
    assert_eq!(find(h(1), EmailPurpose::Reset).await.unwrap(), None);
    assert!(find(h(2), EmailPurpose::Reset).await.unwrap().is_some());
    assert!(find(h(3), EmailPurpose::Verify).await.unwrap().is_some());
    assert_eq!(store.count_mail().await.unwrap(), 3);
}

pub async fn a_verification_token_verifies_once_and_only_the_address_it_was_sent_to(store: &S) {
    let now = base();
    let alice = saved_user(store, "alice", now).await;
    let mut shouted = token(&alice, h(1), EmailPurpose::Verify, now);
    shouted.email = "ALICE@Example.com".into(); // the same address, other case
    store
        .issue_email_token(&shouted, &message("alice@example.com", now))
        .await
        .unwrap();
    // An unknown token verifies nothing.
    assert_eq!(
        store.verify_email_with_token(h(9), now).await.unwrap(),
        None
    );
    assert_eq!(
        store.verify_email_with_token(h(1), now).await.unwrap(),
        Some(alice.id)
    );
    let read = store.find_user_by_id(alice.id).await.unwrap().unwrap();
    assert!(read.email_verified);
    assert_eq!(
        store.verify_email_with_token(h(1), now).await.unwrap(),
        None
    );

    // Expired: refused (and gone).
    let bob = saved_user(store, "bob", now).await;
    store
        .issue_email_token(
            &token(&bob, h(2), EmailPurpose::Verify, now),
            &message("b@x", now),
        )
        .await
        .unwrap();
    let late = now + Duration::minutes(30);
    assert_eq!(
        store.verify_email_with_token(h(2), late).await.unwrap(),
        None
    );
    // Sent to an address the user no longer has: refused.
    let mut elsewhere = token(&bob, h(3), EmailPurpose::Verify, now);
    elsewhere.email = "old-bob@example.com".into();
    store
        .issue_email_token(&elsewhere, &message("b@x", now))
        .await
        .unwrap();
    assert_eq!(
        store.verify_email_with_token(h(3), now).await.unwrap(),
        None
    );
    let bob = store.find_user_by_id(bob.id).await.unwrap().unwrap();
    assert!(!bob.email_verified);

    assert!(store.set_email_verified(bob.id, true).await.unwrap());
    assert!(
        store
            .find_user_by_id(bob.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    assert!(
        !store
            .set_email_verified(Uuid::now_v7(), true)
            .await
            .unwrap()
    );
}

pub async fn a_reset_sets_the_password_and_ends_every_login_in_one_step_once(store: &S) {
    let now = base();
    let alice = saved_user(store, "alice", now).await;
    let alices = family(alice.id, now);
    store.create_family(&alices).await.unwrap();
    store
        .create_session(&session(alice.id, 7, now))
        .await
        .unwrap();
    let bob = saved_user(store, "bob", now).await;
    let bobs = family(bob.id, now);
    store.create_family(&bobs).await.unwrap();
    store
        .issue_email_token(
            &token(&alice, h(1), EmailPurpose::Reset, now),
            &message("a@x", now),
        )
        .await
        .unwrap();

    // Expired, unknown or of another purpose: nothing changes.
    let late = now + Duration::minutes(30);
    for (hash, at) in [(h(1), late), (h(2), now)] {
        assert_eq!(
            store
                .reset_password_with_token(hash, "$new", at)
                .await
                .unwrap(),
            None
        );
    }
    let unchanged = store.find_user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(unchanged.password_hash, alice.password_hash);
    assert_eq!(store.list_families(alice.id, now).await.unwrap().len(), 1);

    assert_eq!(
        store
            .reset_password_with_token(h(1), "$new", now)
            .await
            .unwrap(),
        Some(alice.id)
    );
    let after = store.find_user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(after.password_hash.as_deref(), Some("$new"));
    assert_eq!(after.generation, alice.generation + 1);
    assert!(store.list_families(alice.id, now).await.unwrap().is_empty());
    assert!(store.list_sessions(alice.id, now).await.unwrap().is_empty());
    assert_eq!(store.list_families(bob.id, now).await.unwrap().len(), 1);
    // Used: a second time changes nothing.
    assert_eq!(
        store
            .reset_password_with_token(h(1), "$other", now)
            .await
            .unwrap(),
        None
    );
    let again = store.find_user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(again.password_hash.as_deref(), Some("$new"));
}

pub async fn concurrent_uses_of_one_email_token_succeed_once(store: &S) {
    let now = base();
    let alice = saved_user(store, "alice", now).await;
    store
        .issue_email_token(
            &token(&alice, h(1), EmailPurpose::Reset, now),
            &message("a@x", now),
        )
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .reset_password_with_token(h(1), &format!("$hash{i}"), now)
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        // A loser may see the token gone, or (SQLite) a busy database: never a second success.
        if let Ok(Some(_)) = task.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

pub async fn claimed_mail_is_hidden_until_its_lease_ends_then_retried_or_deleted(store: &S) {
    let now = base();
    let first = message("a@example.com", now);
    let second = message("b@example.com", now + Duration::seconds(1));
    store.enqueue_mail(&first).await.unwrap();
    store.enqueue_mail(&second).await.unwrap();
    // Not yet due: the second is claimed only from its time on.
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let lease = now + Duration::minutes(10);
    let claimed = store.claim_mail(now, a, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, first.id);
    assert_eq!(claimed[0].claim_id, Some(a));
    assert_eq!(claimed[0].text, first.text);
    // Leased: another claim does not see it.
    let later = now + Duration::seconds(2);
    let other = store
        .claim_mail(later, b, later + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(other.iter().map(|m| m.id).collect::<Vec<_>>(), [second.id]);
    // Put back by its claim only, due later.
    assert!(!store.retry_mail(first.id, b, 1, later).await.unwrap());
    let retry_at = now + Duration::minutes(1);
    assert!(store.retry_mail(first.id, a, 1, retry_at).await.unwrap());
    assert!(
        store
            .claim_mail(later, b, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_mail(retry_at, b, retry_at + Duration::minutes(10), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    // A lease that ran out (an instance that stopped): claimed again.
    let expired = store
        .claim_mail(
            lease + Duration::minutes(1),
            a,
            lease + Duration::minutes(20),
            10,
        )
        .await
        .unwrap();
    assert!(expired.iter().any(|m| m.id == second.id));
    assert!(store.delete_mail(first.id).await.unwrap());
    assert!(!store.delete_mail(first.id).await.unwrap());
    assert_eq!(store.count_mail().await.unwrap(), 1);
}

pub async fn concurrent_claims_never_take_one_message_twice(store: &S) {
    let now = base();
    for i in 0..12 {
        store
            .enqueue_mail(&message(&format!("u{i}@example.com"), now))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_mail(now, Uuid::new_v4(), now + Duration::minutes(5), 5)
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        if let Ok(claimed) = task.await.unwrap() {
            ids.extend(claimed.into_iter().map(|m| m.id));
        }
    }
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "a message was claimed twice");
}

pub async fn expired_email_tokens_and_unsent_mail_are_purged(store: &S) {
    let now = base();
    let alice = saved_user(store, "alice", now).await;
    store
        .issue_email_token(
            &token(&alice, h(1), EmailPurpose::Verify, now),
            &message("a@x", now),
        )
        .await
        .unwrap();
    assert_eq!(store.purge_expired_mail(now).await.unwrap(), 0);
    let late = now + Duration::minutes(30);
    assert_eq!(store.purge_expired_mail(late).await.unwrap(), 2);
    assert_eq!(store.count_mail().await.unwrap(), 0);
}
