//! The embedded SQLite backend: one file, created with its schema on first start, WAL mode.

mod oauth;
mod sessions;
mod transfer;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    FamilyRecord, IdentityRecord, OAuthStateRecord, RotateOutcome, RotateRequest, SecretRecord,
    SessionRecord, SigningKeyRecord, Store, StoreCounts, StoreError, ThrottleCount, TokenHash,
    UnlinkOutcome, UserRecord,
};

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

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let roles: String = get(row, "roles")?;
    Ok(UserRecord {
        id: uuid(row, "id")?,
        username: get(row, "username")?,
        username_key: get(row, "username_key")?,
        email: get(row, "email")?,
        password_hash: get(row, "password_hash")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        disabled: get::<i64>(row, "disabled")? != 0,
        email_verified: get::<i64>(row, "email_verified")? != 0,
        generation: u64::try_from(get::<i64>(row, "generation")?).unwrap_or(0),
        created_at: from_ms(get(row, "created_at")?)?,
    })
}

fn family_from_row(row: &SqliteRow) -> Result<FamilyRecord, StoreError> {
    let previous: Option<Vec<u8>> = get(row, "previous_hash")?;
    let rotated: Option<i64> = get(row, "rotated_at")?;
    Ok(FamilyRecord {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        current_hash: hash(&get::<Vec<u8>>(row, "current_hash")?)?,
        previous_hash: previous.as_deref().map(hash).transpose()?,
        generation: u64::try_from(get::<i64>(row, "generation")?).unwrap_or(0),
        rotated_at: rotated.map(from_ms).transpose()?,
        token_expires_at: from_ms(get(row, "token_expires_at")?)?,
        expires_at: from_ms(get(row, "expires_at")?)?,
        created_at: from_ms(get(row, "created_at")?)?,
        last_used_at: from_ms(get(row, "last_used_at")?)?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
    })
}

const USER_COLUMNS: &str = "id, username, username_key, email, password_hash, roles, disabled, email_verified, generation, created_at";

fn sql(text: String) -> impl SqlSafeStr {
    sqlx::AssertSqlSafe(text)
}

/// Inserts a user through `executor` (the pool, or a transaction).
async fn insert_user<'e, E>(executor: E, user: &UserRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let roles =
        serde_json::to_string(&user.roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO users (id, username, username_key, email, password_hash, roles, disabled,
                            email_verified, generation, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .execute(executor)
    .await
    .map_err(map_err)?;
    Ok(())
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

    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        insert_user(&self.pool, user).await
    }

    async fn find_user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username_key = ?"
        )))
        .bind(username_key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ?"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn set_password_hash(&self, id: Uuid, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_roles(&self, id: Uuid, roles: &[String]) -> Result<bool, StoreError> {
        let roles = serde_json::to_string(roles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let done = sqlx::query("UPDATE users SET roles = ? WHERE id = ?")
            .bind(roles)
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    async fn list_users(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(sql(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?"
        )))
        .bind(after.map(|u| u.to_string()))
        .bind(after.map(|u| u.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn bump_generation(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET generation = generation + 1 WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET disabled = ? WHERE id = ?")
            .bind(i64::from(disabled))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_family(&self, f: &FamilyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, current_hash, previous_hash, generation, rotated_at,
               token_expires_at, expires_at, created_at, last_used_at, user_agent, ip)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    async fn rotate_refresh(&self, r: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        let now = ms(r.now);
        // Step 1, the common case: the presented token is current. One conditional UPDATE, so
        // of two concurrent rotations with one token exactly one can match.
        let rotated = sqlx::query(
            "UPDATE refresh_families
                SET previous_hash = current_hash, current_hash = ?, generation = generation + 1,
                    rotated_at = ?, token_expires_at = MIN(?, expires_at), last_used_at = ?
              WHERE id = ? AND current_hash = ? AND token_expires_at > ? AND expires_at > ?
              RETURNING *",
        )
        .bind(r.successor.0.to_vec())
        .bind(now)
        .bind(ms(r.successor_expires_at))
        .bind(now)
        .bind(r.family_id.to_string())
        .bind(r.presented.0.to_vec())
        .bind(now)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        if let Some(row) = rotated {
            return family_from_row(&row).map(RotateOutcome::Rotated);
        }
        // Step 2: not current. Decide from the row as it is now; the decision only ever moves
        // a family towards "revoked", so a concurrent change cannot make it unsafe.
        crate::store::settle_not_current(self, r).await
    }

    async fn find_family(
        &self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM refresh_families WHERE id = ? AND expires_at > ?")
            .bind(id.to_string())
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(family_from_row).transpose()
    }

    async fn delete_family(&self, id: Uuid, user_id: Option<Uuid>) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM refresh_families WHERE id = ? AND (? IS NULL OR user_id = ?)")
                .bind(id.to_string())
                .bind(user_id.map(|u| u.to_string()))
                .bind(user_id.map(|u| u.to_string()))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_user_families(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM refresh_families WHERE user_id = ? AND (? IS NULL OR id <> ?)",
        )
        .bind(user_id.to_string())
        .bind(except.map(|u| u.to_string()))
        .bind(except.map(|u| u.to_string()))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM refresh_families WHERE user_id = ? AND expires_at > ? AND token_expires_at > ?
             ORDER BY created_at DESC",
        )
        .bind(user_id.to_string())
        .bind(ms(now))
        .bind(ms(now))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(family_from_row).collect()
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.insert_session(session).await
    }

    async fn use_session(
        &self,
        token_hash: TokenHash,
        now: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.touch_session(token_hash, now, idle_expires_at).await
    }

    async fn set_session_data(
        &self,
        token_hash: TokenHash,
        data: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.update_session_data(token_hash, data).await
    }

    async fn delete_session(&self, token_hash: TokenHash) -> Result<bool, StoreError> {
        self.remove_session(token_hash).await
    }

    async fn delete_session_by_id(&self, id: Uuid, user_id: Uuid) -> Result<bool, StoreError> {
        self.remove_session_by_id(id, user_id).await
    }

    async fn delete_user_sessions(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        self.remove_user_sessions(user_id, except).await
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.user_sessions(user_id, now).await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, private_der, created_at, activates_at, retired_at, revoked_at
             FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let retired: Option<i64> = get(row, "retired_at")?;
                let revoked: Option<i64> = get(row, "revoked_at")?;
                Ok(SigningKeyRecord {
                    kid: get(row, "kid")?,
                    alg: get(row, "alg")?,
                    private_der: get::<Vec<u8>>(row, "private_der")?.into(),
                    created_at: from_ms(get(row, "created_at")?)?,
                    activates_at: from_ms(get(row, "activates_at")?)?,
                    retired_at: retired.map(from_ms).transpose()?,
                    revoked_at: revoked.map(from_ms).transpose()?,
                })
            })
            .collect()
    }

    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND activates_at < ?",
        )
        .bind(ms(key.activates_at))
        .bind(ms(key.activates_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_der, created_at, activates_at, retired_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, NULL, NULL)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(key.private_der.expose_secret().to_vec())
        .bind(ms(key.created_at))
        .bind(ms(key.activates_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET revoked_at = ?1,
               retired_at = CASE WHEN retired_at IS NULL OR retired_at > ?1 THEN ?1 ELSE retired_at END
             WHERE kid <> ?2 AND revoked_at IS NULL",
        )
        .bind(ms(at))
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        let row = sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET name = excluded.name
             RETURNING value",
        )
        .bind(name)
        .bind(candidate.to_vec())
        .bind(ms(OffsetDateTime::now_utc()))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        get(&row, "value")
    }

    async fn throttle_hit(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError> {
        let now_ms = ms(now);
        let row = sqlx::query(
            "INSERT INTO login_throttle (key, failures, window_ends_at) VALUES (?1, 1, ?2)
             ON CONFLICT(key) DO UPDATE SET
               failures = CASE WHEN window_ends_at <= ?3 THEN 1 ELSE failures + 1 END,
               window_ends_at = CASE WHEN window_ends_at <= ?3 THEN ?2 ELSE window_ends_at END
             RETURNING failures, window_ends_at",
        )
        .bind(key)
        .bind(ms(now + window))
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(ThrottleCount {
            failures: u32::try_from(get::<i64>(&row, "failures")?).unwrap_or(u32::MAX),
            window_ends_at: from_ms(get(&row, "window_ends_at")?)?,
        })
    }

    async fn throttle_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ThrottleCount>, StoreError> {
        let row = sqlx::query("SELECT failures, window_ends_at FROM login_throttle WHERE key = ? AND window_ends_at > ?")
            .bind(key)
            .bind(ms(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|row| {
            Ok(ThrottleCount {
                failures: u32::try_from(get::<i64>(&row, "failures")?).unwrap_or(u32::MAX),
                window_ends_at: from_ms(get(&row, "window_ends_at")?)?,
            })
        })
        .transpose()
    }

    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_throttle WHERE key = ?")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn throttle_release(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1 WHERE key = ? AND failures > 0",
        )
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn save_oauth_state(&self, state: &OAuthStateRecord) -> Result<(), StoreError> {
        self.insert_oauth_state(state).await
    }

    async fn take_oauth_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError> {
        self.delete_oauth_state(state_hash, now).await
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        self.select_identity(provider, subject).await
    }

    async fn link_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        self.insert_identity(identity).await
    }

    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        self.delete_identity(user_id, provider).await
    }

    async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError> {
        self.user_identities(user_id).await
    }

    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError> {
        self.insert_user_with_identity(user, identity).await
    }

    async fn find_users_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        self.users_by_email(email, limit).await
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now = ms(now);
        let families = sqlx::query(
            "DELETE FROM refresh_families WHERE expires_at <= ? OR token_expires_at <= ?",
        )
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let throttles = sqlx::query("DELETE FROM login_throttle WHERE window_ends_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        let sessions = self.purge_sessions(from_ms(now)?).await?;
        let states = self.purge_oauth_states(from_ms(now)?).await?;
        Ok(families.rows_affected() + throttles.rows_affected() + sessions + states)
    }

    async fn counts(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError> {
        self.counts_at(now).await
    }

    async fn list_live_families(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        self.live_families_page(after, limit, now).await
    }

    async fn list_live_sessions(
        &self,
        after: Option<Uuid>,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.live_sessions_page(after, limit, now).await
    }

    async fn server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError> {
        self.all_server_secrets().await
    }

    async fn import_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.write_user(user).await
    }

    async fn import_family(&self, family: &FamilyRecord) -> Result<(), StoreError> {
        self.write_family(family).await
    }

    async fn import_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.write_session(session).await
    }

    async fn import_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        self.write_signing_key(key).await
    }

    async fn import_server_secret(&self, secret: &SecretRecord) -> Result<(), StoreError> {
        self.write_server_secret(secret).await
    }
}
