//! Bulk reads and verbatim writes of the MongoDB backend, for `latchkey store copy`. Writes
//! are `$set` upserts, so fields this version does not know survive an overwrite.

use mongodb::bson::{Document, doc};
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{
    bin, date, family_fields, family_from, key_fields, secret_from, user_fields,
};
use super::{MongoStore, collect, gt, id, run};
use crate::store::{
    FamilyRecord, SecretRecord, SigningKeyRecord, StoreCounts, StoreError, UserRecord,
};

impl MongoStore {
    pub(super) async fn counts_at(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError> {
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

    pub(super) async fn live_families_page(
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

    pub(super) async fn all_server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let find = self.db()?.secrets.find(doc! {}).sort(doc! { "_id": 1 });
        collect(find).await?.iter().map(secret_from).collect()
    }

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

    pub(super) async fn write_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        Self::upsert(&self.db()?.users, id(user.id), user_fields(user)).await
    }

    pub(super) async fn write_family(&self, family: &FamilyRecord) -> Result<(), StoreError> {
        Self::upsert(&self.db()?.families, id(family.id), family_fields(family)).await
    }

    pub(super) async fn write_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        Self::upsert(&self.db()?.keys, key.kid.as_str(), key_fields(key)).await
    }

    pub(super) async fn write_server_secret(
        &self,
        secret: &SecretRecord,
    ) -> Result<(), StoreError> {
        let fields = doc! {
            "value": bin(secret.value.expose_secret()),
            "created_at": date(secret.created_at),
        };
        Self::upsert(&self.db()?.secrets, secret.name.as_str(), fields).await
    }
}
