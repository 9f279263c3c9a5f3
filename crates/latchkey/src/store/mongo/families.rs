//! Refresh rotation in MongoDB: the SQLite algorithm, with one conditional findOneAndUpdate
//! where SQLite has one conditional `UPDATE … RETURNING`.

use crate::store::NotCurrent;
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;

use super::documents::{bin, date, family_from};
use super::{MongoStore, gt, id, run};
use crate::store::{RotateOutcome, RotateRequest, Store, StoreError};

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
        let family = self.find_family(r.family_id, r.now).await?;
        match crate::store::decide_not_current(family, r) {
            NotCurrent::Invalid => Ok(RotateOutcome::Invalid),
            NotCurrent::Reissue(family) => Ok(RotateOutcome::Reissued(family)),
            NotCurrent::Revoke(family) => {
                self.delete_family(family.id, None).await?;
                Ok(RotateOutcome::Reused {
                    user_id: family.user_id,
                })
            }
        }
    }
}
