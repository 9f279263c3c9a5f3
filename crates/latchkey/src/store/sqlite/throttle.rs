//! Failed-login counters in SQLite: one upsert per hit.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{SqliteStore, from_ms, get, map_err, ms};
use crate::store::{StoreError, ThrottleCount, ThrottleStore};

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn throttle_hit(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError> {
        let now_ms = ms(now);
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_ends_at) VALUES (?1, 1, ?2)
             ON CONFLICT(key) DO UPDATE SET
               failures = CASE WHEN window_ends_at <= ?3 THEN 1 ELSE failures + 1 END,
               window_ends_at = CASE WHEN window_ends_at <= ?3 THEN ?2 ELSE window_ends_at END
             RETURNING failures, window_ends_at",
        )
        .bind(key)
        .bind(ms(now + window))
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(ThrottleCount {
            failures: u32::try_from(get::<i64>(&row, "failures")?).unwrap_or(u32::MAX),
            window_ends_at: from_ms(get(&row, "window_ends_at")?)?,
        })
    }

    async fn throttle_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ThrottleCount>, StoreError> {
        let row = sqlx::query("SELECT failures, window_ends_at FROM login_throttle WHERE key = ? AND window_ends_at > ?")
            .bind(key)
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|row| {
            Ok(ThrottleCount {
                failures: u32::try_from(get::<i64>(&row, "failures")?).unwrap_or(u32::MAX),
                window_ends_at: from_ms(get(&row, "window_ends_at")?)?,
            })
        })
        .transpose()
    }

    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn throttle_release(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 WHERE key = ? AND failures > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn purge_expired_windows(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM login_throttle WHERE window_ends_at <= ?")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
