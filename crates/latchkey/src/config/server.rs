//! The HTTP server: where it listens, who it says it is (issuer and audience), which browser
//! origins may call it, how large a body it takes and its Content-Security-Policy.

use std::net::SocketAddr;

use url::Url;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_LISTEN",
    "LATCHKEY_ISSUER",
    "LATCHKEY_AUDIENCE",
    "LATCHKEY_ALLOWED_ORIGINS",
    "LATCHKEY_BODY_LIMIT",
    "LATCHKEY_CONTENT_SECURITY_POLICY",
];

pub(super) struct ServerSettings {
    pub listen: SocketAddr,
    pub issuer: String,
    pub audience: String,
    pub allowed_origins: Vec<String>,
    pub body_limit: usize,
    pub content_security_policy: Option<String>,
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<ServerSettings, ConfigError> {
    let listen_text = vars.get("LATCHKEY_LISTEN").unwrap_or("127.0.0.1:8080");
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        err(
            "LATCHKEY_LISTEN",
            format!("`{listen_text}` is not an address like 127.0.0.1:8080"),
        )
    })?;

    let issuer = match vars.get("LATCHKEY_ISSUER") {
        Some(v) => {
            let url =
                Url::parse(v).map_err(|_| err("LATCHKEY_ISSUER", format!("`{v}` is not a URL")))?;
            if !matches!(url.scheme(), "http" | "https")
                || url.query().is_some()
                || url.fragment().is_some()
            {
                return Err(err(
                    "LATCHKEY_ISSUER",
                    "must be an http(s) URL without query or fragment",
                ));
            }
            v.trim_end_matches('/').to_owned()
        }
        None => format!("http://{listen}"),
    };
    let audience = vars
        .get("LATCHKEY_AUDIENCE")
        .map_or_else(|| issuer.clone(), str::to_owned);

    let allowed_origins = vars.list("LATCHKEY_ALLOWED_ORIGINS");
    for origin in &allowed_origins {
        let ok = Url::parse(origin).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.path() == "/"
                && u.query().is_none()
                && !origin.ends_with('/')
        });
        if !ok {
            return Err(err(
                "LATCHKEY_ALLOWED_ORIGINS",
                format!("`{origin}` is not an origin like https://app.example.com"),
            ));
        }
    }

    let body_limit = vars.number("LATCHKEY_BODY_LIMIT", 64 * 1024usize)?;
    if !(1_024..=16 * 1024 * 1024).contains(&body_limit) {
        return Err(err(
            "LATCHKEY_BODY_LIMIT",
            "must be between 1024 and 16777216 bytes",
        ));
    }

    let content_security_policy = vars
        .get("LATCHKEY_CONTENT_SECURITY_POLICY")
        .map(str::to_owned);
    if let Some(csp) = &content_security_policy
        && axum::http::HeaderValue::from_str(csp).is_err()
    {
        return Err(err(
            "LATCHKEY_CONTENT_SECURITY_POLICY",
            "must be a valid header value",
        ));
    }

    Ok(ServerSettings {
        listen,
        issuer,
        audience,
        allowed_origins,
        body_limit,
        content_security_policy,
    })
}
