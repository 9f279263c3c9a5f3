//! Server-side sessions in MongoDB: one document per session, `_id` its public id, the cookie's
//! secret only as a SHA-256 (unique index), the application's data as JSON text (see
//! `documents.rs`).

use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, date, session_fields, session_from};
use super::{MongoStore, collect, gt, id, of_user_except, run};
use crate::store::{SessionRecord, SessionStore, StoreError, TokenHash};

pub(super) fn live(now: OffsetDateTime) -> Document {
    doc! { "idle_expires_at": gt(now), "absolute_expires_at": gt(now) }
}

#[async_trait]
impl SessionStore for MongoStore {
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let mut document = doc! { "_id": id(session.id) };
        document.extend(session_fields(session));
        run(self.db()?.sessions.insert_one(document)).await?;
        Ok(())
    }

    async fn use_session(
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

    async fn set_session_data(
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

    async fn delete_session(&self, token_hash: TokenHash) -> Result<bool, StoreError> {
        let filter = doc! { "token_hash": bin(&token_hash.0) };
        Ok(run(self.db()?.sessions.delete_one(filter))
            .await?
            .deleted_count
            > 0)
    }

    async fn delete_session_by_id(
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

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let filter = of_user_except(user_id, except);
        Ok(run(self.db()?.sessions.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn list_sessions(
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

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let ended = doc! { "$lte": date(now) };
        let filter = doc! { "$or": [
            { "idle_expires_at": ended.clone() },
            { "absolute_expires_at": ended },
        ] };
        Ok(run(self.db()?.sessions.delete_many(filter))
            .await?
            .deleted_count)
    }
}
