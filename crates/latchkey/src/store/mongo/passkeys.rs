//! Passkeys and pending WebAuthn ceremonies in MongoDB: one document per passkey (`_id` its
//! public id, the credential id under a unique index) and one per ceremony (`_id` the hex
//! SHA-256 of its id, a TTL index on `expires_at`). Taking a ceremony is one
//! `findOneAndDelete`, so it is single use.

use async_trait::async_trait;
use mongodb::bson::{Bson, Document, doc};
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, bytes, count, date, hash, opt_time, text, time, uuid};
use super::{MongoStore, collect, id, run};
use crate::store::{
    CeremonyRecord, PasskeyRecord, PasskeyStore, PasskeyUse, StoreError, TokenHash,
};

fn flag(d: &Document, field: &str) -> Result<bool, StoreError> {
    d.get_bool(field).map_err(|_| {
        StoreError::Corrupt(format!(
            "boolean `{field}` is missing or has the wrong type"
        ))
    })
}

fn passkey_doc(p: &PasskeyRecord) -> Document {
    doc! {
        "_id": id(p.id),
        "user_id": id(p.user_id),
        "credential_id": bin(&p.credential_id),
        "public_key": bin(&p.public_key),
        "state": bin(&p.state),
        "sign_count": i64::from(p.sign_count),
        "transports": p.transports.clone(),
        "backup_eligible": p.backup_eligible,
        "backup_state": p.backup_state,
        "name": &p.name,
        "created_at": date(p.created_at),
        "last_used_at": p.last_used_at.map_or(Bson::Null, date),
    }
}

fn passkey_from(d: &Document) -> Result<PasskeyRecord, StoreError> {
    let transports = match d.get("transports") {
        Some(Bson::Array(items)) => items
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(PasskeyRecord {
        id: uuid(d, "_id")?,
        user_id: uuid(d, "user_id")?,
        credential_id: bytes(d, "credential_id")?,
        public_key: bytes(d, "public_key")?,
        state: bytes(d, "state")?,
        sign_count: u32::try_from(count(d, "sign_count")?)
            .map_err(|_| StoreError::Corrupt("bad sign count".into()))?,
        transports,
        backup_eligible: flag(d, "backup_eligible")?,
        backup_state: flag(d, "backup_state")?,
        name: text(d, "name")?,
        created_at: time(d, "created_at")?,
        last_used_at: opt_time(d, "last_used_at")?,
    })
}

fn ceremony_key(id_hash: TokenHash) -> String {
    hex::encode(id_hash.0)
}

fn ceremony_from(d: &Document) -> Result<CeremonyRecord, StoreError> {
    let key = text(d, "_id")?;
    let raw = hex::decode(&key).map_err(|_| StoreError::Corrupt("bad ceremony id".into()))?;
    let user_id = match d.get("user_id") {
        None | Some(Bson::Null) => None,
        Some(_) => Some(uuid(d, "user_id")?),
    };
    Ok(CeremonyRecord {
        id_hash: hash(&raw, "_id")?,
        kind: text(d, "kind")?,
        user_id,
        state: bytes(d, "state")?,
        expires_at: time(d, "expires_at")?,
    })
}

#[async_trait]
impl PasskeyStore for MongoStore {
    async fn create_ceremony(&self, c: &CeremonyRecord) -> Result<(), StoreError> {
        let document = doc! {
            "_id": ceremony_key(c.id_hash),
            "kind": &c.kind,
            "user_id": c.user_id.map_or(Bson::Null, id),
            "state": bin(&c.state),
            "expires_at": date(c.expires_at),
        };
        run(self.db()?.webauthn_ceremonies.insert_one(document)).await?;
        Ok(())
    }

    async fn take_ceremony(
        &self,
        id_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<CeremonyRecord>, StoreError> {
        let filter = doc! { "_id": ceremony_key(id_hash) };
        let found = run(self.db()?.webauthn_ceremonies.find_one_and_delete(filter)).await?;
        let ceremony = found.as_ref().map(ceremony_from).transpose()?;
        Ok(ceremony.filter(|c| c.expires_at > now))
    }

    async fn purge_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let filter = doc! { "expires_at": { "$lte": date(now) } };
        Ok(run(self.db()?.webauthn_ceremonies.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn create_passkey(&self, p: &PasskeyRecord) -> Result<(), StoreError> {
        run(self.db()?.passkeys.insert_one(passkey_doc(p))).await?;
        Ok(())
    }

    async fn find_passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, StoreError> {
        let filter = doc! { "credential_id": bin(credential_id) };
        let found = run(self.db()?.passkeys.find_one(filter)).await?;
        found.as_ref().map(passkey_from).transpose()
    }

    async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, StoreError> {
        let find = self
            .db()?
            .passkeys
            .find(doc! { "user_id": id(user_id) })
            .sort(doc! { "created_at": 1, "_id": 1 });
        collect(find).await?.iter().map(passkey_from).collect()
    }

    async fn rename_passkey(
        &self,
        user_id: Uuid,
        passkey_id: Uuid,
        name: &str,
    ) -> Result<bool, StoreError> {
        let filter = doc! { "_id": id(passkey_id), "user_id": id(user_id) };
        let done = run(self
            .db()?
            .passkeys
            .update_one(filter, doc! { "$set": { "name": name } }))
        .await?;
        Ok(done.matched_count == 1)
    }

    async fn delete_passkey(&self, user_id: Uuid, passkey_id: Uuid) -> Result<bool, StoreError> {
        let filter = doc! { "_id": id(passkey_id), "user_id": id(user_id) };
        Ok(run(self.db()?.passkeys.delete_one(filter))
            .await?
            .deleted_count
            == 1)
    }

    async fn delete_user_passkeys(&self, user_id: Uuid) -> Result<u64, StoreError> {
        Ok(run(self
            .db()?
            .passkeys
            .delete_many(doc! { "user_id": id(user_id) }))
        .await?
        .deleted_count)
    }

    async fn record_passkey_use(
        &self,
        passkey_id: Uuid,
        expected_sign_count: u32,
        u: &PasskeyUse,
    ) -> Result<bool, StoreError> {
        let filter = doc! {
            "_id": id(passkey_id),
            "sign_count": i64::from(expected_sign_count),
        };
        let update = doc! { "$set": {
            "state": bin(&u.state),
            "sign_count": i64::from(u.sign_count),
            "backup_eligible": u.backup_eligible,
            "backup_state": u.backup_state,
            "last_used_at": date(u.used_at),
        } };
        let done = run(self.db()?.passkeys.update_one(filter, update)).await?;
        Ok(done.matched_count == 1)
    }
}
