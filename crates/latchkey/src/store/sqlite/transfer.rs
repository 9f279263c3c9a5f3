//! Bulk reads and verbatim writes of the SQLite backend, for `latchkey store copy`.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use uuid::Uuid;

use super::refresh::family_from_row;
use super::sessions::session_from_row;
use super::{SqliteStore, from_ms, get, map_err, ms};
use crate::store::{
    FamilyRecord, SecretRecord, SessionRecord, SigningKeyRecord, StoreCounts, StoreError,
    TransferStore, UserRecord,
};

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl TransferStore for SqliteStore {
    async fn counts(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM users) AS users,
                    (SELECT COUNT(*) FROM refresh_families
                      WHERE expires_at > ?1 AND token_expires_at > ?1) AS families,
                    (SELECT COUNT(*) FROM oauth_identities) AS identities,
                    (SELECT COUNT(*) FROM sessions
                      WHERE idle_expires_at > ?1 AND absolute_expires_at > ?1) AS sessions,
                    (SELECT COUNT(*) FROM signing_keys) AS signing_keys,
                    (SELECT COUNT(*) FROM server_secrets) AS server_secrets",
        )
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(StoreCounts {
            users: count(get(&row, "users")?),
            families: count(get(&row, "families")?),
            sessions: count(get(&row, "sessions")?),
            identities: count(get(&row, "identities")?),
            signing_keys: count(get(&row, "signing_keys")?),
            server_secrets: count(get(&row, "server_secrets")?),
        })
    }

    async fn list_live_families(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        let after = after.map(|u| u.to_string());
        let rows = sqlx::query(
            "SELECT * FROM refresh_families
              WHERE (?1 IS NULL OR id > ?1) AND expires_at > ?2 AND token_expires_at > ?2
              ORDER BY id LIMIT ?3",
        )
        .bind(after)
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(family_from_row).collect()
    }

    async fn list_live_sessions(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM sessions
              WHERE (?1 IS NULL OR id > ?1) AND idle_expires_at > ?2 AND absolute_expires_at > ?2
              ORDER BY id LIMIT ?3",
        )
        .bind(after.map(|u| u.to_string()))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn import_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        super::sessions::insert_session(&self.pool, session, true).await
    }

    async fn server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let rows = sqlx::query("SELECT name, value, created_at FROM server_secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(SecretRecord {
                    name: get(row, "name")?,
                    value: get::<Vec<u8>>(row, "value")?.into(),
                    created_at: from_ms(get(row, "created_at")?)?,
                })
            })
            .collect()
    }

    async fn import_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        super::users::insert_user(&self.pool, user, true).await
    }

    async fn import_family(&self, family: &FamilyRecord) -> Result<(), StoreError> {
        super::refresh::insert_family(&self.pool, family, true).await
    }

    async fn import_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, created_at, activates_at, retired_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(kid) DO UPDATE SET alg = excluded.alg, private_der = excluded.private_der,
               created_at = excluded.created_at, activates_at = excluded.activates_at,
               retired_at = excluded.retired_at, revoked_at = excluded.revoked_at",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key.private_der.expose_secret().to_vec())
        .bind(ms(key.created_at))
        .bind(ms(key.activates_at))
        .bind(key.retired_at.map(ms))
        .bind(key.revoked_at.map(ms))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn import_server_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
        )
        .bind(&secret.name)
        .bind(secret.value.expose_secret().to_vec())
        .bind(ms(secret.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }
}
