//! Server-side sessions in PostgreSQL: using a session is one `UPDATE … RETURNING` that checks
//! both ends and slides the idle end (never past the absolute one).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{session_from_row, ts};
use super::{PostgresStore, purge_batches, run};
use crate::store::{SessionRecord, SessionStore, StoreError, TokenHash};

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        run(session_query(INSERT_SESSION, s).execute(self.pool()?)).await?;
        Ok(())
    }

    async fn use_session(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = run(sqlx::query(
            "UPDATE sessions SET last_used_at = $1,
                    idle_expires_at = LEAST($2, absolute_expires_at)
              WHERE token_hash = $3 AND idle_expires_at > $1 AND absolute_expires_at > $1
              RETURNING *",
        )
        .bind(ts(now))
        .bind(ts(idle_expires_at))
        .bind(token_hash.0.as_slice())
        .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn set_session_data(
        &self,
        token_hash: TokenHash,
        data: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        let done = run(
            sqlx::query("UPDATE sessions SET data = $1 WHERE token_hash = $2")
                .bind(data.to_string())
                .bind(token_hash.0.as_slice())
                .execute(self.pool()?),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_session(&self, token_hash: TokenHash) -> Result<bool, StoreError> {
        let done = run(sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash.0.as_slice())
            .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_session_by_id(&self, id: Uuid, user_id: Uuid) -> Result<bool, StoreError> {
        let done = run(
            sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(self.pool()?),
        )
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let done = run(sqlx::query(
            "DELETE FROM sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)",
        )
        .bind(user_id)
        .bind(except)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected())
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM sessions
              WHERE user_id = $1 AND idle_expires_at > $2 AND absolute_expires_at > $2
              ORDER BY created_at DESC",
        )
        .bind(user_id)
        .bind(ts(now))
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        purge_batches(
            self.pool()?,
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions
               WHERE idle_expires_at <= $1 OR absolute_expires_at <= $1
               LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await
    }
}

/// The columns of a session row, in the order [`session_query`] binds them.
macro_rules! insert_session {
    () => {
        "INSERT INTO sessions (id, token_hash, user_id, data, csrf_token, created_at,
               last_used_at, idle_expires_at, absolute_expires_at, user_agent, ip, amr)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    };
}

/// Creates a session.
pub(super) const INSERT_SESSION: &str = insert_session!();
/// Writes a session verbatim, replacing one with the same id (`store copy --force`).
pub(super) const UPSERT_SESSION: &str = concat!(
    insert_session!(),
    "
             ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash,
               user_id = excluded.user_id, data = excluded.data, csrf_token = excluded.csrf_token,
               created_at = excluded.created_at, last_used_at = excluded.last_used_at,
               idle_expires_at = excluded.idle_expires_at,
               absolute_expires_at = excluded.absolute_expires_at,
               user_agent = excluded.user_agent, ip = excluded.ip, amr = excluded.amr"
);

/// `sql` (one of the two above) with every field of `s` bound.
pub(super) fn session_query<'q>(
    sql: &'static str,
    s: &'q SessionRecord,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(s.id)
        .bind(s.token_hash.0.as_slice())
        .bind(s.user_id)
        .bind(s.data.to_string())
        .bind(&s.csrf_token)
        .bind(ts(s.created_at))
        .bind(ts(s.last_used_at))
        .bind(ts(s.idle_expires_at))
        .bind(ts(s.absolute_expires_at))
        .bind(&s.user_agent)
        .bind(&s.ip)
        .bind(&s.amr)
}
