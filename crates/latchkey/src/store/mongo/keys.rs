//! Signing keys and server secrets in MongoDB.

use async_trait::async_trait;
use mongodb::bson::{Bson, doc};
use time::OffsetDateTime;

use super::documents::{bin, date, key_fields, key_from, secret_value};
use super::driver::upsert_returning;
use super::{MongoStore, collect, run};
use crate::store::{KeyStore, SigningKeyRecord, StoreError};

#[async_trait]
impl KeyStore for MongoStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let find = self
            .db()?
            .keys
            .find(doc! {})
            .sort(doc! { "created_at": 1, "_id": 1 });
        let mut keys = collect(find)
            .await?
            .iter()
            .map(key_from)
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
        Ok(keys)
    }

    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        // Without a transaction (a standalone server has none): insert first, then set
        // `retired_at` on the keys that activate earlier. In between, readers derive the same
        // states anyway: they follow `activates_at`, not `retired_at`.
        let db = self.db()?;
        let mut document = doc! { "_id": &key.kid };
        document.extend(key_fields(key));
        document.insert("retired_at", Bson::Null);
        document.insert("revoked_at", Bson::Null);
        run(db.keys.insert_one(document)).await?;
        let activates = date(key.activates_at);
        let older = doc! {
            "retired_at": Bson::Null,
            "_id": { "$ne": &key.kid },
            "$or": [
                { "activates_at": { "$lt": activates.clone() } },
                { "activates_at": { "$exists": false } },
            ],
        };
        run(db
            .keys
            .update_many(older, doc! { "$set": { "retired_at": activates } }))
        .await?;
        Ok(())
    }

    async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError> {
        let db = self.db()?;
        let at = date(at);
        let live = doc! { "_id": { "$ne": keep }, "revoked_at": Bson::Null };
        let mut later = live.clone();
        later.insert(
            "$or",
            vec![
                doc! { "retired_at": Bson::Null },
                doc! { "retired_at": { "$gt": at.clone() } },
            ],
        );
        run(db
            .keys
            .update_many(later, doc! { "$set": { "retired_at": at.clone() } }))
        .await?;
        let done = run(db
            .keys
            .update_many(live, doc! { "$set": { "revoked_at": at } }))
        .await?;
        Ok(done.modified_count)
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StoreError> {
        // `$setOnInsert`: the first value stored wins.
        let update = doc! { "$setOnInsert": {
            "value": bin(candidate),
            "created_at": date(now),
        } };
        let document = upsert_returning(&self.db()?.secrets, doc! { "_id": name }, update).await?;
        secret_value(&document)
    }
}
