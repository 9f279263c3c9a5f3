//! Users in PostgreSQL. A taken username key (or id) is refused by the table's constraints,
//! which [`super::map_err`] turns into [`StoreError::Conflict`].

use async_trait::async_trait;
use uuid::Uuid;

use super::rows::{big, count, get, ts, user_from_row};
use super::{PostgresStore, run};
use crate::store::{StoreError, UserRecord, UserStore};

/// Inserts a user through `executor` (the pool, or a transaction).
pub(super) async fn insert_user<'e, E>(executor: E, user: &UserRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    run(sqlx::query(
        "INSERT INTO users (id, username, username_key, email, password_hash, roles, disabled,
                            email_verified, generation, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(user.id)
    .bind(&user.username)
    .bind(&user.username_key)
    .bind(&user.email)
    .bind(&user.password_hash)
    .bind(&user.roles)
    .bind(user.disabled)
    .bind(user.email_verified)
    .bind(big(user.generation))
    .bind(ts(user.created_at))
    .execute(executor))
    .await?;
    Ok(())
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        insert_user(self.pool()?, user).await
    }

    async fn find_user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = run(sqlx::query("SELECT * FROM users WHERE username_key = $1")
            .bind(username_key)
            .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = run(sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn set_password_hash(&self, id: Uuid, hash: &str) -> Result<bool, StoreError> {
        let done = run(
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(id)
                .execute(self.pool()?),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_roles(&self, id: Uuid, roles: &[String]) -> Result<bool, StoreError> {
        let done = run(sqlx::query("UPDATE users SET roles = $1 WHERE id = $2")
            .bind(roles)
            .bind(id)
            .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let row =
            run(sqlx::query("SELECT COUNT(*) AS n FROM users").fetch_one(self.pool()?)).await?;
        Ok(count(get(&row, "n")?))
    }

    async fn list_users(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM users WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn bump_generation(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = run(
            sqlx::query("UPDATE users SET generation = generation + 1 WHERE id = $1")
                .bind(id)
                .execute(self.pool()?),
        )
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<bool, StoreError> {
        let done = run(sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(disabled)
            .bind(id)
            .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_users_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        // `lower` under the "C" collation folds ASCII only, like SQLite's NOCASE; the
        // expression matches the `users_email` index.
        let rows = run(sqlx::query(
            r#"SELECT * FROM users WHERE lower(email) = lower($1 COLLATE "C") ORDER BY id LIMIT $2"#,
        )
        .bind(email)
        .bind(i64::from(limit))
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(user_from_row).collect()
    }
}
