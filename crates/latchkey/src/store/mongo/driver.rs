//! Running driver operations: a time bound on each, and driver errors mapped onto
//! [`StoreError`] (duplicate key is a conflict; anything that means "not now" is unavailable).

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::error::{
    Error as MongoError, ErrorKind, RETRYABLE_WRITE_ERROR, TRANSIENT_TRANSACTION_ERROR,
    WriteFailure,
};
use mongodb::options::{ReturnDocument, UpdateModifications};
use mongodb::{Collection, Cursor};

use crate::store::StoreError;

/// The bound on any one operation, whatever the driver waits for (a stalled server, retries).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Server error codes that mean "not now" rather than "never": host unreachable or not found,
/// time limit, network timeout, shutting down, stepping down, exceeded time, socket error,
/// not primary, interrupted at shutdown or by a replication state change, not primary.
const TRANSIENT_CODES: &[i32] = &[
    6, 7, 50, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436,
];
const DUPLICATE_KEY: i32 = 11000;

/// Runs one driver operation under [`OPERATION_TIMEOUT`], mapping its error.
pub(super) async fn run<T>(
    operation: impl IntoFuture<Output = Result<T, MongoError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
        Ok(result) => result.map_err(map_err),
        Err(_) => Err(StoreError::Unavailable(format!(
            "MongoDB did not answer within {} s",
            OPERATION_TIMEOUT.as_secs()
        ))),
    }
}

/// Reads a whole cursor.
pub(super) async fn collect(
    find: impl IntoFuture<Output = Result<Cursor<Document>, MongoError>>,
) -> Result<Vec<Document>, StoreError> {
    let mut cursor = run(find).await?;
    let mut documents = Vec::new();
    while run(cursor.advance()).await? {
        documents.push(
            cursor
                .deserialize_current()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
    }
    Ok(documents)
}

fn is_duplicate_key(error: &MongoError) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}

pub(super) fn map_err(error: MongoError) -> StoreError {
    if is_duplicate_key(&error) {
        return StoreError::Conflict;
    }
    let transient = match error.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Authentication { .. }
        | ErrorKind::Shutdown
        | ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        ErrorKind::Command(e) => TRANSIENT_CODES.contains(&e.code),
        _ => false,
    };
    if transient
        || error.contains_label(RETRYABLE_WRITE_ERROR)
        || error.contains_label(TRANSIENT_TRANSACTION_ERROR)
    {
        StoreError::Unavailable(error.to_string())
    } else {
        StoreError::Corrupt(error.to_string())
    }
}

/// An upsert returning the document after it, which may race another one inserting the same
/// `_id`: the loser's duplicate-key error means the document exists now, so the operation is
/// simply tried again.
pub(super) async fn upsert_returning(
    collection: &Collection<Document>,
    filter: Document,
    update: impl Into<UpdateModifications> + Clone,
) -> Result<Document, StoreError> {
    let mut attempts = 0;
    loop {
        let result = run(collection
            .find_one_and_update(filter.clone(), update.clone())
            .upsert(true)
            .return_document(ReturnDocument::After))
        .await;
        match result {
            Ok(Some(document)) => return Ok(document),
            // MongoDB always returns an upserted document. SecantusDB answers some racing
            // upserts with none although it applied them: read it back, never apply twice.
            Ok(None) => {
                return run(collection.find_one(filter))
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("an upserted document is missing".into()));
            }
            Err(StoreError::Conflict) if attempts < 3 => attempts += 1,
            Err(e) => return Err(e),
        }
    }
}
