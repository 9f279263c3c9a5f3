//! Server-side sessions in SQLite.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Inserts, SqliteStore, delete_of_user, from_ms, get, hash, map_err, ms, uuid};
use crate::store::{SessionRecord, SessionStore, StoreError, TokenHash};

pub(super) fn session_from_row(row: &SqliteRow) -> Result<SessionRecord, StoreError> {
    let data: String = get(row, "data")?;
    Ok(SessionRecord {
        id: uuid(row, "id")?,
        token_hash: hash(&get::<Vec<u8>>(row, "token_hash")?)?,
        user_id: uuid(row, "user_id")?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        csrf_token: row
            .try_get("csrf_token")
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_at: from_ms(get(row, "created_at")?)?,
        last_used_at: from_ms(get(row, "last_used_at")?)?,
        idle_expires_at: from_ms(get(row, "idle_expires_at")?)?,
        absolute_expires_at: from_ms(get(row, "absolute_expires_at")?)?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
    })
}

static SESSION_INSERTS: LazyLock<Inserts> = LazyLock::new(|| {
    Inserts::new(
        "sessions",
        "id, token_hash, user_id, data, csrf_token, created_at, last_used_at, idle_expires_at, \
         absolute_expires_at, user_agent, ip",
    )
});

/// Writes a session: a new one, or one `copied` from another store (overwriting the session
/// with its id).
pub(super) async fn insert_session<'e, E>(
    pool: E,
    s: &SessionRecord,
    copied: bool,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    SESSION_INSERTS
        .query(copied)
        .bind(s.id.to_string())
        .bind(s.token_hash.0.to_vec())
        .bind(s.user_id.to_string())
        .bind(s.data.to_string())
        .bind(&s.csrf_token)
        .bind(ms(s.created_at))
        .bind(ms(s.last_used_at))
        .bind(ms(s.idle_expires_at))
        .bind(ms(s.absolute_expires_at))
        .bind(&s.user_agent)
        .bind(&s.ip)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        insert_session(&self.pool, session, false).await
    }

    async fn use_session(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE sessions SET last_used_at = ?1, idle_expires_at = MIN(?2, absolute_expires_at)
              WHERE token_hash = ?3 AND idle_expires_at > ?1 AND absolute_expires_at > ?1
              RETURNING *",
        )
        .bind(ms(now))
        .bind(ms(idle_expires_at))
        .bind(token_hash.0.to_vec())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn set_session_data(
        &self,
        token_hash: TokenHash,
        data: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE sessions SET data = ? WHERE token_hash = ?")
            .bind(data.to_string())
            .bind(token_hash.0.to_vec())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_session(&self, token_hash: TokenHash) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash.0.to_vec())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_session_by_id(&self, id: Uuid, user_id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        delete_of_user(&self.pool, "sessions", user_id, except).await
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions WHERE user_id = ?1 AND idle_expires_at > ?2 AND absolute_expires_at > ?2
             ORDER BY created_at DESC",
        )
        .bind(user_id.to_string())
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE idle_expires_at <= ?1 OR absolute_expires_at <= ?1",
        )
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
