//! [`MeteredStore`]: any store, with every operation counted by outcome and timed, written
//! once here for every backend.
//!
//! It implements each capability by forwarding (the [`forward!`] lists below). A capability
//! that gains a method fails to compile here until the method is listed, so nothing goes
//! unmeasured by accident; a new capability is one more `forward!` block, its methods'
//! signatures copied from the trait. Provided methods (`rotate_refresh`, `purge_expired`) are
//! not forwarded: their defaults run here and call the forwarded, measured operations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use ::metrics::{Counter, Histogram};
use async_trait::async_trait;
use parking_lot::RwLock;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Registry, label, series};
use crate::store::{
    AuditQuery, AuditRecord, AuditStore, AuditedChange, CeremonyRecord, EmailPurpose,
    EmailTokenRecord, FactorRecord, FamilyRecord, IdentityRecord, KeyStore, MailStore,
    MfaChallengeRecord, MfaStore, OAuthStateRecord, OAuthStore, OutboxMessage, PasskeyRecord,
    PasskeyStore, PasskeyUse, RefreshStore, RotateRequest, SecretRecord, SessionRecord,
    SessionStore, SigningKeyRecord, Store, StoreCounts, StoreError, ThrottleCount, ThrottleStore,
    TokenHash, TransferStore, UnlinkOutcome, UserRecord, UserStore,
};

/// The `outcome` labels of a store operation, in [`outcome_index`] order.
const OUTCOMES: [&str; 4] = ["ok", "conflict", "unavailable", "corrupt"];

fn outcome_index<T>(result: &Result<T, StoreError>) -> usize {
    match result {
        Ok(_) => 0,
        Err(StoreError::Conflict) => 1,
        Err(StoreError::Unavailable(_)) => 2,
        Err(StoreError::Corrupt(_)) => 3,
    }
}

/// One operation's handles.
struct OperationHandles {
    duration: Histogram,
    outcomes: [Counter; OUTCOMES.len()],
}

/// Every operation's handles, registered on first use.
#[derive(Default)]
pub(super) struct OperationTable {
    operations: RwLock<HashMap<&'static str, Arc<OperationHandles>>>,
}

impl OperationTable {
    fn get(&self, registry: &Registry, operation: &'static str) -> Arc<OperationHandles> {
        if let Some(handles) = self.operations.read().get(operation) {
            return handles.clone();
        }
        self.operations
            .write()
            .entry(operation)
            .or_insert_with(|| {
                Arc::new(OperationHandles {
                    duration: registry.histogram(
                        series::STORE_OPERATION_DURATION,
                        vec![label("operation", operation)],
                    ),
                    outcomes: OUTCOMES.map(|outcome| {
                        registry.counter(
                            series::STORE_OPERATIONS,
                            vec![label("operation", operation), label("outcome", outcome)],
                        )
                    }),
                })
            })
            .clone()
    }
}

/// A store whose every operation is counted (`latchkey_store_operations_total{operation,
/// outcome}`) and timed (`latchkey_store_operation_duration_seconds{operation}`).
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    registry: Arc<Registry>,
}

impl MeteredStore {
    /// `inner`, measured into `registry`.
    pub(super) fn new(inner: Arc<dyn Store>, registry: Arc<Registry>) -> Self {
        Self { inner, registry }
    }

    /// Runs one operation of `inner`, then counts and times it.
    async fn observe<T>(
        &self,
        operation: &'static str,
        run: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = run.await;
        let handles = self.registry.store.get(&self.registry, operation);
        handles.duration.record(started.elapsed().as_secs_f64());
        handles.outcomes[outcome_index(&result)].increment(1);
        result
    }
}

/// `impl Trait for MeteredStore`, each listed method forwarded to the inner store through
/// [`MeteredStore::observe`] under its own name. The method lines are the trait's
/// declarations as they are written there (without `async` bodies or docs).
macro_rules! forward {
    ($($capability:ident {
        $(async fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)*
    })*) => {$(
        #[async_trait]
        impl $capability for MeteredStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.observe(stringify!($name), self.inner.$name($($arg),*)).await
                }
            )*
        }
    )*};
}

forward! {
    UserStore {
        async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError>;
        async fn find_user_by_username(&self, username_key: &str) -> Result<Option<UserRecord>, StoreError>;
        async fn find_user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
        async fn find_users_by_email(&self, email: &str, limit: u32) -> Result<Vec<UserRecord>, StoreError>;
        async fn set_password_hash(&self, id: Uuid, hash: &str) -> Result<bool, StoreError>;
        async fn set_roles(&self, id: Uuid, roles: &[String]) -> Result<bool, StoreError>;
        async fn bump_generation(&self, id: Uuid) -> Result<bool, StoreError>;
        async fn set_disabled(&self, id: Uuid, disabled: bool) -> Result<bool, StoreError>;
        async fn count_users(&self) -> Result<u64, StoreError>;
        async fn list_users(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<UserRecord>, StoreError>;
    }
    RefreshStore {
        async fn create_family(&self, family: &FamilyRecord) -> Result<(), StoreError>;
        async fn rotate_if_current(&self, request: &RotateRequest) -> Result<Option<FamilyRecord>, StoreError>;
        async fn find_family(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<FamilyRecord>, StoreError>;
        async fn delete_family(&self, id: Uuid, user_id: Option<Uuid>) -> Result<bool, StoreError>;
        async fn delete_user_families(&self, user_id: Uuid, except: Option<Uuid>) -> Result<u64, StoreError>;
        async fn list_families(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<FamilyRecord>, StoreError>;
        async fn purge_expired_families(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    }
    SessionStore {
        async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
        async fn use_session(&self, token_hash: TokenHash, now: OffsetDateTime, idle_expires_at: OffsetDateTime) -> Result<Option<SessionRecord>, StoreError>;
        async fn set_session_data(&self, token_hash: TokenHash, data: &serde_json::Value) -> Result<bool, StoreError>;
        async fn delete_session(&self, token_hash: TokenHash) -> Result<bool, StoreError>;
        async fn delete_session_by_id(&self, id: Uuid, user_id: Uuid) -> Result<bool, StoreError>;
        async fn delete_user_sessions(&self, user_id: Uuid, except: Option<Uuid>) -> Result<u64, StoreError>;
        async fn list_sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionRecord>, StoreError>;
        async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    }
    KeyStore {
        async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
        async fn add_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
        async fn revoke_signing_keys(&self, keep: &str, at: OffsetDateTime) -> Result<u64, StoreError>;
        async fn server_secret(&self, name: &str, candidate: &[u8], now: OffsetDateTime) -> Result<Vec<u8>, StoreError>;
    }
    ThrottleStore {
        async fn throttle_hit(&self, key: &str, now: OffsetDateTime, window: time::Duration) -> Result<ThrottleCount, StoreError>;
        async fn throttle_get(&self, key: &str, now: OffsetDateTime) -> Result<Option<ThrottleCount>, StoreError>;
        async fn throttle_clear(&self, key: &str) -> Result<(), StoreError>;
        async fn throttle_release(&self, key: &str) -> Result<(), StoreError>;
        async fn purge_expired_windows(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    }
    OAuthStore {
        async fn save_oauth_state(&self, state: &OAuthStateRecord) -> Result<(), StoreError>;
        async fn take_oauth_state(&self, state_hash: TokenHash, now: OffsetDateTime) -> Result<Option<OAuthStateRecord>, StoreError>;
        async fn purge_expired_oauth_states(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
        async fn find_identity(&self, provider: &str, subject: &str) -> Result<Option<IdentityRecord>, StoreError>;
        async fn link_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError>;
        async fn unlink_identity(&self, user_id: Uuid, provider: &str) -> Result<UnlinkOutcome, StoreError>;
        async fn list_identities(&self, user_id: Uuid) -> Result<Vec<IdentityRecord>, StoreError>;
        async fn create_user_with_identity(&self, user: &UserRecord, identity: &IdentityRecord) -> Result<(), StoreError>;
    }
    MfaStore {

        async fn add_factors(&self, factors: &[FactorRecord]) -> Result<(), StoreError>;
        async fn list_factors(
            &self,
            user_id: Uuid,
            kind: Option<&str>,
        ) -> Result<Vec<FactorRecord>, StoreError>;
        async fn delete_factors(
            &self,
            user_id: Uuid,
            kind: Option<&str>,
            pending_only: bool,
        ) -> Result<u64, StoreError>;
        async fn confirm_factor(
            &self,
            user_id: Uuid,
            id: Uuid,
            step: i64,
            now: OffsetDateTime,
        ) -> Result<bool, StoreError>;
        async fn accept_factor_step(
            &self,
            id: Uuid,
            step: i64,
            now: OffsetDateTime,
        ) -> Result<bool, StoreError>;
        async fn use_factor_once(
            &self,
            user_id: Uuid,
            kind: &str,
            secret: &[u8],
            now: OffsetDateTime,
        ) -> Result<bool, StoreError>;
        async fn create_mfa_challenge(&self, challenge: &MfaChallengeRecord) -> Result<(), StoreError>;
        async fn find_mfa_challenge(
            &self,
            token_hash: TokenHash,
            now: OffsetDateTime,
        ) -> Result<Option<MfaChallengeRecord>, StoreError>;
        async fn take_mfa_challenge(
            &self,
            token_hash: TokenHash,
            now: OffsetDateTime,
        ) -> Result<Option<MfaChallengeRecord>, StoreError>;
        async fn purge_expired_mfa_challenges(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
        async fn list_all_factors(
            &self,
            after: Option<Uuid>,
            limit: u32,
        ) -> Result<Vec<FactorRecord>, StoreError>;
        async fn import_factor(&self, factor: &FactorRecord) -> Result<(), StoreError>;
    }
    PasskeyStore {

        async fn create_ceremony(&self, ceremony: &CeremonyRecord) -> Result<(), StoreError>;
        async fn take_ceremony(
            &self,
            id_hash: TokenHash,
            now: OffsetDateTime,
        ) -> Result<Option<CeremonyRecord>, StoreError>;
        async fn purge_expired_ceremonies(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

        async fn create_passkey(&self, passkey: &PasskeyRecord) -> Result<(), StoreError>;
        async fn find_passkey_by_credential(
            &self,
            credential_id: &[u8],
        ) -> Result<Option<PasskeyRecord>, StoreError>;
        async fn list_passkeys(&self, user_id: Uuid) -> Result<Vec<PasskeyRecord>, StoreError>;
        async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str)
        -> Result<bool, StoreError>;
        async fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError>;
        async fn delete_user_passkeys(&self, user_id: Uuid) -> Result<u64, StoreError>;
        async fn record_passkey_use(
            &self,
            id: Uuid,
            expected_sign_count: u32,
            update: &PasskeyUse,
        ) -> Result<bool, StoreError>;
    }
    MailStore {
        async fn issue_email_token(
            &self,
            token: &EmailTokenRecord,
            message: &OutboxMessage,
        ) -> Result<(), StoreError>;
        async fn find_email_token(
            &self,
            hash: TokenHash,
            purpose: EmailPurpose,
            now: OffsetDateTime,
        ) -> Result<Option<EmailTokenRecord>, StoreError>;
        async fn verify_email_with_token(
            &self,
            hash: TokenHash,
            now: OffsetDateTime,
        ) -> Result<Option<Uuid>, StoreError>;
        async fn reset_password_with_token(
            &self,
            hash: TokenHash,
            password_hash: &str,
            now: OffsetDateTime,
        ) -> Result<Option<Uuid>, StoreError>;
        async fn set_email_verified(&self, user_id: Uuid, verified: bool) -> Result<bool, StoreError>;
        async fn enqueue_mail(&self, message: &OutboxMessage) -> Result<(), StoreError>;
        async fn claim_mail(
            &self,
            now: OffsetDateTime,
            claim_id: Uuid,
            lease_until: OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<OutboxMessage>, StoreError>;
        async fn delete_mail(&self, id: Uuid) -> Result<bool, StoreError>;
        async fn retry_mail(
            &self,
            id: Uuid,
            claim_id: Uuid,
            attempts: u32,
            next_attempt_at: OffsetDateTime,
        ) -> Result<bool, StoreError>;
        async fn count_mail(&self) -> Result<u64, StoreError>;
        async fn purge_expired_mail(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    }
    TransferStore {
        async fn counts(&self, now: OffsetDateTime) -> Result<StoreCounts, StoreError>;
        async fn list_live_families(&self, after: Option<Uuid>, limit: u32, now: OffsetDateTime) -> Result<Vec<FamilyRecord>, StoreError>;
        async fn list_live_sessions(&self, after: Option<Uuid>, limit: u32, now: OffsetDateTime) -> Result<Vec<SessionRecord>, StoreError>;
        async fn server_secrets(&self) -> Result<Vec<SecretRecord>, StoreError>;
        async fn import_user(&self, user: &UserRecord) -> Result<(), StoreError>;
        async fn import_family(&self, family: &FamilyRecord) -> Result<(), StoreError>;
        async fn import_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
        async fn import_signing_key(&self, key: &SigningKeyRecord) -> Result<(), StoreError>;
        async fn import_server_secret(&self, secret: &SecretRecord) -> Result<(), StoreError>;
    }
    AuditStore {
        async fn audited(
            &self,
            change: AuditedChange<'_>,
            records: &[AuditRecord],
        ) -> Result<u64, StoreError>;
        async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
        async fn claim_audit_deliveries(
            &self,
            now: OffsetDateTime,
            lease_until: OffsetDateTime,
            limit: u32,
        ) -> Result<Vec<AuditRecord>, StoreError>;
        async fn set_audit_delivery(
            &self,
            id: Uuid,
            due: Option<OffsetDateTime>,
        ) -> Result<(), StoreError>;
        async fn purge_expired_audit(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
    }
    Store {
        async fn ping(&self) -> Result<(), StoreError>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::store::RotateOutcome;
    use latchkey_guard::VerifierStats;

    async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("m.db").display());
        let store = crate::store::sqlite::SqliteStore::open(&url).await.unwrap();
        (dir, Arc::new(store))
    }

    fn user(name: &str) -> UserRecord {
        UserRecord {
            id: Uuid::now_v7(),
            username: name.to_owned(),
            username_key: name.to_owned(),
            email: None,
            password_hash: None,
            roles: vec![],
            disabled: false,
            email_verified: false,
            generation: 0,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn rendered(metrics: &Metrics) -> String {
        metrics.render(VerifierStats::default(), (0, 0, 0)).unwrap()
    }

    #[tokio::test]
    async fn every_operation_is_forwarded_counted_by_outcome_and_timed() {
        let (_dir, inner) = sqlite().await;
        let metrics = Metrics::enabled();
        let store = metrics.wrap_store(inner.clone());
        let alice = user("alice");
        store.create_user(&alice).await.unwrap();
        assert_eq!(
            store.create_user(&alice).await.unwrap_err().to_string(),
            StoreError::Conflict.to_string()
        );
        let found = store.find_user_by_username("alice").await.unwrap();
        assert_eq!(
            found.map(|u| u.id),
            Some(alice.id),
            "forwarded to the inner store"
        );
        assert_eq!(inner.count_users().await.unwrap(), 1);
        store.ping().await.unwrap();
        let text = rendered(&metrics);
        for line in [
            "latchkey_store_operations_total{operation=\"create_user\",outcome=\"ok\"} 1",
            "latchkey_store_operations_total{operation=\"create_user\",outcome=\"conflict\"} 1",
            "latchkey_store_operations_total{operation=\"find_user_by_username\",outcome=\"ok\"} 1",
            "latchkey_store_operations_total{operation=\"ping\",outcome=\"ok\"} 1",
            "latchkey_store_operation_duration_seconds_count{operation=\"create_user\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("operation=\"count_users\""),
            "the inner store is not measured"
        );
    }

    #[tokio::test]
    async fn provided_methods_run_here_and_measure_the_operations_they_call() {
        let (_dir, inner) = sqlite().await;
        let metrics = Metrics::enabled();
        let store = metrics.wrap_store(inner);
        let request = RotateRequest {
            family_id: Uuid::new_v4(),
            presented: TokenHash([1; 32]),
            successor: TokenHash([2; 32]),
            now: OffsetDateTime::now_utc(),
            successor_expires_at: OffsetDateTime::now_utc(),
            reuse_interval: time::Duration::seconds(10),
        };
        assert_eq!(
            store.rotate_refresh(&request).await.unwrap(),
            RotateOutcome::Invalid
        );
        store
            .purge_expired(OffsetDateTime::now_utc())
            .await
            .unwrap();
        let text = rendered(&metrics);
        for operation in [
            "rotate_if_current",
            "find_family",
            "purge_expired_families",
            "purge_expired_windows",
            "purge_expired_sessions",
            "purge_expired_oauth_states",
            "purge_expired_mail",
        ] {
            let line = format!(
                "latchkey_store_operations_total{{operation=\"{operation}\",outcome=\"ok\"}} 1"
            );
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
    }
}
