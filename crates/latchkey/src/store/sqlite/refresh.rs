//! Refresh families in SQLite: rotation is one conditional `UPDATE … RETURNING`.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Inserts, SqliteStore, delete_of_user, from_ms, get, hash, map_err, ms, uuid};
use crate::store::{FamilyRecord, RefreshStore, RotateRequest, StoreError};

pub(super) fn family_from_row(row: &SqliteRow) -> Result<FamilyRecord, StoreError> {
    let previous: Option<Vec<u8>> = get(row, "previous_hash")?;
    let rotated: Option<i64> = get(row, "rotated_at")?;
    Ok(FamilyRecord {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        current_hash: hash(&get::<Vec<u8>>(row, "current_hash")?)?,
        previous_hash: previous.as_deref().map(hash).transpose()?,
        generation: u64::try_from(get::<i64>(row, "generation")?).unwrap_or(0),
        rotated_at: rotated.map(from_ms).transpose()?,
        token_expires_at: from_ms(get(row, "token_expires_at")?)?,
        expires_at: from_ms(get(row, "expires_at")?)?,
        created_at: from_ms(get(row, "created_at")?)?,
        last_used_at: from_ms(get(row, "last_used_at")?)?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
    })
}

static FAMILY_INSERTS: LazyLock<Inserts> = LazyLock::new(|| {
    Inserts::new(
        "refresh_families",
        "id, user_id, current_hash, previous_hash, generation, rotated_at, token_expires_at, \
         expires_at, created_at, last_used_at, user_agent, ip",
    )
});

/// Writes a family: a new one, or one `copied` from another store (overwriting the family
/// with its id).
pub(super) async fn insert_family<'e, E>(
    pool: E,
    f: &FamilyRecord,
    copied: bool,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    FAMILY_INSERTS
        .query(copied)
        .bind(f.id.to_string())
        .bind(f.user_id.to_string())
        .bind(f.current_hash.0.to_vec())
        .bind(f.previous_hash.map(|h| h.0.to_vec()))
        .bind(i64::try_from(f.generation).unwrap_or(i64::MAX))
        .bind(f.rotated_at.map(ms))
        .bind(ms(f.token_expires_at))
        .bind(ms(f.expires_at))
        .bind(ms(f.created_at))
        .bind(ms(f.last_used_at))
        .bind(&f.user_agent)
        .bind(&f.ip)
        .execute(pool)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl RefreshStore for SqliteStore {
    async fn create_family(&self, family: &FamilyRecord) -> Result<(), StoreError> {
        insert_family(&self.pool, family, false).await
    }

    async fn rotate_if_current(
        &self,
        r: &RotateRequest,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let now = ms(r.now);
        // One conditional UPDATE, so of two concurrent rotations with one token exactly one
        // can match.
        let rotated = sqlx::query(
            "UPDATE refresh_families
                SET previous_hash = current_hash, current_hash = ?, generation = generation + 1,
                    rotated_at = ?, token_expires_at = MIN(?, expires_at), last_used_at = ?
              WHERE id = ? AND current_hash = ? AND token_expires_at > ? AND expires_at > ?
              RETURNING *",
        )
        .bind(r.successor.0.to_vec())
        .bind(now)
        .bind(ms(r.successor_expires_at))
        .bind(now)
        .bind(r.family_id.to_string())
        .bind(r.presented.0.to_vec())
        .bind(now)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        rotated.as_ref().map(family_from_row).transpose()
    }

    async fn find_family(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM refresh_families WHERE id = ? AND expires_at > ?")
            .bind(id.to_string())
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(family_from_row).transpose()
    }

    async fn delete_family(&self, id: Uuid, user_id: Option<Uuid>) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM refresh_families WHERE id = ? AND (? IS NULL OR user_id = ?)")
                .bind(id.to_string())
                .bind(user_id.map(|u| u.to_string()))
                .bind(user_id.map(|u| u.to_string()))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_families(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        delete_of_user(&self.pool, "refresh_families", user_id, except).await
    }

    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM refresh_families WHERE user_id = ? AND expires_at > ? AND token_expires_at > ?
             ORDER BY created_at DESC",
        )
        .bind(user_id.to_string())
        .bind(ms(now))
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(family_from_row).collect()
    }

    async fn purge_expired_families(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM refresh_families WHERE expires_at <= ?1 OR token_expires_at <= ?1",
        )
        .bind(ms(now))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
