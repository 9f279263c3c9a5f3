//! Two Latchkey instances on one MongoDB database behave as one server.

use std::time::Duration;

use latchkey::auth::keys::rollover;
use latchkey::config::SigningAlg;
use latchkey::store::mongo::MongoStore;
use reqwest::StatusCode;
use time::OffsetDateTime;

use super::helpers::{Mongo, eventually, kid_of, spawn_app};
use crate::kit::{PASSWORD, assert_problem, login_from};

#[tokio::test]
async fn a_refresh_token_from_one_instance_is_rotated_and_guarded_by_the_other() {
    let Some(db) = Mongo::start() else { return };
    let a = spawn_app(&db.url, &[]).await;
    let b = spawn_app(&db.url, &[]).await;
    let t0 = a.signed_in("mary").await;
    assert_eq!(
        b.me(&t0.access_token).await.status(),
        StatusCode::OK,
        "one set of keys"
    );
    let t1 = login_from(b.refresh_with_cookie(&t0.refresh_token).await).await;
    let t2 = login_from(a.refresh_with_cookie(&t1.refresh_token).await).await;
    let again = login_from(b.refresh_with_cookie(&t1.refresh_token).await).await;
    assert_eq!(
        again.refresh_token, t2.refresh_token,
        "B re-issues what A rotated to"
    );
    let reused = b.refresh_with_cookie(&t0.refresh_token).await;
    assert_problem(reused, StatusCode::UNAUTHORIZED, "refresh_token_reused").await;
    let revoked = a.refresh_with_cookie(&t2.refresh_token).await;
    assert_problem(revoked, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    let taken = b.register("MARY", PASSWORD).await;
    assert_problem(taken, StatusCode::CONFLICT, "username_taken").await;
}

#[tokio::test]
async fn failed_logins_are_counted_across_instances() {
    let Some(db) = Mongo::start() else { return };
    let limit = [("LATCHKEY_LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")];
    let a = spawn_app(&db.url, &limit).await;
    let b = spawn_app(&db.url, &limit).await;
    assert_eq!(
        a.register("mary", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    for app in [&a, &b, &a] {
        let wrong = app.login("mary", "a wrong password, long enough").await;
        assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    let blocked = b.login("mary", PASSWORD).await;
    assert!(blocked.headers().contains_key("retry-after"));
    assert_problem(blocked, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn a_key_rotated_in_the_store_is_published_then_used_by_every_instance_on_time() {
    let Some(db) = Mongo::start() else { return };
    let fast = [
        ("LATCHKEY_KEY_RELOAD_INTERVAL", "1s"),
        ("LATCHKEY_KEY_PUBLISH_AHEAD", "4s"),
    ];
    let a = spawn_app(&db.url, &fast).await;
    let b = spawn_app(&db.url, &fast).await;
    let before = a.signed_in("mary").await;
    let old_kid = kid_of(&before.access_token);
    // `latchkey keys rotate`, through a store of its own.
    let store = MongoStore::open(&db.url).await.unwrap();
    let rotation = rollover::rotate(&store, SigningAlg::EdDSA, Duration::from_secs(4), false)
        .await
        .unwrap();
    let new_kid = rotation.kid.clone();
    let picked_up = eventually(Duration::from_secs(3), || async {
        let (ka, kb) = (a.published_kids().await, b.published_kids().await);
        [ka, kb]
            .iter()
            .all(|kids| kids.contains(&new_kid) && kids.contains(&old_kid))
    })
    .await;
    assert!(
        picked_up,
        "both publish the pending key (and still the old one) within 3 s"
    );
    let activates = rotation.activates_at;
    for app in [&a, &b] {
        let login = login_from(app.login("mary", PASSWORD).await).await;
        if OffsetDateTime::now_utc() < activates - time::Duration::milliseconds(200) {
            assert_eq!(kid_of(&login.access_token), old_kid, "not before its time");
        }
    }
    let wait = activates - OffsetDateTime::now_utc() + time::Duration::milliseconds(100);
    tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()).await;
    // Both switch at `activates_at`, decided from the key rows they hold.
    for app in [&a, &b] {
        let login = login_from(app.login("mary", PASSWORD).await).await;
        assert_eq!(
            kid_of(&login.access_token),
            new_kid,
            "new tokens carry the new kid"
        );
    }
    let after = login_from(b.login("mary", PASSWORD).await).await;
    assert_eq!(
        a.me(&after.access_token).await.status(),
        StatusCode::OK,
        "A verifies B's new token"
    );
    assert_eq!(
        b.me(&before.access_token).await.status(),
        StatusCode::OK,
        "old tokens stay valid"
    );
}
