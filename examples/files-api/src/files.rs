//! The operations on files, each deciding access first (see [`crate::access`]). No HTTP here.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::access::{Action, Caller, Decision, Permission, decide};
use crate::store::{FileFor, FileRecord, FileStore, StoreError};

/// The longest file name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// The longest user id a share may name.
const MAX_USER_ID_LEN: usize = 128;

/// Why a file operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// Bad input values.
    #[error("{0}")]
    InvalidInput(String),
    /// No such file, or one the caller may not know about.
    #[error("there is no such file")]
    NotFound,
    /// The caller can see the file but may not do this.
    #[error("you are not allowed to do this")]
    Forbidden,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The files service.
#[derive(Debug, Clone)]
pub struct Files {
    store: FileStore,
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}

fn check_name(name: &str) -> Result<String, FilesError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(FilesError::InvalidInput(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

impl Files {
    /// The service over `store`.
    #[must_use]
    pub fn new(store: FileStore) -> Self {
        Self { store }
    }

    /// The store, for health checks.
    #[must_use]
    pub fn store(&self) -> &FileStore {
        &self.store
    }

    /// Looks the file up and applies the access rules: 404 for hidden files, 403 for refused
    /// actions on visible ones.
    async fn authorize(
        &self,
        caller: &Caller,
        id: &str,
        action: Action,
    ) -> Result<FileFor, FilesError> {
        // Ids are UUIDs: anything else names no file, and never reaches the database.
        if Uuid::parse_str(id).is_err() {
            return Err(FilesError::NotFound);
        }
        let found = self
            .store
            .find_for(id, &caller.id)
            .await?
            .ok_or(FilesError::NotFound)?;
        match decide(caller, &found.file.owner, found.share, action) {
            Decision::Allow => Ok(found),
            Decision::Forbidden => Err(FilesError::Forbidden),
            Decision::Hidden => Err(FilesError::NotFound),
        }
    }

    /// Creates a file owned by the caller.
    ///
    /// # Errors
    /// [`FilesError::InvalidInput`] for a bad name, or a store failure.
    pub async fn create(
        &self,
        caller: &Caller,
        name: &str,
        content: String,
    ) -> Result<FileRecord, FilesError> {
        let now = now();
        let file = FileRecord {
            id: Uuid::now_v7().to_string(),
            name: check_name(name)?,
            owner: caller.id.clone(),
            content,
            created_at: now,
            updated_at: now,
        };
        self.store.create(&file).await?;
        Ok(file)
    }

    /// The caller's own files and those shared with them (without content).
    ///
    /// # Errors
    /// A store failure.
    pub async fn list(&self, caller: &Caller) -> Result<Vec<FileFor>, FilesError> {
        Ok(self.store.list_for(&caller.id).await?)
    }

    /// Reads a file: owner, any share, or role `admin`.
    ///
    /// # Errors
    /// [`FilesError::NotFound`], or a store failure.
    pub async fn read(&self, caller: &Caller, id: &str) -> Result<FileFor, FilesError> {
        self.authorize(caller, id, Action::Read).await
    }

    /// Replaces a file's content: owner, a write share, or role `admin`.
    ///
    /// # Errors
    /// [`FilesError::NotFound`], [`FilesError::Forbidden`], or a store failure.
    pub async fn write(
        &self,
        caller: &Caller,
        id: &str,
        content: String,
    ) -> Result<FileFor, FilesError> {
        let mut found = self.authorize(caller, id, Action::Write).await?;
        let now = now();
        if !self.store.update_content(id, &content, now).await? {
            return Err(FilesError::NotFound);
        }
        found.file.content = content;
        found.file.updated_at = now;
        Ok(found)
    }

    /// Deletes a file: owner or role `admin`.
    ///
    /// # Errors
    /// [`FilesError::NotFound`], [`FilesError::Forbidden`], or a store failure.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), FilesError> {
        self.authorize(caller, id, Action::Delete).await?;
        if self.store.delete(id).await? {
            Ok(())
        } else {
            Err(FilesError::NotFound)
        }
    }

    /// Shares a file with `user`: the owner only.
    ///
    /// # Errors
    /// [`FilesError::InvalidInput`] for a bad user id or sharing with oneself,
    /// [`FilesError::NotFound`], [`FilesError::Forbidden`], or a store failure.
    pub async fn share(
        &self,
        caller: &Caller,
        id: &str,
        user: &str,
        permission: Permission,
    ) -> Result<(), FilesError> {
        let found = self.authorize(caller, id, Action::Share).await?;
        if user.is_empty()
            || user.len() > MAX_USER_ID_LEN
            || user.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(FilesError::InvalidInput(format!(
                "user_id must be 1 to {MAX_USER_ID_LEN} characters without spaces"
            )));
        }
        if user == found.file.owner {
            return Err(FilesError::InvalidInput(
                "the owner already has every permission".into(),
            ));
        }
        if self.store.share(id, user, permission).await? {
            Ok(())
        } else {
            Err(FilesError::NotFound)
        }
    }
}
