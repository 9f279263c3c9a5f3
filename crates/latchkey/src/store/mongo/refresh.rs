//! Refresh families in MongoDB: rotation is one conditional findOneAndUpdate where SQLite
//! has one conditional `UPDATE … RETURNING`.

use async_trait::async_trait;
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, date, family_doc, family_from};
use super::{MongoStore, collect, gt, id, of_user_except, run};
use crate::store::{FamilyRecord, RefreshStore, RotateRequest, StoreError};

#[async_trait]
impl RefreshStore for MongoStore {
    async fn create_family(&self, family: &FamilyRecord) -> Result<(), StoreError> {
        run(self.db()?.families.insert_one(family_doc(family))).await?;
        Ok(())
    }

    async fn rotate_if_current(
        &self,
        r: &RotateRequest,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        // One conditional findOneAndUpdate, so of two concurrent rotations with one token
        // exactly one matches.
        // An update pipeline, because the successor's expiry is capped by the family's end.
        let filter = doc! {
            "_id": id(r.family_id),
            "current_hash": bin(&r.presented.0),
            "token_expires_at": gt(r.now),
            "expires_at": gt(r.now),
        };
        let pipeline = vec![doc! { "$set": {
            "previous_hash": "$current_hash",
            "current_hash": bin(&r.successor.0),
            "generation": { "$add": ["$generation", 1] },
            "rotated_at": date(r.now),
            "token_expires_at": { "$min": [date(r.successor_expires_at), "$expires_at"] },
            "last_used_at": date(r.now),
        } }];
        let rotated = run(self
            .db()?
            .families
            .find_one_and_update(filter, pipeline)
            .return_document(ReturnDocument::After))
        .await?;
        rotated.as_ref().map(family_from).transpose()
    }

    async fn find_family(
        &self,
        family_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let filter = doc! { "_id": id(family_id), "expires_at": gt(now) };
        let found = run(self.db()?.families.find_one(filter)).await?;
        found.as_ref().map(family_from).transpose()
    }

    async fn delete_family(
        &self,
        family_id: Uuid,
        user_id: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let mut filter = doc! { "_id": id(family_id) };
        if let Some(user_id) = user_id {
            filter.insert("user_id", id(user_id));
        }
        let done = run(self.db()?.families.delete_one(filter)).await?;
        Ok(done.deleted_count > 0)
    }

    async fn delete_user_families(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let filter = of_user_except(user_id, except);
        Ok(run(self.db()?.families.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        let filter = doc! {
            "user_id": id(user_id),
            "expires_at": gt(now),
            "token_expires_at": gt(now),
        };
        let find = self
            .db()?
            .families
            .find(filter)
            .sort(doc! { "created_at": -1 });
        collect(find).await?.iter().map(family_from).collect()
    }

    async fn purge_expired_families(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let ended = doc! { "$lte": date(now) };
        let filter = doc! { "$or": [
            { "expires_at": ended.clone() },
            { "token_expires_at": ended },
        ] };
        Ok(run(self.db()?.families.delete_many(filter))
            .await?
            .deleted_count)
    }
}
