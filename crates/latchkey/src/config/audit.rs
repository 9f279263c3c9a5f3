//! The audit trail: on or off, how long records are kept, and the optional webhook.

use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_AUDIT",
    "LATCHKEY_AUDIT_RETENTION",
    "LATCHKEY_AUDIT_WEBHOOK_URL",
    "LATCHKEY_AUDIT_WEBHOOK_SECRET",
];

/// The audit trail's settings.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// `LATCHKEY_AUDIT` (default true): whether security events are recorded at all.
    pub enabled: bool,
    /// `LATCHKEY_AUDIT_RETENTION` (default 90d): how long a record is kept.
    pub retention: Duration,
    /// `LATCHKEY_AUDIT_WEBHOOK_URL`: where every record is POSTed, when set.
    pub webhook_url: Option<url::Url>,
    /// `LATCHKEY_AUDIT_WEBHOOK_SECRET`: the HMAC-SHA256 key of the `Latchkey-Signature`
    /// header (required with a webhook URL).
    pub webhook_secret: Option<SecretString>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retention: Duration::from_secs(90 * 86_400),
            webhook_url: None,
            webhook_secret: None,
        }
    }
}

/// Reads the audit settings.
pub(super) fn parse(vars: &Vars<'_>) -> Result<AuditSettings, ConfigError> {
    let enabled = vars.boolean("LATCHKEY_AUDIT", true)?;
    let retention = vars.duration("LATCHKEY_AUDIT_RETENTION", "90d")?;
    if retention < Duration::from_secs(3600) {
        return Err(err("LATCHKEY_AUDIT_RETENTION", "must be at least 1h"));
    }
    let webhook_url = match vars.get("LATCHKEY_AUDIT_WEBHOOK_URL") {
        None => None,
        Some(text) => {
            let url = url::Url::parse(text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .ok_or_else(|| err("LATCHKEY_AUDIT_WEBHOOK_URL", "must be an http(s) URL"))?;
            Some(url)
        }
    };
    let webhook_secret = vars
        .get("LATCHKEY_AUDIT_WEBHOOK_SECRET")
        .map(|s| SecretString::from(s.to_owned()));
    if webhook_url.is_some() {
        match &webhook_secret {
            None => {
                return Err(err(
                    "LATCHKEY_AUDIT_WEBHOOK_SECRET",
                    "is required with LATCHKEY_AUDIT_WEBHOOK_URL (the signature's key)",
                ));
            }
            Some(s) if secrecy::ExposeSecret::expose_secret(s).len() < 16 => {
                return Err(err(
                    "LATCHKEY_AUDIT_WEBHOOK_SECRET",
                    "must be at least 16 characters",
                ));
            }
            Some(_) => {}
        }
    }
    if webhook_url.is_some() && !enabled {
        return Err(err(
            "LATCHKEY_AUDIT_WEBHOOK_URL",
            "needs the audit trail on (LATCHKEY_AUDIT=true)",
        ));
    }
    Ok(AuditSettings {
        enabled,
        retention,
        webhook_url,
        webhook_secret,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Config;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_env_map(&map)
    }

    #[test]
    fn the_audit_trail_is_on_for_90_days_without_a_webhook_by_default() {
        let c = config(&[]).unwrap().audit;
        assert!(c.enabled);
        assert_eq!(c.retention, Duration::from_secs(90 * 86_400));
        assert!(c.webhook_url.is_none() && c.webhook_secret.is_none());
        assert!(
            !config(&[("LATCHKEY_AUDIT", "false")])
                .unwrap()
                .audit
                .enabled
        );
    }

    #[test]
    fn a_webhook_needs_an_http_url_a_long_secret_and_the_trail_on() {
        let secret = ("LATCHKEY_AUDIT_WEBHOOK_SECRET", "0123456789abcdef");
        let url = ("LATCHKEY_AUDIT_WEBHOOK_URL", "https://siem.example/hook");
        assert!(config(&[url, secret]).unwrap().audit.webhook_url.is_some());
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[url], "LATCHKEY_AUDIT_WEBHOOK_SECRET"),
            (
                &[url, ("LATCHKEY_AUDIT_WEBHOOK_SECRET", "short")],
                "LATCHKEY_AUDIT_WEBHOOK_SECRET",
            ),
            (
                &[("LATCHKEY_AUDIT_WEBHOOK_URL", "ftp://x/y"), secret],
                "LATCHKEY_AUDIT_WEBHOOK_URL",
            ),
            (
                &[url, secret, ("LATCHKEY_AUDIT", "false")],
                "LATCHKEY_AUDIT_WEBHOOK_URL",
            ),
            (
                &[("LATCHKEY_AUDIT_RETENTION", "5m")],
                "LATCHKEY_AUDIT_RETENTION",
            ),
            (&[("LATCHKEY_AUDIT", "maybe")], "LATCHKEY_AUDIT"),
        ];
        for (pairs, variable) in cases {
            assert_eq!(config(pairs).unwrap_err().variable, *variable, "{pairs:?}");
        }
    }
}
