//! Passkeys and pending WebAuthn ceremonies in SQLite. Taking a ceremony is one
//! `DELETE … RETURNING`, so it is single use even across instances on one file.

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, from_ms, get, hash, map_err, ms, uuid};
use crate::store::{
    CeremonyRecord, PasskeyRecord, PasskeyStore, PasskeyUse, StoreError, TokenHash,
};

fn transports_text(transports: &[String]) -> String {
    transports.join(",")
}

fn transports_from(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn passkey_from_row(row: &SqliteRow) -> Result<PasskeyRecord, StoreError> {
    let transports: String = get(row, "transports")?;
    let last_used_at: Option<i64> = get(row, "last_used_at")?;
    Ok(PasskeyRecord {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        credential_id: get(row, "credential_id")?,
        public_key: get(row, "public_key")?,
        state: get(row, "state")?,
        sign_count: u32::try_from(get::<i64>(row, "sign_count")?)
            .map_err(|_| StoreError::Corrupt("bad sign count".into()))?,
        transports: transports_from(&transports),
        backup_eligible: get(row, "backup_eligible")?,
        backup_state: get(row, "backup_state")?,
        name: get(row, "name")?,
        created_at: from_ms(get(row, "created_at")?)?,
        last_used_at: last_used_at.map(from_ms).transpose()?,
    })
}

fn ceremony_from_row(row: &SqliteRow) -> Result<CeremonyRecord, StoreError> {
    let user_id: Option<String> = get(row, "user_id")?;
    Ok(CeremonyRecord {
        id_hash: hash(&get::<Vec<u8>>(row, "id_hash")?)?,
        kind: get(row, "kind")?,
        user_id: user_id
            .map(|u| Uuid::parse_str(&u).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        state: get(row, "state")?,
        expires_at: from_ms(get(row, "expires_at")?)?,
    })
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn create_ceremony(&self, c: &CeremonyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id_hash, kind, user_id, state, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(c.id_hash.0.to_vec())
        .bind(&c.kind)
        .bind(c.user_id.map(|u| u.to_string()))
        .bind(&c.state)
        .bind(ms(c.expires_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let row = sqlx::query("DELETE FROM webauthn_ceremonies WHERE id_hash = ? RETURNING *")
            .bind(id_hash.0.to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        let ceremony = row.as_ref().map(ceremony_from_row).transpose()?;
        Ok(ceremony.filter(|c| c.expires_at > now))
    }

    async fn purge_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= ?")
            .bind(ms(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn create_passkey(&self, p: &PasskeyRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, public_key, state, sign_count,
               transports, backup_eligible, backup_state, name, created_at, last_used_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(p.id.to_string())
        .bind(p.user_id.to_string())
        .bind(&p.credential_id)
        .bind(&p.public_key)
        .bind(&p.state)
        .bind(i64::from(p.sign_count))
        .bind(transports_text(&p.transports))
        .bind(p.backup_eligible)
        .bind(p.backup_state)
        .bind(&p.name)
        .bind(ms(p.created_at))
        .bind(p.last_used_at.map(ms))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn find_passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM passkeys WHERE credential_id = ?")
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM passkeys WHERE user_id = ? ORDER BY created_at, id")
            .bind(user_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn rename_passkey(
        &self,
        user_id: Uuid,
        id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?")
            .bind(name)
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM passkeys WHERE id = ? AND user_id = ?")
            .bind(id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_user_passkeys(&self, user_id: Uuid) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM passkeys WHERE user_id = ?")
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn record_passkey_use(
        &self,
        id: Uuid,
        expected_sign_count: u32,
        u: &PasskeyUse,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE passkeys SET state = ?, sign_count = ?, backup_eligible = ?, backup_state = ?,
               last_used_at = ?
             WHERE id = ? AND sign_count = ?",
        )
        .bind(&u.state)
        .bind(i64::from(u.sign_count))
        .bind(u.backup_eligible)
        .bind(u.backup_state)
        .bind(ms(u.used_at))
        .bind(id.to_string())
        .bind(i64::from(expected_sign_count))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}
