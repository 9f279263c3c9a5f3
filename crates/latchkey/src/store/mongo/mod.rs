//! The MongoDB backend: one document per record in nine collections, every write a single
//! atomic document operation (`findOneAndUpdate` with the expected state in its filter), TTL
//! indexes for expiry, and a client that connects lazily so the server starts during an outage.

mod audit;
mod documents;
mod driver;
mod indexes;
mod keys;
mod mail;
mod mfa;
mod oauth;
mod passkeys;
mod refresh;
mod sessions;
mod throttle;
mod transfer;
mod users;

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

use self::documents::date;
use super::{Store, StoreError};

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
    client: Client,
    /// Cleared when the server turned a transaction down (a standalone server): audited
    /// changes then write the change first and its records right after.
    transactions: AtomicBool,
    audit: Collection<Document>,
    users: Collection<Document>,
    families: Collection<Document>,
    sessions: Collection<Document>,
    keys: Collection<Document>,
    secrets: Collection<Document>,
    throttle: Collection<Document>,
    oauth_states: Collection<Document>,
    factors: Collection<Document>,
    mfa_challenges: Collection<Document>,
    passkeys: Collection<Document>,
    webauthn_ceremonies: Collection<Document>,
    email_tokens: Collection<Document>,
    outbox: Collection<Document>,
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
            client: client.clone(),
            transactions: AtomicBool::new(true),
            audit: db.collection("audit_events"),
            users: db.collection("users"),
            families: db.collection("refresh_families"),
            sessions: db.collection("sessions"),
            keys: db.collection("signing_keys"),
            secrets: db.collection("server_secrets"),
            throttle: db.collection("login_throttle"),
            oauth_states: db.collection("oauth_states"),
            factors: db.collection("mfa_factors"),
            mfa_challenges: db.collection("mfa_challenges"),
            passkeys: db.collection("passkeys"),
            webauthn_ceremonies: db.collection("webauthn_ceremonies"),
            email_tokens: db.collection("email_tokens"),
            outbox: db.collection("mail_outbox"),
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

/// The filter for every document of `user_id` but the one with id `except`.
fn of_user_except(user_id: Uuid, except: Option<Uuid>) -> Document {
    let mut filter = doc! { "user_id": id(user_id) };
    if let Some(except) = except {
        filter.insert("_id", doc! { "$ne": id(except) });
    }
    filter
}

#[async_trait]
impl Store for MongoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        run(db.users.find_one(doc! {}).projection(doc! { "_id": 1 })).await?;
        Ok(())
    }
}
