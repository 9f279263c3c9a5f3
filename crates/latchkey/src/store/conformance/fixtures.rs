//! Records and requests the conformance cases build on.
//! Times are a day ahead of the clock, so a TTL monitor (which uses the real clock) never
//! deletes a record a test still reads: expiry is always decided by the `now` a test passes.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::store::{
    FamilyRecord, RotateRequest, SessionRecord, SigningKeyRecord, Store, TokenHash, UserRecord,
};

/// The store under test.
pub type S = Arc<dyn Store>;

/// "Now" for the tests: a day ahead, at the stores' millisecond precision.
pub fn base() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc() + Duration::days(1);
    t.replace_millisecond(t.millisecond()).unwrap()
}

pub fn user(name: &str, at: OffsetDateTime) -> UserRecord {
    UserRecord {
        id: Uuid::now_v7(),
        username: name.to_owned(),
        username_key: name.to_lowercase(),
        email: Some(format!("{name}@example.com")),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        roles: vec!["reader".into()],
        disabled: false,
        email_verified: false,
        generation: 0,
        created_at: at,
    }
}

pub async fn saved_user(store: &S, name: &str, at: OffsetDateTime) -> UserRecord {
    let u = user(name, at);
    store.create_user(&u).await.unwrap();
    u
}

pub fn h(n: u8) -> TokenHash {
    TokenHash([n; 32])
}

pub fn family(user_id: Uuid, at: OffsetDateTime) -> FamilyRecord {
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
        amr: vec!["pwd".into(), "otp".into(), "mfa".into()],
    }
}

pub async fn saved_family(store: &S, at: OffsetDateTime) -> FamilyRecord {
    let owner = saved_user(store, &format!("owner{}", Uuid::new_v4().simple()), at).await;
    let f = family(owner.id, at);
    store.create_family(&f).await.unwrap();
    f
}

pub fn rotate(
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

pub fn key(kid: &str, at: OffsetDateTime) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "EdDSA".into(),
        private_der: vec![7u8; 48].into(),
        created_at: at,
        activates_at: at,
        retired_at: None,
        revoked_at: None,
    }
}

pub fn session(user_id: Uuid, token: u8, at: OffsetDateTime) -> SessionRecord {
    SessionRecord {
        id: Uuid::new_v4(),
        token_hash: h(token),
        user_id,
        data: serde_json::json!({ "theme": "dark" }),
        csrf_token: format!("csrf-{token}"),
        created_at: at,
        last_used_at: at,
        idle_expires_at: at + Duration::minutes(30),
        absolute_expires_at: at + Duration::hours(2),
        user_agent: None,
        ip: Some("198.51.100.2".into()),
        amr: vec!["pwd".into()],
    }
}
