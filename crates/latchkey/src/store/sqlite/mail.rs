//! Email tokens and the outbox in SQLite.
//!
//! Atomicity, for backends that port these: issuing a token is one transaction (delete the
//! user's older tokens of the purpose, insert the token, insert the message); using a token is
//! one transaction that starts with a `DELETE … RETURNING` (the write lock is taken at once,
//! and a token is consumed once); a claim is one `UPDATE … WHERE id IN (SELECT … LIMIT n)
//! RETURNING`.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, from_ms, get, hash, map_err, ms, uuid};
use crate::store::{
    EmailPurpose, EmailTokenRecord, MailStore, OutboxMessage, StoreError, TokenHash,
};

const MESSAGE_COLUMNS: &str = "id, recipient, subject, body_text, body_html, created_at, \
     expires_at, attempts, next_attempt_at, lease_until, claim_id";

fn token_from_row(row: &SqliteRow) -> Result<EmailTokenRecord, StoreError> {
    Ok(EmailTokenRecord {
        hash: hash(&get::<Vec<u8>>(row, "hash")?)?,
        purpose: EmailPurpose::parse(&get::<String>(row, "purpose")?)?,
        user_id: uuid(row, "user_id")?,
        email: get(row, "email")?,
        created_at: from_ms(get(row, "created_at")?)?,
        expires_at: from_ms(get(row, "expires_at")?)?,
    })
}

fn message_from_row(row: &SqliteRow) -> Result<OutboxMessage, StoreError> {
    let claim: Option<String> = get(row, "claim_id")?;
    Ok(OutboxMessage {
        id: uuid(row, "id")?,
        to: get(row, "recipient")?,
        subject: get(row, "subject")?,
        text: get(row, "body_text")?,
        html: get(row, "body_html")?,
        created_at: from_ms(get(row, "created_at")?)?,
        expires_at: from_ms(get(row, "expires_at")?)?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: from_ms(get(row, "next_attempt_at")?)?,
        lease_until: from_ms(get(row, "lease_until")?)?,
        claim_id: claim
            .map(|c| Uuid::parse_str(&c).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
    })
}

async fn insert_message<'e, E>(executor: E, m: &OutboxMessage) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO mail_outbox ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )))
    .bind(m.id.to_string())
    .bind(&m.to)
    .bind(&m.subject)
    .bind(&m.text)
    .bind(&m.html)
    .bind(ms(m.created_at))
    .bind(ms(m.expires_at))
    .bind(i64::from(m.attempts))
    .bind(ms(m.next_attempt_at))
    .bind(ms(m.lease_until))
    .bind(m.claim_id.map(|c| c.to_string()))
    .execute(executor)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Deletes the token with this hash and purpose, returning it (alive or not).
async fn take_token(
    tx: &mut sqlx::SqliteConnection,
    hash: TokenHash,
    purpose: EmailPurpose,
) -> Result<Option<EmailTokenRecord>, StoreError> {
    let row = sqlx::query(
        "DELETE FROM email_tokens WHERE hash = ? AND purpose = ?
         RETURNING hash, purpose, user_id, email, created_at, expires_at",
    )
    .bind(hash.0.to_vec())
    .bind(purpose.as_str())
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    row.as_ref().map(token_from_row).transpose()
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn issue_email_token(
        &self,
        token: &EmailTokenRecord,
        message: &OutboxMessage,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM email_tokens WHERE user_id = ? AND purpose = ?")
            .bind(token.user_id.to_string())
            .bind(token.purpose.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO email_tokens (hash, purpose, user_id, email, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token.hash.0.to_vec())
        .bind(token.purpose.as_str())
        .bind(token.user_id.to_string())
        .bind(&token.email)
        .bind(ms(token.created_at))
        .bind(ms(token.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_message(&mut *tx, message).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_email_token(
        &self,
        hash: TokenHash,
        purpose: EmailPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT hash, purpose, user_id, email, created_at, expires_at FROM email_tokens
             WHERE hash = ? AND purpose = ? AND expires_at > ?",
        )
        .bind(hash.0.to_vec())
        .bind(purpose.as_str())
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn verify_email_with_token(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let verified = match take_token(&mut tx, hash, EmailPurpose::Verify).await? {
            Some(token) if token.expires_at > now => {
                let done = sqlx::query(
                    "UPDATE users SET email_verified = 1 WHERE id = ? AND email = ? COLLATE NOCASE",
                )
                .bind(token.user_id.to_string())
                .bind(&token.email)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
                (done.rows_affected() == 1).then_some(token.user_id)
            }
            _ => None,
        };
        tx.commit().await.map_err(map_err)?;
        Ok(verified)
    }

    async fn reset_password_with_token(
        &self,
        hash: TokenHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let Some(token) = take_token(&mut tx, hash, EmailPurpose::Reset).await? else {
            return Ok(None); // the transaction rolls back: nothing was deleted
        };
        if token.expires_at <= now {
            return Ok(None); // rolled back: an expired token stays for the purge
        }
        let user = token.user_id.to_string();
        let done = sqlx::query(
            "UPDATE users SET password_hash = ?, generation = generation + 1 WHERE id = ?",
        )
        .bind(password_hash)
        .bind(&user)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        for statement in [
            "DELETE FROM email_tokens WHERE user_id = ? AND purpose = 'reset'",
            "DELETE FROM refresh_families WHERE user_id = ?",
            "DELETE FROM sessions WHERE user_id = ?",
        ] {
            sqlx::query(statement)
                .bind(&user)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(Some(token.user_id))
    }

    async fn set_email_verified(&self, user_id: Uuid, verified: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET email_verified = ? WHERE id = ?")
            .bind(i64::from(verified))
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn enqueue_mail(&self, message: &OutboxMessage) -> Result<(), StoreError> {
        insert_message(&self.pool, message).await
    }

    async fn claim_mail(
        &self,
        now: OffsetDateTime,
        claim_id: Uuid,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE mail_outbox SET claim_id = ?1, lease_until = ?2
             WHERE id IN (SELECT id FROM mail_outbox
                          WHERE next_attempt_at <= ?3 AND lease_until <= ?3
                          ORDER BY next_attempt_at, id LIMIT ?4)
             RETURNING {MESSAGE_COLUMNS}"
        )))
        .bind(claim_id.to_string())
        .bind(ms(lease_until))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut claimed = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|m| (m.next_attempt_at, m.id));
        Ok(claimed)
    }

    async fn delete_mail(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM mail_outbox WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn retry_mail(
        &self,
        id: Uuid,
        claim_id: Uuid,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mail_outbox SET attempts = ?, next_attempt_at = ?, lease_until = created_at,
               claim_id = NULL
             WHERE id = ? AND claim_id = ?",
        )
        .bind(i64::from(attempts))
        .bind(ms(next_attempt_at))
        .bind(id.to_string())
        .bind(claim_id.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_mail(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM mail_outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    async fn purge_expired_mail(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let mut purged = 0;
        for statement in [
            "DELETE FROM email_tokens WHERE expires_at <= ?",
            "DELETE FROM mail_outbox WHERE expires_at <= ?",
        ] {
            purged += sqlx::query(statement)
                .bind(ms(now))
                .execute(&self.pool)
                .await
                .map_err(map_err)?
                .rows_affected();
        }
        Ok(purged)
    }
}
