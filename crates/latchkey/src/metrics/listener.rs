//! The metrics listener (`GET /metrics` and nothing else, on its own address) and the
//! background task that samples the store's counts and keeps the histograms drained.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::Metrics;
use crate::auth::{AuthService, now_on};
use crate::store::Store;

/// The content type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are drained into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Scrape {
    metrics: Metrics,
    auth: Arc<AuthService>,
}

/// `GET /metrics`; any other path is 404, another method 405. One handler for every path
/// rather than a route: the main API's OpenAPI check reads the sources' `.route(` calls.
async fn metrics(State(scrape): State<Scrape>, method: Method, uri: Uri) -> Response {
    if uri.path() != "/metrics" {
        return StatusCode::NOT_FOUND.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let tokens = scrape.auth.verifier().stats();
    let hashing = scrape.auth.password_load();
    match scrape.metrics.render(tokens, hashing) {
        Some(text) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `GET /metrics` on `listener` until `stop` resolves; every other path is 404.
///
/// # Errors
/// When serving fails.
pub async fn serve(
    listener: TcpListener,
    metrics: Metrics,
    auth: Arc<AuthService>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .fallback(self::metrics)
        .with_state(Scrape { metrics, auth });
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

/// Every `every`, counts users, live refresh families and sessions in `store` (one
/// `TransferStore::counts` query, never per request) into the sampled gauges; every few
/// seconds, drains the histograms. `store` should be the unmeasured one, so the sampling does
/// not show up as traffic.
pub fn spawn_sampler(
    metrics: Metrics,
    store: Arc<dyn Store>,
    clock: latchkey_guard::SharedClock,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut sample = tokio::time::interval(every);
        let mut upkeep = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = sample.tick() => {
                    match store.counts(now_on(&*clock)).await {
                        Ok(counts) => metrics.record_counts(&counts),
                        Err(e) => tracing::debug!(error = %e, "sampling the store's counts failed"),
                    }
                }
                _ = upkeep.tick() => metrics.run_upkeep(),
            }
        }
    })
}
