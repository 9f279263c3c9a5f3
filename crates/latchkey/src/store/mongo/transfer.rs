//! Bulk reads and verbatim writes of the MongoDB backend, for `latchkey store copy`. Writes
//! are `$set` upserts, so fields this version does not know survive an overwrite.

use async_trait::async_trait;
use mongodb::bson::{Bson, Document, doc};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{
    bin, date, family_fields, family_from, key_fields, secret_from, user_fields,
};
use super::documents::{count, session_fields, session_from};
use super::sessions::live;
use super::{MongoStore, collect, gt, id, run};
use crate::store::{
    FamilyRecord, SecretRecord, SessionRecord, SigningKeyRecord, StoreCounts, StoreError,
    TransferStore, UserRecord,
};

async fn upsert(
    collection: &mongodb::Collection<Document>,
    id: impl Into<mongodb::bson::Bson>,
    fields: Document,
) -> Result<(), StoreError> {
    run(collection
        .update_one(doc! { "_id": id.into() }, doc! { "$set": fields })
        .upsert(true))
    .await?;
    Ok(())
}

impl MongoStore {
    async fn count_identities(&self) -> Result<u64, StoreError> {
        let pipeline = [
            doc! { "$match": { "identities.0": { "$exists": true } } },
            doc! { "$group": { "_id": Bson::Null, "n": { "$sum": { "$size": "$identities" } } } },
        ];
        let mut cursor = run(self.db()?.users.aggregate(pipeline)).await?;
        if !run(cursor.advance()).await? {
            return Ok(0);
        }
        let group = cursor
            .deserialize_current()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        count(&group, "n")
    }

    async fn count_live_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        run(self.db()?.sessions.count_documents(live(now))).await
    }
}

#[async_trait]
impl TransferStore for MongoStore {
    async fn counts(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError> {
        let db = self.db()?;
        let live = doc! { "expires_at": gt(now), "token_expires_at": gt(now) };
        Ok(StoreCounts {
            users: run(db.users.count_documents(doc! {})).await?,
            families: run(db.families.count_documents(live)).await?,
            sessions: self.count_live_sessions(now).await?,
            identities: self.count_identities().await?,
            signing_keys: run(db.keys.count_documents(doc! {})).await?,
            server_secrets: run(db.secrets.count_documents(doc! {})).await?,
        })
    }

    async fn list_live_families(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        let mut filter = doc! { "expires_at": gt(now), "token_expires_at": gt(now) };
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": id(after) });
        }
        let find = self
            .db()?
            .families
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit));
        collect(find).await?.iter().map(family_from).collect()
    }

    async fn list_live_sessions(
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

    async fn server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let find = self.db()?.secrets.find(doc! {}).sort(doc! { "_id": 1 });
        collect(find).await?.iter().map(secret_from).collect()
    }

    async fn import_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        upsert(&self.db()?.users, id(user.id), user_fields(user)).await
    }

    async fn import_family(&self, family: &FamilyRecord) -> Result<(), StoreError> {
        upsert(&self.db()?.families, id(family.id), family_fields(family)).await
    }

    async fn import_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let update = doc! { "$set": session_fields(session) };
        run(self
            .db()?
            .sessions
            .update_one(doc! { "_id": id(session.id) }, update)
            .upsert(true))
        .await?;
        Ok(())
    }

    async fn import_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        upsert(&self.db()?.keys, key.kid.as_str(), key_fields(key)).await
    }

    async fn import_server_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        let fields = doc! {
            "value": bin(secret.value.expose_secret()),
            "created_at": date(secret.created_at),
        };
        upsert(&self.db()?.secrets, secret.name.as_str(), fields).await
    }
}
