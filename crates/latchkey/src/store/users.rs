//! Users: the record and the [`UserStore`] capability.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id (UUIDv7, so ids sort by creation).
    pub id: Uuid,
    /// The name as registered (NFKC-normalized).
    pub username: String,
    /// The case-folded name that uniqueness is checked on.
    pub username_key: String,
    /// Optional email address.
    pub email: Option<String>,
    /// PHC string of the Argon2id hash; `None` for accounts without a password.
    pub password_hash: Option<String>,
    /// Roles, carried into access tokens.
    pub roles: Vec<String>,
    /// A disabled user can neither log in nor refresh.
    pub disabled: bool,
    /// Whether Latchkey itself verified `email` (a provider's word does not count): only such
    /// an email is ever matched for auto-linking a provider sign-in.
    pub email_verified: bool,
    /// The login generation, bumped by password changes and logout-all; stateless session
    /// cookies carry it and die when it moves on.
    pub generation: u64,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// Users and their account fields. Every method is one atomic operation.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts a user; [`StoreError::Conflict`] when the username key (or the id) is taken.
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// The user with this case-folded username.
    async fn find_user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this id.
    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    /// Up to `limit` users whose email equals `email` without regard to ASCII case, in id
    /// order.
    async fn find_users_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;
    /// Replaces a user's password hash; false when the user does not exist.
    async fn set_password_hash(&self, id: Uuid, hash: &str) -> Result<bool, StoreError>;
    /// Sets a user's roles; false when the user does not exist.
    async fn set_roles(&self, id: Uuid, roles: &[String]) -> Result<bool, StoreError>;
    /// Adds one to the user's login generation; false when the user does not exist.
    async fn bump_generation(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Disables or enables a user; false when the user does not exist.
    async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<bool, StoreError>;
    /// How many users there are.
    async fn count_users(&self) -> Result<u64, StoreError>;
    /// Up to `limit` users with ids greater than `after`, in id (creation) order.
    async fn list_users(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;
}
