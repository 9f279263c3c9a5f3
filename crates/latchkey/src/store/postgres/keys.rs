//! Signing keys and server secrets in PostgreSQL. Adding a key retires the earlier ones in
//! the same transaction; a server secret is stored once by `INSERT … ON CONFLICT`, so
//! concurrent first starts agree on one value.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::rows::{get, ts};
use super::{PostgresStore, run};
use crate::store::{KeyStore, SigningKeyRecord, StoreError};

pub(super) fn key_from_row(row: &PgRow) -> Result<SigningKeyRecord, StoreError> {
    Ok(SigningKeyRecord {
        kid: get(row, "kid")?,
        alg: get(row, "alg")?,
        private_der: get::<Vec<u8>>(row, "private_der")?.into(),
        created_at: get(row, "created_at")?,
        activates_at: get(row, "activates_at")?,
        retired_at: get(row, "retired_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT kid, alg, private_der, created_at, activates_at, retired_at, revoked_at
               FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let pool = self.pool()?;
        let transaction = async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE signing_keys SET retired_at = $1
                  WHERE retired_at IS NULL AND activates_at < $1",
            )
            .bind(ts(key.activates_at))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO signing_keys (kid, alg, private_der, created_at, activates_at,
                   retired_at, revoked_at)
                 VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
            )
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(key.private_der.expose_secret())
            .bind(ts(key.created_at))
            .bind(ts(key.activates_at))
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        run(transaction).await
    }

    async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError> {
        let done = run(sqlx::query(
            "UPDATE signing_keys SET revoked_at = $1,
                    retired_at = CASE WHEN retired_at IS NULL OR retired_at > $1
                                      THEN $1 ELSE retired_at END
              WHERE kid <> $2 AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(keep)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected())
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StoreError> {
        // `DO UPDATE` (a no-op change) rather than `DO NOTHING`, so that `RETURNING` gives the
        // stored value when the row exists: one round trip, and concurrent first starts agree.
        let row = run(sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET name = excluded.name
             RETURNING value",
        )
        .bind(name)
        .bind(candidate)
        .bind(ts(now))
        .fetch_one(self.pool()?))
        .await?;
        get(&row, "value")
    }
}
