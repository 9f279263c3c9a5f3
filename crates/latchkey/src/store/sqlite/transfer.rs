//! Bulk reads and verbatim writes of the SQLite backend, for `latchkey store copy`.

use secrecy::ExposeSecret;
use time::OffsetDateTime;
use uuid::Uuid;

use super::sessions::session_from_row;
use super::{SqliteStore, family_from_row, from_ms, get, map_err, ms};
use crate::store::{
    FamilyRecord, SecretRecord, SessionRecord, SigningKeyRecord, StoreCounts, StoreError,
    UserRecord,
};

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteStore {
    pub(super) async fn counts_at(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError> {
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

    pub(super) async fn live_families_page(
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

    pub(super) async fn live_sessions_page(
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

    pub(super) async fn write_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, user_id, data, csrf_token, created_at, last_used_at,
               idle_expires_at, absolute_expires_at, user_agent, ip)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET token_hash = excluded.token_hash,
               user_id = excluded.user_id, data = excluded.data, csrf_token = excluded.csrf_token,
               created_at = excluded.created_at, last_used_at = excluded.last_used_at,
               idle_expires_at = excluded.idle_expires_at,
               absolute_expires_at = excluded.absolute_expires_at,
               user_agent = excluded.user_agent, ip = excluded.ip",
        )
        .bind(s.id.to_string())
        .bind(s.token_hash.0.to_vec())
        .bind(s.user_id.to_string())
        .bind(s.data.to_string())
        .bind(&s.csrf_token)
        .bind(ms(s.created_at))
        .bind(ms(s.last_used_at))
        .bind(ms(s.idle_expires_at))
        .bind(ms(s.absolute_expires_at))
        .bind(&s.user_agent)
        .bind(&s.ip)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    pub(super) async fn all_server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
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

    pub(super) async fn write_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let roles =
            serde_json::to_string(&user.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO users (id, username, username_key, email, password_hash, roles, disabled,
                                email_verified, generation, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET username = excluded.username,
               username_key = excluded.username_key, email = excluded.email,
               password_hash = excluded.password_hash, roles = excluded.roles,
               disabled = excluded.disabled, email_verified = excluded.email_verified,
               generation = excluded.generation, created_at = excluded.created_at",
        )
        .bind(user.id.to_string())
        .bind(&user.username)
        .bind(&user.username_key)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(roles)
        .bind(i64::from(user.disabled))
        .bind(i64::from(user.email_verified))
        .bind(i64::try_from(user.generation).unwrap_or(i64::MAX))
        .bind(ms(user.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    pub(super) async fn write_family(&self, f: &FamilyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, current_hash, previous_hash, generation, rotated_at,
               token_expires_at, expires_at, created_at, last_used_at, user_agent, ip)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id,
               current_hash = excluded.current_hash, previous_hash = excluded.previous_hash,
               generation = excluded.generation, rotated_at = excluded.rotated_at,
               token_expires_at = excluded.token_expires_at, expires_at = excluded.expires_at,
               created_at = excluded.created_at, last_used_at = excluded.last_used_at,
               user_agent = excluded.user_agent, ip = excluded.ip",
        )
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
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    pub(super) async fn write_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
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

    pub(super) async fn write_server_secret(
        &self,
        secret: &SecretRecord,
    ) -> Result<(), StoreError> {
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
