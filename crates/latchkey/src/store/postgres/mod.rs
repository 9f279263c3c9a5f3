//! The PostgreSQL backend: one row per record, every operation one statement (or one short
//! transaction), uniqueness from constraints, migrations embedded and applied under an
//! advisory lock, and a pool that connects lazily so the server starts during an outage.
//!
//! Driver: `sqlx` (already the SQLite driver): one pool, one migrator (which takes
//! `pg_advisory_lock` while it migrates) and rustls TLS on aws-lc-rs, with no second
//! dependency tree.

mod audit;
mod keys;
mod mail;
mod mfa;
mod oauth;
mod passkeys;
mod refresh;
mod rows;
mod sessions;
mod throttle;
mod transfer;
mod users;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use time::OffsetDateTime;

use super::{Store, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connections per instance. Several instances share the server's `max_connections` (100 by
/// default): ten instances of ten fit.
const MAX_CONNECTIONS: u32 = 10;
/// How long a request waits for a connection (which includes connecting) before it is
/// answered 503: an outage must not hold requests.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The bound on any one operation, whatever it waits for (a stalled server, a lock).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// The server-side bound on a statement, and on waiting for a lock: the server gives up
/// too, so a query abandoned by [`OPERATION_TIMEOUT`] does not run on.
const STATEMENT_TIMEOUT_MS: u32 = 5_000;
const LOCK_TIMEOUT_MS: u32 = 3_000;
/// A pooled connection idle for longer is pinged before it is used.
const IDLE_PING_AFTER: Duration = Duration::from_secs(2);
/// Rows per expiry `DELETE`: small batches hold few locks for a short time.
const PURGE_BATCH: i64 = 1_000;

/// A [`super::Store`] on a PostgreSQL database (13 or later).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Set once the migrations are known to be applied; until then every operation answers
    /// [`StoreError::Unavailable`].
    migrated: AtomicBool,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.inner.pool.connect_options();
        f.debug_struct("PostgresStore")
            .field("host", &options.get_host())
            .field("database", &options.get_database())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Opens the database at `url` (`postgres://` or `postgresql://`, with libpq's `sslmode`,
    /// `sslrootcert`, `host=/socket/dir`, ... parameters) and applies the embedded migrations.
    /// When the server cannot be reached yet the store opens anyway: operations answer
    /// [`StoreError::Unavailable`] until a background task, which keeps trying, has migrated.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] for a URL the driver refuses, [`StoreError::Corrupt`] when
    /// the database holds migrations this version does not know (or changed ones).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad PostgreSQL URL: {e}")))?
            .options([
                ("statement_timeout", STATEMENT_TIMEOUT_MS.to_string()),
                ("lock_timeout", LOCK_TIMEOUT_MS.to_string()),
            ]);
        if options.get_application_name().is_none() {
            options = options.application_name("latchkey");
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .max_lifetime(Duration::from_secs(1_800))
            // sqlx pings every connection it takes back, so a busy pool need not ping again
            // before handing one out (a round trip per query); one idle for a while may have
            // been cut (a restart, a failover), so that one is pinged.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // After a failover the old primary may come back as a replica: refuse
                    // it, so that writes never land on a read-only server.
                    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only")
                        .fetch_one(&mut *conn)
                        .await?;
                    if read_only == "on" {
                        return Err(sqlx::Error::Protocol(
                            "the server is read-only (a replica); Latchkey needs the primary"
                                .into(),
                        ));
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        let inner = Arc::new(Inner {
            pool,
            migrated: AtomicBool::new(false),
        });
        match inner.migrate().await {
            Ok(()) => {}
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, "PostgreSQL is unreachable; starting anyway and retrying");
                tokio::spawn(migrate_in_background(Arc::downgrade(&inner)));
            }
            Err(e) => return Err(e),
        }
        Ok(Self { inner })
    }

    /// The pool, once the schema is in place.
    fn pool(&self) -> Result<&PgPool, StoreError> {
        if self.inner.migrated.load(Ordering::Acquire) {
            Ok(&self.inner.pool)
        } else {
            Err(StoreError::Unavailable(
                "PostgreSQL has not been reached yet".into(),
            ))
        }
    }
}

impl Inner {
    async fn migrate(&self) -> Result<(), StoreError> {
        let run = MIGRATOR.run(&self.pool);
        match tokio::time::timeout(OPERATION_TIMEOUT * 6, run).await {
            Ok(Ok(())) => {
                self.migrated.store(true, Ordering::Release);
                Ok(())
            }
            Ok(Err(sqlx::migrate::MigrateError::Execute(e))) => Err(map_err(e)),
            Ok(Err(e)) => Err(StoreError::Corrupt(format!("migration failed: {e}"))),
            Err(_) => Err(StoreError::Unavailable("migrating timed out".into())),
        }
    }
}

/// Retries the migrations until they succeed or the store is dropped.
async fn migrate_in_background(inner: std::sync::Weak<Inner>) {
    let mut delay = Duration::from_millis(250);
    loop {
        tokio::time::sleep(delay).await;
        let Some(inner) = inner.upgrade() else { return };
        match inner.migrate().await {
            Ok(()) => {
                tracing::info!("PostgreSQL answered: the schema is in place");
                return;
            }
            Err(StoreError::Unavailable(e)) => {
                tracing::debug!(error = %e, "PostgreSQL still unreachable");
            }
            Err(e) => tracing::error!(error = %e, "migrating PostgreSQL failed"),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        run(sqlx::query("SELECT 1").execute(self.pool()?)).await?;
        Ok(())
    }
}

/// The expiry purge of each capability (`purge_expired_*`, summed by
/// [`Store::purge_expired`]): runs `delete` (a `DELETE` of at most `$2` rows expired at `$1`, which skips rows locked by
/// requests: `… WHERE key IN (SELECT key … LIMIT $2 FOR UPDATE SKIP LOCKED)`) until a batch
/// comes back short. Each batch is its own short statement, so the purge never holds many
/// locks for long and never waits for a request; reads check expiry themselves, so what is
/// left for the next round is never served.
async fn purge_batches(
    pool: &PgPool,
    delete: &'static str,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut total = 0;
    loop {
        let done = run(sqlx::query(delete)
            .bind(rows::ts(now))
            .bind(PURGE_BATCH)
            .execute(pool))
        .await?
        .rows_affected();
        total += done;
        if done < PURGE_BATCH.unsigned_abs() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

/// Runs one database operation under [`OPERATION_TIMEOUT`], mapping its error.
async fn run<T>(operation: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
        Ok(result) => result.map_err(map_err),
        Err(_) => Err(StoreError::Unavailable(format!(
            "PostgreSQL did not answer within {} s",
            OPERATION_TIMEOUT.as_secs()
        ))),
    }
}

/// SQLSTATE classes and codes that mean "not now" rather than "never": connection exceptions
/// (08), insufficient resources (53), operator intervention (57: shutdown, cancel, statement
/// timeout, "cannot connect now"), serialization failures and deadlocks (40), a lock not
/// available in time (55P03), and a write sent to a read-only server (25006, a replica after
/// a failover).
fn is_transient(code: &str) -> bool {
    ["08", "53", "57", "40"].iter().any(|c| code.starts_with(c))
        || matches!(code, "55P03" | "25006")
}

/// Maps a driver error: a uniqueness violation is a conflict; anything that means "not now"
/// is unavailable; the rest is an answer this version cannot use.
fn map_err(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_transient(&c)) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Corrupt(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::is_transient;

    #[test]
    fn outages_and_failovers_are_transient_and_bad_sql_is_not() {
        for code in [
            "08006", "57P01", "57P03", "57014", "53300", "40001", "25006",
        ] {
            assert!(is_transient(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!is_transient(code), "{code}");
        }
    }
}
