//! Building the service and loading what it needs from the store: signing keys, the
//! refresh-token key and the session-cookie key. Loading may fail while the store is
//! unreachable and be retried; until it succeeds the service is not ready.

use std::sync::{Arc, OnceLock};

use latchkey_guard::{TtlCache, Verifier, VerifierSettings};

use super::email;
use super::keys::KeyRing;
use super::oidc::Providers;
use super::password::PasswordHasherPool;
use super::refresh::RefreshCodec;
use super::sessions::{CookieSealer, build_sealer};
use super::{AuthError, AuthService, REFRESH_KEY_NAME, to_time};
use crate::config::Config;
use crate::store::{Store, StoreError};

/// The keys kept in the store besides the signing keys.
pub(super) struct Secrets {
    pub(super) codec: RefreshCodec,
    pub(super) sealer: CookieSealer,
}

/// The verifier of this server's own access tokens, as configured: issuer, audience, the
/// token leeway and the injected clock. The only place those settings are put together, so
/// the server and the CLI check tokens alike.
#[must_use]
pub fn verifier_for(config: &Config) -> Arc<Verifier> {
    let mut settings = VerifierSettings::new(config.issuer.clone(), config.audience.clone())
        .with_clock(config.clock.clone());
    settings.leeway = config.token_leeway;
    Arc::new(Verifier::new(settings))
}

impl AuthService {
    /// Builds the service from `config` and loads (or creates) the signing keys and the
    /// refresh-token key.
    ///
    /// # Errors
    /// A store failure or bad key material.
    pub async fn open(store: Arc<dyn Store>, config: Arc<Config>) -> Result<Self, AuthError> {
        let service = Self::unloaded(store, config)?;
        service.load().await?;
        Ok(service)
    }

    /// As [`AuthService::open`], with a verifier the caller built (tests that check tokens
    /// with a verifier of their own); it must come from [`verifier_for`] to honour the
    /// configured leeway and clock.
    ///
    /// # Errors
    /// A store failure or bad key material.
    pub async fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        verifier: Arc<Verifier>,
    ) -> Result<Self, AuthError> {
        let service = Self::with_verifier(store, config, verifier)?;
        service.load().await?;
        Ok(service)
    }

    /// Builds the service (and its verifier) from `config` without touching the store; it is
    /// ready once [`AuthService::load`] succeeds.
    ///
    /// # Errors
    /// [`AuthError::Internal`] for Argon2 parameters the library refuses or an unusable OAuth
    /// provider configuration.
    pub fn unloaded(store: Arc<dyn Store>, config: Arc<Config>) -> Result<Self, AuthError> {
        let verifier = verifier_for(&config);
        Self::with_verifier(store, config, verifier)
    }

    fn with_verifier(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        verifier: Arc<Verifier>,
    ) -> Result<Self, AuthError> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let passwords = PasswordHasherPool::new(config.argon2, cores)?;
        passwords.set_queue_capacity(config.limits.password_queue);
        let publish_for = to_time(config.access_token_ttl + config.token_leeway);
        let keys = KeyRing::new(
            config.signing_alg,
            config.hs256_secret.clone(),
            publish_for,
            verifier.clone(),
            config.clock.clone(),
        );
        let oidc = Providers::new(&config.oauth)?;
        Ok(Self {
            oidc,
            store,
            config,
            passwords,
            keys,
            secrets: OnceLock::new(),
            verifier,
            users: TtlCache::new(10_000),
            identity_cache: TtlCache::new(10_000),
            mail_wake: Arc::new(tokio::sync::Notify::new()),
            mail_jobs: Arc::new(tokio::sync::Semaphore::new(email::MAX_PENDING_LOOKUPS)),
        })
    }

    /// Fetches the refresh-token and session keys (storing new ones on first start) and loads
    /// the signing keys (creating the first). Safe to call again until it succeeds.
    ///
    /// # Errors
    /// A store failure ([`StoreError::Unavailable`] while the database is unreachable) or bad
    /// key material.
    pub async fn load(&self) -> Result<(), AuthError> {
        if self.secrets.get().is_none() {
            let mut candidate = [0u8; 32];
            super::fill_random(&mut candidate)?;
            let refresh_key = self
                .store
                .server_secret(REFRESH_KEY_NAME, &candidate, self.now())
                .await?;
            let sealer = build_sealer(&*self.store, &self.config.session_keys, self.now()).await?;
            let codec = RefreshCodec::new(&refresh_key);
            let _ = self.secrets.set(Secrets { codec, sealer });
        }
        self.keys.load(&*self.store).await
    }

    /// Whether the keys are loaded, so tokens and sessions can be issued and checked.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.secrets.get().is_some() && self.keys.is_loaded()
    }

    pub(super) fn secrets(&self) -> Result<&Secrets, AuthError> {
        match self.secrets.get() {
            Some(secrets) if self.keys.is_loaded() => Ok(secrets),
            _ => Err(AuthError::Store(StoreError::Unavailable(
                "keys are not loaded from the store yet".into(),
            ))),
        }
    }

    pub(super) fn codec(&self) -> Result<&RefreshCodec, AuthError> {
        Ok(&self.secrets()?.codec)
    }
}
