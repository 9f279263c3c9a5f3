//! Failed-login counters in PostgreSQL: counting is one `INSERT … ON CONFLICT DO UPDATE`, so
//! concurrent failures are all counted and a closed window restarts at one.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::rows::{get, ts};
use super::{PostgresStore, purge_batches, run};
use crate::store::{StoreError, ThrottleCount, ThrottleStore};

fn throttle_from_row(row: &sqlx::postgres::PgRow) -> Result<ThrottleCount, StoreError> {
    Ok(ThrottleCount {
        failures: u32::try_from(get::<i32>(row, "failures")?).unwrap_or(0),
        window_ends_at: get(row, "window_ends_at")?,
    })
}

#[async_trait]
impl ThrottleStore for PostgresStore {
    async fn throttle_hit(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError> {
        let row = run(sqlx::query(
            "INSERT INTO login_throttle AS t (key, failures, window_ends_at) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN t.window_ends_at <= $3 THEN 1 ELSE t.failures + 1 END,
               window_ends_at = CASE WHEN t.window_ends_at <= $3 THEN $2 ELSE t.window_ends_at END
             RETURNING failures, window_ends_at",
        )
        .bind(key)
        .bind(ts(now + window))
        .bind(ts(now))
        .fetch_one(self.pool()?))
        .await?;
        throttle_from_row(&row)
    }

    async fn throttle_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ThrottleCount>, StoreError> {
        let row = run(sqlx::query(
            "SELECT failures, window_ends_at FROM login_throttle
              WHERE key = $1 AND window_ends_at > $2",
        )
        .bind(key)
        .bind(ts(now))
        .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(throttle_from_row).transpose()
    }

    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        run(sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn throttle_release(&self, key: &str) -> Result<(), StoreError> {
        run(sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn purge_expired_windows(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        purge_batches(
            self.pool()?,
            "DELETE FROM login_throttle WHERE key IN (SELECT key FROM login_throttle
               WHERE window_ends_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await
    }
}
