//! Refresh rotation in MongoDB: the SQLite algorithm, with one conditional findOneAndUpdate
//! where SQLite has one conditional `UPDATE … RETURNING`.

use mongodb::bson::doc;
use mongodb::options::ReturnDocument;

use super::documents::{bin, date, family_from};
use super::{MongoStore, gt, id, run};
use crate::store::{RotateOutcome, RotateRequest, StoreError};

impl MongoStore {
    /// Rotates, re-issues or detects reuse, as [`Store::rotate_refresh`] describes.
    pub(super) async fn rotate(&self, r: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        // Step 1, the common case: the presented token is current and alive. One conditional
        // findOneAndUpdate, so of two concurrent rotations with one token exactly one matches.
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
        if let Some(document) = rotated {
            return family_from(&document).map(RotateOutcome::Rotated);
        }
        // Step 2: not current. Decide from the document as it is now; the decision only ever
        // moves a family towards "revoked", so a concurrent change cannot make it unsafe.
        crate::store::settle_not_current(self, r).await
    }
}
