//! Conformance: the audit trail. A change and its records go in together or not at all; a
//! change that touched nothing writes no record; reads filter, page and order by id; the
//! webhook outbox is claimed once per lease; expired records are purged.

use time::Duration;
use uuid::Uuid;

use super::fixtures::*;
use crate::store::{AuditOutcome, AuditQuery, AuditRecord, AuditedChange, StoreError, TokenHash};

pub fn record(event: &str, user_id: Option<Uuid>, at: time::OffsetDateTime) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        at,
        event: event.to_owned(),
        user_id,
        actor: user_id.map_or_else(|| "client".to_owned(), |u| format!("user:{u}")),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("conformance".into()),
        outcome: AuditOutcome::Success,
        details: r#"{"reason":"test"}"#.into(),
        expires_at: at + Duration::days(90),
        webhook_due: None,
        webhook_attempts: 0,
    }
}

fn all(user_id: Option<Uuid>) -> AuditQuery {
    AuditQuery {
        user_id,
        events: Vec::new(),
        after: None,
        limit: 100,
        newest_first: false,
    }
}

pub async fn an_audited_change_and_its_records_are_written_together(store: &S) {
    let at = base();
    let u = user("audited", at);
    let r = record("user.registered", Some(u.id), at);
    assert_eq!(
        store
            .audited(AuditedChange::CreateUser(&u), std::slice::from_ref(&r))
            .await
            .unwrap(),
        1
    );
    assert!(store.find_user_by_id(u.id).await.unwrap().is_some());
    assert_eq!(store.list_audit(&all(Some(u.id))).await.unwrap(), vec![r]);

    // A failed change (a taken name) writes no record.
    let mut again = user("audited", at);
    again.id = Uuid::now_v7();
    let failed = record("user.registered", Some(again.id), at);
    assert!(matches!(
        store
            .audited(AuditedChange::CreateUser(&again), &[failed])
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(
        store
            .list_audit(&all(Some(again.id)))
            .await
            .unwrap()
            .is_empty()
    );

    // A change that touched nothing (unknown user, gone family) writes no record.
    let nobody = Uuid::now_v7();
    let roles = vec!["admin".to_owned()];
    let changes = [
        AuditedChange::SetRoles {
            user_id: nobody,
            roles: &roles,
        },
        AuditedChange::SetDisabled {
            user_id: nobody,
            disabled: true,
        },
        AuditedChange::EndLogins {
            user_id: nobody,
            keep_family: None,
            keep_session: None,
        },
        AuditedChange::SetPassword {
            user_id: nobody,
            hash: "x",
            keep_family: None,
            keep_session: None,
        },
        AuditedChange::DeleteFamily {
            id: Uuid::new_v4(),
            user_id: None,
        },
        AuditedChange::DeleteSessionById {
            id: Uuid::new_v4(),
            user_id: nobody,
        },
        AuditedChange::DeleteSession(TokenHash([9; 32])),
    ];
    for change in changes {
        let r = record("admin.roles_changed", Some(nobody), at);
        assert_eq!(store.audited(change, &[r]).await.unwrap(), 0, "{change:?}");
    }
    assert!(
        store
            .list_audit(&all(Some(nobody)))
            .await
            .unwrap()
            .is_empty()
    );

    // Nothing: the records alone.
    let alone = record("login", None, at);
    assert_eq!(
        store
            .audited(AuditedChange::Nothing, std::slice::from_ref(&alone))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.list_audit(&all(None)).await.unwrap().len(), 2);
}

pub async fn audited_account_changes_apply_in_full(store: &S) {
    let at = base();
    let u = saved_user(store, "changes", at).await;
    let keep = family(u.id, at);
    let other = family(u.id, at);
    store.create_family(&keep).await.unwrap();
    store.create_family(&other).await.unwrap();
    let s = session(u.id, 3, at);
    store.create_session(&s).await.unwrap();

    let change = AuditedChange::SetPassword {
        user_id: u.id,
        hash: "$argon2id$new",
        keep_family: Some(keep.id),
        keep_session: None,
    };
    let r = record("password.changed", Some(u.id), at);
    assert_eq!(store.audited(change, &[r]).await.unwrap(), 1);
    let after = store.find_user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(after.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(after.generation, 1);
    let left: Vec<Uuid> = store
        .list_families(u.id, at)
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(left, vec![keep.id]);
    assert!(store.list_sessions(u.id, at).await.unwrap().is_empty());

    let roles = vec!["admin".to_owned(), "x".to_owned()];
    let change = AuditedChange::SetRoles {
        user_id: u.id,
        roles: &roles,
    };
    store
        .audited(change, &[record("admin.roles_changed", Some(u.id), at)])
        .await
        .unwrap();
    let change = AuditedChange::SetDisabled {
        user_id: u.id,
        disabled: true,
    };
    store
        .audited(change, &[record("admin.user_disabled", Some(u.id), at)])
        .await
        .unwrap();
    let after = store.find_user_by_id(u.id).await.unwrap().unwrap();
    assert_eq!(after.roles, roles);
    assert!(after.disabled);
    assert!(store.list_families(u.id, at).await.unwrap().is_empty());

    let f = family(u.id, at);
    let change = AuditedChange::CreateFamily(&f);
    store
        .audited(change, &[record("login", Some(u.id), at)])
        .await
        .unwrap();
    let s2 = session(u.id, 4, at);
    store
        .audited(
            AuditedChange::CreateSession(&s2),
            &[record("login", Some(u.id), at)],
        )
        .await
        .unwrap();
    let change = AuditedChange::EndLogins {
        user_id: u.id,
        keep_family: None,
        keep_session: None,
    };
    assert_eq!(
        store
            .audited(change, &[record("logout.all", Some(u.id), at)])
            .await
            .unwrap(),
        1
    );
    assert!(store.list_families(u.id, at).await.unwrap().is_empty());
    assert!(store.list_sessions(u.id, at).await.unwrap().is_empty());
    assert_eq!(
        store
            .find_user_by_id(u.id)
            .await
            .unwrap()
            .unwrap()
            .generation,
        2
    );
    assert_eq!(store.list_audit(&all(Some(u.id))).await.unwrap().len(), 6);
}

pub async fn audit_records_are_filtered_and_paged_by_id(store: &S) {
    let at = base();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut written = Vec::new();
    for (i, (event, user)) in [("login", a), ("logout", a), ("login", b), ("login", a)]
        .into_iter()
        .enumerate()
    {
        let r = record(event, Some(user), at + Duration::seconds(i as i64));
        store
            .audited(AuditedChange::Nothing, std::slice::from_ref(&r))
            .await
            .unwrap();
        written.push(r);
    }
    let ids = |v: Vec<AuditRecord>| v.iter().map(|r| r.id).collect::<Vec<_>>();
    let mut q = all(Some(a));
    assert_eq!(
        ids(store.list_audit(&q).await.unwrap()),
        vec![written[0].id, written[1].id, written[3].id]
    );
    q.events = vec!["login".into()];
    q.newest_first = true;
    assert_eq!(
        ids(store.list_audit(&q).await.unwrap()),
        vec![written[3].id, written[0].id]
    );
    q.limit = 1;
    q.after = Some(written[3].id);
    assert_eq!(
        ids(store.list_audit(&q).await.unwrap()),
        vec![written[0].id]
    );
    let mut q = all(None);
    q.events = vec!["login".into(), "logout".into()];
    q.after = Some(written[1].id);
    assert_eq!(
        ids(store.list_audit(&q).await.unwrap()),
        vec![written[2].id, written[3].id]
    );
}

pub async fn webhook_deliveries_are_claimed_once_per_lease(store: &S) {
    let at = base();
    let mut due = record("login", None, at);
    due.webhook_due = Some(at);
    let mut later = record("logout", None, at);
    later.webhook_due = Some(at + Duration::minutes(5));
    let none = record("login", None, at);
    store
        .audited(AuditedChange::Nothing, &[due.clone(), later.clone(), none])
        .await
        .unwrap();
    let lease = at + Duration::minutes(1);
    let (first, second) = tokio::join!(
        store.claim_audit_deliveries(at, lease, 10),
        store.claim_audit_deliveries(at, lease, 10)
    );
    let mut claimed = first.unwrap();
    claimed.extend(second.unwrap());
    assert_eq!(claimed.len(), 1, "one claim only: {claimed:?}");
    assert_eq!(claimed[0].id, due.id);
    assert_eq!(claimed[0].webhook_attempts, 1);
    assert_eq!(claimed[0].webhook_due, Some(lease));
    // The lease runs out: claimed again (the worker died), with the later one now due.
    let claimed = store
        .claim_audit_deliveries(at + Duration::minutes(6), at + Duration::minutes(7), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![due.id, later.id]
    );
    assert_eq!(claimed[0].webhook_attempts, 2);
    store.set_audit_delivery(due.id, None).await.unwrap();
    store
        .set_audit_delivery(later.id, Some(at + Duration::hours(1)))
        .await
        .unwrap();
    let claimed = store
        .claim_audit_deliveries(at + Duration::minutes(30), at + Duration::hours(2), 10)
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{claimed:?}");
    let claimed = store
        .claim_audit_deliveries(at + Duration::hours(1), at + Duration::hours(2), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, later.id);
}

pub async fn expired_audit_records_are_purged(store: &S) {
    let at = base();
    let mut old = record("login", None, at);
    old.expires_at = at + Duration::minutes(1);
    let young = record("login", None, at);
    store
        .audited(AuditedChange::Nothing, &[old, young.clone()])
        .await
        .unwrap();
    assert_eq!(
        store
            .purge_expired_audit(at + Duration::minutes(2))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.list_audit(&all(None)).await.unwrap(), vec![young]);
}

pub async fn a_record_that_cannot_be_written_undoes_its_change(store: &S) {
    let at = base();
    let u = saved_user(store, "undone", at).await;
    let taken = record("login", Some(u.id), at);
    store
        .audited(AuditedChange::Nothing, std::slice::from_ref(&taken))
        .await
        .unwrap();
    // A record with a taken id fails inside the transaction: the change goes with it.
    let roles = vec!["admin".to_owned()];
    let change = AuditedChange::SetRoles {
        user_id: u.id,
        roles: &roles,
    };
    assert!(
        store
            .audited(change, std::slice::from_ref(&taken))
            .await
            .is_err()
    );
    assert_eq!(
        store.find_user_by_id(u.id).await.unwrap().unwrap().roles,
        u.roles,
        "the roles were set although their record was not written"
    );
    let f = family(u.id, at);
    assert!(
        store
            .audited(AuditedChange::CreateFamily(&f), &[taken])
            .await
            .is_err()
    );
    assert!(store.find_family(f.id, at).await.unwrap().is_none());
}
