//! helmet's default security headers as one layer, each header replaceable or removable.

use std::sync::Arc;

use axum::http::header::Entry;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use tower::util::MapResponseLayer;

/// helmet's default Content-Security-Policy.
pub const DEFAULT_CSP: &str = "default-src 'self';base-uri 'self';font-src 'self' https: data:;\
form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';\
script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';\
upgrade-insecure-requests";

/// Removed from every response, like helmet's `hidePoweredBy`.
const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

/// The headers added to every response; a header already set by a handler is left alone.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Default for SecurityHeaders {
    /// helmet 8's defaults.
    fn default() -> Self {
        let pairs: [(&str, &str); 12] = [
            ("content-security-policy", DEFAULT_CSP),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("origin-agent-cluster", "?1"),
            ("referrer-policy", "no-referrer"),
            (
                "strict-transport-security",
                "max-age=31536000; includeSubDomains",
            ),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "off"),
            ("x-download-options", "noopen"),
            ("x-frame-options", "SAMEORIGIN"),
            ("x-permitted-cross-domain-policies", "none"),
            ("x-xss-protection", "0"),
        ];
        let headers = pairs
            .into_iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect();
        Self { headers }
    }
}

impl SecurityHeaders {
    /// Sets (or replaces) one header.
    #[must_use]
    pub fn set(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name, value));
        self
    }

    /// Removes one header from the set.
    #[must_use]
    pub fn remove(mut self, name: &HeaderName) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    /// Replaces the Content-Security-Policy.
    #[must_use]
    pub fn content_security_policy(self, policy: HeaderValue) -> Self {
        self.set(header::CONTENT_SECURITY_POLICY, policy)
    }

    /// The headers, in order.
    #[must_use]
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    fn apply(&self, mut response: Response) -> Response {
        let target = response.headers_mut();
        // Grow the map once, then one hash per header (`entry`), instead of a growth step and
        // a `contains_key` + `insert` pair for each of the twelve.
        target.reserve(self.headers.len());
        for (name, value) in &self.headers {
            if let Entry::Vacant(slot) = target.entry(name) {
                slot.insert(value.clone());
            }
        }
        target.remove(X_POWERED_BY);
        target.remove(header::SERVER);
        response
    }
}

/// The layer that adds `headers` to every response, errors and 404s included.
pub fn security_headers(
    headers: SecurityHeaders,
) -> MapResponseLayer<impl FnOnce(Response) -> Response + Clone> {
    let headers = Arc::new(headers);
    MapResponseLayer::new(move |response: Response| headers.apply(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_a_header_leaves_the_others() {
        let set = SecurityHeaders::default().remove(&HeaderName::from_static("x-xss-protection"));
        assert_eq!(set.headers().len(), 11);
        assert!(set.headers().iter().all(|(n, _)| n != "x-xss-protection"));
    }

    #[test]
    fn a_handler_set_header_is_kept() {
        let mut response = Response::new(axum::body::Body::empty());
        response
            .headers_mut()
            .insert("x-frame-options", HeaderValue::from_static("DENY"));
        let response = SecurityHeaders::default().apply(response);
        assert_eq!(response.headers()["x-frame-options"], "DENY");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
}
