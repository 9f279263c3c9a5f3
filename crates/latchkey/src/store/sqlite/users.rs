//! Users in SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::{Inserts, SqliteStore, from_ms, get, map_err, ms, sql, uuid};
use crate::store::{StoreError, UserRecord, UserStore};

pub(super) const USER_COLUMNS: &str = "id, username, username_key, email, password_hash, roles, disabled, email_verified, generation, created_at";

pub(super) fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let roles: String = get(row, "roles")?;
    Ok(UserRecord {
        id: uuid(row, "id")?,
        username: get(row, "username")?,
        username_key: get(row, "username_key")?,
        email: get(row, "email")?,
        password_hash: get(row, "password_hash")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        disabled: get::<i64>(row, "disabled")? != 0,
        email_verified: get::<i64>(row, "email_verified")? != 0,
        generation: u64::try_from(get::<i64>(row, "generation")?).unwrap_or(0),
        created_at: from_ms(get(row, "created_at")?)?,
    })
}

static USER_INSERTS: LazyLock<Inserts> = LazyLock::new(|| Inserts::new("users", USER_COLUMNS));

/// Writes a user through `executor` (the pool, or a transaction): a new one, or one `copied`
/// from another store (overwriting the user with its id).
pub(super) async fn insert_user<'e, E>(
    executor: E,
    user: &UserRecord,
    copied: bool,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let roles =
        serde_json::to_string(&user.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    USER_INSERTS
        .query(copied)
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(&user.username_key)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(roles)
        .bind(i64::from(user.disabled))
        .bind(i64::from(user.email_verified))
        .bind(i64::try_from(user.generation).unwrap_or(i64::MAX))
        .bind(ms(user.created_at))
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        insert_user(&self.pool, user, false).await
    }

    async fn find_user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_key = ?"
        )))
        .bind(username_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ?"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn set_password_hash(&self, id: Uuid, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_roles(&self, id: Uuid, roles: &[String]) -> Result<bool, StoreError> {
        let roles = serde_json::to_string(roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let done = sqlx::query("UPDATE users SET roles = ? WHERE id = ?")
            .bind(roles)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    async fn list_users(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?"
        )))
        .bind(after.map(|u| u.to_string()))
        .bind(after.map(|u| u.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn bump_generation(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET generation = generation + 1 WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET disabled = ? WHERE id = ?")
            .bind(i64::from(disabled))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
    async fn find_users_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = ? COLLATE NOCASE ORDER BY id LIMIT ?"
        )))
        .bind(email)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }
}
