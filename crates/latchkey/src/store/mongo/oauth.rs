//! OAuth sign-in state and linked identities in MongoDB.
//!
//! Identities live in their user's document (`identities: [{provider, subject, email,
//! created_at}]`), so every operation on them is one single-document step, no transaction
//! needed: creating a user with an identity is one insert, linking is one `$push` whose filter
//! says the user has no identity of that provider yet, and unlinking is one `$pull` whose
//! filter holds the "another way to log in remains" check. A unique multikey index on
//! (`identities.provider`, `identities.subject`) keeps an identity on one user. A pending
//! sign-in is a document keyed by the hash of its `state`, taken with one findOneAndDelete.

use mongodb::bson::{Bson, Document, doc};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use super::documents::{bin, date, user_doc, user_from};
use super::{MongoStore, collect, id, run};
use crate::store::{
    IdentityRecord, OAuthStateRecord, StoreError, TokenHash, UnlinkOutcome, UserRecord,
};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("OAuth `{what}` is missing or has the wrong type"))
}

fn text(d: &Document, field: &str) -> Result<Option<String>, StoreError> {
    match d.get(field) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(corrupt(field)),
    }
}

fn required(d: &Document, field: &str) -> Result<String, StoreError> {
    text(d, field)?.ok_or_else(|| corrupt(field))
}

fn time(d: &Document, field: &str) -> Result<OffsetDateTime, StoreError> {
    match d.get(field) {
        Some(Bson::DateTime(t)) => {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_millis()) * 1_000_000)
                .map_err(|_| corrupt(field))
        }
        _ => Err(corrupt(field)),
    }
}

fn hash(d: &Document, field: &str) -> Result<TokenHash, StoreError> {
    match d.get(field) {
        Some(Bson::Binary(b)) => <[u8; 32]>::try_from(b.bytes.as_slice())
            .map(TokenHash)
            .map_err(|_| corrupt(field)),
        _ => Err(corrupt(field)),
    }
}

fn identity_element(i: &IdentityRecord) -> Document {
    doc! {
        "provider": &i.provider,
        "subject": &i.subject,
        "email": i.email.clone().map_or(Bson::Null, Bson::String),
        "created_at": date(i.created_at),
    }
}

/// The identities of a user document, oldest first.
fn identities_of(user: &Document) -> Result<Vec<IdentityRecord>, StoreError> {
    let user_id = Uuid::parse_str(&required(user, "_id")?).map_err(|_| corrupt("_id"))?;
    let items = match user.get("identities") {
        None | Some(Bson::Null) => return Ok(Vec::new()),
        Some(Bson::Array(items)) => items,
        Some(_) => return Err(corrupt("identities")),
    };
    let mut identities = items
        .iter()
        .map(|item| {
            let Bson::Document(d) = item else {
                return Err(corrupt("identities"));
            };
            Ok(IdentityRecord {
                provider: required(d, "provider")?,
                subject: required(d, "subject")?,
                user_id,
                email: text(d, "email")?,
                created_at: time(d, "created_at")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    identities.sort_by(|a, b| (a.created_at, &a.provider).cmp(&(b.created_at, &b.provider)));
    Ok(identities)
}

fn state_from(d: &Document) -> Result<OAuthStateRecord, StoreError> {
    let link_user_id = text(d, "link_user_id")?
        .map(|u| Uuid::parse_str(&u).map_err(|_| corrupt("link_user_id")))
        .transpose()?;
    Ok(OAuthStateRecord {
        state_hash: hash(d, "_id")?,
        provider: required(d, "provider")?,
        binding_hash: hash(d, "binding_hash")?,
        nonce: required(d, "nonce")?,
        pkce_verifier: SecretString::from(required(d, "pkce_verifier")?),
        redirect_to: required(d, "redirect_to")?,
        link_user_id,
        created_at: time(d, "created_at")?,
        expires_at: time(d, "expires_at")?,
    })
}

impl MongoStore {
    pub(super) async fn insert_oauth_state(&self, s: &OAuthStateRecord) -> Result<(), StoreError> {
        let document = doc! {
            "_id": bin(&s.state_hash.0),
            "provider": &s.provider,
            "binding_hash": bin(&s.binding_hash.0),
            "nonce": &s.nonce,
            "pkce_verifier": s.pkce_verifier.expose_secret(),
            "redirect_to": &s.redirect_to,
            "link_user_id": s.link_user_id.map_or(Bson::Null, id),
            "created_at": date(s.created_at),
            "expires_at": date(s.expires_at),
        };
        run(self.db()?.oauth_states.insert_one(document)).await?;
        Ok(())
    }

    pub(super) async fn take_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError> {
        let filter = doc! { "_id": bin(&state_hash.0) };
        let taken = run(self.db()?.oauth_states.find_one_and_delete(filter)).await?;
        let record = taken.as_ref().map(state_from).transpose()?;
        Ok(record.filter(|r| r.expires_at > now))
    }

    pub(super) async fn select_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        let filter =
            doc! { "identities": { "$elemMatch": { "provider": provider, "subject": subject } } };
        let Some(user) = run(self.db()?.users.find_one(filter)).await? else {
            return Ok(None);
        };
        Ok(identities_of(&user)?
            .into_iter()
            .find(|i| i.provider == provider && i.subject == subject))
    }

    pub(super) async fn push_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        let users = &self.db()?.users;
        let filter = doc! {
            "_id": id(identity.user_id),
            "identities.provider": { "$ne": &identity.provider },
        };
        let update = doc! { "$push": { "identities": identity_element(identity) } };
        // A (provider, subject) on another user is a duplicate key of the identity index.
        if run(users.update_one(filter, update)).await?.matched_count == 1 {
            return Ok(());
        }
        match run(users.find_one(doc! { "_id": id(identity.user_id) })).await? {
            Some(_) => Err(StoreError::Conflict), // an identity of this provider already
            None => Err(StoreError::Corrupt("no such user to link".into())),
        }
    }

    pub(super) async fn pull_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        let users = &self.db()?.users;
        let filter = doc! {
            "_id": id(user_id),
            "identities.provider": provider,
            // Another way to log in remains: a password, or a second identity.
            "$or": [
                { "password_hash": { "$type": "string" } },
                { "identities.1": { "$exists": true } },
            ],
        };
        let update = doc! { "$pull": { "identities": { "provider": provider } } };
        if run(users.update_one(filter, update)).await?.matched_count == 1 {
            return Ok(UnlinkOutcome::Unlinked);
        }
        let linked = doc! { "_id": id(user_id), "identities.provider": provider };
        Ok(match run(users.find_one(linked)).await? {
            Some(_) => UnlinkOutcome::LastLoginMethod,
            None => UnlinkOutcome::NotLinked,
        })
    }

    pub(super) async fn user_identities(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        match run(self.db()?.users.find_one(doc! { "_id": id(user_id) })).await? {
            Some(user) => identities_of(&user),
            None => Ok(Vec::new()),
        }
    }

    pub(super) async fn insert_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError> {
        let mut document = user_doc(user);
        document.insert("identities", vec![identity_element(identity)]);
        run(self.db()?.users.insert_one(document)).await?;
        Ok(())
    }

    pub(super) async fn users_by_email(
        &self,
        email: &str,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let find = self
            .db()?
            .users
            .find(doc! { "email_key": email.to_ascii_lowercase() })
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit));
        collect(find).await?.iter().map(user_from).collect()
    }

    pub(super) async fn purge_states(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let filter = doc! { "expires_at": { "$lte": date(now) } };
        Ok(run(self.db()?.oauth_states.delete_many(filter))
            .await?
            .deleted_count)
    }

    pub(super) async fn count_identities(&self) -> Result<u64, StoreError> {
        let pipeline = [
            doc! { "$match": { "identities.0": { "$exists": true } } },
            doc! { "$group": { "_id": Bson::Null, "n": { "$sum": { "$size": "$identities" } } } },
        ];
        let mut cursor = run(self.db()?.users.aggregate(pipeline)).await?;
        if !run(cursor.advance()).await? {
            return Ok(0);
        }
        let group = cursor
            .deserialize_current()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        match group.get("n") {
            Some(Bson::Int32(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            Some(Bson::Int64(n)) => Ok(u64::try_from(*n).unwrap_or(0)),
            _ => Err(corrupt("count")),
        }
    }
}
