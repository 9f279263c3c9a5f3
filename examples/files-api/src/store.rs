//! The files and their shares in a SQLite file of the example's own.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use time::OffsetDateTime;

use crate::access::Permission;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, was busy too long, or timed out.
    #[error("the files database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("the files database failed: {0}")]
    Failed(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(error.to_string())
            }
            sqlx::Error::Database(db)
                if db.message().contains("locked") || db.message().contains("busy") =>
            {
                Self::Unavailable(error.to_string())
            }
            _ => Self::Failed(error.to_string()),
        }
    }
}

/// A file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// Id (a UUIDv7 string).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The owner's user id (the `sub` of the token that created it).
    pub owner: String,
    /// The content.
    pub content: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last content change.
    pub updated_at: OffsetDateTime,
}

/// A file together with how it is shared with one particular user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFor {
    /// The file.
    pub file: FileRecord,
    /// The user's share, if any.
    pub share: Option<Permission>,
}

/// The files database.
#[derive(Debug, Clone)]
pub struct FileStore {
    pool: SqlitePool,
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(v: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn file_for(row: &SqliteRow) -> Result<FileFor, StoreError> {
    let share: Option<String> = row.try_get("permission")?;
    Ok(FileFor {
        file: FileRecord {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            owner: row.try_get("owner")?,
            content: row.try_get("content")?,
            created_at: from_ms(row.try_get("created_at")?),
            updated_at: from_ms(row.try_get("updated_at")?),
        },
        share: share.as_deref().and_then(Permission::parse),
    })
}

impl FileStore {
    /// Opens (creating if needed) the database at `url` and applies the migrations.
    ///
    /// # Errors
    /// [`StoreError`] when it cannot be opened or migrated.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Failed(format!("migration failed: {e}")))?;
        Ok(Self { pool })
    }

    /// Inserts a new file.
    ///
    /// # Errors
    /// A database failure.
    pub async fn create(&self, file: &FileRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO files (id, name, owner, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&file.id)
            .bind(&file.name)
            .bind(&file.owner)
            .bind(&file.content)
            .bind(ms(file.created_at))
            .bind(ms(file.updated_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The file `id` and its share with `user`, in one query.
    ///
    /// # Errors
    /// A database failure.
    pub async fn find_for(&self, id: &str, user: &str) -> Result<Option<FileFor>, StoreError> {
        let row = sqlx::query(
            "SELECT f.id, f.name, f.owner, f.content, f.created_at, f.updated_at, s.permission
             FROM files f LEFT JOIN shares s ON s.file_id = f.id AND s.user_id = ?
             WHERE f.id = ?",
        )
        .bind(user)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_for).transpose()
    }

    /// The files `user` owns or has been given a share of, oldest first.
    ///
    /// # Errors
    /// A database failure.
    pub async fn list_for(&self, user: &str) -> Result<Vec<FileFor>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.id, f.name, f.owner, '' AS content, f.created_at, f.updated_at, s.permission
             FROM files f LEFT JOIN shares s ON s.file_id = f.id AND s.user_id = ?1
             WHERE f.owner = ?1 OR s.user_id IS NOT NULL
             ORDER BY f.id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_for).collect()
    }

    /// Replaces a file's content; false when it no longer exists.
    ///
    /// # Errors
    /// A database failure.
    pub async fn update_content(
        &self,
        id: &str,
        content: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE files SET content = ?, updated_at = ? WHERE id = ?")
            .bind(content)
            .bind(ms(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a file and its shares; false when it no longer exists.
    ///
    /// # Errors
    /// A database failure.
    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM files WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Shares file `id` with `user` (replacing an earlier share); false when the file no longer
    /// exists.
    ///
    /// # Errors
    /// A database failure.
    pub async fn share(
        &self,
        id: &str,
        user: &str,
        permission: Permission,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO shares (file_id, user_id, permission) SELECT id, ?, ? FROM files WHERE id = ?
             ON CONFLICT (file_id, user_id) DO UPDATE SET permission = excluded.permission",
        )
        .bind(user)
        .bind(permission.as_str())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Succeeds when the database answers.
    ///
    /// # Errors
    /// A database failure.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
