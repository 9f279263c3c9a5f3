//! Failed-login counters in MongoDB: one upsert per hit.

use async_trait::async_trait;
use mongodb::bson::doc;
use time::OffsetDateTime;

use super::documents::{date, throttle_from};
use super::driver::upsert_returning;
use super::{MongoStore, gt, run};
use crate::store::{StoreError, ThrottleCount, ThrottleStore};

#[async_trait]
impl ThrottleStore for MongoStore {
    async fn throttle_hit(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError> {
        // Counts one failure: a closed (or missing) window restarts at 1, an open one counts
        // on. Both `$cond`s of the one `$set` stage read the document as it was before the update.
        let closed = doc! { "$not": [{ "$gt": ["$window_ends_at", date(now)] }] };
        let pipeline = vec![doc! { "$set": {
            "failures": { "$cond": [closed.clone(), 1, { "$add": ["$failures", 1] }] },
            "window_ends_at": { "$cond": [closed, date(now + window), "$window_ends_at"] },
        } }];
        let document =
            upsert_returning(&self.db()?.throttle, doc! { "_id": key }, pipeline).await?;
        throttle_from(&document)
    }

    async fn throttle_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ThrottleCount>, StoreError> {
        let filter = doc! { "_id": key, "window_ends_at": gt(now) };
        let found = run(self.db()?.throttle.find_one(filter)).await?;
        found.as_ref().map(throttle_from).transpose()
    }

    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        run(self.db()?.throttle.delete_one(doc! { "_id": key })).await?;
        Ok(())
    }

    async fn throttle_release(&self, key: &str) -> Result<(), StoreError> {
        let filter = doc! { "_id": key, "failures": { "$gt": 0 } };
        run(self
            .db()?
            .throttle
            .update_one(filter, doc! { "$inc": { "failures": -1 } }))
        .await?;
        Ok(())
    }

    async fn purge_expired_windows(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let filter = doc! { "window_ends_at": { "$lte": date(now) } };
        Ok(run(self.db()?.throttle.delete_many(filter))
            .await?
            .deleted_count)
    }
}
