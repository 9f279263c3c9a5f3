//! Refresh families in PostgreSQL. Rotation is one conditional `UPDATE … WHERE current_hash
//! = $presented … RETURNING`: of two concurrent rotations with one token, the second waits for
//! the first's row lock, re-checks its `WHERE` against the new row, and matches nothing. What
//! a non-match means is the shared reuse rule ([`crate::store::settle_not_current`]), which
//! [`RefreshStore::rotate_refresh`] applies.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{big, family_from_row, ts};
use super::{PostgresStore, purge_batches, run};
use crate::store::{FamilyRecord, RefreshStore, RotateRequest, StoreError};

#[async_trait]
impl RefreshStore for PostgresStore {
    async fn create_family(&self, f: &FamilyRecord) -> Result<(), StoreError> {
        run(family_query(INSERT_FAMILY, f).execute(self.pool()?)).await?;
        Ok(())
    }

    async fn rotate_if_current(
        &self,
        r: &RotateRequest,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let rotated = run(sqlx::query(
            "UPDATE refresh_families
                SET previous_hash = current_hash, current_hash = $1, generation = generation + 1,
                    rotated_at = $2, token_expires_at = LEAST($3, expires_at), last_used_at = $2
              WHERE id = $4 AND current_hash = $5 AND token_expires_at > $2 AND expires_at > $2
              RETURNING *",
        )
        .bind(r.successor.0.as_slice())
        .bind(ts(r.now))
        .bind(ts(r.successor_expires_at))
        .bind(r.family_id)
        .bind(r.presented.0.as_slice())
        .fetch_optional(self.pool()?))
        .await?;
        rotated.as_ref().map(family_from_row).transpose()
    }

    async fn find_family(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let row = run(sqlx::query(
            "SELECT * FROM refresh_families WHERE id = $1 AND expires_at > $2",
        )
        .bind(id)
        .bind(ts(now))
        .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(family_from_row).transpose()
    }

    async fn delete_family(&self, id: Uuid, user_id: Option<Uuid>) -> Result<bool, StoreError> {
        let done = run(sqlx::query(
            "DELETE FROM refresh_families WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
        )
        .bind(id)
        .bind(user_id)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_families(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let done = run(sqlx::query(
            "DELETE FROM refresh_families WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)",
        )
        .bind(user_id)
        .bind(except)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected())
    }

    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM refresh_families
              WHERE user_id = $1 AND expires_at > $2 AND token_expires_at > $2
              ORDER BY created_at DESC",
        )
        .bind(user_id)
        .bind(ts(now))
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(family_from_row).collect()
    }

    async fn purge_expired_families(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        purge_batches(
            self.pool()?,
            "DELETE FROM refresh_families WHERE id IN (SELECT id FROM refresh_families
               WHERE expires_at <= $1 OR token_expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await
    }
}

/// The columns of a family row, in the order [`family_query`] binds them.
macro_rules! insert_family {
    () => {
        "INSERT INTO refresh_families (id, user_id, current_hash, previous_hash, generation,
               rotated_at, token_expires_at, expires_at, created_at, last_used_at, user_agent, ip, amr)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    };
}

/// Creates a family (a duplicate id is a conflict).
pub(super) const INSERT_FAMILY: &str = insert_family!();
/// Writes a family verbatim, replacing one with the same id (`store copy --force`).
pub(super) const UPSERT_FAMILY: &str = concat!(
    insert_family!(),
    "
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id,
               current_hash = excluded.current_hash, previous_hash = excluded.previous_hash,
               generation = excluded.generation, rotated_at = excluded.rotated_at,
               token_expires_at = excluded.token_expires_at, expires_at = excluded.expires_at,
               created_at = excluded.created_at, last_used_at = excluded.last_used_at,
               user_agent = excluded.user_agent, ip = excluded.ip, amr = excluded.amr"
);

/// `sql` (one of the two above) with every field of `f` bound.
pub(super) fn family_query<'q>(
    sql: &'static str,
    f: &'q FamilyRecord,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(f.id)
        .bind(f.user_id)
        .bind(f.current_hash.0.as_slice())
        .bind(f.previous_hash.as_ref().map(|h| h.0.as_slice()))
        .bind(big(f.generation))
        .bind(f.rotated_at.map(ts))
        .bind(ts(f.token_expires_at))
        .bind(ts(f.expires_at))
        .bind(ts(f.created_at))
        .bind(ts(f.last_used_at))
        .bind(&f.user_agent)
        .bind(&f.ip)
        .bind(&f.amr)
}
