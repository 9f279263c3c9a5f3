//! Passkeys and pending WebAuthn ceremonies in PostgreSQL. Taking a ceremony is one
//! `DELETE … RETURNING`, so of two concurrent finishes only one gets it.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rows::{get, hash_at, ts};
use super::{PostgresStore, purge_batches, run};
use crate::store::{
    CeremonyRecord, PasskeyRecord, PasskeyStore, PasskeyUse, StoreError, TokenHash,
};

fn passkey_from_row(row: &PgRow) -> Result<PasskeyRecord, StoreError> {
    Ok(PasskeyRecord {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        credential_id: get(row, "credential_id")?,
        public_key: get(row, "public_key")?,
        state: get(row, "state")?,
        sign_count: u32::try_from(get::<i64>(row, "sign_count")?)
            .map_err(|_| StoreError::Corrupt("bad sign count".into()))?,
        transports: get(row, "transports")?,
        backup_eligible: get(row, "backup_eligible")?,
        backup_state: get(row, "backup_state")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

fn ceremony_from_row(row: &PgRow) -> Result<CeremonyRecord, StoreError> {
    Ok(CeremonyRecord {
        id_hash: hash_at(row, "id_hash")?,
        kind: get(row, "kind")?,
        user_id: get(row, "user_id")?,
        state: get(row, "state")?,
        expires_at: get(row, "expires_at")?,
    })
}

#[async_trait]
impl PasskeyStore for PostgresStore {
    async fn create_ceremony(&self, c: &CeremonyRecord) -> Result<(), StoreError> {
        run(sqlx::query(
            "INSERT INTO webauthn_ceremonies (id_hash, kind, user_id, state, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.id_hash.0.to_vec())
        .bind(&c.kind)
        .bind(c.user_id)
        .bind(&c.state)
        .bind(ts(c.expires_at))
        .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let row = run(sqlx::query(
            "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 RETURNING *",
        )
        .bind(id_hash.0.to_vec())
        .fetch_optional(self.pool()?))
        .await?;
        let ceremony = row.as_ref().map(ceremony_from_row).transpose()?;
        Ok(ceremony.filter(|c| c.expires_at > now))
    }

    async fn purge_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        purge_batches(
            self.pool()?,
            "DELETE FROM webauthn_ceremonies WHERE id_hash IN (SELECT id_hash FROM
               webauthn_ceremonies WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            now,
        )
        .await
    }

    async fn create_passkey(&self, p: &PasskeyRecord) -> Result<(), StoreError> {
        run(sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, public_key, state, sign_count,
               transports, backup_eligible, backup_state, name, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(p.id)
        .bind(p.user_id)
        .bind(&p.credential_id)
        .bind(&p.public_key)
        .bind(&p.state)
        .bind(i64::from(p.sign_count))
        .bind(&p.transports)
        .bind(p.backup_eligible)
        .bind(p.backup_state)
        .bind(&p.name)
        .bind(ts(p.created_at))
        .bind(p.last_used_at.map(ts))
        .execute(self.pool()?))
        .await?;
        Ok(())
    }

    async fn find_passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        let row = run(
            sqlx::query("SELECT * FROM passkeys WHERE credential_id = $1")
                .bind(credential_id)
                .fetch_optional(self.pool()?),
        )
        .await?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, StoreError> {
        let rows = run(sqlx::query(
            "SELECT * FROM passkeys WHERE user_id = $1 ORDER BY created_at, id",
        )
        .bind(user_id)
        .fetch_all(self.pool()?))
        .await?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = run(
            sqlx::query("UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3")
                .bind(name)
                .bind(id)
                .bind(user_id)
                .execute(self.pool()?),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let done = run(
            sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(self.pool()?),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user_passkeys(&self, user_id: Uuid) -> Result<u64, StoreError> {
        let done = run(sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected())
    }

    async fn record_passkey_use(
        &self,
        id: Uuid,
        expected_sign_count: u32,
        u: &PasskeyUse,
    ) -> Result<bool, StoreError> {
        let done = run(sqlx::query(
            "UPDATE passkeys SET state = $1, sign_count = $2, backup_eligible = $3,
               backup_state = $4, last_used_at = $5
             WHERE id = $6 AND sign_count = $7",
        )
        .bind(&u.state)
        .bind(i64::from(u.sign_count))
        .bind(u.backup_eligible)
        .bind(u.backup_state)
        .bind(ts(u.used_at))
        .bind(id)
        .bind(i64::from(expected_sign_count))
        .execute(self.pool()?))
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
