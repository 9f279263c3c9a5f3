//! The audit trail in PostgreSQL: a change and its records in one transaction; webhook
//! deliveries claimed with `FOR UPDATE SKIP LOCKED`.

use async_trait::async_trait;
use sqlx::PgConnection;
use sqlx::postgres::{PgArguments, PgRow};
use time::OffsetDateTime;
use uuid::Uuid;

use super::refresh::{INSERT_FAMILY, family_query};
use super::rows::{get, ts};
use super::sessions::{INSERT_SESSION, session_query};
use super::users::insert_user;
use super::{OPERATION_TIMEOUT, PostgresStore, map_err, purge_batches, run};
use crate::store::{AuditOutcome, AuditQuery, AuditRecord, AuditStore, AuditedChange, StoreError};

const AUDIT_COLUMNS: &str = "id, at, event, user_id, actor, ip, user_agent, outcome, details, \
                             expires_at, webhook_due, webhook_attempts";

/// Creates a record.
pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_events (id, at, event, user_id, actor, \
     ip, user_agent, outcome, details, expires_at, webhook_due, webhook_attempts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
/// `sql` with every field of `r` bound: the one insert every audited
/// transaction uses.
pub(super) fn audit_query<'q>(
    sql: &'static str,
    r: &'q AuditRecord,
) -> sqlx::query::Query<'q, sqlx::Postgres, PgArguments> {
    sqlx::query(sql)
        .bind(r.id)
        .bind(ts(r.at))
        .bind(&r.event)
        .bind(r.user_id)
        .bind(&r.actor)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(r.outcome.as_str())
        .bind(&r.details)
        .bind(ts(r.expires_at))
        .bind(r.webhook_due.map(ts))
        .bind(i32::try_from(r.webhook_attempts).unwrap_or(i32::MAX))
}

pub(super) fn audit_from_row(row: &PgRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: get(row, "id")?,
        at: get(row, "at")?,
        event: get(row, "event")?,
        user_id: get(row, "user_id")?,
        actor: get(row, "actor")?,
        ip: get(row, "ip")?,
        user_agent: get(row, "user_agent")?,
        outcome: AuditOutcome::parse(&get::<String>(row, "outcome")?)?,
        details: get(row, "details")?,
        expires_at: get(row, "expires_at")?,
        webhook_due: get(row, "webhook_due")?,
        webhook_attempts: u32::try_from(get::<i32>(row, "webhook_attempts")?).unwrap_or(0),
    })
}

async fn execute(
    conn: &mut PgConnection,
    query: sqlx::query::Query<'_, sqlx::Postgres, PgArguments>,
) -> Result<u64, StoreError> {
    Ok(query
        .execute(&mut *conn)
        .await
        .map_err(map_err)?
        .rows_affected())
}

async fn delete_logins(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep_family: Option<Uuid>,
    keep_session: Option<Uuid>,
) -> Result<(), StoreError> {
    execute(
        conn,
        sqlx::query(
            "DELETE FROM refresh_families WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)",
        )
        .bind(user_id)
        .bind(keep_family),
    )
    .await?;
    execute(
        conn,
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND ($2::uuid IS NULL OR id <> $2)")
            .bind(user_id)
            .bind(keep_session),
    )
    .await?;
    Ok(())
}

async fn end_logins(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep_family: Option<Uuid>,
    keep_session: Option<Uuid>,
) -> Result<u64, StoreError> {
    let bumped = execute(
        conn,
        sqlx::query("UPDATE users SET generation = generation + 1 WHERE id = $1").bind(user_id),
    )
    .await?;
    if bumped > 0 {
        delete_logins(conn, user_id, keep_family, keep_session).await?;
    }
    Ok(bumped)
}

/// Applies one change on `conn`; returns how many rows it touched (the decisive ones).
async fn apply(conn: &mut PgConnection, change: AuditedChange<'_>) -> Result<u64, StoreError> {
    match change {
        AuditedChange::Nothing => Ok(0),
        AuditedChange::CreateUser(user) => insert_user(&mut *conn, user).await.map(|()| 1),
        AuditedChange::CreateFamily(f) => execute(conn, family_query(INSERT_FAMILY, f)).await,
        AuditedChange::CreateSession(s) => execute(conn, session_query(INSERT_SESSION, s)).await,
        AuditedChange::DeleteFamily { id, user_id } => {
            execute(
                conn,
                sqlx::query(
                    "DELETE FROM refresh_families
                      WHERE id = $1 AND ($2::uuid IS NULL OR user_id = $2)",
                )
                .bind(id)
                .bind(user_id),
            )
            .await
        }
        AuditedChange::DeleteSessionById { id, user_id } => {
            execute(
                conn,
                sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id),
            )
            .await
        }
        AuditedChange::DeleteSession(hash) => {
            execute(
                conn,
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(hash.0.to_vec()),
            )
            .await
        }
        AuditedChange::EndLogins {
            user_id,
            keep_family,
            keep_session,
        } => end_logins(conn, user_id, keep_family, keep_session).await,
        AuditedChange::SetPassword {
            user_id,
            hash,
            keep_family,
            keep_session,
        } => {
            let set = execute(
                conn,
                sqlx::query(
                    "UPDATE users SET password_hash = $1, generation = generation + 1
                      WHERE id = $2",
                )
                .bind(hash)
                .bind(user_id),
            )
            .await?;
            if set > 0 {
                delete_logins(conn, user_id, keep_family, keep_session).await?;
            }
            Ok(set)
        }
        AuditedChange::SetRoles { user_id, roles } => {
            execute(
                conn,
                sqlx::query("UPDATE users SET roles = $1 WHERE id = $2")
                    .bind(roles)
                    .bind(user_id),
            )
            .await
        }
        AuditedChange::SetDisabled { user_id, disabled } => {
            let set = execute(
                conn,
                sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                    .bind(disabled)
                    .bind(user_id),
            )
            .await?;
            if set > 0 && disabled {
                delete_logins(conn, user_id, None, None).await?;
            }
            Ok(set)
        }
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audited(
        &self,
        change: AuditedChange<'_>,
        records: &[AuditRecord],
    ) -> Result<u64, StoreError> {
        let pool = self.pool()?;
        let transaction = async {
            let mut tx = pool.begin().await.map_err(map_err)?;
            let touched = apply(&mut tx, change).await?;
            if touched > 0 || change.records_always() {
                for record in records {
                    execute(&mut tx, audit_query(INSERT_AUDIT, record)).await?;
                }
            }
            tx.commit().await.map_err(map_err)?;
            Ok(touched)
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, transaction).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "PostgreSQL did not answer within {} s",
                OPERATION_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let (cmp, order) = if q.newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let text = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events
              WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::uuid IS NULL OR id {cmp} $2)
                AND (cardinality($3::text[]) = 0 OR event = ANY($3))
              ORDER BY id {order} LIMIT $4"
        );
        let rows = run(sqlx::query(sqlx::AssertSqlSafe(text))
            .bind(q.user_id)
            .bind(q.after)
            .bind(&q.events)
            .bind(i64::from(q.limit))
            .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn claim_audit_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let text = format!(
            "UPDATE audit_events SET webhook_due = $1, webhook_attempts = webhook_attempts + 1
              WHERE id IN (SELECT id FROM audit_events
                            WHERE webhook_due IS NOT NULL AND webhook_due <= $2
                            ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
              RETURNING {AUDIT_COLUMNS}"
        );
        let rows = run(sqlx::query(sqlx::AssertSqlSafe(text))
            .bind(ts(lease_until))
            .bind(ts(now))
            .bind(i64::from(limit))
            .fetch_all(self.pool()?))
        .await?;
        let mut records: Vec<AuditRecord> =
            rows.iter().map(audit_from_row).collect::<Result<_, _>>()?;
        records.sort_by_key(|r| r.id);
        Ok(records)
    }

    async fn set_audit_delivery(
        &self,
        id: Uuid,
        due: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        run(
            sqlx::query("UPDATE audit_events SET webhook_due = $1 WHERE id = $2")
                .bind(due.map(ts))
                .bind(id)
                .execute(self.pool()?),
        )
        .await?;
        Ok(())
    }

    async fn purge_expired_audit(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        purge_batches(
            self.pool()?,
            "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events
               WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await
    }
}
