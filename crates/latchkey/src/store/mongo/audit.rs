//! The audit trail in MongoDB: a change and its records in one multi-document transaction
//! (a replica set, or a server that supports transactions); on a standalone server, which has
//! none, the change is written first and its records right after it (never a record for a
//! change that did not happen, but a crash between the two loses the record). Records expire
//! with a TTL index on `expires_at`.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use mongodb::ClientSession;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{Error as MongoError, ErrorKind, TRANSIENT_TRANSACTION_ERROR};
use mongodb::options::ReturnDocument;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, date, family_doc, session_fields, user_doc};
use super::driver::map_err;
use super::{Inner, MongoStore, collect, id, of_user_except, run};
use crate::store::{AuditOutcome, AuditQuery, AuditRecord, AuditStore, AuditedChange, StoreError};

/// The bound on one audited transaction.
const TRANSACTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The server's answer to a transaction on a standalone server (IllegalOperation).
const ILLEGAL_OPERATION: i32 = 20;

/// A record as a document: the one conversion every write of a record uses.
pub(super) fn audit_doc(r: &AuditRecord) -> Document {
    let opt = |v: Option<&str>| v.map_or(Bson::Null, |s| Bson::String(s.to_owned()));
    doc! {
        "_id": r.id.to_string(),
        "at": date(r.at),
        "event": &r.event,
        "user_id": r.user_id.map_or(Bson::Null, id),
        "actor": &r.actor,
        "ip": opt(r.ip.as_deref()),
        "user_agent": opt(r.user_agent.as_deref()),
        "outcome": r.outcome.as_str(),
        "details": &r.details,
        "expires_at": date(r.expires_at),
        "webhook_due": r.webhook_due.map_or(Bson::Null, date),
        "webhook_attempts": i64::from(r.webhook_attempts),
    }
}

fn corrupt(field: &str) -> StoreError {
    StoreError::Corrupt(format!("audit `{field}` is missing or has the wrong type"))
}

fn opt_text(d: &Document, field: &str) -> Result<Option<String>, StoreError> {
    match d.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(corrupt(field)),
    }
}

fn text(d: &Document, field: &str) -> Result<String, StoreError> {
    opt_text(d, field)?.ok_or_else(|| corrupt(field))
}

fn opt_time(d: &Document, field: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    match d.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::DateTime(t)) => {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_millis()) * 1_000_000)
                .map(Some)
                .map_err(|_| corrupt(field))
        }
        Some(_) => Err(corrupt(field)),
    }
}

fn uuid_of(text: &str, field: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|_| corrupt(field))
}

/// Reads a record document.
pub(super) fn audit_from(d: &Document) -> Result<AuditRecord, StoreError> {
    let attempts = match d.get("webhook_attempts") {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        None | Some(Bson::Null) => 0,
        Some(_) => return Err(corrupt("webhook_attempts")),
    };
    Ok(AuditRecord {
        id: uuid_of(&text(d, "_id")?, "_id")?,
        at: opt_time(d, "at")?.ok_or_else(|| corrupt("at"))?,
        event: text(d, "event")?,
        user_id: opt_text(d, "user_id")?
            .map(|u| uuid_of(&u, "user_id"))
            .transpose()?,
        actor: text(d, "actor")?,
        ip: opt_text(d, "ip")?,
        user_agent: opt_text(d, "user_agent")?,
        outcome: AuditOutcome::parse(&text(d, "outcome")?)?,
        details: text(d, "details")?,
        expires_at: opt_time(d, "expires_at")?.ok_or_else(|| corrupt("expires_at"))?,
        webhook_due: opt_time(d, "webhook_due")?,
        webhook_attempts: u32::try_from(attempts).unwrap_or(0),
    })
}

/// Runs a driver action in `session` when there is one.
macro_rules! exec {
    ($action:expr, $session:expr) => {
        match $session.as_deref_mut() {
            Some(session) => $action.session(session).await,
            None => $action.await,
        }
    };
}

/// Deletes a user's families and sessions but the kept ones.
async fn delete_logins(
    db: &Inner,
    session: &mut Option<&mut ClientSession>,
    user_id: Uuid,
    keep_family: Option<Uuid>,
    keep_session: Option<Uuid>,
) -> Result<(), MongoError> {
    exec!(
        db.families
            .delete_many(of_user_except(user_id, keep_family)),
        session
    )?;
    exec!(
        db.sessions
            .delete_many(of_user_except(user_id, keep_session)),
        session
    )?;
    Ok(())
}

/// Applies one change (in `session` when there is one); returns how many documents it
/// touched (the decisive ones).
async fn apply(
    db: &Inner,
    session: &mut Option<&mut ClientSession>,
    change: AuditedChange<'_>,
) -> Result<u64, MongoError> {
    let update_user = |user_id: Uuid| doc! { "_id": id(user_id) };
    match change {
        AuditedChange::Nothing => Ok(0),
        AuditedChange::CreateUser(user) => {
            exec!(db.users.insert_one(user_doc(user)), session)?;
            Ok(1)
        }
        AuditedChange::CreateFamily(family) => {
            exec!(db.families.insert_one(family_doc(family)), session)?;
            Ok(1)
        }
        AuditedChange::CreateSession(s) => {
            let mut document = doc! { "_id": id(s.id) };
            document.extend(session_fields(s));
            exec!(db.sessions.insert_one(document), session)?;
            Ok(1)
        }
        AuditedChange::DeleteFamily {
            id: family,
            user_id,
        } => {
            let mut filter = doc! { "_id": id(family) };
            if let Some(user_id) = user_id {
                filter.insert("user_id", id(user_id));
            }
            Ok(exec!(db.families.delete_one(filter), session)?.deleted_count)
        }
        AuditedChange::DeleteSessionById { id: sid, user_id } => {
            let filter = doc! { "_id": id(sid), "user_id": id(user_id) };
            Ok(exec!(db.sessions.delete_one(filter), session)?.deleted_count)
        }
        AuditedChange::DeleteSession(hash) => {
            let filter = doc! { "token_hash": bin(&hash.0) };
            Ok(exec!(db.sessions.delete_one(filter), session)?.deleted_count)
        }
        AuditedChange::EndLogins {
            user_id,
            keep_family,
            keep_session,
        } => {
            let update = doc! { "$inc": { "generation": 1_i64 } };
            let done = exec!(db.users.update_one(update_user(user_id), update), session)?;
            if done.matched_count > 0 {
                delete_logins(db, session, user_id, keep_family, keep_session).await?;
            }
            Ok(done.matched_count)
        }
        AuditedChange::SetPassword {
            user_id,
            hash,
            keep_family,
            keep_session,
        } => {
            let update =
                doc! { "$set": { "password_hash": hash }, "$inc": { "generation": 1_i64 } };
            let done = exec!(db.users.update_one(update_user(user_id), update), session)?;
            if done.matched_count > 0 {
                delete_logins(db, session, user_id, keep_family, keep_session).await?;
            }
            Ok(done.matched_count)
        }
        AuditedChange::SetRoles { user_id, roles } => {
            let update = doc! { "$set": { "roles": roles } };
            let done = exec!(db.users.update_one(update_user(user_id), update), session)?;
            Ok(done.matched_count)
        }
        AuditedChange::SetDisabled { user_id, disabled } => {
            let update = doc! { "$set": { "disabled": disabled } };
            let done = exec!(db.users.update_one(update_user(user_id), update), session)?;
            if done.matched_count > 0 && disabled {
                delete_logins(db, session, user_id, None, None).await?;
            }
            Ok(done.matched_count)
        }
    }
}

/// The change and its records, in `session` when there is one.
async fn apply_with_records(
    db: &Inner,
    session: &mut Option<&mut ClientSession>,
    change: AuditedChange<'_>,
    records: &[AuditRecord],
) -> Result<u64, MongoError> {
    let touched = apply(db, session, change).await?;
    if (touched > 0 || change.records_always()) && !records.is_empty() {
        let documents: Vec<Document> = records.iter().map(audit_doc).collect();
        exec!(db.audit.insert_many(documents), session)?;
    }
    Ok(touched)
}

fn is_illegal_operation(error: &MongoError) -> bool {
    matches!(error.kind.as_ref(), ErrorKind::Command(e) if e.code == ILLEGAL_OPERATION)
        || error
            .to_string()
            .contains("Transaction numbers are only allowed")
}

async fn in_transaction(
    db: &Inner,
    change: AuditedChange<'_>,
    records: &[AuditRecord],
) -> Result<u64, MongoError> {
    let mut session = db.client.start_session().await?;
    session.start_transaction().await?;
    let touched = {
        let mut current = Some(&mut session);
        apply_with_records(db, &mut current, change, records).await
    };
    match touched {
        Ok(touched) => {
            session.commit_transaction().await?;
            Ok(touched)
        }
        Err(e) => {
            let _ = session.abort_transaction().await;
            Err(e)
        }
    }
}

#[async_trait]
impl AuditStore for MongoStore {
    async fn audited(
        &self,
        change: AuditedChange<'_>,
        records: &[AuditRecord],
    ) -> Result<u64, StoreError> {
        let db = self.db()?;
        // One document write is atomic by itself: no transaction needed.
        let single = records.is_empty() || (change.records_always() && records.len() == 1);
        if single || !db.transactions.load(Ordering::Relaxed) {
            return run(apply_with_records(db, &mut None, change, records)).await;
        }
        let attempts = async {
            let mut attempt = 0;
            loop {
                match in_transaction(db, change, records).await {
                    // A conflict with a concurrent transaction: the whole transaction again.
                    Err(e) if e.contains_label(TRANSIENT_TRANSACTION_ERROR) && attempt < 3 => {
                        attempt += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(10 * attempt)).await;
                    }
                    other => return other,
                }
            }
        };
        match tokio::time::timeout(TRANSACTION_TIMEOUT, attempts).await {
            Ok(Ok(touched)) => Ok(touched),
            Ok(Err(e)) if is_illegal_operation(&e) => {
                tracing::warn!(
                    "MongoDB refused a transaction (a standalone server): audit records are \
                     written right after their change; use a replica set to write them together"
                );
                db.transactions.store(false, Ordering::Relaxed);
                run(apply_with_records(db, &mut None, change, records)).await
            }
            Ok(Err(e)) => Err(map_err(e)),
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer within {} s",
                TRANSACTION_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut filter = Document::new();
        if let Some(user_id) = q.user_id {
            filter.insert("user_id", id(user_id));
        }
        if !q.events.is_empty() {
            filter.insert("event", doc! { "$in": &q.events });
        }
        let (cmp, order) = if q.newest_first {
            ("$lt", -1)
        } else {
            ("$gt", 1)
        };
        if let Some(after) = q.after {
            filter.insert("_id", doc! { cmp: id(after) });
        }
        let find = self
            .db()?
            .audit
            .find(filter)
            .sort(doc! { "_id": order })
            .limit(i64::from(q.limit));
        collect(find).await?.iter().map(audit_from).collect()
    }

    async fn claim_audit_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let db = self.db()?;
        let mut claimed = Vec::new();
        // One atomic findOneAndUpdate per record: two workers never claim the same one.
        for _ in 0..limit {
            let found = run(db
                .audit
                .find_one_and_update(
                    doc! { "webhook_due": { "$type": "date", "$lte": date(now) } },
                    doc! {
                        "$set": { "webhook_due": date(lease_until) },
                        "$inc": { "webhook_attempts": 1_i64 },
                    },
                )
                .sort(doc! { "_id": 1 })
                .return_document(ReturnDocument::After))
            .await?;
            match found {
                Some(document) => claimed.push(audit_from(&document)?),
                None => break,
            }
        }
        Ok(claimed)
    }

    async fn set_audit_delivery(
        &self,
        record: Uuid,
        due: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let update = doc! { "$set": { "webhook_due": due.map_or(Bson::Null, date) } };
        run(self
            .db()?
            .audit
            .update_one(doc! { "_id": id(record) }, update))
        .await?;
        Ok(())
    }

    async fn purge_expired_audit(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let filter = doc! { "expires_at": { "$lte": date(now) } };
        Ok(run(self.db()?.audit.delete_many(filter))
            .await?
            .deleted_count)
    }
}
