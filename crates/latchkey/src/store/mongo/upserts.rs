//! The operations that create their document on first use, each one atomic upsert: server
//! secrets (the first value stored wins) and failed-login counters.

use mongodb::Collection;
use mongodb::bson::{Document, doc};
use mongodb::options::{ReturnDocument, UpdateModifications};
use time::OffsetDateTime;

use super::documents::{bin, date, secret_value, throttle_from};
use super::{MongoStore, run};
use crate::store::{StoreError, ThrottleCount};

/// An upsert returning the document after it, which may race another one inserting the same
/// `_id`: the loser's duplicate-key error means the document exists now, so the operation is
/// simply tried again.
async fn upsert_returning(
    collection: &Collection<Document>,
    filter: Document,
    update: impl Into<UpdateModifications> + Clone,
) -> Result<Document, StoreError> {
    let mut attempts = 0;
    loop {
        let result = run(collection
            .find_one_and_update(filter.clone(), update.clone())
            .upsert(true)
            .return_document(ReturnDocument::After))
        .await;
        match result {
            Ok(Some(document)) => return Ok(document),
            // MongoDB always returns an upserted document. SecantusDB answers some racing
            // upserts with none although it applied them: read it back, never apply twice.
            Ok(None) => {
                return run(collection.find_one(filter))
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("an upserted document is missing".into()));
            }
            Err(StoreError::Conflict) if attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}

impl MongoStore {
    /// The named secret, `candidate` stored first if there is none (`$setOnInsert`).
    pub(super) async fn secret_or_insert(
        &self,
        name: &str,
        candidate: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let update = doc! { "$setOnInsert": {
            "value": bin(candidate),
            "created_at": date(OffsetDateTime::now_utc()),
        } };
        let document = upsert_returning(&self.db()?.secrets, doc! { "_id": name }, update).await?;
        secret_value(&document)
    }

    /// Counts one failure: a closed (or missing) window restarts at 1, an open one counts on.
    pub(super) async fn count_failure(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError> {
        // Both `$cond`s of the one `$set` stage read the document as it was before the update.
        let closed = doc! { "$not": [{ "$gt": ["$window_ends_at", date(now)] }] };
        let pipeline = vec![doc! { "$set": {
            "failures": { "$cond": [closed.clone(), 1, { "$add": ["$failures", 1] }] },
            "window_ends_at": { "$cond": [closed, date(now + window), "$window_ends_at"] },
        } }];
        let document =
            upsert_returning(&self.db()?.throttle, doc! { "_id": key }, pipeline).await?;
        throttle_from(&document)
    }
}
