//! Server-side sessions in MongoDB: one document per session, `_id` its public id, the cookie's
//! secret only as a SHA-256 (unique index), the application's data as JSON text (any JSON
//! object round-trips exactly, whatever its keys or numbers).

use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, date};
use super::{MongoStore, collect, gt, id, run};
use crate::store::{SessionRecord, StoreError, TokenHash};

fn corrupt(field: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "session `{field}` is missing or has the wrong type"
    ))
}

/// A session's fields, `_id` apart.
pub(super) fn session_fields(s: &SessionRecord) -> Document {
    let opt = |v: &Option<String>| v.clone().map_or(Bson::Null, Bson::String);
    doc! {
        "token_hash": bin(&s.token_hash.0),
        "user_id": id(s.user_id),
        "data": s.data.to_string(),
        "csrf_token": &s.csrf_token,
        "created_at": date(s.created_at),
        "last_used_at": date(s.last_used_at),
        "idle_expires_at": date(s.idle_expires_at),
        "absolute_expires_at": date(s.absolute_expires_at),
        "user_agent": opt(&s.user_agent),
        "ip": opt(&s.ip),
    }
}

/// Reads a session document (the common fields through the family reader's helpers).
pub(super) fn session_from(d: &Document) -> Result<SessionRecord, StoreError> {
    let text = |field: &str| match d.get(field) {
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        None | Some(Bson::Null) => Ok(None),
        Some(_) => Err(corrupt(field)),
    };
    let time = |field: &str| match d.get(field) {
        Some(Bson::DateTime(t)) => {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_millis()) * 1_000_000)
                .map_err(|_| corrupt(field))
        }
        _ => Err(corrupt(field)),
    };
    let uuid = |field: &str| {
        text(field)?
            .and_then(|t| Uuid::parse_str(&t).ok())
            .ok_or_else(|| corrupt(field))
    };
    let token_hash = match d.get("token_hash") {
        Some(Bson::Binary(b)) => <[u8; 32]>::try_from(b.bytes.as_slice())
            .map(TokenHash)
            .map_err(|_| corrupt("token_hash"))?,
        _ => return Err(corrupt("token_hash")),
    };
    let data = match text("data")? {
        Some(json) => serde_json::from_str(&json).map_err(|_| corrupt("data"))?,
        None => serde_json::json!({}),
    };
    Ok(SessionRecord {
        id: uuid("_id")?,
        token_hash,
        user_id: uuid("user_id")?,
        data,
        csrf_token: text("csrf_token")?.ok_or_else(|| corrupt("csrf_token"))?,
        created_at: time("created_at")?,
        last_used_at: time("last_used_at")?,
        idle_expires_at: time("idle_expires_at")?,
        absolute_expires_at: time("absolute_expires_at")?,
        user_agent: text("user_agent")?,
        ip: text("ip")?,
    })
}

fn live(now: OffsetDateTime) -> Document {
    doc! { "idle_expires_at": gt(now), "absolute_expires_at": gt(now) }
}

impl MongoStore {
    pub(super) async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let mut document = doc! { "_id": id(session.id) };
        document.extend(session_fields(session));
        run(self.db()?.sessions.insert_one(document)).await?;
        Ok(())
    }

    pub(super) async fn touch_session(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut filter = live(now);
        filter.insert("token_hash", bin(&token_hash.0));
        // A pipeline, so the new idle end is capped by the absolute end in the same step.
        let pipeline = vec![doc! { "$set": {
            "last_used_at": date(now),
            "idle_expires_at": { "$min": [date(idle_expires_at), "$absolute_expires_at"] },
        } }];
        let found = run(self
            .db()?
            .sessions
            .find_one_and_update(filter, pipeline)
            .return_document(ReturnDocument::After))
        .await?;
        found.as_ref().map(session_from).transpose()
    }

    pub(super) async fn update_session_data(
        &self,
        token_hash: TokenHash,
        data: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let update = doc! { "$set": { "data": data.to_string() } };
        let done = run(self
            .db()?
            .sessions
            .update_one(doc! { "token_hash": bin(&token_hash.0) }, update))
        .await?;
        Ok(done.matched_count == 1)
    }

    pub(super) async fn remove_session(&self, token_hash: TokenHash) -> Result<bool, StoreError> {
        let filter = doc! { "token_hash": bin(&token_hash.0) };
        Ok(run(self.db()?.sessions.delete_one(filter))
            .await?
            .deleted_count
            > 0)
    }

    pub(super) async fn remove_session_by_id(
        &self,
        session_id: Uuid,
        user_id: Uuid,
    ) -> Result<bool, StoreError> {
        let filter = doc! { "_id": id(session_id), "user_id": id(user_id) };
        Ok(run(self.db()?.sessions.delete_one(filter))
            .await?
            .deleted_count
            > 0)
    }

    pub(super) async fn remove_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let mut filter = doc! { "user_id": id(user_id) };
        if let Some(except) = except {
            filter.insert("_id", doc! { "$ne": id(except) });
        }
        Ok(run(self.db()?.sessions.delete_many(filter))
            .await?
            .deleted_count)
    }

    pub(super) async fn user_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut filter = live(now);
        filter.insert("user_id", id(user_id));
        let find = self
            .db()?
            .sessions
            .find(filter)
            .sort(doc! { "created_at": -1 });
        collect(find).await?.iter().map(session_from).collect()
    }

    pub(super) async fn purge_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let ended = doc! { "$lte": date(now) };
        let filter = doc! { "$or": [
            { "idle_expires_at": ended.clone() },
            { "absolute_expires_at": ended },
        ] };
        Ok(run(self.db()?.sessions.delete_many(filter))
            .await?
            .deleted_count)
    }

    pub(super) async fn live_sessions_page(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut filter = live(now);
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": id(after) });
        }
        let find = self
            .db()?
            .sessions
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit));
        collect(find).await?.iter().map(session_from).collect()
    }

    pub(super) async fn write_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let update = doc! { "$set": session_fields(session) };
        run(self
            .db()?
            .sessions
            .update_one(doc! { "_id": id(session.id) }, update)
            .upsert(true))
        .await?;
        Ok(())
    }

    pub(super) async fn count_live_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        run(self.db()?.sessions.count_documents(live(now))).await
    }
}
