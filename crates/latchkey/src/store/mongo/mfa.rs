//! Second factors and pending second-factor logins in MongoDB: one document per factor in
//! `mfa_factors`; accepting a TOTP step and spending a recovery code are one `updateOne` each
//! whose filter holds the condition (`last_step < step`, `last_used_at: null`), so of two
//! concurrent writers one matches. A pending login is a document keyed by its token hash,
//! taken with one `findOneAndDelete`.

use async_trait::async_trait;
use mongodb::bson::{Bson, doc};
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, challenge_doc, challenge_from, date, factor_doc, factor_from};
use super::{MongoStore, collect, gt, id, run};
use crate::store::{FactorRecord, MfaChallengeRecord, MfaStore, StoreError, TokenHash};

#[async_trait]
impl MfaStore for MongoStore {
    async fn add_factors(&self, factors: &[FactorRecord]) -> Result<(), StoreError> {
        if factors.is_empty() {
            return Ok(());
        }
        let documents: Vec<_> = factors.iter().map(factor_doc).collect();
        run(self.db()?.factors.insert_many(documents)).await?;
        Ok(())
    }

    async fn list_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
    ) -> Result<Vec<FactorRecord>, StoreError> {
        let mut filter = doc! { "user_id": id(user_id) };
        if let Some(kind) = kind {
            filter.insert("kind", kind);
        }
        let find = self
            .db()?
            .factors
            .find(filter)
            .sort(doc! { "created_at": 1, "_id": 1 });
        collect(find).await?.iter().map(factor_from).collect()
    }

    async fn delete_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
        pending_only: bool,
    ) -> Result<u64, StoreError> {
        let mut filter = doc! { "user_id": id(user_id) };
        if let Some(kind) = kind {
            filter.insert("kind", kind);
        }
        if pending_only {
            filter.insert("confirmed_at", Bson::Null);
        }
        Ok(run(self.db()?.factors.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn confirm_factor(
        &self,
        user_id: Uuid,
        factor: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let filter = doc! { "_id": id(factor), "user_id": id(user_id), "confirmed_at": Bson::Null };
        let update = doc! { "$set": {
            "confirmed_at": date(now), "last_used_at": date(now), "last_step": step,
        } };
        let done = run(self.db()?.factors.update_one(filter, update)).await?;
        Ok(done.modified_count == 1)
    }

    async fn accept_factor_step(
        &self,
        factor: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let filter = doc! {
            "_id": id(factor),
            "confirmed_at": { "$ne": Bson::Null },
            "last_step": { "$lt": step },
        };
        let update = doc! { "$set": { "last_step": step, "last_used_at": date(now) } };
        let done = run(self.db()?.factors.update_one(filter, update)).await?;
        Ok(done.modified_count == 1)
    }

    async fn use_factor_once(
        &self,
        user_id: Uuid,
        kind: &str,
        secret: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let filter = doc! {
            "user_id": id(user_id),
            "kind": kind,
            "secret": bin(secret),
            "confirmed_at": { "$ne": Bson::Null },
            "last_used_at": Bson::Null,
        };
        let update = doc! { "$set": { "last_used_at": date(now) } };
        let done = run(self.db()?.factors.update_one(filter, update)).await?;
        Ok(done.modified_count == 1)
    }

    async fn create_mfa_challenge(&self, c: &MfaChallengeRecord) -> Result<(), StoreError> {
        run(self.db()?.mfa_challenges.insert_one(challenge_doc(c))).await?;
        Ok(())
    }

    async fn find_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError> {
        let filter = doc! { "_id": bin(&token_hash.0), "expires_at": gt(now) };
        let found = run(self.db()?.mfa_challenges.find_one(filter)).await?;
        found.as_ref().map(challenge_from).transpose()
    }

    async fn take_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError> {
        let filter = doc! { "_id": bin(&token_hash.0), "expires_at": gt(now) };
        let taken = run(self.db()?.mfa_challenges.find_one_and_delete(filter)).await?;
        taken.as_ref().map(challenge_from).transpose()
    }

    async fn purge_expired_mfa_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let filter = doc! { "expires_at": { "$lte": date(now) } };
        Ok(run(self.db()?.mfa_challenges.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn list_all_factors(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<FactorRecord>, StoreError> {
        let mut filter = doc! {};
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": id(after) });
        }
        let find = self
            .db()?
            .factors
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit));
        collect(find).await?.iter().map(factor_from).collect()
    }

    async fn import_factor(&self, factor: &FactorRecord) -> Result<(), StoreError> {
        let document = factor_doc(factor);
        run(self
            .db()?
            .factors
            .replace_one(doc! { "_id": id(factor.id) }, document)
            .upsert(true))
        .await?;
        Ok(())
    }
}
