//! One conformance suite for every [`Store`] backend: `store_suite!(name, make_store)` expands
//! to one test per behaviour (the async functions of the area modules below), run against the
//! store `make_store` opens (a future of `Option<TestStore>`, `None` to skip when the backend's
//! server is not installed). A new backend adds one line at the end, `store_suite!(name,
//! make_name())`, and its `make_name` next to [`make_sqlite`] and [`make_mongo`].
//!
//! The rules written once in `store/` for every backend are tested once, outside the macro:
//! the refresh-reuse decision in `reuse`.

mod audit;
mod copying;
mod fixtures;
mod keys;
mod mail;
mod mfa;
mod oauth;
mod passkeys;
mod refresh;
mod reuse;
mod security;
mod sessions;
mod users;

/// Every case, for the macro.
mod cases {
    pub use super::audit::*;
    pub use super::copying::*;
    pub use super::keys::*;
    pub use super::mail::*;
    pub use super::mfa::*;
    pub use super::oauth::*;
    pub use super::passkeys::*;
    pub use super::refresh::*;
    pub use super::security::*;
    pub use super::sessions::*;
    pub use super::users::*;
}

use std::sync::Arc;

use super::Store;
#[cfg(feature = "mongodb")]
use super::mongo::MongoStore;
use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;

#[cfg(feature = "mongodb")]
#[path = "../../tests/support/secantus.rs"]
mod secantus;

#[path = "../../tests/support/postgres.rs"]
mod pg;

#[cfg(feature = "mongodb")]
pub use secantus::Secantus;

/// A store under test and what must live as long as it (a temporary directory).
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    _keep: Option<tempfile::TempDir>,
}

/// A fresh SQLite store in a temporary directory.
pub async fn make_sqlite() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = SqliteStore::open(&url).await.expect("SQLite opens");
    Some(TestStore {
        store: Arc::new(store),
        _keep: Some(dir),
    })
}

/// A fresh database on this process's SecantusDB server; `None` when it is not installed.
#[cfg(feature = "mongodb")]
pub async fn make_mongo() -> Option<TestStore> {
    let url = {
        let server = Secantus::shared()?.lock().expect("server lock");
        server.url(&Secantus::fresh_database())
    };
    let store = MongoStore::open(&url).await.expect("MongoDB opens");
    Some(TestStore {
        store: Arc::new(store),
        _keep: None,
    })
}

/// A fresh database on the test PostgreSQL server (`LATCHKEY_TEST_POSTGRES_URL`); `None` when
/// there is none.
pub async fn make_postgres() -> Option<TestStore> {
    let url = pg::fresh_database()?;
    let store = PostgresStore::open(&url).await.expect("PostgreSQL opens");
    Some(TestStore {
        store: Arc::new(store),
        _keep: None,
    })
}

/// No MongoDB store in a build without the `mongodb` feature.
#[cfg(not(feature = "mongodb"))]
pub async fn make_mongo() -> Option<TestStore> {
    None
}

/// Without the `mongodb` feature a MongoDB URL is refused with a message naming the feature.
#[cfg(not(feature = "mongodb"))]
#[tokio::test]
async fn a_mongodb_url_without_the_feature_names_the_feature() {
    let url = crate::config::DatabaseUrl::new("mongodb://127.0.0.1:27017/latchkey");
    let Err(e) = super::open(&url).await else {
        panic!("a MongoDB store opened without the feature")
    };
    assert!(e.to_string().contains("`mongodb` cargo feature"), "{e}");
}

/// Expands to one `#[tokio::test]` per case, against the store made by `$make`.
macro_rules! store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            store_suite!(@cases $make;
                ping_answers,
                users_are_created_and_found_by_name_and_id,
                a_taken_username_or_id_is_a_conflict,
                concurrent_registrations_of_one_name_create_one_user,
                user_updates_say_whether_the_user_exists,
                users_are_listed_by_page_in_id_order,
                families_are_found_and_listed_while_alive,
                rotating_the_current_token_installs_the_successor,
                the_predecessor_within_the_interval_is_reissued,
                the_predecessor_after_the_interval_revokes_the_family,
                an_older_token_revokes_the_family,
                unknown_and_expired_tokens_are_invalid,
                concurrent_rotations_with_one_token_rotate_exactly_once,
                families_are_deleted_singly_or_per_user,
                a_new_signing_key_retires_the_current_one,
                a_pending_key_retires_the_current_one_when_it_activates,
                revoking_withdraws_every_other_key_at_once,
                a_server_secret_is_stored_once_and_agreed_on,
                failed_logins_count_within_a_window,
                concurrent_throttle_hits_are_all_counted,
                purge_removes_expired_families_and_windows,
                a_session_is_used_while_alive_and_slides_up_to_its_end,
                an_idle_session_is_not_used,
                a_session_token_or_id_is_unique,
                session_data_is_replaced_and_read_back_exactly,
                sessions_are_deleted_by_token_by_id_or_per_user,
                sessions_are_listed_newest_first_and_purged_when_ended,
                an_oauth_state_is_taken_once_and_never_after_it_expires,
                an_identity_belongs_to_one_user_and_a_user_has_one_per_provider,
                the_last_way_to_log_in_is_never_unlinked,
                concurrent_unlinks_never_leave_a_user_without_a_login,
                creating_a_user_with_an_identity_is_all_or_nothing,
                users_are_found_by_email_without_regard_to_case,
                expired_oauth_states_are_purged,
                imported_records_read_back_as_given,
                copying_moves_everything_and_refuses_a_full_target,
                with_no_reuse_interval_the_predecessor_is_reuse_even_at_once,
                a_throttle_count_is_given_back_but_never_below_zero,
                the_login_generation_moves_on_and_the_flags_read_back,
                a_totp_step_is_accepted_once_and_only_after_confirmation,
                a_recovery_code_is_spent_once_and_factors_are_deleted_by_kind,
                a_pending_second_factor_login_is_taken_once_and_never_after_it_expires,
                a_ceremony_is_taken_once_and_never_after_it_expires,
                passkeys_are_unique_listed_renamed_and_deleted_per_user,
                a_passkey_use_is_recorded_only_from_the_expected_counter,
                an_audited_change_and_its_records_are_written_together,
                audited_account_changes_apply_in_full,
                audit_records_are_filtered_and_paged_by_id,
                webhook_deliveries_are_claimed_once_per_lease,
                expired_audit_records_are_purged,
                a_record_that_cannot_be_written_undoes_its_change,
                an_email_token_is_stored_with_its_message_and_only_the_newest_lives,
                a_verification_token_verifies_once_and_only_the_address_it_was_sent_to,
                a_reset_sets_the_password_and_ends_every_login_in_one_step_once,
                concurrent_uses_of_one_email_token_succeed_once,
                claimed_mail_is_hidden_until_its_lease_ends_then_retried_or_deleted,
                concurrent_claims_never_take_one_message_twice,
                expired_email_tokens_and_unsent_mail_are_purged,
            );
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(test) = $make.await else { return };
                $crate::store::conformance::cases::$case(&test.store).await;
            }
        )*
    };
}

store_suite!(sqlite, make_sqlite());
#[cfg(feature = "mongodb")]
store_suite!(mongodb, make_mongo());
store_suite!(postgres, make_postgres());
