//! Starting and stopping a server: store, keys, background jobs, listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{AuthError, AuthService};
use crate::config::Config;
use crate::http::{AppState, router};
use crate::store::{self, Store, StoreError};

/// How often signing keys are re-read from the store by default (a rotation made by the CLI or
/// another instance is in use within this delay); `LATCHKEY_KEY_RELOAD_INTERVAL` overrides it.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(10);
const PURGE_INTERVAL: Duration = Duration::from_secs(300);
/// The longest wait between attempts to load keys while the store is unreachable.
const MAX_LOAD_BACKOFF: Duration = Duration::from_secs(5);

/// A running server.
pub struct Server {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    stop: watch::Sender<bool>,
    serving: JoinHandle<std::io::Result<()>>,
    jobs: Vec<JoinHandle<()>>,
}

impl Server {
    /// Opens the store, loads keys, binds `config.listen` and serves in the background.
    ///
    /// When the store is unavailable at start (a MongoDB server not reachable yet), the server
    /// starts anyway: `/readyz` and the routes that need the store answer 503 until a
    /// background task has loaded the keys.
    ///
    /// # Errors
    /// When the store cannot be opened, the keys are unusable or the address cannot be bound.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Self::start_on(config, listener).await
    }

    /// As [`Server::start`], on a listener the caller already holds (`config.listen` is not
    /// used): tests and scripts bind port 0 first and know the address before the server runs.
    ///
    /// # Errors
    /// When the store cannot be opened or the keys are unusable.
    pub async fn start_on(config: Config, listener: TcpListener) -> anyhow::Result<Self> {
        let config = Arc::new(config);
        let store = store::open(&config.database_url)
            .await
            .context("opening the store")?;
        let auth = Arc::new(AuthService::unloaded(store.clone(), config.clone())?);
        match auth.load().await {
            Ok(()) => {}
            Err(AuthError::Store(StoreError::Unavailable(e))) => {
                tracing::warn!(error = %e, "the store is unavailable: answering 503 until it is back");
            }
            Err(e) => return Err(e).context("loading keys"),
        }
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let key_reload_every = config.key_reload_interval;
        let limits = ConnectionLimits {
            header_read_timeout: config.limits.header_read_timeout,
            max_connections: config.limits.max_connections,
        };
        let mailer = crate::mail::Mailer::from_config(&config.mail).map_err(anyhow::Error::msg)?;
        let outbox = mailer.map(|mailer| {
            crate::mail::outbox::OutboxWorker::new(
                store.clone(),
                Arc::new(mailer),
                config.clock.clone(),
                auth.mail_wake(),
                config.mail.poll_interval,
                config.mail.max_attempts,
            )
        });
        let app = router(AppState::new(auth.clone(), config));
        let serving = tokio::spawn(async move {
            serve(listener, app, limits, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        });
        let mut jobs = vec![
            spawn_key_reload(auth.clone(), key_reload_every),
            spawn_purge(auth.clone()),
        ];
        // The outbox worker: sends what this and other instances enqueued (and what a previous
        // run left unsent).
        jobs.extend(outbox.map(crate::mail::outbox::OutboxWorker::spawn));
        jobs.extend(crate::auth::webhook::spawn(auth).context("the audit webhook")?);
        tracing::info!(%addr, "latchkey listening");
        Ok(Self {
            addr,
            store,
            stop,
            serving,
            jobs,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The store this server runs on (the same one, not a second connection).
    #[must_use]
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Stops accepting, lets in-flight requests finish, and stops background jobs.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for job in &self.jobs {
            job.abort();
        }
        let _ = self.serving.await;
    }

    /// Serves until the process gets Ctrl-C or SIGTERM.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.shutdown().await;
        Ok(())
    }
}

/// Bounds on what clients may hold open.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    header_read_timeout: Duration,
    max_connections: usize,
}

/// How long in-flight requests may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts HTTP/1.1 connections: at most `max_connections` at once (further clients wait in
/// the kernel's accept queue, costing nothing here), each closed when its request headers do
/// not arrive within `header_read_timeout` (slowloris). Stops accepting when `stop` resolves
/// and lets open connections finish their requests.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::Service;

    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(service) = make_service.call(remote).await;
        let service = hyper_util::service::TowerToHyperService::new(service);
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period");
    }
    Ok(())
}

/// Re-reads the keys `every` so often; until they were first loaded, retries with backoff.
fn spawn_key_reload(auth: Arc<AuthService>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(250);
        loop {
            if auth.is_ready() {
                tokio::time::sleep(every).await;
                if let Err(e) = auth.reload_keys().await {
                    tracing::warn!(error = %e, "reloading signing keys failed; keeping the current ones");
                }
                continue;
            }
            tokio::time::sleep(backoff).await;
            match auth.load().await {
                Ok(()) => tracing::info!("keys loaded from the store: ready"),
                Err(e) => {
                    tracing::debug!(error = %e, "the store is still unavailable");
                    backoff = (backoff * 2).min(MAX_LOAD_BACKOFF);
                }
            }
        }
    })
}

fn spawn_purge(auth: Arc<AuthService>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        loop {
            tick.tick().await;
            match auth.purge_expired().await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired records"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
