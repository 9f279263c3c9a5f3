//! The audit trail in SQLite: a change and its records in one transaction.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::refresh::insert_family;
use super::sessions::insert_session;
use super::users::insert_user;
use super::{Inserts, SqliteStore, delete_of_user, from_ms, get, map_err, ms, sql, uuid};
use crate::store::{AuditOutcome, AuditQuery, AuditRecord, AuditStore, AuditedChange, StoreError};

const AUDIT_COLUMNS: &str = "id, at, event, user_id, actor, ip, user_agent, outcome, details, \
                             expires_at, webhook_due, webhook_attempts";

static AUDIT_INSERTS: LazyLock<Inserts> =
    LazyLock::new(|| Inserts::new("audit_events", AUDIT_COLUMNS));

pub(super) fn audit_from_row(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
    let user_id: Option<String> = get(row, "user_id")?;
    let due: Option<i64> = get(row, "webhook_due")?;
    Ok(AuditRecord {
        id: uuid(row, "id")?,
        at: from_ms(get(row, "at")?)?,
        event: get(row, "event")?,
        user_id: user_id
            .map(|u| Uuid::parse_str(&u).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        actor: get(row, "actor")?,
        ip: get(row, "ip")?,
        user_agent: get(row, "user_agent")?,
        outcome: AuditOutcome::parse(&get::<String>(row, "outcome")?)?,
        details: get(row, "details")?,
        expires_at: from_ms(get(row, "expires_at")?)?,
        webhook_due: due.map(from_ms).transpose()?,
        webhook_attempts: u32::try_from(get::<i64>(row, "webhook_attempts")?).unwrap_or(0),
    })
}

/// Writes one record: the one insert every audited transaction (and `store copy`) uses.
pub(super) async fn insert_audit<'e, E>(
    executor: E,
    r: &AuditRecord,
    copied: bool,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    AUDIT_INSERTS
        .query(copied)
        .bind(r.id.to_string())
        .bind(ms(r.at))
        .bind(&r.event)
        .bind(r.user_id.map(|u| u.to_string()))
        .bind(&r.actor)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(r.outcome.as_str())
        .bind(&r.details)
        .bind(ms(r.expires_at))
        .bind(r.webhook_due.map(ms))
        .bind(i64::from(r.webhook_attempts))
        .execute(executor)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn execute(
    conn: &mut SqliteConnection,
    query: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
) -> Result<u64, StoreError> {
    Ok(query
        .execute(&mut *conn)
        .await
        .map_err(map_err)?
        .rows_affected())
}

/// Ends every login of `user_id` but the kept ones; 0 when the user does not exist.
async fn end_logins(
    conn: &mut SqliteConnection,
    user_id: Uuid,
    keep_family: Option<Uuid>,
    keep_session: Option<Uuid>,
) -> Result<u64, StoreError> {
    let bumped = execute(
        conn,
        sqlx::query("UPDATE users SET generation = generation + 1 WHERE id = ?")
            .bind(user_id.to_string()),
    )
    .await?;
    if bumped == 0 {
        return Ok(0);
    }
    delete_of_user(&mut *conn, "refresh_families", user_id, keep_family).await?;
    delete_of_user(&mut *conn, "sessions", user_id, keep_session).await?;
    Ok(bumped)
}

/// Applies one change on `conn`; returns how many rows it touched (the decisive ones).
async fn apply(conn: &mut SqliteConnection, change: AuditedChange<'_>) -> Result<u64, StoreError> {
    match change {
        AuditedChange::Nothing => Ok(0),
        AuditedChange::CreateUser(user) => insert_user(&mut *conn, user, false).await.map(|()| 1),
        AuditedChange::CreateFamily(family) => {
            insert_family(&mut *conn, family, false).await.map(|()| 1)
        }
        AuditedChange::CreateSession(session) => {
            insert_session(&mut *conn, session, false).await.map(|()| 1)
        }
        AuditedChange::DeleteFamily { id, user_id } => {
            let owner = user_id.map(|u| u.to_string());
            execute(
                conn,
                sqlx::query(
                    "DELETE FROM refresh_families WHERE id = ? AND (? IS NULL OR user_id = ?)",
                )
                .bind(id.to_string())
                .bind(owner.clone())
                .bind(owner),
            )
            .await
        }
        AuditedChange::DeleteSessionById { id, user_id } => {
            execute(
                conn,
                sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
                    .bind(id.to_string())
                    .bind(user_id.to_string()),
            )
            .await
        }
        AuditedChange::DeleteSession(hash) => {
            execute(
                conn,
                sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(hash.0.to_vec()),
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
                sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                    .bind(hash)
                    .bind(user_id.to_string()),
            )
            .await?;
            if set == 0 {
                return Ok(0);
            }
            end_logins(conn, user_id, keep_family, keep_session).await
        }
        AuditedChange::SetRoles { user_id, roles } => {
            let roles =
                serde_json::to_string(roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            execute(
                conn,
                sqlx::query("UPDATE users SET roles = ? WHERE id = ?")
                    .bind(roles)
                    .bind(user_id.to_string()),
            )
            .await
        }
        AuditedChange::SetDisabled { user_id, disabled } => {
            let set = execute(
                conn,
                sqlx::query("UPDATE users SET disabled = ? WHERE id = ?")
                    .bind(i64::from(disabled))
                    .bind(user_id.to_string()),
            )
            .await?;
            if set > 0 && disabled {
                delete_of_user(&mut *conn, "refresh_families", user_id, None).await?;
                delete_of_user(&mut *conn, "sessions", user_id, None).await?;
            }
            Ok(set)
        }
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audited(
        &self,
        change: AuditedChange<'_>,
        records: &[AuditRecord],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let touched = apply(&mut tx, change).await?;
        if touched > 0 || change.records_always() {
            for record in records {
                insert_audit(&mut *tx, record, false).await?;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(touched)
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let (cmp, order) = if q.newest_first {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let events = if q.events.is_empty() {
            String::new()
        } else {
            format!(" AND event IN ({})", vec!["?"; q.events.len()].join(", "))
        };
        let text = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_events
              WHERE (? IS NULL OR user_id = ?) AND (? IS NULL OR id {cmp} ?){events}
              ORDER BY id {order} LIMIT ?"
        );
        let user = q.user_id.map(|u| u.to_string());
        let after = q.after.map(|u| u.to_string());
        let mut query = sqlx::query(sql(text))
            .bind(user.clone())
            .bind(user)
            .bind(after.clone())
            .bind(after);
        for event in &q.events {
            query = query.bind(event.clone());
        }
        let rows = query
            .bind(i64::from(q.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn claim_audit_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // One statement: SQLite runs it under its write lock, so no two claims overlap.
        let rows = sqlx::query(sql(format!(
            "UPDATE audit_events SET webhook_due = ?1, webhook_attempts = webhook_attempts + 1
              WHERE id IN (SELECT id FROM audit_events
                            WHERE webhook_due IS NOT NULL AND webhook_due <= ?2
                            ORDER BY id LIMIT ?3)
              RETURNING {AUDIT_COLUMNS}"
        )))
        .bind(ms(lease_until))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
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
        sqlx::query("UPDATE audit_events SET webhook_due = ? WHERE id = ?")
            .bind(due.map(ms))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn purge_expired_audit(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit_events WHERE expires_at <= ?")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
