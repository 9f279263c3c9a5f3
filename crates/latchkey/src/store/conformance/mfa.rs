//! Conformance: second factors — a TOTP step accepted once (also when two callers race), a
//! recovery code spent once, confirmation and deletion, and pending logins taken once.

use secrecy::{ExposeSecret, SecretSlice};
use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::store::{FactorRecord, KIND_RECOVERY_CODE, KIND_TOTP, MfaChallengeRecord};

fn factor(user_id: Uuid, kind: &str, secret: &[u8], at: time::OffsetDateTime) -> FactorRecord {
    FactorRecord {
        id: Uuid::now_v7(),
        user_id,
        kind: kind.to_owned(),
        secret: SecretSlice::from(secret.to_vec()),
        last_step: 0,
        confirmed_at: None,
        created_at: at,
        last_used_at: None,
    }
}

pub async fn a_totp_step_is_accepted_once_and_only_after_confirmation(store: &S) {
    let now = base();
    let owner = saved_user(store, &format!("mfa{}", Uuid::new_v4().simple()), now).await;
    let f = factor(owner.id, KIND_TOTP, b"sealed", now);
    store.add_factors(std::slice::from_ref(&f)).await.unwrap();
    assert!(
        !store.accept_factor_step(f.id, 10, now).await.unwrap(),
        "pending"
    );
    assert!(store.confirm_factor(owner.id, f.id, 10, now).await.unwrap());
    assert!(
        !store.confirm_factor(owner.id, f.id, 11, now).await.unwrap(),
        "once"
    );
    assert!(
        !store.accept_factor_step(f.id, 10, now).await.unwrap(),
        "replay"
    );
    let later = now + Duration::seconds(30);
    let (a, b) = tokio::join!(
        store.accept_factor_step(f.id, 11, later),
        store.accept_factor_step(f.id, 11, later)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one of two racing callers");
    assert!(
        !store.accept_factor_step(f.id, 9, later).await.unwrap(),
        "older"
    );
    let listed = store.list_factors(owner.id, Some(KIND_TOTP)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_step, 11);
    assert_eq!(listed[0].confirmed_at, Some(now));
    assert_eq!(listed[0].last_used_at, Some(later));
    assert_eq!(listed[0].secret.expose_secret(), b"sealed");
}

pub async fn a_recovery_code_is_spent_once_and_factors_are_deleted_by_kind(store: &S) {
    let now = base();
    let owner = saved_user(store, &format!("rc{}", Uuid::new_v4().simple()), now).await;
    let codes: Vec<_> = (1..=3u8)
        .map(|n| FactorRecord {
            confirmed_at: Some(now),
            ..factor(owner.id, KIND_RECOVERY_CODE, &[n; 32], now)
        })
        .collect();
    let pending = factor(owner.id, KIND_TOTP, b"pending", now);
    store.add_factors(&codes).await.unwrap();
    store
        .add_factors(std::slice::from_ref(&pending))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.use_factor_once(owner.id, KIND_RECOVERY_CODE, &[2; 32], now),
        store.use_factor_once(owner.id, KIND_RECOVERY_CODE, &[2; 32], now)
    );
    assert!(a.unwrap() ^ b.unwrap(), "a code is spent once");
    assert!(
        !store
            .use_factor_once(owner.id, KIND_RECOVERY_CODE, &[9; 32], now)
            .await
            .unwrap()
    );
    let other = Uuid::now_v7();
    assert!(
        !store
            .use_factor_once(other, KIND_RECOVERY_CODE, &[1; 32], now)
            .await
            .unwrap()
    );
    assert_eq!(
        store.delete_factors(owner.id, None, true).await.unwrap(),
        1,
        "the pending one"
    );
    assert_eq!(store.list_factors(owner.id, None).await.unwrap().len(), 3);
    assert_eq!(
        store
            .delete_factors(owner.id, Some(KIND_RECOVERY_CODE), false)
            .await
            .unwrap(),
        3
    );
    assert!(store.list_factors(owner.id, None).await.unwrap().is_empty());
}

pub async fn a_pending_second_factor_login_is_taken_once_and_never_after_it_expires(store: &S) {
    let now = base();
    let owner = saved_user(store, &format!("ch{}", Uuid::new_v4().simple()), now).await;
    let challenge = MfaChallengeRecord {
        token_hash: h(41),
        user_id: owner.id,
        endpoint: "token".into(),
        amr: vec!["pwd".into()],
        created_at: now,
        expires_at: now + Duration::minutes(5),
    };
    store.create_mfa_challenge(&challenge).await.unwrap();
    assert_eq!(
        store.find_mfa_challenge(h(41), now).await.unwrap(),
        Some(challenge.clone())
    );
    let (a, b) = tokio::join!(
        store.take_mfa_challenge(h(41), now),
        store.take_mfa_challenge(h(41), now)
    );
    assert!(a.unwrap().is_some() ^ b.unwrap().is_some(), "taken once");
    let expiring = MfaChallengeRecord {
        token_hash: h(42),
        ..challenge
    };
    store.create_mfa_challenge(&expiring).await.unwrap();
    let late = now + Duration::minutes(5);
    assert_eq!(store.find_mfa_challenge(h(42), late).await.unwrap(), None);
    assert_eq!(store.take_mfa_challenge(h(42), late).await.unwrap(), None);
    assert!(store.purge_expired_mfa_challenges(late).await.unwrap() <= 1);
}
