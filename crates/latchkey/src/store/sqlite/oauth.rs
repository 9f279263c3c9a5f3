//! OAuth sign-in state and linked identities in SQLite.
//!
//! Atomicity, for backends that port these: taking a state is one `DELETE … RETURNING`;
//! unlinking is one `DELETE` whose `WHERE` holds the last-login-method check; creating a user
//! with an identity is one transaction of two inserts.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, from_ms, get, hash, map_err, ms, uuid};
use crate::store::{
    IdentityRecord, OAuthStateRecord, OAuthStore, StoreError, TokenHash, UnlinkOutcome, UserRecord,
};

fn state_from_row(row: &SqliteRow) -> Result<OAuthStateRecord, StoreError> {
    let link: Option<String> = get(row, "link_user_id")?;
    Ok(OAuthStateRecord {
        state_hash: hash(&get::<Vec<u8>>(row, "state_hash")?)?,
        provider: get(row, "provider")?,
        binding_hash: hash(&get::<Vec<u8>>(row, "binding_hash")?)?,
        nonce: get(row, "nonce")?,
        pkce_verifier: SecretString::from(get::<String>(row, "pkce_verifier")?),
        redirect_to: get(row, "redirect_to")?,
        link_user_id: link
            .map(|u| Uuid::parse_str(&u).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        created_at: from_ms(get(row, "created_at")?)?,
        expires_at: from_ms(get(row, "expires_at")?)?,
    })
}

fn identity_from_row(row: &SqliteRow) -> Result<IdentityRecord, StoreError> {
    Ok(IdentityRecord {
        provider: get(row, "provider")?,
        subject: get(row, "subject")?,
        user_id: uuid(row, "user_id")?,
        email: get(row, "email")?,
        created_at: from_ms(get(row, "created_at")?)?,
    })
}

const INSERT_IDENTITY: &str = "INSERT INTO oauth_identities (provider, subject, user_id, email, created_at) VALUES (?, ?, ?, ?, ?)";

#[async_trait]
impl OAuthStore for SqliteStore {
    async fn save_oauth_state(&self, s: &OAuthStateRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, provider, binding_hash, nonce, pkce_verifier,
               redirect_to, link_user_id, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.state_hash.0.to_vec())
        .bind(&s.provider)
        .bind(s.binding_hash.0.to_vec())
        .bind(&s.nonce)
        .bind(s.pkce_verifier.expose_secret().to_owned())
        .bind(&s.redirect_to)
        .bind(s.link_user_id.map(|u| u.to_string()))
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError> {
        let row = sqlx::query("DELETE FROM oauth_states WHERE state_hash = ? RETURNING *")
            .bind(state_hash.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let record = row.as_ref().map(state_from_row).transpose()?;
        Ok(record.filter(|r| r.expires_at > now))
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM oauth_identities WHERE provider = ? AND subject = ?")
            .bind(provider)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(identity_from_row).transpose()
    }

    async fn link_identity(&self, i: &IdentityRecord) -> Result<(), StoreError> {
        sqlx::query(INSERT_IDENTITY)
            .bind(&i.provider)
            .bind(&i.subject)
            .bind(i.user_id.to_string())
            .bind(&i.email)
            .bind(ms(i.created_at))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        // One statement, so the "is there another way to log in" check cannot race with a
        // concurrent unlink of the user's other identity.
        let done = sqlx::query(
            "DELETE FROM oauth_identities WHERE user_id = ?1 AND provider = ?2
               AND ((SELECT password_hash FROM users WHERE id = ?1) IS NOT NULL
                    OR (SELECT COUNT(*) FROM oauth_identities WHERE user_id = ?1) > 1)",
        )
        .bind(user_id.to_string())
        .bind(provider)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() > 0 {
            return Ok(UnlinkOutcome::Unlinked);
        }
        let exists =
            sqlx::query("SELECT 1 FROM oauth_identities WHERE user_id = ? AND provider = ?")
                .bind(user_id.to_string())
                .bind(provider)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(if exists.is_some() {
            UnlinkOutcome::LastLoginMethod
        } else {
            UnlinkOutcome::NotLinked
        })
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM oauth_identities WHERE user_id = ? ORDER BY created_at, provider",
        )
        .bind(user_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        super::users::insert_user(&mut *tx, user, false).await?;
        sqlx::query(INSERT_IDENTITY)
            .bind(&identity.provider)
            .bind(&identity.subject)
            .bind(identity.user_id.to_string())
            .bind(&identity.email)
            .bind(ms(identity.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn purge_expired_oauth_states(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM oauth_states WHERE expires_at <= ?")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
#[path = "oauth_tests.rs"]
mod tests;
