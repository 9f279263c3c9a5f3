//! Users in MongoDB: one document per user, `_id` its id (identities are kept in it, see
//! `oauth.rs`).

use async_trait::async_trait;
use mongodb::bson::{Document, doc};
use uuid::Uuid;

use super::documents::{user_doc, user_from};
use super::{MongoStore, collect, id, run};
use crate::store::{StoreError, UserRecord, UserStore};

#[async_trait]
impl UserStore for MongoStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        run(self.db()?.users.insert_one(user_doc(user))).await?;
        Ok(())
    }

    async fn find_user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let found = run(self
            .db()?
            .users
            .find_one(doc! { "username_key": username_key }))
        .await?;
        found.as_ref().map(user_from).transpose()
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let found = run(self.db()?.users.find_one(doc! { "_id": id(user_id) })).await?;
        found.as_ref().map(user_from).transpose()
    }

    async fn find_users_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let find = self
            .db()?
            .users
            .find(doc! { "email_key": email.to_ascii_lowercase() })
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit));
        collect(find).await?.iter().map(user_from).collect()
    }

    async fn set_password_hash(&self, user_id: Uuid, hash: &str) -> Result<bool, StoreError> {
        self.update_user(user_id, doc! { "$set": { "password_hash": hash } })
            .await
    }

    async fn set_roles(&self, user_id: Uuid, roles: &[String]) -> Result<bool, StoreError> {
        self.update_user(user_id, doc! { "$set": { "roles": roles } })
            .await
    }

    async fn bump_generation(&self, user_id: Uuid) -> Result<bool, StoreError> {
        self.update_user(user_id, doc! { "$inc": { "generation": 1_i64 } })
            .await
    }

    async fn set_disabled(&self, user_id: Uuid, disabled: bool) -> Result<bool, StoreError> {
        self.update_user(user_id, doc! { "$set": { "disabled": disabled } })
            .await
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        run(self.db()?.users.count_documents(doc! {})).await
    }

    async fn list_users(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let filter = after.map_or_else(Document::new, |a| doc! { "_id": { "$gt": id(a) } });
        let find = self
            .db()?
            .users
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit));
        collect(find).await?.iter().map(user_from).collect()
    }
}

impl MongoStore {
    /// Applies `update` to the user with this id; false when there is none.
    async fn update_user(&self, user_id: Uuid, update: Document) -> Result<bool, StoreError> {
        let filter = doc! { "_id": id(user_id) };
        let done = run(self.db()?.users.update_one(filter, update)).await?;
        Ok(done.matched_count == 1)
    }
}
