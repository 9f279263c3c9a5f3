//! Binding and reading rows: times at the stores' millisecond precision, records from rows.

use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use crate::store::{FamilyRecord, SessionRecord, StoreError, TokenHash, UserRecord};

/// `t` at millisecond precision, as every store keeps times.
pub(super) fn ts(t: OffsetDateTime) -> OffsetDateTime {
    t - time::Duration::nanoseconds(i64::from(t.nanosecond() % 1_000_000))
}

/// A `u64` counter as PostgreSQL's `bigint`.
pub(super) fn big(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `bigint` count or counter as `u64`.
pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn hash(bytes: &[u8]) -> Result<TokenHash, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(TokenHash)
        .map_err(|_| StoreError::Corrupt("bad token hash".into()))
}

pub(super) fn hash_at(row: &PgRow, column: &str) -> Result<TokenHash, StoreError> {
    hash(&get::<Vec<u8>>(row, column)?)
}

pub(super) fn user_from_row(row: &PgRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: get(row, "id")?,
        username: get(row, "username")?,
        username_key: get(row, "username_key")?,
        email: get(row, "email")?,
        password_hash: get(row, "password_hash")?,
        roles: get(row, "roles")?,
        disabled: get(row, "disabled")?,
        email_verified: get(row, "email_verified")?,
        generation: count(get(row, "generation")?),
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn family_from_row(row: &PgRow) -> Result<FamilyRecord, StoreError> {
    let previous: Option<Vec<u8>> = get(row, "previous_hash")?;
    Ok(FamilyRecord {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        current_hash: hash_at(row, "current_hash")?,
        previous_hash: previous.as_deref().map(hash).transpose()?,
        generation: count(get(row, "generation")?),
        rotated_at: get(row, "rotated_at")?,
        token_expires_at: get(row, "token_expires_at")?,
        expires_at: get(row, "expires_at")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
        amr: get(row, "amr")?,
    })
}

pub(super) fn session_from_row(row: &PgRow) -> Result<SessionRecord, StoreError> {
    let data: String = get(row, "data")?;
    Ok(SessionRecord {
        id: get(row, "id")?,
        token_hash: hash_at(row, "token_hash")?,
        user_id: get(row, "user_id")?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
        idle_expires_at: get(row, "idle_expires_at")?,
        absolute_expires_at: get(row, "absolute_expires_at")?,
        user_agent: get(row, "user_agent")?,
        ip: get(row, "ip")?,
        amr: get(row, "amr")?,
    })
}

#[cfg(test)]
mod tests {
    use super::ts;
    use time::macros::datetime;

    #[test]
    fn times_are_kept_to_the_millisecond() {
        let t = datetime!(2026-11-26 15:00:00.123_456_789 UTC);
        assert_eq!(ts(t), datetime!(2026-11-26 15:00:00.123 UTC));
    }
}
