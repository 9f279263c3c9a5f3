//! Second factors and pending second-factor logins in PostgreSQL: accepting a TOTP step and
//! spending a recovery code are one conditional `UPDATE` each (a concurrent second writer
//! re-checks its `WHERE` after the first's row lock and matches nothing); completing a login
//! is one `DELETE … RETURNING`.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretSlice};
use sqlx::postgres::PgRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{get, hash_at, ts};
use super::{PostgresStore, purge_batches, run};
use crate::store::{FactorRecord, MfaChallengeRecord, MfaStore, StoreError, TokenHash};

fn factor_from_row(row: &PgRow) -> Result<FactorRecord, StoreError> {
    Ok(FactorRecord {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        kind: get(row, "kind")?,
        secret: SecretSlice::from(get::<Vec<u8>>(row, "secret")?),
        last_step: get(row, "last_step")?,
        confirmed_at: get(row, "confirmed_at")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

fn challenge_from_row(row: &PgRow) -> Result<MfaChallengeRecord, StoreError> {
    Ok(MfaChallengeRecord {
        token_hash: hash_at(row, "token_hash")?,
        user_id: get(row, "user_id")?,
        endpoint: get(row, "endpoint")?,
        amr: get(row, "amr")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

macro_rules! insert_factor {
    () => {
        "INSERT INTO mfa_factors (id, user_id, kind, secret, last_step, confirmed_at,
               created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    };
}

pub(super) const INSERT_FACTOR: &str = insert_factor!();
const UPSERT_FACTOR: &str = concat!(
    insert_factor!(),
    " ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, kind = excluded.kind,
        secret = excluded.secret, last_step = excluded.last_step,
        confirmed_at = excluded.confirmed_at, created_at = excluded.created_at,
        last_used_at = excluded.last_used_at"
);

pub(super) fn factor_query<'q>(
    sql: &'static str,
    f: &'q FactorRecord,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql)
        .bind(f.id)
        .bind(f.user_id)
        .bind(&f.kind)
        .bind(f.secret.expose_secret())
        .bind(f.last_step)
        .bind(f.confirmed_at.map(ts))
        .bind(ts(f.created_at))
        .bind(f.last_used_at.map(ts))
}

#[async_trait]
impl MfaStore for PostgresStore {
    async fn add_factors(&self, factors: &[FactorRecord]) -> Result<(), StoreError> {
        let pool = self.pool()?;
        let transaction = async {
            let mut tx = pool.begin().await?;
            for f in factors {
                factor_query(INSERT_FACTOR, f).execute(&mut *tx).await?;
            }
            tx.commit().await
        };
        run(transaction).await
    }

    async fn list_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
    ) -> Result<Vec<FactorRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM mfa_factors WHERE user_id = $1 AND ($2::text IS NULL OR kind = $2)
             ORDER BY created_at, id",
        )
        .bind(user_id)
        .bind(kind)
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(factor_from_row).collect()
    }

    async fn delete_factors(
        &self,
        user_id: Uuid,
        kind: Option<&str>,
        pending_only: bool,
    ) -> Result<u64, StoreError> {
        let done = run(sqlx::query(
            "DELETE FROM mfa_factors WHERE user_id = $1 AND ($2::text IS NULL OR kind = $2)
               AND (NOT $3 OR confirmed_at IS NULL)",
        )
        .bind(user_id)
        .bind(kind)
        .bind(pending_only)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected())
    }

    async fn confirm_factor(
        &self,
        user_id: Uuid,
        id: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = run(sqlx::query(
            "UPDATE mfa_factors SET confirmed_at = $1, last_used_at = $1, last_step = $2
              WHERE id = $3 AND user_id = $4 AND confirmed_at IS NULL",
        )
        .bind(ts(now))
        .bind(step)
        .bind(id)
        .bind(user_id)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn accept_factor_step(
        &self,
        id: Uuid,
        step: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = run(sqlx::query(
            "UPDATE mfa_factors SET last_step = $1, last_used_at = $2
              WHERE id = $3 AND confirmed_at IS NOT NULL AND last_step < $1",
        )
        .bind(step)
        .bind(ts(now))
        .bind(id)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn use_factor_once(
        &self,
        user_id: Uuid,
        kind: &str,
        secret: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = run(sqlx::query(
            "UPDATE mfa_factors SET last_used_at = $1
              WHERE id = (SELECT id FROM mfa_factors WHERE user_id = $2 AND kind = $3
                            AND secret = $4 AND confirmed_at IS NOT NULL
                            AND last_used_at IS NULL LIMIT 1)
                AND last_used_at IS NULL",
        )
        .bind(ts(now))
        .bind(user_id)
        .bind(kind)
        .bind(secret)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_mfa_challenge(&self, c: &MfaChallengeRecord) -> Result<(), StoreError> {
        run(sqlx::query(
            "INSERT INTO mfa_challenges (token_hash, user_id, endpoint, amr, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(c.token_hash.0.as_slice())
        .bind(c.user_id)
        .bind(&c.endpoint)
        .bind(&c.amr)
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn find_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError> {
        let row = run(sqlx::query(
            "SELECT * FROM mfa_challenges WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash.0.as_slice())
        .bind(ts(now))
        .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(challenge_from_row).transpose()
    }

    async fn take_mfa_challenge(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<MfaChallengeRecord>, StoreError> {
        let row = run(sqlx::query(
            "DELETE FROM mfa_challenges WHERE token_hash = $1 AND expires_at > $2 RETURNING *",
        )
        .bind(token_hash.0.as_slice())
        .bind(ts(now))
        .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(challenge_from_row).transpose()
    }

    async fn purge_expired_mfa_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        purge_batches(
            self.pool()?,
            "DELETE FROM mfa_challenges WHERE token_hash IN (SELECT token_hash FROM mfa_challenges
               WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await
    }

    async fn list_all_factors(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<FactorRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM mfa_factors WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(factor_from_row).collect()
    }

    async fn import_factor(&self, factor: &FactorRecord) -> Result<(), StoreError> {
        run(factor_query(UPSERT_FACTOR, factor).execute(self.pool()?)).await?;
        Ok(())
    }
}
