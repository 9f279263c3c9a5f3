//! Prometheus metrics: what Latchkey counts, the decorator that times every store operation
//! ([`MeteredStore`]), the layer that counts HTTP requests ([`RequestMetricsLayer`]) and the
//! separate listener that serves `GET /metrics` ([`serve`]).
//!
//! Off by default (`LATCHKEY_METRICS_LISTEN` unset): then [`Metrics`] is empty, no recorder
//! exists, the store is not wrapped, the HTTP layer is not added, and each counting call is
//! one branch on `None`.
//!
//! The series live in this server's own recorder, not in the process-global one of the
//! `metrics` crate, so that several servers in one process (the tests) count apart. Handles
//! are registered once and kept (labels are bounded: route templates, never raw paths, no
//! user ids), so counting costs an atomic add, not a registry lookup.
//!
//! What is cheap to read when asked is read at scrape time instead of counted: the verifier's
//! counters (`latchkey-guard` stays free of any metrics library) and the hashing pool's queue.
//! What costs a query (live families, sessions, users) is sampled by a background task.
//!
//! # Series
//! | name | type | labels |
//! | --- | --- | --- |
//! | `latchkey_logins_total` | counter | `method` (password, cookie_session, oidc), `outcome` |
//! | `latchkey_refreshes_total` | counter | `outcome` (rotated, reissued, reuse_detected, refused, error) |
//! | `latchkey_token_verifications_total` | counter | `result` (cache_hit, verified, refused) |
//! | `latchkey_token_cache_hit_ratio` | gauge | |
//! | `latchkey_password_hashes_in_flight` | gauge | |
//! | `latchkey_password_hashes_waiting` | gauge | `queue` (login, registration) |
//! | `latchkey_password_hash_duration_seconds` | histogram | `kind` (verify, hash) |
//! | `latchkey_store_operations_total` | counter | `operation`, `outcome` (ok, conflict, unavailable, corrupt) |
//! | `latchkey_store_operation_duration_seconds` | histogram | `operation` |
//! | `latchkey_http_requests_total` | counter | `route`, `method`, `status` |
//! | `latchkey_http_request_duration_seconds` | histogram | `route`, `method` |
//! | `latchkey_users`, `latchkey_live_refresh_families`, `latchkey_live_sessions` | gauge | |
//! | `latchkey_build_info` | gauge (1) | `version`, `git_sha` |

mod http;
mod listener;
mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ::metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Level, Metadata, Recorder};
use latchkey_guard::VerifierStats;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use parking_lot::RwLock;

pub use self::http::{RequestMetrics, RequestMetricsLayer, UNMATCHED_ROUTE, method_label};
pub use self::listener::{serve, spawn_sampler};
pub use self::store::MeteredStore;
use crate::auth::AuthError;
use crate::auth::mfa::LoginStep;
use crate::auth::password::{DurationObserver, Priority};
use crate::config::MetricsConfig;
use crate::store::{Store, StoreCounts, StoreError};

/// The names of every series.
pub mod series {
    /// Counter: logins by `method` and `outcome`.
    pub const LOGINS: &str = "latchkey_logins_total";
    /// Counter: refresh attempts by `outcome`.
    pub const REFRESHES: &str = "latchkey_refreshes_total";
    /// Counter: access-token verifications by `result`.
    pub const TOKEN_VERIFICATIONS: &str = "latchkey_token_verifications_total";
    /// Gauge: the share of verifications answered from the verified-token cache.
    pub const TOKEN_CACHE_HIT_RATIO: &str = "latchkey_token_cache_hit_ratio";
    /// Gauge: password hashes being computed.
    pub const PASSWORD_HASHES_IN_FLIGHT: &str = "latchkey_password_hashes_in_flight";
    /// Gauge: password hashes waiting for a thread, by `queue`.
    pub const PASSWORD_HASHES_WAITING: &str = "latchkey_password_hashes_waiting";
    /// Histogram: how long a password hash took, by `kind`.
    pub const PASSWORD_HASH_DURATION: &str = "latchkey_password_hash_duration_seconds";
    /// Counter: store operations by `operation` and `outcome`.
    pub const STORE_OPERATIONS: &str = "latchkey_store_operations_total";
    /// Histogram: store operation latency by `operation`.
    pub const STORE_OPERATION_DURATION: &str = "latchkey_store_operation_duration_seconds";
    /// Counter: HTTP requests by `route` (template), `method` and `status`.
    pub const HTTP_REQUESTS: &str = "latchkey_http_requests_total";
    /// Histogram: HTTP request latency by `route` and `method`.
    pub const HTTP_REQUEST_DURATION: &str = "latchkey_http_request_duration_seconds";
    /// Gauge (sampled): users.
    pub const USERS: &str = "latchkey_users";
    /// Gauge (sampled): live refresh families.
    pub const LIVE_REFRESH_FAMILIES: &str = "latchkey_live_refresh_families";
    /// Gauge (sampled): live server-side sessions.
    pub const LIVE_SESSIONS: &str = "latchkey_live_sessions";
    /// Gauge, always 1: `version` and `git_sha` of this build.
    pub const BUILD_INFO: &str = "latchkey_build_info";

    /// Every series, for documentation checks.
    pub const ALL: &[&str] = &[
        LOGINS,
        REFRESHES,
        TOKEN_VERIFICATIONS,
        TOKEN_CACHE_HIT_RATIO,
        PASSWORD_HASHES_IN_FLIGHT,
        PASSWORD_HASHES_WAITING,
        PASSWORD_HASH_DURATION,
        STORE_OPERATIONS,
        STORE_OPERATION_DURATION,
        HTTP_REQUESTS,
        HTTP_REQUEST_DURATION,
        USERS,
        LIVE_REFRESH_FAMILIES,
        LIVE_SESSIONS,
        BUILD_INFO,
    ];
}

/// Latency buckets, in seconds (Prometheus' defaults with a finer low end).
const BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// The git commit this binary was built from, when the build set `LATCHKEY_GIT_SHA`.
const GIT_SHA: &str = match option_env!("LATCHKEY_GIT_SHA") {
    Some(sha) => sha,
    None => "unknown",
};

static METADATA: Metadata<'static> =
    Metadata::new("latchkey::metrics", Level::INFO, Some(module_path!()));

/// How a login was attempted (the `method` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginMethod {
    /// `POST /auth/login`.
    Password,
    /// `POST /session/login`.
    CookieSession,
    /// A provider sign-in's callback.
    Oidc,
    /// `POST /auth/login/mfa`: the second step of a login.
    SecondFactor,
}

impl LoginMethod {
    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::CookieSession => "cookie_session",
            Self::Oidc => "oidc",
            Self::SecondFactor => "second_factor",
        }
    }
}

/// What a refresh attempt came to (the `outcome` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The current token was rotated.
    Rotated,
    /// The immediate predecessor came back within the reuse interval: the current token again.
    Reissued,
    /// An older token came back: the family was revoked.
    ReuseDetected,
    /// Forged, unknown, expired or revoked token, or a disabled user.
    Refused,
    /// The store failed.
    Error,
}

impl RefreshOutcome {
    const ALL: [Self; 5] = [
        Self::Rotated,
        Self::Reissued,
        Self::ReuseDetected,
        Self::Refused,
        Self::Error,
    ];

    /// The label value.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Reissued => "reissued",
            Self::ReuseDetected => "reuse_detected",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
}

/// The `outcome` label of a failed login: a small fixed set (OAuth failures by their code).
#[must_use]
pub fn login_outcome(error: &AuthError) -> &'static str {
    match error {
        AuthError::InvalidCredentials => "invalid_credentials",
        AuthError::TooManyAttempts { .. } => "throttled",
        AuthError::Overloaded { .. } => "overloaded",
        AuthError::InvalidInput(_) => "invalid_input",
        AuthError::InvalidMfaCode => "invalid_mfa_code",
        AuthError::InvalidMfaToken => "invalid_mfa_token",
        AuthError::EmailNotVerified => "email_not_verified",
        AuthError::OAuth(e) => e.code(),
        AuthError::Store(StoreError::Unavailable(_)) => "store_unavailable",
        _ => "error",
    }
}

/// This server's metrics: empty (every call a no-op) when metrics are off. Cloning is one
/// `Arc` clone.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Registry>>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Metrics").field(&self.is_enabled()).finish()
    }
}

impl Metrics {
    /// Metrics as configured: on when `LATCHKEY_METRICS_LISTEN` is set.
    #[must_use]
    pub fn for_config(config: &MetricsConfig) -> Self {
        if config.listen.is_some() {
            Self::enabled()
        } else {
            Self::default()
        }
    }

    /// Metrics on, with a fresh recorder of their own.
    #[must_use]
    pub fn enabled() -> Self {
        Self(Some(Arc::new(Registry::new())))
    }

    /// Whether anything is counted.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// Counts a login attempt of `method` that came to `result`.
    pub fn login<T>(&self, method: LoginMethod, result: &Result<T, AuthError>) {
        if let Some(registry) = &self.0 {
            let outcome = match result {
                Ok(_) => "success",
                Err(e) => login_outcome(e),
            };
            registry.login(method, outcome);
        }
    }

    /// Passes `result` through, counting it as a login attempt of `method`.
    ///
    /// # Errors
    /// `result`'s error.
    pub fn counted_login<T>(
        &self,
        method: LoginMethod,
        result: Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        self.login(method, &result);
        result
    }

    /// Passes a login's first step through, counting it: `success` when it is done,
    /// `mfa_required` when it waits for a second factor (counted again, as `second_factor`,
    /// when that comes).
    ///
    /// # Errors
    /// `result`'s error.
    pub fn counted_login_step<T>(
        &self,
        method: LoginMethod,
        result: Result<LoginStep<T>, AuthError>,
    ) -> Result<LoginStep<T>, AuthError> {
        if let Some(registry) = &self.0 {
            let outcome = match &result {
                Ok(LoginStep::Done(_)) => "success",
                Ok(LoginStep::SecondFactor(_)) => "mfa_required",
                Err(e) => login_outcome(e),
            };
            registry.login(method, outcome);
        }
        result
    }

    /// Counts a failed login attempt of `method`.
    pub fn login_failed(&self, method: LoginMethod, error: &AuthError) {
        if let Some(registry) = &self.0 {
            registry.login(method, login_outcome(error));
        }
    }

    /// Counts a refresh attempt.
    pub fn refresh(&self, outcome: RefreshOutcome) {
        if let Some(registry) = &self.0 {
            registry.refreshes[outcome as usize].increment(1);
        }
    }

    /// `store`, timed and counted operation by operation when metrics are on; as it is when
    /// they are off.
    #[must_use]
    pub fn wrap_store(&self, store: Arc<dyn Store>) -> Arc<dyn Store> {
        match &self.0 {
            Some(registry) => Arc::new(MeteredStore::new(store, registry.clone())),
            None => store,
        }
    }

    /// The layer that counts HTTP requests, when metrics are on.
    #[must_use]
    pub fn http_layer(&self) -> Option<RequestMetricsLayer> {
        self.0.clone().map(RequestMetricsLayer::new)
    }

    /// What records password-hash durations, when metrics are on.
    #[must_use]
    pub fn password_observer(&self) -> Option<DurationObserver> {
        let registry = self.0.as_ref()?;
        let [verify, hash] = registry.hash_durations.clone();
        Some(Box::new(move |priority, elapsed: Duration| {
            let histogram = match priority {
                Priority::Login => &verify,
                Priority::Registration => &hash,
            };
            histogram.record(elapsed.as_secs_f64());
        }))
    }

    /// Sets the sampled gauges from the store's counts.
    pub fn record_counts(&self, counts: &StoreCounts) {
        if let Some(registry) = &self.0 {
            registry.sampled.users.set(as_f64(counts.users));
            registry.sampled.families.set(as_f64(counts.families));
            registry.sampled.sessions.set(as_f64(counts.sessions));
        }
    }

    /// Drains histogram samples into their buckets, so memory stays bounded between scrapes.
    pub fn run_upkeep(&self) {
        if let Some(registry) = &self.0 {
            registry.handle.run_upkeep();
        }
    }

    /// The Prometheus text exposition, after reading what is read at scrape time: the
    /// verifier's counters and the hashing pool's load (`waiting logins`, `waiting
    /// registrations`, `running`). `None` when metrics are off.
    #[must_use]
    pub fn render(&self, tokens: VerifierStats, hashing: (usize, usize, usize)) -> Option<String> {
        let registry = self.0.as_ref()?;
        let scraped = &registry.scraped;
        scraped.cache_hits.absolute(tokens.cache_hits);
        scraped.verified.absolute(tokens.verified);
        scraped.refused.absolute(tokens.refused);
        scraped.hit_ratio.set(tokens.cache_hit_ratio());
        let (waiting_logins, waiting_registrations, running) = hashing;
        scraped.waiting_logins.set(as_f64(waiting_logins));
        scraped
            .waiting_registrations
            .set(as_f64(waiting_registrations));
        scraped.in_flight.set(as_f64(running));
        Some(registry.handle.render())
    }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^53
fn as_f64(n: impl TryInto<u64>) -> f64 {
    n.try_into().unwrap_or(u64::MAX) as f64
}

/// The recorder and the handles registered once.
pub struct Registry {
    /// Unique in the process, never reused (the HTTP layer's per-thread caches key on it).
    id: u64,
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    refreshes: [Counter; 5],
    /// Verify (login priority), hash (registration priority).
    hash_durations: [Histogram; 2],
    logins: RwLock<HashMap<(LoginMethod, &'static str), Counter>>,
    scraped: Scraped,
    sampled: Sampled,
    http: http::RouteTable,
    store: store::OperationTable,
}

/// Series set from other counters at scrape time.
struct Scraped {
    cache_hits: Counter,
    verified: Counter,
    refused: Counter,
    hit_ratio: Gauge,
    in_flight: Gauge,
    waiting_logins: Gauge,
    waiting_registrations: Gauge,
}

/// Series set by the sampler.
struct Sampled {
    users: Gauge,
    families: Gauge,
    sessions: Gauge,
}

fn key(name: &'static str, labels: Vec<Label>) -> Key {
    Key::from_parts(name, labels)
}

fn label(name: &'static str, value: impl Into<::metrics::SharedString>) -> Label {
    Label::new(name, value)
}

impl Registry {
    fn new() -> Self {
        // `set_buckets` only fails for an empty list.
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let recorder = Arc::new(builder.build_recorder());
        let handle = recorder.handle();
        describe(&recorder);
        let counter = |name, labels| recorder.register_counter(&key(name, labels), &METADATA);
        let gauge = |name, labels| recorder.register_gauge(&key(name, labels), &METADATA);
        let histogram = |name, labels| recorder.register_histogram(&key(name, labels), &METADATA);
        let refreshes = RefreshOutcome::ALL
            .map(|o| counter(series::REFRESHES, vec![label("outcome", o.label())]));
        let hash_durations = ["verify", "hash"]
            .map(|kind| histogram(series::PASSWORD_HASH_DURATION, vec![label("kind", kind)]));
        let verifications =
            |result| counter(series::TOKEN_VERIFICATIONS, vec![label("result", result)]);
        let scraped = Scraped {
            cache_hits: verifications("cache_hit"),
            verified: verifications("verified"),
            refused: verifications("refused"),
            hit_ratio: gauge(series::TOKEN_CACHE_HIT_RATIO, vec![]),
            in_flight: gauge(series::PASSWORD_HASHES_IN_FLIGHT, vec![]),
            waiting_logins: gauge(
                series::PASSWORD_HASHES_WAITING,
                vec![label("queue", "login")],
            ),
            waiting_registrations: gauge(
                series::PASSWORD_HASHES_WAITING,
                vec![label("queue", "registration")],
            ),
        };
        let sampled = Sampled {
            users: gauge(series::USERS, vec![]),
            families: gauge(series::LIVE_REFRESH_FAMILIES, vec![]),
            sessions: gauge(series::LIVE_SESSIONS, vec![]),
        };
        gauge(
            series::BUILD_INFO,
            vec![
                label("version", env!("CARGO_PKG_VERSION")),
                label("git_sha", GIT_SHA),
            ],
        )
        .set(1.0);
        Self {
            refreshes,
            hash_durations,
            logins: RwLock::new(HashMap::new()),
            scraped,
            sampled,
            http: http::RouteTable::default(),
            store: store::OperationTable::default(),
            handle,
            recorder,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn login(&self, method: LoginMethod, outcome: &'static str) {
        if let Some(counter) = self.logins.read().get(&(method, outcome)) {
            counter.increment(1);
            return;
        }
        self.logins
            .write()
            .entry((method, outcome))
            .or_insert_with(|| {
                self.counter(
                    series::LOGINS,
                    vec![label("method", method.label()), label("outcome", outcome)],
                )
            })
            .increment(1);
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        self.recorder
            .register_histogram(&key(name, labels), &METADATA)
    }
}

/// The `# HELP` lines.
fn describe(recorder: &PrometheusRecorder) {
    use series as s;
    let help: &[(&'static str, &'static str)] = &[
        (s::LOGINS, "Login attempts by method and outcome."),
        (
            s::REFRESHES,
            "Refresh attempts: rotated, reissued within the reuse interval, reuse detected \
             (family revoked), refused, error.",
        ),
        (
            s::TOKEN_VERIFICATIONS,
            "Access-token verifications: answered from the cache, verified in full, refused.",
        ),
        (
            s::TOKEN_CACHE_HIT_RATIO,
            "Share of token verifications answered from the verified-token cache.",
        ),
        (
            s::PASSWORD_HASHES_IN_FLIGHT,
            "Password hashes being computed now.",
        ),
        (
            s::PASSWORD_HASHES_WAITING,
            "Password hashes waiting for a hashing thread, by queue.",
        ),
        (
            s::PASSWORD_HASH_DURATION,
            "Time to compute one password hash (verify: a login's check; hash: a new password).",
        ),
        (
            s::STORE_OPERATIONS,
            "Store operations by operation and outcome.",
        ),
        (
            s::STORE_OPERATION_DURATION,
            "Store operation latency by operation.",
        ),
        (
            s::HTTP_REQUESTS,
            "HTTP requests by route template, method and status.",
        ),
        (
            s::HTTP_REQUEST_DURATION,
            "HTTP request latency by route template and method.",
        ),
        (s::USERS, "Users (sampled)."),
        (
            s::LIVE_REFRESH_FAMILIES,
            "Live refresh families, one per login (sampled).",
        ),
        (
            s::LIVE_SESSIONS,
            "Live server-side cookie sessions (sampled).",
        ),
        (s::BUILD_INFO, "Version and git commit of this build."),
    ];
    for (name, text) in help {
        let name = KeyName::from_const_str(name);
        if name.as_str().ends_with("_seconds") {
            recorder.describe_histogram(name, None, (*text).into());
        } else {
            recorder.describe_counter(name, None, (*text).into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_off_count_nothing_and_render_nothing() {
        let metrics = Metrics::for_config(&MetricsConfig::default());
        assert!(!metrics.is_enabled());
        metrics.login::<()>(LoginMethod::Password, &Ok(()));
        metrics.refresh(RefreshOutcome::Rotated);
        assert!(metrics.http_layer().is_none());
        assert!(metrics.password_observer().is_none());
        assert_eq!(metrics.render(VerifierStats::default(), (0, 0, 0)), None);
    }

    #[test]
    fn logins_and_refreshes_are_counted_by_label() {
        let metrics = Metrics::enabled();
        metrics.login::<()>(LoginMethod::Password, &Ok(()));
        metrics.login::<()>(LoginMethod::Password, &Err(AuthError::InvalidCredentials));
        metrics.login::<()>(LoginMethod::Password, &Err(AuthError::InvalidCredentials));
        metrics.login::<()>(
            LoginMethod::Oidc,
            &Err(crate::auth::oidc::OAuthError::InvalidState.into()),
        );
        metrics.refresh(RefreshOutcome::ReuseDetected);
        let text = metrics
            .render(
                VerifierStats {
                    cache_hits: 3,
                    verified: 1,
                    refused: 0,
                },
                (2, 1, 1),
            )
            .unwrap();
        for line in [
            "latchkey_logins_total{method=\"password\",outcome=\"success\"} 1",
            "latchkey_logins_total{method=\"password\",outcome=\"invalid_credentials\"} 2",
            "latchkey_logins_total{method=\"oidc\",outcome=\"invalid_state\"} 1",
            "latchkey_refreshes_total{outcome=\"reuse_detected\"} 1",
            "latchkey_refreshes_total{outcome=\"rotated\"} 0",
            "latchkey_token_verifications_total{result=\"cache_hit\"} 3",
            "latchkey_token_cache_hit_ratio 0.75",
            "latchkey_password_hashes_waiting{queue=\"login\"} 2",
            "latchkey_password_hashes_in_flight 1",
            "# HELP latchkey_logins_total Login attempts by method and outcome.",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(text.contains("latchkey_build_info{version=\""), "{text}");
    }

    #[test]
    fn every_series_has_a_help_text_and_the_documented_name() {
        let metrics = Metrics::enabled();
        let text = metrics.render(VerifierStats::default(), (0, 0, 0)).unwrap();
        for name in series::ALL {
            assert!(name.starts_with("latchkey_"), "{name}");
            // Series that exist before anything happened carry their HELP line already.
            if text.contains(&format!("\n{name}")) || text.starts_with(name) {
                assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
            }
        }
    }
}
