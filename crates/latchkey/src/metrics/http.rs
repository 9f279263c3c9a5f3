//! Counting HTTP requests by route template (axum's [`MatchedPath`]: `/auth/sessions/{id}`,
//! never the raw path), method and status, with a latency histogram per route and method.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use ::metrics::{Counter, Histogram, Key, Recorder};
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusRecorder;
use parking_lot::RwLock;

use super::{METADATA, Registry, label, series};

/// The `route` of a request no route matched (404s of the fallback): one value for every
/// unknown path, so scanners cannot grow the label set.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The methods with a label of their own; any other is `other` (methods are client input).
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other",
];

/// The `method` label: the standard methods by name, anything else `other`.
#[must_use]
pub fn method_label(method: &Method) -> &'static str {
    METHODS[method_index(method)]
}

fn method_index(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::PATCH => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// Statuses with a lock-free slot of their own; others go through a map.
const COMMON_STATUSES: [u16; 16] = [
    200, 201, 204, 302, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 502, 503,
];

/// The handles of one route, registered on first use. On the hot path (a common status) a
/// request costs two lookups without locks, one counter increment and one histogram sample.
pub(super) struct RouteHandles {
    recorder: Arc<PrometheusRecorder>,
    route: Arc<str>,
    durations: [OnceLock<Histogram>; METHODS.len()],
    common: [[OnceLock<Counter>; COMMON_STATUSES.len()]; METHODS.len()],
    other: RwLock<HashMap<(usize, u16), Counter>>,
}

impl RouteHandles {
    fn new(recorder: Arc<PrometheusRecorder>, route: &str) -> Self {
        Self {
            recorder,
            route: Arc::from(route),
            durations: Default::default(),
            common: Default::default(),
            other: RwLock::new(HashMap::new()),
        }
    }

    fn requests(&self, method: usize, status: u16) -> Counter {
        self.recorder.register_counter(
            &Key::from_parts(
                series::HTTP_REQUESTS,
                vec![
                    label("route", self.route.clone()),
                    label("method", METHODS[method]),
                    label("status", status.to_string()),
                ],
            ),
            &METADATA,
        )
    }

    fn record(&self, method: usize, status: u16, seconds: f64) {
        self.durations[method]
            .get_or_init(|| {
                self.recorder.register_histogram(
                    &Key::from_parts(
                        series::HTTP_REQUEST_DURATION,
                        vec![
                            label("route", self.route.clone()),
                            label("method", METHODS[method]),
                        ],
                    ),
                    &METADATA,
                )
            })
            .record(seconds);
        if let Some(slot) = COMMON_STATUSES.iter().position(|s| *s == status) {
            self.common[method][slot]
                .get_or_init(|| self.requests(method, status))
                .increment(1);
            return;
        }
        if let Some(counter) = self.other.read().get(&(method, status)) {
            counter.increment(1);
            return;
        }
        self.other
            .write()
            .entry((method, status))
            .or_insert_with(|| self.requests(method, status))
            .increment(1);
    }
}

/// Every route's handles, by route template (shared by the threads; each thread keeps its own
/// copy of the map in [`THREAD_ROUTES`], so the hot path takes no lock).
#[derive(Default)]
pub(super) struct RouteTable {
    routes: RwLock<HashMap<Arc<str>, Arc<RouteHandles>>>,
}

/// Route template -> handles.
type Routes = HashMap<Box<str>, Arc<RouteHandles>>;

thread_local! {
    /// Per thread: registry id -> that registry's routes.
    static THREAD_ROUTES: RefCell<HashMap<u64, Routes>> = RefCell::new(HashMap::new());
}

impl RouteTable {
    fn shared(&self, registry: &Registry, route: &str) -> Arc<RouteHandles> {
        if let Some(handles) = self.routes.read().get(route) {
            return handles.clone();
        }
        self.routes
            .write()
            .entry(Arc::from(route))
            .or_insert_with(|| Arc::new(RouteHandles::new(registry.recorder.clone(), route)))
            .clone()
    }

    /// The handles of `route`, from this thread's cache when it has them.
    fn handles_for(&self, registry: &Registry, route: &str) -> Arc<RouteHandles> {
        THREAD_ROUTES.with(|cache| {
            let mut cache = cache.borrow_mut();
            let routes = cache.entry(registry.id).or_default();
            if let Some(handles) = routes.get(route) {
                return handles.clone();
            }
            let handles = self.shared(registry, route);
            routes.insert(Box::from(route), handles.clone());
            handles
        })
    }
}

/// Counts every request of the router it wraps. Added with `Router::layer`, so it wraps each
/// route (and sees its [`MatchedPath`]) and the fallback (which has none: [`UNMATCHED_ROUTE`]).
#[derive(Clone)]
pub struct RequestMetricsLayer(Arc<Registry>);

impl RequestMetricsLayer {
    pub(super) fn new(registry: Arc<Registry>) -> Self {
        Self(registry)
    }
}

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestMetrics {
            registry: self.0.clone(),
            inner,
        }
    }
}

/// The service of [`RequestMetricsLayer`].
#[derive(Clone)]
pub struct RequestMetrics<S> {
    registry: Arc<Registry>,
    inner: S,
}

impl<S> tower::Service<Request> for RequestMetrics<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let handles = self.registry.http.handles_for(&self.registry, route);
        let method = method_index(request.method());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            handles.record(
                method,
                response.status().as_u16(),
                started.elapsed().as_secs_f64(),
            );
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use latchkey_guard::VerifierStats;
    use tower::ServiceExt;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let made_up = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&made_up), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }

    #[tokio::test]
    async fn requests_are_labelled_by_route_template_never_by_raw_path() {
        let metrics = Metrics::enabled();
        let app = Router::new()
            .route("/items/{id}", get(|| async { "item" }))
            .layer(metrics.http_layer().unwrap());
        for uri in ["/items/1", "/items/2", "/items/3", "/secret-scan", "/x/y"] {
            let request = axum::http::Request::get(uri).body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let brew = axum::http::Request::builder()
            .method(Method::from_bytes(b"BREW").unwrap())
            .uri("/items/9")
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(brew).await.unwrap();
        let text = metrics.render(VerifierStats::default(), (0, 0, 0)).unwrap();
        assert!(
            text.contains(
                "latchkey_http_requests_total{route=\"/items/{id}\",method=\"GET\",status=\"200\"} 3"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "latchkey_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "latchkey_http_requests_total{route=\"/items/{id}\",method=\"other\",status=\"405\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "latchkey_http_request_duration_seconds_count{route=\"/items/{id}\",method=\"GET\"} 3"
            ),
            "{text}"
        );
        for raw in ["/items/1", "secret-scan", "/x/y"] {
            assert!(!text.contains(raw), "{raw} leaked into a label:\n{text}");
        }
    }
}
