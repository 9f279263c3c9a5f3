//! The embedded SQLite backend: one file, created with its schema on first start, WAL mode.

mod audit;
mod keys;
mod mail;
mod mfa;
mod oauth;
mod passkeys;
mod refresh;
mod sessions;
mod throttle;
mod transfer;
mod users;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, TokenHash};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A [`Store`] on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path` or `sqlite::memory:`)
    /// and applies the embedded migrations.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or migrated.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if !url.contains(":memory:") && !url.contains("mode=memory") {
            secure_file(options.get_filename())?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(Self { pool })
    }
}

/// The database file holds signing keys and server secrets: it is created readable by its
/// owner only (SQLite gives its `-wal` and `-shm` files the same mode), and an existing file
/// (or journal) that others may read or write stops the start with the fix in the message.
fn secure_file(path: &std::path::Path) -> Result<(), StoreError> {
    // A path taken from a URL such as `sqlite://user:secret@…` must not print the secret.
    let shown = |p: &std::path::Path| {
        let text = p.display().to_string();
        match text.rfind('@') {
            Some(at) => format!("…{}", &text[at..]),
            None => text,
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "creating the database file {}: {e}",
                    shown(path)
                )));
            }
        }
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(StoreError::Unavailable(format!(
                    "{} has mode {mode:o}: other users could read the signing keys in it; \
                     run `chmod 600 {}` (and the same for its -wal and -shm files)",
                    shown(&file),
                    shown(&file)
                )));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, shown);
    Ok(())
}

fn map_err(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Database(db)
            if db.message().contains("locked") || db.message().contains("busy") =>
        {
            StoreError::Unavailable(error.to_string())
        }
        _ => StoreError::Corrupt(error.to_string()),
    }
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(v: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp: {e}")))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = get(row, column)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn hash(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(TokenHash)
        .map_err(|_| StoreError::Corrupt("bad token hash".into()))
}

/// A list of names as a JSON array (the `amr` columns).
fn list_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

/// Reads a JSON array of names.
fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn sql(text: String) -> impl SqlSafeStr {
    sqlx::AssertSqlSafe(text)
}

/// Deletes the rows of `user_id` in `table` but the one with id `except`; returns how many.
async fn delete_of_user<'e, E>(
    pool: E,
    table: &str,
    user_id: Uuid,
    except: Option<Uuid>,
) -> Result<u64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let except = except.map(|u| u.to_string());
    let done = sqlx::query(sql(format!(
        "DELETE FROM {table} WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2)"
    )))
    .bind(user_id.to_string())
    .bind(except)
    .execute(pool)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected())
}

/// A query with its arguments, for the functions that bind a whole record.
type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// The two ways a record is written: inserted as new, or copied from another store
/// (`latchkey store copy`), overwriting the row with its key. Both bind the same columns in
/// the same order.
struct Inserts {
    /// `INSERT INTO table (columns) VALUES (?, …)`.
    new: String,
    /// The same, overwriting every other column of a row that holds the key (the first
    /// column) already.
    copied: String,
}

impl Inserts {
    fn new(table: &str, columns: &str) -> Self {
        let names: Vec<&str> = columns.split(", ").collect();
        let new = format!(
            "INSERT INTO {table} ({columns}) VALUES ({})",
            vec!["?"; names.len()].join(", ")
        );
        let (key, rest) = names.split_first().unwrap_or((&"id", &[]));
        let set: Vec<String> = rest.iter().map(|c| format!("{c} = excluded.{c}")).collect();
        let copied = format!("{new} ON CONFLICT({key}) DO UPDATE SET {}", set.join(", "));
        Self { new, copied }
    }

    /// The statement for a new record (`copied` false) or a copied one.
    fn query(&self, copied: bool) -> Query<'_> {
        let text = if copied { &self.copied } else { &self.new };
        sqlx::query(sqlx::AssertSqlSafe(text.as_str()))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
