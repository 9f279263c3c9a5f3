//! Email tokens and the outbox in PostgreSQL. Issuing a token and using one are short
//! transactions that start with a write (`DELETE … RETURNING` takes the token's row lock, so
//! of two concurrent uses one finds nothing); a claim is one `UPDATE` over a
//! `SELECT … FOR UPDATE SKIP LOCKED`, so instances claiming at once take different messages.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{count, get, hash_at, ts};
use super::{PostgresStore, purge_batches, run};
use crate::store::{
    EmailPurpose, EmailTokenRecord, MailStore, OutboxMessage, StoreError, TokenHash,
};

const MESSAGE_COLUMNS: &str = "id, recipient, subject, body_text, body_html, created_at, \
     expires_at, attempts, next_attempt_at, lease_until, claim_id";

fn token_from_row(row: &PgRow) -> Result<EmailTokenRecord, StoreError> {
    Ok(EmailTokenRecord {
        hash: hash_at(row, "hash")?,
        purpose: EmailPurpose::parse(&get::<String>(row, "purpose")?)?,
        user_id: get(row, "user_id")?,
        email: get(row, "email")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

fn message_from_row(row: &PgRow) -> Result<OutboxMessage, StoreError> {
    Ok(OutboxMessage {
        id: get(row, "id")?,
        to: get(row, "recipient")?,
        subject: get(row, "subject")?,
        text: get(row, "body_text")?,
        html: get(row, "body_html")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        attempts: u32::try_from(get::<i32>(row, "attempts")?).unwrap_or(0),
        next_attempt_at: get(row, "next_attempt_at")?,
        lease_until: get(row, "lease_until")?,
        claim_id: get(row, "claim_id")?,
    })
}

async fn insert_message<'e, E>(executor: E, m: &OutboxMessage) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO mail_outbox ({MESSAGE_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    )))
    .bind(m.id)
    .bind(&m.to)
    .bind(&m.subject)
    .bind(&m.text)
    .bind(&m.html)
    .bind(ts(m.created_at))
    .bind(ts(m.expires_at))
    .bind(i32::try_from(m.attempts).unwrap_or(i32::MAX))
    .bind(ts(m.next_attempt_at))
    .bind(ts(m.lease_until))
    .bind(m.claim_id)
    .execute(executor)
    .await?;
    Ok(())
}

/// Deletes the token with this hash and purpose, returning it (alive or not).
async fn take_token(
    tx: &mut sqlx::PgConnection,
    hash: TokenHash,
    purpose: EmailPurpose,
) -> Result<Option<PgRow>, sqlx::Error> {
    sqlx::query(
        "DELETE FROM email_tokens WHERE hash = $1 AND purpose = $2
         RETURNING hash, purpose, user_id, email, created_at, expires_at",
    )
    .bind(hash.0.as_slice())
    .bind(purpose.as_str())
    .fetch_optional(&mut *tx)
    .await
}

#[async_trait]
impl MailStore for PostgresStore {
    async fn issue_email_token(
        &self,
        token: &EmailTokenRecord,
        message: &OutboxMessage,
    ) -> Result<(), StoreError> {
        let pool = self.pool()?;
        let transaction = async {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM email_tokens WHERE user_id = $1 AND purpose = $2")
                .bind(token.user_id)
                .bind(token.purpose.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO email_tokens (hash, purpose, user_id, email, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token.hash.0.as_slice())
            .bind(token.purpose.as_str())
            .bind(token.user_id)
            .bind(&token.email)
            .bind(ts(token.created_at))
            .bind(ts(token.expires_at))
            .execute(&mut *tx)
            .await?;
            insert_message(&mut *tx, message).await?;
            tx.commit().await
        };
        run(transaction).await
    }

    async fn find_email_token(
        &self,
        hash: TokenHash,
        purpose: EmailPurpose,
        now: OffsetDateTime,
    ) -> Result<Option<EmailTokenRecord>, StoreError> {
        let row = run(sqlx::query(
            "SELECT hash, purpose, user_id, email, created_at, expires_at FROM email_tokens
             WHERE hash = $1 AND purpose = $2 AND expires_at > $3",
        )
        .bind(hash.0.as_slice())
        .bind(purpose.as_str())
        .bind(ts(now))
        .fetch_optional(self.pool()?))
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn verify_email_with_token(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let pool = self.pool()?;
        let transaction = async {
            let mut tx = pool.begin().await?;
            let row = take_token(&mut tx, hash, EmailPurpose::Verify).await?;
            let mut verified = None;
            if let Some(row) = row {
                let token = token_from_row(&row).map_err(|e| sqlx::Error::Decode(e.into()))?;
                if token.expires_at > now {
                    let done = sqlx::query(
                        "UPDATE users SET email_verified = true
                         WHERE id = $1 AND lower(email) = lower($2)",
                    )
                    .bind(token.user_id)
                    .bind(&token.email)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 1 {
                        verified = Some(token.user_id);
                    }
                }
            }
            tx.commit().await?;
            Ok(verified)
        };
        run(transaction).await
    }

    async fn reset_password_with_token(
        &self,
        hash: TokenHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let pool = self.pool()?;
        let transaction = async {
            let mut tx = pool.begin().await?;
            let Some(row) = take_token(&mut tx, hash, EmailPurpose::Reset).await? else {
                return Ok(None);
            };
            let token = token_from_row(&row).map_err(|e| sqlx::Error::Decode(e.into()))?;
            if token.expires_at <= now {
                return Ok(None); // dropped without commit: rolled back
            }
            let done = sqlx::query(
                "UPDATE users SET password_hash = $1, generation = generation + 1 WHERE id = $2",
            )
            .bind(password_hash)
            .bind(token.user_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
            for statement in [
                "DELETE FROM email_tokens WHERE user_id = $1 AND purpose = 'reset'",
                "DELETE FROM refresh_families WHERE user_id = $1",
                "DELETE FROM sessions WHERE user_id = $1",
            ] {
                sqlx::query(statement)
                    .bind(token.user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Some(token.user_id))
        };
        run(transaction).await
    }

    async fn set_email_verified(&self, user_id: Uuid, verified: bool) -> Result<bool, StoreError> {
        let done = run(
            sqlx::query("UPDATE users SET email_verified = $1 WHERE id = $2")
                .bind(verified)
                .bind(user_id)
                .execute(self.pool()?),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn enqueue_mail(&self, message: &OutboxMessage) -> Result<(), StoreError> {
        run(insert_message(self.pool()?, message)).await
    }

    async fn claim_mail(
        &self,
        now: OffsetDateTime,
        claim_id: Uuid,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows = run(sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE mail_outbox SET claim_id = $1, lease_until = $2
             WHERE id IN (SELECT id FROM mail_outbox
                          WHERE next_attempt_at <= $3 AND lease_until <= $3
                          ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
             RETURNING {MESSAGE_COLUMNS}"
        )))
        .bind(claim_id)
        .bind(ts(lease_until))
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool()?))
        .await?;
        let mut claimed = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|m| (m.next_attempt_at, m.id));
        Ok(claimed)
    }

    async fn delete_mail(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = run(sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn retry_mail(
        &self,
        id: Uuid,
        claim_id: Uuid,
        attempts: u32,
        next_attempt_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = run(sqlx::query(
            "UPDATE mail_outbox SET attempts = $1, next_attempt_at = $2,
               lease_until = created_at, claim_id = NULL
             WHERE id = $3 AND claim_id = $4",
        )
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
        .bind(ts(next_attempt_at))
        .bind(id)
        .bind(claim_id)
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_mail(&self) -> Result<u64, StoreError> {
        let n: i64 =
            run(sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox").fetch_one(self.pool()?))
                .await?;
        Ok(count(n))
    }

    async fn purge_expired_mail(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let pool = self.pool()?;
        let tokens = purge_batches(
            pool,
            "DELETE FROM email_tokens WHERE hash IN (SELECT hash FROM email_tokens
               WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await?;
        let messages = purge_batches(
            pool,
            "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox
               WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await?;
        Ok(tokens + messages)
    }
}
