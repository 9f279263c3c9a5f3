//! Who is calling and which request this is, decided once per request by the outermost layer
//! ([`RequestContext`]) and put in the request's extensions for everything after it:
//!
//! - [`ClientAddr`]: the client address. The TCP peer, unless the peer is a trusted proxy
//!   (`LATCHKEY_TRUSTED_PROXIES`): then the address the forwarded header states, walking from
//!   the right and skipping trusted hops (the rightmost untrusted address). A header that
//!   cannot be read falls back to the peer. Throttling, the `ip` of refresh families and
//!   sessions, and the logs all read this one value (through [`super::extract::Client`]).
//! - [`RequestId`]: an incoming `X-Request-Id` when a trusted proxy sent a sane one (1 to 128
//!   visible ASCII characters), else a fresh one; returned on every answer.
//!
//! The layer also opens the request's tracing span (`request_id`, `method`, `route`,
//! `client_ip`), so every log line of the request carries them, and writes one access line
//! per request (target `latchkey::access`: `status`, `latency_ms`).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use tracing::Instrument;

use crate::config::{ForwardedHeader, TrustedProxies};

/// The request id header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The longest incoming request id honoured.
const MAX_REQUEST_ID: usize = 128;
/// The most forwarded hops looked at (a longer chain is a client padding the header).
const MAX_HOPS: usize = 32;

/// The client address of this request (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of a request: the one [`RequestContext`] decided, else the TCP peer
    /// (a router served without the layer, as in unit tests).
    #[must_use]
    pub fn of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
        extensions.get::<Self>().map(|c| c.0).or_else(|| {
            extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_canonical())
        })
    }
}

/// The id of this request, as returned in `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("-")
    }
}

/// The client address for a request from `peer` with `headers`.
#[must_use]
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !proxies.contains(peer) {
        return peer;
    }
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all(proxies.header.as_str()) {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        hops.extend(split_outside_quotes(text, ','));
    }
    let mut client = peer;
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let node = match proxies.header {
            ForwardedHeader::XForwardedFor => Some(hop.trim()),
            ForwardedHeader::Forwarded => forwarded_for(hop),
        };
        let Some(ip) = node.and_then(parse_node) else {
            return peer;
        };
        client = ip;
        if !proxies.contains(ip) {
            return ip;
        }
    }
    client
}

/// `text` split at `separator`s that are not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The `for=` value of one RFC 7239 `forwarded-element`, unquoted.
fn forwarded_for(element: &str) -> Option<&str> {
    split_outside_quotes(element, ';')
        .into_iter()
        .find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            name.trim().eq_ignore_ascii_case("for").then(|| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

/// An address with an optional port: `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:443`. `unknown` and obfuscated names are not addresses.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return inside
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| IpAddr::V6(ip).to_canonical());
    }
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    let (host, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// An incoming request id worth keeping: one value of 1 to 128 visible ASCII characters.
fn incoming_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(&REQUEST_ID).iter();
    let value = values.next()?;
    let sane = values.next().is_none()
        && (1..=MAX_REQUEST_ID).contains(&value.len())
        && value.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b));
    sane.then(|| value.clone())
}

/// A fresh request id: 32 hex digits, a random per-process half and a counter (unique across
/// instances without a system call per request).
fn fresh_request_id() -> HeaderValue {
    static PROCESS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let process = *PROCESS.get_or_init(|| {
        let mut bytes = [0u8; 8];
        if crate::auth::fill_random(&mut bytes).is_err() {
            // No randomness at all: the start time still tells instances apart.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes = (nanos as u64).to_be_bytes();
        }
        u64::from_be_bytes(bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{process:016x}{n:016x}"))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The outermost layer: client address, request id, span and access line.
#[derive(Clone)]
pub struct RequestContext(pub Arc<TrustedProxies>);

impl<S> tower::Layer<S> for RequestContext {
    type Service = RequestContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContextService {
            proxies: Arc::clone(&self.0),
            inner,
        }
    }
}

/// The service of [`RequestContext`].
#[derive(Clone)]
pub struct RequestContextService<S> {
    proxies: Arc<TrustedProxies>,
    inner: S,
}

impl<S> tower::Service<Request> for RequestContextService<S>
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

    fn call(&mut self, mut request: Request) -> Self::Future {
        let started = Instant::now();
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical());
        let from_proxy = peer.is_some_and(|p| self.proxies.contains(p));
        let client = peer.map(|p| client_address(p, request.headers(), &self.proxies));
        let id = from_proxy
            .then(|| incoming_request_id(request.headers()))
            .flatten()
            .unwrap_or_else(fresh_request_id);
        let span = tracing::info_span!(
            "request",
            request_id = id.to_str().unwrap_or("-"),
            method = %request.method(),
            route = tracing::field::Empty,
            client_ip = tracing::field::Empty,
        );
        if let Some(route) = request.extensions().get::<MatchedPath>() {
            span.record("route", route.as_str());
        }
        if let Some(client) = client {
            span.record("client_ip", tracing::field::display(client));
            request.extensions_mut().insert(ClientAddr(client));
        }
        request.extensions_mut().insert(RequestId(id.clone()));
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(
            async move {
                let mut response = match future.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                response.headers_mut().insert(REQUEST_ID.clone(), id);
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                tracing::info!(
                    target: "latchkey::access",
                    status = response.status().as_u16(),
                    latency_ms = micros as f64 / 1000.0,
                    "request"
                );
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
        TrustedProxies {
            networks: nets.iter().map(|n| n.parse().unwrap()).collect(),
            header,
        }
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const LB: &str = "10.0.0.2";

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let h = headers("x-forwarded-for", &["1.2.3.4"]);
        assert_eq!(client_address(ip("203.0.113.9"), &h, &p), ip("203.0.113.9"));
        let none = proxies(&[], ForwardedHeader::XForwardedFor);
        assert_eq!(client_address(ip(LB), &h, &none), ip(LB));
    }

    #[test]
    fn x_forwarded_for_gives_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let cases: &[(&[&str], &str)] = &[
            (&["198.51.100.7"], "198.51.100.7"),
            // The client made up the first entry; the proxy appended what it saw.
            (&["6.6.6.6, 198.51.100.7"], "198.51.100.7"),
            (&["6.6.6.6, 198.51.100.7, 10.1.1.1"], "198.51.100.7"),
            // Several header lines are one list, in order.
            (&["6.6.6.6", "198.51.100.7 , 10.1.1.1"], "198.51.100.7"),
            (&["198.51.100.7:5555"], "198.51.100.7"),
            (&["[2001:db8::7]:443"], "2001:db8::7"),
            (&["2001:db8::7"], "2001:db8::7"),
            (&["::ffff:198.51.100.7"], "198.51.100.7"),
            // Every hop trusted: the farthest one.
            (&["10.9.9.9, 10.1.1.1"], "10.9.9.9"),
            // No header: the proxy itself.
            (&[], LB),
            // Malformed where it counts: the peer.
            (&["198.51.100.7, nonsense"], LB),
            (&["unknown"], LB),
            (&[""], LB),
            (&["198.51.100.7,"], LB),
            (&["[2001:db8::7"], LB),
            // Malformed only where the client wrote: ignored.
            (&["garbage, 198.51.100.7"], "198.51.100.7"),
        ];
        for (values, want) in cases {
            let h = headers("x-forwarded-for", values);
            assert_eq!(client_address(ip(LB), &h, &p), ip(want), "{values:?}");
        }
        let forwarded = headers("forwarded", &["for=198.51.100.7"]);
        assert_eq!(
            client_address(ip(LB), &forwarded, &p),
            ip(LB),
            "the other header"
        );
    }

    #[test]
    fn forwarded_gives_the_rightmost_untrusted_for() {
        let p = proxies(&["10.0.0.0/8", "fd00::/8"], ForwardedHeader::Forwarded);
        let cases: &[(&[&str], &str)] = &[
            (&["for=198.51.100.7"], "198.51.100.7"),
            (&["For=\"198.51.100.7:4711\";proto=https"], "198.51.100.7"),
            (
                &["for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";by=10.0.0.2, for=10.3.3.3"],
                "2001:db8:cafe::17",
            ),
            (
                &["proto=https;for=198.51.100.7;host=\"a,b\""],
                "198.51.100.7",
            ),
            (&["for=6.6.6.6", "for=198.51.100.7"], "198.51.100.7"),
            (&["for=\"[fd00::3]\", for=10.1.1.1"], "fd00::3"),
            (&["for=unknown"], LB),
            (&["for=_hidden"], LB),
            (&["proto=https"], LB),
            (&["for=\"198.51.100.7"], LB),
            (&["for=198.51.100.7;proto=https, by=x"], LB),
        ];
        for (values, want) in cases {
            let h = headers("forwarded", values);
            assert_eq!(client_address(ip(LB), &h, &p), ip(want), "{values:?}");
        }
    }

    #[test]
    fn a_non_ascii_header_falls_back_to_the_peer() {
        let p = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.7\xff").unwrap(),
        );
        assert_eq!(client_address(ip(LB), &h, &p), ip(LB));
    }

    #[test]
    fn only_sane_request_ids_are_kept() {
        let keep = |v: &[&str]| incoming_request_id(&headers("x-request-id", v));
        assert_eq!(keep(&["abc-123_XYZ.9"]).unwrap(), "abc-123_XYZ.9");
        assert!(keep(&[&"a".repeat(128)]).is_some());
        assert!(keep(&[&"a".repeat(129)]).is_none());
        assert!(keep(&["has space"]).is_none());
        assert!(keep(&[""]).is_none());
        assert!(keep(&["one", "two"]).is_none());
        assert!(keep(&[]).is_none());
        let a = fresh_request_id();
        let b = fresh_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }
}
