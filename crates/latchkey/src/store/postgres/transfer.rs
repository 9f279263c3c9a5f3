//! Bulk reads and verbatim writes of the PostgreSQL backend, for `latchkey store copy`: pages
//! in id order, and upserts that keep every field as given.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use uuid::Uuid;

use super::refresh::{UPSERT_FAMILY, family_query};
use super::rows::{big, count, family_from_row, get, session_from_row, ts};
use super::sessions::{UPSERT_SESSION, session_query};
use super::{PostgresStore, run};
use crate::store::{
    FamilyRecord, SecretRecord, SessionRecord, SigningKeyRecord, StoreCounts, StoreError,
    TransferStore, UserRecord,
};

#[async_trait]
impl TransferStore for PostgresStore {
    async fn counts(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError> {
        let row = run(sqlx::query(
            "SELECT (SELECT COUNT(*) FROM users) AS users,
                    (SELECT COUNT(*) FROM refresh_families
                      WHERE expires_at > $1 AND token_expires_at > $1) AS families,
                    (SELECT COUNT(*) FROM oauth_identities) AS identities,
                    (SELECT COUNT(*) FROM sessions
                      WHERE idle_expires_at > $1 AND absolute_expires_at > $1) AS sessions,
                    (SELECT COUNT(*) FROM signing_keys) AS signing_keys,
                    (SELECT COUNT(*) FROM server_secrets) AS server_secrets",
        )
        .bind(ts(now))
        .fetch_one(self.pool()?))
        .await?;
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
        let rows = run(sqlx::query(
            "SELECT * FROM refresh_families
              WHERE ($1::uuid IS NULL OR id > $1) AND expires_at > $2 AND token_expires_at > $2
              ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(family_from_row).collect()
    }

    async fn list_live_sessions(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM sessions
              WHERE ($1::uuid IS NULL OR id > $1)
                AND idle_expires_at > $2 AND absolute_expires_at > $2
              ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT name, value, created_at FROM server_secrets ORDER BY name",
        )
        .fetch_all(self.pool()?))
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SecretRecord {
                    name: get(row, "name")?,
                    value: get::<Vec<u8>>(row, "value")?.into(),
                    created_at: get(row, "created_at")?,
                })
            })
            .collect()
    }

    async fn import_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        run(sqlx::query(
            "INSERT INTO users (id, username, username_key, email, password_hash, roles, disabled,
                                email_verified, generation, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET username = excluded.username,
               username_key = excluded.username_key, email = excluded.email,
               password_hash = excluded.password_hash, roles = excluded.roles,
               disabled = excluded.disabled, email_verified = excluded.email_verified,
               generation = excluded.generation, created_at = excluded.created_at",
        )
        .bind(user.id)
        .bind(&user.username)
        .bind(&user.username_key)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.roles)
        .bind(user.disabled)
        .bind(user.email_verified)
        .bind(big(user.generation))
        .bind(ts(user.created_at))
        .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn import_family(&self, f: &FamilyRecord) -> Result<(), StoreError> {
        run(family_query(UPSERT_FAMILY, f).execute(self.pool()?)).await?;
        Ok(())
    }

    async fn import_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        run(session_query(UPSERT_SESSION, s).execute(self.pool()?)).await?;
        Ok(())
    }

    async fn import_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        run(sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, created_at, activates_at,
               retired_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (kid) DO UPDATE SET alg = excluded.alg,
               private_der = excluded.private_der, created_at = excluded.created_at,
               activates_at = excluded.activates_at, retired_at = excluded.retired_at,
               revoked_at = excluded.revoked_at",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key.private_der.expose_secret())
        .bind(ts(key.created_at))
        .bind(ts(key.activates_at))
        .bind(key.retired_at.map(ts))
        .bind(key.revoked_at.map(ts))
        .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn import_server_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        run(sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value,
               created_at = excluded.created_at",
        )
        .bind(&secret.name)
        .bind(secret.value.expose_secret())
        .bind(ts(secret.created_at))
        .execute(self.pool()?))
        .await?;
        Ok(())
    }
}
