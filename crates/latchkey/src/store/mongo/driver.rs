//! Running driver operations: a time bound on each, and driver errors mapped onto
//! [`StoreError`] (duplicate key is a conflict; anything that means "not now" is unavailable).

use std::time::Duration;

use mongodb::Cursor;
use mongodb::bson::Document;
use mongodb::error::{
    Error as MongoError, ErrorKind, RETRYABLE_WRITE_ERROR, TRANSIENT_TRANSACTION_ERROR,
    WriteFailure,
};

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

fn map_err(error: MongoError) -> StoreError {
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
