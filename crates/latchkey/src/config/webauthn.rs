//! Passkeys (WebAuthn): the relying party id and the page origins allowed to use it.

use super::limits::rate_limit;
use super::{ConfigError, RateLimit, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_WEBAUTHN_RP_ID",
    "LATCHKEY_WEBAUTHN_ORIGINS",
    "LATCHKEY_PASSKEY_LOGIN_MAX_PER_IP",
    "LATCHKEY_PASSKEY_LOGIN_MAX_GLOBAL",
    "LATCHKEY_PASSKEY_LOGIN_WINDOW",
];

/// The WebAuthn relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnConfig {
    /// `LATCHKEY_WEBAUTHN_RP_ID`: the domain passkeys are bound to (default: the issuer's host).
    pub rp_id: String,
    /// `LATCHKEY_WEBAUTHN_ORIGINS`: the origins of the pages that run the ceremonies
    /// (`scheme://host[:port]`; default: the issuer's origin).
    pub origins: Vec<String>,
    /// `LATCHKEY_PASSKEY_LOGIN_*`: passwordless sign-in starts (each stores a ceremony) per
    /// address and from everyone.
    pub login_start: RateLimit,
}

/// Reads the WebAuthn settings; `issuer` is the validated `LATCHKEY_ISSUER`. `None` (passkeys
/// off) when neither variable is set and the issuer's host is an IP address, which browsers
/// refuse as a relying party id.
pub(super) fn parse(vars: &Vars<'_>, issuer: &str) -> Result<Option<WebauthnConfig>, ConfigError> {
    let issuer_url = url::Url::parse(issuer).ok();
    let issuer_is_ip = matches!(
        issuer_url.as_ref().and_then(url::Url::host),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))
    );
    if issuer_is_ip
        && vars.get("LATCHKEY_WEBAUTHN_RP_ID").is_none()
        && vars.get("LATCHKEY_WEBAUTHN_ORIGINS").is_none()
    {
        return Ok(None);
    }
    let rp_id = match vars.get("LATCHKEY_WEBAUTHN_RP_ID") {
        Some(id) => id.to_ascii_lowercase(),
        None => issuer_url
            .as_ref()
            .and_then(url::Url::host_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| {
                err(
                    "LATCHKEY_WEBAUTHN_RP_ID",
                    "the issuer has no host to default to",
                )
            })?,
    };
    if rp_id.is_empty()
        || rp_id.len() > 253
        || rp_id.starts_with('.')
        || !rp_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(err(
            "LATCHKEY_WEBAUTHN_RP_ID",
            "must be a domain name such as example.com (no scheme, port or path)",
        ));
    }
    if rp_id.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(err(
            "LATCHKEY_WEBAUTHN_RP_ID",
            "browsers refuse an IP address as a relying party id; use a domain (localhost for \
             local development)",
        ));
    }
    let mut origins = Vec::new();
    for origin in vars.list("LATCHKEY_WEBAUTHN_ORIGINS") {
        let parsed = url::Url::parse(&origin)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
            .filter(|u| u.path() == "/" && u.query().is_none())
            .ok_or_else(|| {
                err(
                    "LATCHKEY_WEBAUTHN_ORIGINS",
                    format!("`{origin}` is not an origin such as https://example.com"),
                )
            })?;
        let host = parsed.host_str().unwrap_or_default();
        if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
            return Err(err(
                "LATCHKEY_WEBAUTHN_ORIGINS",
                format!("`{origin}` is not on the relying party id `{rp_id}` or a subdomain"),
            ));
        }
        origins.push(parsed.origin().ascii_serialization());
    }
    if origins.is_empty() {
        match issuer_url {
            Some(u) if u.host_str() == Some(rp_id.as_str()) => {
                origins.push(u.origin().ascii_serialization());
            }
            _ => {
                return Err(err(
                    "LATCHKEY_WEBAUTHN_ORIGINS",
                    "must be set when LATCHKEY_WEBAUTHN_RP_ID is not the issuer's host",
                ));
            }
        }
    }
    let login_start = rate_limit(
        vars,
        [
            "LATCHKEY_PASSKEY_LOGIN_MAX_PER_IP",
            "LATCHKEY_PASSKEY_LOGIN_MAX_GLOBAL",
            "LATCHKEY_PASSKEY_LOGIN_WINDOW",
        ],
        (120, 20_000, "10m"),
    )?;
    Ok(Some(WebauthnConfig {
        rp_id,
        origins,
        login_start,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse_with(pairs: &[(&str, &str)], issuer: &str) -> Result<WebauthnConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        parse(&Vars::new(&map), issuer).map(|c| c.expect("configured"))
    }

    #[test]
    fn the_relying_party_defaults_to_the_issuer() {
        let c = parse_with(&[], "https://auth.example.com/").unwrap();
        assert_eq!(c.rp_id, "auth.example.com");
        assert_eq!(c.origins, vec!["https://auth.example.com".to_owned()]);
        let c = parse_with(&[], "http://localhost:8080").unwrap();
        assert_eq!(c.origins, vec!["http://localhost:8080".to_owned()]);
    }

    #[test]
    fn origins_must_be_on_the_relying_party_and_an_ip_is_refused() {
        let c = parse_with(
            &[
                ("LATCHKEY_WEBAUTHN_RP_ID", "example.com"),
                (
                    "LATCHKEY_WEBAUTHN_ORIGINS",
                    "https://app.example.com, https://example.com:8443",
                ),
            ],
            "https://auth.example.com",
        )
        .unwrap();
        assert_eq!(
            c.origins,
            vec![
                "https://app.example.com".to_owned(),
                "https://example.com:8443".to_owned()
            ]
        );
        for bad in [
            "https://evil.com",
            "https://example.com/path",
            "example.com",
        ] {
            let e = parse_with(
                &[
                    ("LATCHKEY_WEBAUTHN_RP_ID", "example.com"),
                    ("LATCHKEY_WEBAUTHN_ORIGINS", bad),
                ],
                "https://auth.example.com",
            )
            .unwrap_err();
            assert_eq!(e.variable, "LATCHKEY_WEBAUTHN_ORIGINS", "{bad}");
        }
        // An IP issuer and nothing set: passkeys are off, the server still starts.
        let none = HashMap::new();
        assert_eq!(
            parse(&Vars::new(&none), "http://127.0.0.1:8080").unwrap(),
            None
        );
        let e = parse_with(
            &[("LATCHKEY_WEBAUTHN_RP_ID", "127.0.0.1")],
            "http://127.0.0.1:8080",
        )
        .unwrap_err();
        assert_eq!(e.variable, "LATCHKEY_WEBAUTHN_RP_ID");
        let e = parse_with(
            &[("LATCHKEY_WEBAUTHN_RP_ID", "example.com")],
            "https://auth.other.org",
        )
        .unwrap_err();
        assert_eq!(e.variable, "LATCHKEY_WEBAUTHN_ORIGINS");
    }
}
