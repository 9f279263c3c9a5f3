//! Signing keys and server secrets in SQLite.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use time::OffsetDateTime;

use super::{SqliteStore, from_ms, get, map_err, ms};
use crate::store::{KeyStore, SigningKeyRecord, StoreError};

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_der, created_at, activates_at, retired_at, revoked_at
             FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let retired: Option<i64> = get(row, "retired_at")?;
                let revoked: Option<i64> = get(row, "revoked_at")?;
                Ok(SigningKeyRecord {
                    kid: get(row, "kid")?,
                    alg: get(row, "alg")?,
                    private_der: get::<Vec<u8>>(row, "private_der")?.into(),
                    created_at: from_ms(get(row, "created_at")?)?,
                    activates_at: from_ms(get(row, "activates_at")?)?,
                    retired_at: retired.map(from_ms).transpose()?,
                    revoked_at: revoked.map(from_ms).transpose()?,
                })
            })
            .collect()
    }

    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND activates_at < ?",
        )
        .bind(ms(key.activates_at))
        .bind(ms(key.activates_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, created_at, activates_at, retired_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, NULL, NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key.private_der.expose_secret().to_vec())
        .bind(ms(key.created_at))
        .bind(ms(key.activates_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET revoked_at = ?1,
               retired_at = CASE WHEN retired_at IS NULL OR retired_at > ?1 THEN ?1 ELSE retired_at END
             WHERE kid <> ?2 AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, StoreError> {
        let row = sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET name = excluded.name
             RETURNING value",
        )
        .bind(name)
        .bind(candidate.to_vec())
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        get(&row, "value")
    }
}
