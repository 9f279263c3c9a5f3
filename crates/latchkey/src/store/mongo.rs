//! The MongoDB backend: one document per record in seven collections, every write a single
//! atomic document operation (`findOneAndUpdate` with the expected state in its filter), TTL
//! indexes for expiry, and a client that connects lazily so the server starts during an outage.

mod documents;
mod driver;
mod families;
mod indexes;
mod oauth;
mod sessions;
mod transfer;
mod upserts;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use time::OffsetDateTime;
use uuid::Uuid;

use self::driver::{collect, run};

use self::documents::{
    date, family_doc, family_from, key_fields, key_from, throttle_from, user_doc, user_from,
};
use super::{
    FamilyRecord, IdentityRecord, OAuthStateRecord, RotateOutcome, RotateRequest, SecretRecord,
    SessionRecord, SigningKeyRecord, Store, StoreCounts, StoreError, ThrottleCount, TokenHash,
    UnlinkOutcome, UserRecord,
};

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "latchkey";
/// How long the driver looks for a usable server before an operation fails (its default, 30 s,
/// would hold requests far past any client's patience).
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A [`Store`] on a MongoDB database (a replica set in production; any MongoDB 6+ or a
/// wire-compatible server).
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    users: Collection<Document>,
    families: Collection<Document>,
    sessions: Collection<Document>,
    keys: Collection<Document>,
    secrets: Collection<Document>,
    throttle: Collection<Document>,
    oauth_states: Collection<Document>,
    /// Set once the indexes are known to exist; until then nothing is written (a user
    /// registered before the unique index exists could be duplicated).
    indexes_ready: AtomicBool,
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.inner.users.namespace().db)
            .finish_non_exhaustive()
    }
}

impl MongoStore {
    /// Connects to `url` (`mongodb://` or `mongodb+srv://`; the database is the URL's path,
    /// default `latchkey`) and creates the indexes. When the server cannot be reached yet the
    /// store opens anyway: operations answer [`StoreError::Unavailable`] until the indexes have
    /// been created by a background task that keeps trying.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] for a URL the driver refuses (or an SRV name that does not
    /// resolve), [`StoreError::Corrupt`] when existing indexes conflict with these.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| StoreError::Unavailable(format!("bad MongoDB URL: {e}")))?;
        options
            .server_selection_timeout
            .get_or_insert(SERVER_SELECTION_TIMEOUT);
        options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
        options
            .app_name
            .get_or_insert_with(|| "latchkey".to_owned());
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        let client = Client::with_options(options)
            .map_err(|e| StoreError::Unavailable(format!("bad MongoDB options: {e}")))?;
        let db = client.database(&database);
        let inner = Arc::new(Inner {
            users: db.collection("users"),
            families: db.collection("refresh_families"),
            sessions: db.collection("sessions"),
            keys: db.collection("signing_keys"),
            secrets: db.collection("server_secrets"),
            throttle: db.collection("login_throttle"),
            oauth_states: db.collection("oauth_states"),
            indexes_ready: AtomicBool::new(false),
        });
        match inner.ensure_indexes().await {
            Ok(()) => {}
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, "MongoDB is unreachable; starting anyway and retrying");
                tokio::spawn(indexes::ensure_indexes_in_background(Arc::downgrade(
                    &inner,
                )));
            }
            Err(e) => return Err(e),
        }
        Ok(Self { inner })
    }

    /// The collections, once the indexes exist.
    fn db(&self) -> Result<&Inner, StoreError> {
        if self.inner.indexes_ready.load(Ordering::Acquire) {
            Ok(&self.inner)
        } else {
            Err(StoreError::Unavailable(
                "MongoDB has not been reached yet".into(),
            ))
        }
    }
}

fn id(value: Uuid) -> Bson {
    Bson::String(value.to_string())
}

fn gt(t: OffsetDateTime) -> Document {
    doc! { "$gt": date(t) }
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        run(db.users.find_one(doc! {}).projection(doc! { "_id": 1 })).await?;
        Ok(())
    }

    async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        run(self.db()?.users.insert_one(user_doc(user))).await?;
        Ok(())
    }

    async fn find_user_by_username(
        &self,
        username_key: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let found = run(self
            .db()?
            .users
            .find_one(doc! { "username_key": username_key }))
        .await?;
        found.as_ref().map(user_from).transpose()
    }

    async fn find_user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let found = run(self.db()?.users.find_one(doc! { "_id": id(user_id) })).await?;
        found.as_ref().map(user_from).transpose()
    }

    async fn set_password_hash(&self, user_id: Uuid, hash: &str) -> Result<bool, StoreError> {
        let update = doc! { "$set": { "password_hash": hash } };
        let done = run(self
            .db()?
            .users
            .update_one(doc! { "_id": id(user_id) }, update))
        .await?;
        Ok(done.matched_count == 1)
    }

    async fn set_roles(&self, user_id: Uuid, roles: &[String]) -> Result<bool, StoreError> {
        let update = doc! { "$set": { "roles": roles } };
        let done = run(self
            .db()?
            .users
            .update_one(doc! { "_id": id(user_id) }, update))
        .await?;
        Ok(done.matched_count == 1)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        run(self.db()?.users.count_documents(doc! {})).await
    }

    async fn list_users(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let filter = after.map_or_else(Document::new, |a| doc! { "_id": { "$gt": id(a) } });
        let find = self
            .db()?
            .users
            .find(filter)
            .sort(doc! { "_id": 1 })
            .limit(i64::from(limit));
        collect(find).await?.iter().map(user_from).collect()
    }

    async fn bump_generation(&self, user_id: Uuid) -> Result<bool, StoreError> {
        let update = doc! { "$inc": { "generation": 1_i64 } };
        let done = run(self
            .db()?
            .users
            .update_one(doc! { "_id": id(user_id) }, update))
        .await?;
        Ok(done.matched_count > 0)
    }

    async fn set_disabled(&self, user_id: Uuid, disabled: bool) -> Result<bool, StoreError> {
        let update = doc! { "$set": { "disabled": disabled } };
        let done = run(self
            .db()?
            .users
            .update_one(doc! { "_id": id(user_id) }, update))
        .await?;
        Ok(done.matched_count == 1)
    }

    async fn create_family(&self, family: &FamilyRecord) -> Result<(), StoreError> {
        run(self.db()?.families.insert_one(family_doc(family))).await?;
        Ok(())
    }

    async fn rotate_refresh(&self, r: &RotateRequest) -> Result<RotateOutcome, StoreError> {
        self.rotate(r).await
    }

    async fn find_family(
        &self,
        family_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Option<FamilyRecord>, StoreError> {
        let filter = doc! { "_id": id(family_id), "expires_at": gt(now) };
        let found = run(self.db()?.families.find_one(filter)).await?;
        found.as_ref().map(family_from).transpose()
    }

    async fn delete_family(
        &self,
        family_id: Uuid,
        user_id: Option<Uuid>,
    ) -> Result<bool, StoreError> {
        let mut filter = doc! { "_id": id(family_id) };
        if let Some(user_id) = user_id {
            filter.insert("user_id", id(user_id));
        }
        let done = run(self.db()?.families.delete_one(filter)).await?;
        Ok(done.deleted_count > 0)
    }

    async fn delete_user_families(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let mut filter = doc! { "user_id": id(user_id) };
        if let Some(except) = except {
            filter.insert("_id", doc! { "$ne": id(except) });
        }
        Ok(run(self.db()?.families.delete_many(filter))
            .await?
            .deleted_count)
    }

    async fn list_families(
        &self,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<Vec<FamilyRecord>, StoreError> {
        let filter = doc! {
            "user_id": id(user_id),
            "expires_at": gt(now),
            "token_expires_at": gt(now),
        };
        let find = self
            .db()?
            .families
            .find(filter)
            .sort(doc! { "created_at": -1 });
        collect(find).await?.iter().map(family_from).collect()
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
        let find = self
            .db()?
            .keys
            .find(doc! {})
            .sort(doc! { "created_at": 1, "_id": 1 });
        let mut keys = collect(find)
            .await?
            .iter()
            .map(key_from)
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
        Ok(keys)
    }

    async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError> {
        // Without a transaction (a standalone server has none): insert first, then set
        // `retired_at` on the keys that activate earlier. In between, readers derive the same
        // states anyway: they follow `activates_at`, not `retired_at`.
        let db = self.db()?;
        let mut document = doc! { "_id": &key.kid };
        document.extend(key_fields(key));
        document.insert("retired_at", Bson::Null);
        document.insert("revoked_at", Bson::Null);
        run(db.keys.insert_one(document)).await?;
        let activates = date(key.activates_at);
        let older = doc! {
            "retired_at": Bson::Null,
            "_id": { "$ne": &key.kid },
            "$or": [
                { "activates_at": { "$lt": activates.clone() } },
                { "activates_at": { "$exists": false } },
            ],
        };
        run(db
            .keys
            .update_many(older, doc! { "$set": { "retired_at": activates } }))
        .await?;
        Ok(())
    }

    async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError> {
        let db = self.db()?;
        let at = date(at);
        let live = doc! { "_id": { "$ne": keep }, "revoked_at": Bson::Null };
        let mut later = live.clone();
        later.insert(
            "$or",
            vec![
                doc! { "retired_at": Bson::Null },
                doc! { "retired_at": { "$gt": at.clone() } },
            ],
        );
        run(db
            .keys
            .update_many(later, doc! { "$set": { "retired_at": at.clone() } }))
        .await?;
        let done = run(db
            .keys
            .update_many(live, doc! { "$set": { "revoked_at": at } }))
        .await?;
        Ok(done.modified_count)
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.secret_or_insert(name, candidate).await
    }

    async fn throttle_hit(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: time::Duration,
    ) -> Result<ThrottleCount, StoreError> {
        self.count_failure(key, now, window).await
    }

    async fn throttle_get(
        &self,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ThrottleCount>, StoreError> {
        let filter = doc! { "_id": key, "window_ends_at": gt(now) };
        let found = run(self.db()?.throttle.find_one(filter)).await?;
        found.as_ref().map(throttle_from).transpose()
    }

    async fn throttle_clear(&self, key: &str) -> Result<(), StoreError> {
        run(self.db()?.throttle.delete_one(doc! { "_id": key })).await?;
        Ok(())
    }

    async fn throttle_release(&self, key: &str) -> Result<(), StoreError> {
        let filter = doc! { "_id": key, "failures": { "$gt": 0 } };
        run(self
            .db()?
            .throttle
            .update_one(filter, doc! { "$inc": { "failures": -1 } }))
        .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let db = self.db()?;
        let ended = doc! { "$lte": date(now) };
        let families = run(db.families.delete_many(doc! { "$or": [
            { "expires_at": ended.clone() },
            { "token_expires_at": ended.clone() },
        ] }))
        .await?;
        let throttles = run(db.throttle.delete_many(doc! { "window_ends_at": ended })).await?;
        let sessions = self.purge_sessions(now).await?;
        let states = self.purge_states(now).await?;
        Ok(families.deleted_count + throttles.deleted_count + sessions + states)
    }

    async fn save_oauth_state(&self, state: &OAuthStateRecord) -> Result<(), StoreError> {
        self.insert_oauth_state(state).await
    }

    async fn take_oauth_state(
        &self,
        state_hash: TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthStateRecord>, StoreError> {
        self.take_state(state_hash, now).await
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        self.select_identity(provider, subject).await
    }

    async fn link_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        self.push_identity(identity).await
    }

    async fn unlink_identity(
        &self,
        user_id: Uuid,
        provider: &str,
    ) -> Result<UnlinkOutcome, StoreError> {
        self.pull_identity(user_id, provider).await
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
