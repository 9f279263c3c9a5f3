//! Second factors and pending second-factor logins in SQLite: accepting a TOTP step and
//! spending a recovery code are one conditional `UPDATE` each; completing a login is one
//! `DELETE … RETURNING`.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, from_ms, get, hash, json_list, list_json, map_err, ms, uuid};
use crate::store::{FactorRecord, MfaChallengeRecord, MfaStore, StoreError, TokenHash};

fn factor_from_row(row: &SqliteRow) -> Result<FactorRecord, StoreError> {
    let confirmed: Option<i64> = get(row, "confirmed_at")?;
    let used: Option<i64> = get(row, "last_used_at")?;
    Ok(FactorRecord {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        kind: get(row, "kind")?,
        secret: SecretSlice::from(get::<Vec<u8>>(row, "secret")?),
        last_step: get(row, "last_step")?,
        confirmed_at: confirmed.map(from_ms).transpose()?,
        created_at: from_ms(get(row, "created_at")?)?,
        last_used_at: used.map(from_ms).transpose()?,
    })
}

fn challenge_from_row(row: &SqliteRow) -> Result<MfaChallengeRecord, StoreError> {
    Ok(MfaChallengeRecord {
        token_hash: hash(&get::<Vec<u8>>(row, "token_hash")?)?,
        user_id: uuid(row, "user_id")?,
        endpoint: get(row, "endpoint")?,
        amr: json_list(&get::<String>(row, "amr")?)?,
        created_at: from_ms(get(row, "created_at")?)?,
        expires_at: from_ms(get(row, "expires_at")?)?,
    })
}

const INSERT_FACTOR: &str = "INSERT INTO mfa_factors (id, user_id, kind, secret, last_step, \
     confirmed_at, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

pub(super) async fn insert_factor<'e, E>(
    executor: E,
    f: &FactorRecord,
    copied: bool,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let text = if copied {
        "INSERT INTO mfa_factors (id, user_id, kind, secret, last_step, confirmed_at, \
         created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET \
         user_id = excluded.user_id, kind = excluded.kind, secret = excluded.secret, \
         last_step = excluded.last_step, confirmed_at = excluded.confirmed_at, \
         created_at = excluded.created_at, last_used_at = excluded.last_used_at"
    } else {
        INSERT_FACTOR
    };
    sqlx::query(text)
        .bind(f.id.to_string())
        .bind(f.user_id.to_string())
        .bind(&f.kind)
        .bind(f.secret.expose_secret().to_vec())
        .bind(f.last_step)
        .bind(f.confirmed_at.map(ms))
        .bind(ms(f.created_at))
        .bind(f.last_used_at.map(ms))
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn take_or_find(
    pool: &SqlitePool,
    sql: &'static str,
    token_hash: TokenHash,
    now: OffsetDateTime,
) -> Result<Option<MfaChallengeRecord>, StoreError> {
    let row = sqlx::query(sql)
        .bind(token_hash.0.to_vec())
        .bind(ms(now))
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(challenge_from_row).transpose()
}

#[async_trait]
impl MfaStore for SqliteStore {
    async fn add_factors(&self, factors: &[FactorRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for f in factors {
            insert_factor(&mut *tx, f, false).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
    ) -> Result<Vec<FactorRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM mfa_factors WHERE user_id = ?1 AND (?2 IS NULL OR kind = ?2)
             ORDER BY created_at, id",
        )
        .bind(user_id.to_string())
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(factor_from_row).collect()
    }

    async fn delete_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
        pending_only: bool,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM mfa_factors WHERE user_id = ?1 AND (?2 IS NULL OR kind = ?2)
               AND (?3 = 0 OR confirmed_at IS NULL)",
        )
        .bind(user_id.to_string())
        .bind(kind)
        .bind(pending_only)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn confirm_factor(
        &self,
        user_id: Uuid,
        id: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET confirmed_at = ?1, last_used_at = ?1, last_step = ?2
              WHERE id = ?3 AND user_id = ?4 AND confirmed_at IS NULL",
        )
        .bind(ms(now))
        .bind(step)
        .bind(id.to_string())
        .bind(user_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn accept_factor_step(
        &self,
        id: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET last_step = ?1, last_used_at = ?2
              WHERE id = ?3 AND confirmed_at IS NOT NULL AND last_step < ?1",
        )
        .bind(step)
        .bind(ms(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_factor_once(
        &self,
        user_id: Uuid,
        kind: &str,
        secret: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_factors SET last_used_at = ?1
              WHERE id = (SELECT id FROM mfa_factors WHERE user_id = ?2 AND kind = ?3
                            AND secret = ?4 AND confirmed_at IS NOT NULL
                            AND last_used_at IS NULL LIMIT 1)
                AND last_used_at IS NULL",
        )
        .bind(ms(now))
        .bind(user_id.to_string())
        .bind(kind)
        .bind(secret.to_vec())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_mfa_challenge(&self, c: &MfaChallengeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mfa_challenges (token_hash, user_id, endpoint, amr, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(c.token_hash.0.to_vec())
        .bind(c.user_id.to_string())
        .bind(&c.endpoint)
        .bind(list_json(&c.amr))
        .bind(ms(c.created_at))
        .bind(ms(c.expires_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError> {
        take_or_find(
            &self.pool,
            "SELECT * FROM mfa_challenges WHERE token_hash = ? AND expires_at > ?",
            token_hash,
            now,
        )
        .await
    }

    async fn take_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError> {
        take_or_find(
            &self.pool,
            "DELETE FROM mfa_challenges WHERE token_hash = ? AND expires_at > ? RETURNING *",
            token_hash,
            now,
        )
        .await
    }

    async fn purge_expired_mfa_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= ?")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn list_all_factors(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<FactorRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM mfa_factors WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2",
        )
        .bind(after.map(|a| a.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(factor_from_row).collect()
    }

    async fn import_factor(&self, factor: &FactorRecord) -> Result<(), StoreError> {
        insert_factor(&self.pool, factor, true).await
    }
}
