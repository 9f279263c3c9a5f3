//! files-api: an example resource server protected by `latchkey-guard`. Files have an owner
//! and shares (read or write); every decision is made from the verified access token (its
//! `sub` and `roles`) plus the file's owner and shares, by [`access::decide`].
//!
//! Tests start it in-process on port 0:
//! ```no_run
//! # async fn run(map: std::collections::HashMap<String, String>) -> anyhow::Result<()> {
//! let running = files_api::serve(files_api::Config::from_env_map(&map)?).await?;
//! println!("files-api on {}", running.addr());
//! running.shutdown().await;
//! # Ok(()) }
//! ```

pub mod access;
pub mod config;
pub mod files;
pub mod http;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use latchkey_guard::{
    Problem, RemoteOptions, RemoteVerifier, SecurityHeaders, VerifierSettings, security_headers,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub use config::{AuthMode, Config};
use http::{AppState, CallerAuth};

/// CORS for the browser apps at `origins` (none: no CORS headers at all). Callers send a
/// Bearer token, never cookies, so credentials stay off; `WWW-Authenticate` is exposed so a
/// browser client can tell an expired token (`error="invalid_token"`) from other 401s.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(false)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                header::LOCATION,
                header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(600))
    })
}

/// The router over `state`, with its layers: CORS for `allowed_origins`, body limit,
/// `Cache-Control: no-store` (file contents are user data), and helmet's security headers on
/// every response.
pub fn app(state: AppState, body_limit: usize, allowed_origins: &[String]) -> Router {
    let router = Router::new()
        .route("/files", get(http::list).post(http::create))
        .route(
            "/files/{id}",
            get(http::read).put(http::write).delete(http::delete),
        )
        .route("/files/{id}/shares", axum::routing::post(http::share))
        .route("/healthz", get(http::healthz))
        .fallback(|| async { http::not_found() })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "this path does not accept this method",
            )
            .into_response()
        })
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit));
    let router = match cors(allowed_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(security_headers(SecurityHeaders::default()))
}

/// The state for `config`: opens the database and, unless in benchmark mode, starts the
/// remote key verifier (which keeps refreshing keys while the returned guard lives).
///
/// # Errors
/// When the database cannot be opened or the issuer URL is unusable.
pub async fn state(config: &Config) -> anyhow::Result<(AppState, Option<RemoteVerifier>)> {
    let store = store::FileStore::open(&config.database_url)
        .await
        .context("opening the files database")?;
    let (auth, remote) = match &config.auth {
        AuthMode::Verify { issuer, audience } => {
            let options = RemoteOptions {
                refetch_min_interval: config.jwks_refetch_min_interval,
                refresh_interval: config.jwks_refresh_interval,
                ..RemoteOptions::default()
            };
            let remote = RemoteVerifier::start(
                VerifierSettings::new(issuer.clone(), audience.clone()),
                &options,
            )
            .await
            .context("setting up token verification")?;
            (CallerAuth::Verify(remote.verifier()), Some(remote))
        }
        AuthMode::InsecureBenchHeader => {
            tracing::error!(
                "FILES_INSECURE_NO_VERIFY=true: TOKENS ARE NOT VERIFIED; the X-Bench-User header is trusted. \
                 For benchmarks on a loopback address only: never expose this process."
            );
            (CallerAuth::InsecureBenchHeader, None)
        }
    };
    Ok((
        AppState {
            files: files::Files::new(store),
            auth,
        },
        remote,
    ))
}

/// A running files-api.
pub struct Running {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    serving: JoinHandle<std::io::Result<()>>,
    _remote: Option<Arc<RemoteVerifier>>,
}

/// Opens the database, sets up verification, binds `config.listen` and serves in the
/// background.
///
/// # Errors
/// When the database cannot be opened, the issuer URL is unusable, or the address is taken.
pub async fn serve(config: Config) -> anyhow::Result<Running> {
    let (state, remote) = state(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let router = app(state, config.body_limit, &config.allowed_origins);
    let serving = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    tracing::info!(%addr, "files-api listening");
    Ok(Running {
        addr,
        stop,
        serving,
        _remote: remote.map(Arc::new),
    })
}

impl Running {
    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and lets in-flight requests finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.serving.await;
    }

    /// Serves until the server stops.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.serving
            .await
            .context("the server task failed")?
            .context("serving failed")
    }
}
