//! OAuth sign-in state and linked identities in PostgreSQL. Taking a state is one
//! `DELETE … RETURNING`; uniqueness of identities comes from the table's constraints;
//! unlinking locks the user's row first, so two concurrent unlinks of a user's last two ways
//! to log in cannot both see the other one still there.

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::PgRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{get, hash_at, ts};
use super::users::insert_user;
use super::{PostgresStore, purge_batches, run};
use crate::store::{
    IdentityRecord, OAuthStateRecord, OAuthStore, StoreError, TokenHash, UnlinkOutcome, UserRecord,
};

fn state_from_row(row: &PgRow) -> Result<OAuthStateRecord, StoreError> {
    Ok(OAuthStateRecord {
        state_hash: hash_at(row, "state_hash")?,
        provider: get(row, "provider")?,
        binding_hash: hash_at(row, "binding_hash")?,
        nonce: get(row, "nonce")?,
        pkce_verifier: SecretString::from(get::<String>(row, "pkce_verifier")?),
        redirect_to: get(row, "redirect_to")?,
        link_user_id: get(row, "link_user_id")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

fn identity_from_row(row: &PgRow) -> Result<IdentityRecord, StoreError> {
    Ok(IdentityRecord {
        provider: get(row, "provider")?,
        subject: get(row, "subject")?,
        user_id: get(row, "user_id")?,
        email: get(row, "email")?,
        created_at: get(row, "created_at")?,
    })
}

/// Inserts an identity through `executor` (the pool, or a transaction).
async fn insert_identity<'e, E>(executor: E, i: &IdentityRecord) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(
        "INSERT INTO oauth_identities (provider, subject, user_id, email, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&i.provider)
    .bind(&i.subject)
    .bind(i.user_id)
    .bind(&i.email)
    .bind(ts(i.created_at))
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl OAuthStore for PostgresStore {
    async fn save_oauth_state(&self, s: &OAuthStateRecord) -> Result<(), StoreError> {
        run(sqlx::query(
            "INSERT INTO oauth_states (state_hash, provider, binding_hash, nonce, pkce_verifier,
               redirect_to, link_user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.state_hash.0.as_slice())
        .bind(&s.provider)
        .bind(s.binding_hash.0.as_slice())
        .bind(&s.nonce)
        .bind(s.pkce_verifier.expose_secret())
        .bind(&s.redirect_to)
        .bind(s.link_user_id)
        .bind(ts(s.created_at))
        .bind(ts(s.expires_at))
        .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError> {
        let row = run(
            sqlx::query("DELETE FROM oauth_states WHERE state_hash = $1 RETURNING *")
                .bind(state_hash.0.as_slice())
                .fetch_optional(self.pool()?),
        )
        .await?;
        let record = row.as_ref().map(state_from_row).transpose()?;
        Ok(record.filter(|r| r.expires_at > now))
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        let row = run(sqlx::query(
            "SELECT * FROM oauth_identities WHERE provider = $1 AND subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(identity_from_row).transpose()
    }

    async fn link_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        run(insert_identity(self.pool()?, identity)).await
    }

    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        let pool = self.pool()?;
        let transaction = async {
            let mut tx = pool.begin().await?;
            // The user's row lock serializes unlinks of one user; the DELETE that follows is a
            // new statement, so (READ COMMITTED) it sees what a previous holder committed.
            sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let done = sqlx::query(
                "DELETE FROM oauth_identities WHERE user_id = $1 AND provider = $2
                   AND ((SELECT password_hash FROM users WHERE id = $1) IS NOT NULL
                        OR (SELECT COUNT(*) FROM oauth_identities WHERE user_id = $1) > 1)",
            )
            .bind(user_id)
            .bind(provider)
            .execute(&mut *tx)
            .await?;
            let outcome = if done.rows_affected() > 0 {
                UnlinkOutcome::Unlinked
            } else {
                let linked = sqlx::query(
                    "SELECT 1 FROM oauth_identities WHERE user_id = $1 AND provider = $2",
                )
                .bind(user_id)
                .bind(provider)
                .fetch_optional(&mut *tx)
                .await?;
                if linked.is_some() {
                    UnlinkOutcome::LastLoginMethod
                } else {
                    UnlinkOutcome::NotLinked
                }
            };
            tx.commit().await?;
            Ok(outcome)
        };
        run(transaction).await
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM oauth_identities WHERE user_id = $1 ORDER BY created_at, provider",
        )
        .bind(user_id)
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError> {
        let mut tx = run(self.pool()?.begin()).await?;
        insert_user(&mut *tx, user).await?;
        run(insert_identity(&mut *tx, identity)).await?;
        run(tx.commit()).await
    }

    async fn purge_expired_oauth_states(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        purge_batches(
            self.pool()?,
            "DELETE FROM oauth_states WHERE state_hash IN (SELECT state_hash FROM oauth_states
               WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await
    }
}
