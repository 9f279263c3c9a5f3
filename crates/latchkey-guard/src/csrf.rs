//! The cross-site request check for cookie-authenticated endpoints: `Origin` against an
//! allow-list and Fetch Metadata's `Sec-Fetch-Site` (the OWASP "verifying origin with
//! standard headers" defence).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Problem;

/// Decides whether a cookie-carrying request may change state.
#[derive(Debug, Clone, Default)]
pub struct CrossSiteCheck {
    allowed: Vec<String>,
}

/// The refusal: 403 problem+json `csrf_rejected`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossSiteRejected;

impl IntoResponse for CrossSiteRejected {
    fn into_response(self) -> Response {
        Problem::new(
            StatusCode::FORBIDDEN,
            "csrf_rejected",
            "Cross-site request refused",
            "this request came from an origin that is not allowed",
        )
        .into_response()
    }
}

impl CrossSiteCheck {
    /// A check that accepts the server's own origin plus `allowed` (exact `scheme://host[:port]`).
    #[must_use]
    pub fn new(own_origin: Option<String>, allowed: impl IntoIterator<Item = String>) -> Self {
        let mut list: Vec<String> = allowed.into_iter().map(|o| normalize(&o)).collect();
        if let Some(own) = own_origin {
            list.push(normalize(&own));
        }
        Self { allowed: list }
    }

    /// Whether `origin` is on the allow-list.
    #[must_use]
    pub fn allows_origin(&self, origin: &str) -> bool {
        let origin = normalize(origin);
        self.allowed.contains(&origin)
    }

    /// Refuses a request whose `Sec-Fetch-Site` is `cross-site`, or whose `Origin` is present
    /// and not allowed (`Origin: null` included). Requests without either header (non-browser
    /// clients) pass: a browser always sends at least one of them on a cross-site POST.
    ///
    /// # Errors
    /// [`CrossSiteRejected`] when the request looks cross-site.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), CrossSiteRejected> {
        let origin = headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("null"));
        if let Some(origin) = origin {
            return if self.allows_origin(origin) {
                Ok(())
            } else {
                Err(CrossSiteRejected)
            };
        }
        match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some(site) if site.eq_ignore_ascii_case("cross-site") => Err(CrossSiteRejected),
            _ => Ok(()),
        }
    }
}

fn normalize(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn a_foreign_origin_is_refused_and_an_allowed_one_passes() {
        let check = CrossSiteCheck::new(
            Some("https://auth.example".into()),
            ["https://app.example".into()],
        );
        assert!(
            check
                .check(&headers(&[("origin", "https://evil.example")]))
                .is_err()
        );
        assert!(check.check(&headers(&[("origin", "null")])).is_err());
        assert!(
            check
                .check(&headers(&[("origin", "https://app.example")]))
                .is_ok()
        );
        assert!(
            check
                .check(&headers(&[("origin", "https://auth.example")]))
                .is_ok()
        );
    }

    #[test]
    fn a_cross_site_fetch_without_origin_is_refused() {
        let check = CrossSiteCheck::new(None, []);
        assert!(
            check
                .check(&headers(&[("sec-fetch-site", "cross-site")]))
                .is_err()
        );
        assert!(
            check
                .check(&headers(&[("sec-fetch-site", "same-origin")]))
                .is_ok()
        );
        assert!(check.check(&HeaderMap::new()).is_ok());
    }
}
