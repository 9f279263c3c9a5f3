//! OAuth sign-in state and linked identities in MongoDB.
//!
//! Identities live in their user's document (`identities: [{provider, subject, email,
//! created_at}]`), so every operation on them is one single-document step, no transaction
//! needed: creating a user with an identity is one insert, linking is one `$push` whose filter
//! says the user has no identity of that provider yet, and unlinking is one `$pull` whose
//! filter holds the "another way to log in remains" check. A unique multikey index on
//! (`identities.provider`, `identities.subject`) keeps an identity on one user. A pending
//! sign-in is a document keyed by the hash of its `state`, taken with one findOneAndDelete.

use async_trait::async_trait;
use mongodb::bson::doc;
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{
    bin, date, identities_of, identity_element, state_doc, state_from, user_doc,
};
use super::{MongoStore, id, run};
use crate::store::{
    IdentityRecord, OAuthStateRecord, OAuthStore, StoreError, TokenHash, UnlinkOutcome, UserRecord,
};

#[async_trait]
impl OAuthStore for MongoStore {
    async fn save_oauth_state(&self, s: &OAuthStateRecord) -> Result<(), StoreError> {
        let document = state_doc(s);
        run(self.db()?.oauth_states.insert_one(document)).await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError> {
        let filter = doc! { "_id": bin(&state_hash.0) };
        let taken = run(self.db()?.oauth_states.find_one_and_delete(filter)).await?;
        let record = taken.as_ref().map(state_from).transpose()?;
        Ok(record.filter(|r| r.expires_at > now))
    }

    async fn purge_expired_oauth_states(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let filter = doc! { "expires_at": { "$lte": date(now) } };
        Ok(run(self.db()?.oauth_states.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        let filter =
            doc! { "identities": { "$elemMatch": { "provider": provider, "subject": subject } } };
        let Some(user) = run(self.db()?.users.find_one(filter)).await? else {
            return Ok(None);
        };
        Ok(identities_of(&user)?
            .into_iter()
            .find(|i| i.provider == provider && i.subject == subject))
    }

    async fn link_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        let users = &self.db()?.users;
        let filter = doc! {
            "_id": id(identity.user_id),
            "identities.provider": { "$ne": &identity.provider },
        };
        let update = doc! { "$push": { "identities": identity_element(identity) } };
        // A (provider, subject) on another user is a duplicate key of the identity index.
        if run(users.update_one(filter, update)).await?.matched_count == 1 {
            return Ok(());
        }
        match run(users.find_one(doc! { "_id": id(identity.user_id) })).await? {
            Some(_) => Err(StoreError::Conflict), // an identity of this provider already
            None => Err(StoreError::Corrupt("no such user to link".into())),
        }
    }

    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        let users = &self.db()?.users;
        let filter = doc! {
            "_id": id(user_id),
            "identities.provider": provider,
            // Another way to log in remains: a password, or a second identity.
            "$or": [
                { "password_hash": { "$type": "string" } },
                { "identities.1": { "$exists": true } },
            ],
        };
        let update = doc! { "$pull": { "identities": { "provider": provider } } };
        if run(users.update_one(filter, update)).await?.matched_count == 1 {
            return Ok(UnlinkOutcome::Unlinked);
        }
        let linked = doc! { "_id": id(user_id), "identities.provider": provider };
        Ok(match run(users.find_one(linked)).await? {
            Some(_) => UnlinkOutcome::LastLoginMethod,
            None => UnlinkOutcome::NotLinked,
        })
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError> {
        match run(self.db()?.users.find_one(doc! { "_id": id(user_id) })).await? {
            Some(user) => identities_of(&user),
            None => Ok(Vec::new()),
        }
    }

    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError> {
        let mut document = user_doc(user);
        document.insert("identities", vec![identity_element(identity)]);
        run(self.db()?.users.insert_one(document)).await?;
        Ok(())
    }
}
