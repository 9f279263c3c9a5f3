//! Email: how mail leaves (`LATCHKEY_SMTP_URL`), who it is from, where its links point, how
//! long its tokens live, whether login needs a verified address, and the outbox's pace.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, RateLimit, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_SMTP_URL",
    "LATCHKEY_MAIL_FROM",
    "LATCHKEY_PUBLIC_URL",
    "LATCHKEY_EMAIL_VERIFY_TTL",
    "LATCHKEY_PASSWORD_RESET_TTL",
    "LATCHKEY_REQUIRE_VERIFIED_EMAIL",
    "LATCHKEY_EMAIL_MAX_PER_IP",
    "LATCHKEY_EMAIL_MAX_GLOBAL",
    "LATCHKEY_EMAIL_WINDOW",
    "LATCHKEY_MAIL_MAX_ATTEMPTS",
    "LATCHKEY_MAIL_POLL_INTERVAL",
];

/// How `smtp://` protects the connection (the `?tls=` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, and refuse to send when the server does not offer it (the default).
    Required,
    /// STARTTLS when the server offers it, plain text otherwise (`?tls=opportunistic`).
    Opportunistic,
    /// Plain text (`?tls=none`): only for a relay on the same host or a test server.
    None,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
}

/// Where mail goes.
#[derive(Clone)]
pub enum MailTransport {
    /// `log://`: each message is written to the log at info level, link and token included.
    /// For development only.
    Log,
    /// An SMTP server.
    Smtp {
        /// Host name (checked against its TLS certificate).
        host: String,
        /// Port (587 for `smtp://`, 465 for `smtps://` by default).
        port: u16,
        /// How the connection is protected.
        tls: SmtpTls,
        /// Login, when the URL has one.
        credentials: Option<(String, SecretString)>,
    },
}

impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Log => f.write_str("Log"),
            Self::Smtp {
                host,
                port,
                tls,
                credentials,
            } => f
                .debug_struct("Smtp")
                .field("host", host)
                .field("port", port)
                .field("tls", tls)
                .field("user", &credentials.as_ref().map(|(user, _)| user))
                .finish_non_exhaustive(),
        }
    }
}

/// The email settings.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `LATCHKEY_SMTP_URL`; `None` when unset: the server sends no mail, and the routes that
    /// would answer 404 `email_disabled`.
    pub transport: Option<MailTransport>,
    /// `LATCHKEY_MAIL_FROM`: the `From` mailbox (`Name <address>` or an address).
    pub from: String,
    /// `LATCHKEY_PUBLIC_URL` (default: the issuer), without a trailing slash: the links in
    /// mail point at `{public_url}/verify-email#token=…` and `{public_url}/reset-password#token=…`.
    pub public_url: String,
    /// `LATCHKEY_EMAIL_VERIFY_TTL` (24h).
    pub verify_ttl: Duration,
    /// `LATCHKEY_PASSWORD_RESET_TTL` (30m).
    pub reset_ttl: Duration,
    /// `LATCHKEY_REQUIRE_VERIFIED_EMAIL`: password login is refused (403
    /// `email_not_verified`) until the account's email is verified.
    pub require_verified: bool,
    /// `LATCHKEY_EMAIL_MAX_PER_IP`, `_GLOBAL`, `LATCHKEY_EMAIL_WINDOW`: requests to the email
    /// routes (verification requests and uses, forgotten passwords, resets).
    pub limit: RateLimit,
    /// `LATCHKEY_MAIL_MAX_ATTEMPTS` (10): sending attempts before a message is given up.
    pub max_attempts: u32,
    /// `LATCHKEY_MAIL_POLL_INTERVAL` (5s): how often the outbox is looked at for retries and
    /// for messages other instances enqueued (this instance's own go out at once).
    pub poll_interval: Duration,
}

fn parse_transport(text: &str) -> Result<MailTransport, ConfigError> {
    const VAR: &str = "LATCHKEY_SMTP_URL";
    let url = Url::parse(text).map_err(|_| {
        err(
            VAR,
            "is not a URL like smtp://user:pass@host:587, smtps://host or log://",
        )
    })?;
    let implicit = match url.scheme() {
        "log" => return Ok(MailTransport::Log),
        "smtp" => false,
        "smtps" => true,
        other => {
            return Err(err(
                VAR,
                format!("unknown scheme `{other}`: use smtp://, smtps:// or log://"),
            ));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| err(VAR, "names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let mut tls = if implicit {
        SmtpTls::Implicit
    } else {
        SmtpTls::Required
    };
    for (key, value) in url.query_pairs() {
        match (&*key, &*value) {
            ("tls", "required") if !implicit => tls = SmtpTls::Required,
            ("tls", "opportunistic") if !implicit => tls = SmtpTls::Opportunistic,
            ("tls", "none") if !implicit => tls = SmtpTls::None,
            ("tls", _) => {
                return Err(err(
                    VAR,
                    "tls= takes required, opportunistic or none (smtp:// only; smtps:// is TLS)",
                ));
            }
            (other, _) => return Err(err(VAR, format!("unknown parameter `{other}`"))),
        }
    }
    let decode = |s: &str| {
        percent_decode(s).ok_or_else(|| err(VAR, "the user or password is not valid UTF-8"))
    };
    let credentials = if url.username().is_empty() {
        None
    } else {
        let user = decode(url.username())?;
        let password = decode(url.password().unwrap_or_default())?;
        Some((user, SecretString::from(password)))
    };
    Ok(MailTransport::Smtp {
        host,
        port: url.port().unwrap_or(if implicit { 465 } else { 587 }),
        tls,
        credentials,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes: Vec<u8> =
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

pub(super) fn parse(vars: &Vars<'_>, issuer: &str) -> Result<MailConfig, ConfigError> {
    let transport = vars
        .get("LATCHKEY_SMTP_URL")
        .map(parse_transport)
        .transpose()?;
    let from = match (vars.get("LATCHKEY_MAIL_FROM"), &transport) {
        (Some(from), _) => from.to_owned(),
        (None, Some(MailTransport::Smtp { .. })) => {
            return Err(err(
                "LATCHKEY_MAIL_FROM",
                "is required with an smtp:// or smtps:// LATCHKEY_SMTP_URL",
            ));
        }
        (None, _) => "Latchkey <latchkey@localhost>".to_owned(),
    };
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(err(
            "LATCHKEY_MAIL_FROM",
            format!("`{from}` is not a mailbox like `Example <no-reply@example.com>`"),
        ));
    }
    let public_url = match vars.get("LATCHKEY_PUBLIC_URL") {
        Some(v) => {
            let ok = Url::parse(v).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.query().is_none()
                    && u.fragment().is_none()
            });
            if !ok {
                return Err(err(
                    "LATCHKEY_PUBLIC_URL",
                    "must be an http(s) URL without query or fragment",
                ));
            }
            v.trim_end_matches('/').to_owned()
        }
        None => issuer.to_owned(),
    };
    let verify_ttl = vars.duration("LATCHKEY_EMAIL_VERIFY_TTL", "24h")?;
    if !(60..=30 * 86_400).contains(&verify_ttl.as_secs()) {
        return Err(err(
            "LATCHKEY_EMAIL_VERIFY_TTL",
            "must be between 1m and 30d",
        ));
    }
    let reset_ttl = vars.duration("LATCHKEY_PASSWORD_RESET_TTL", "30m")?;
    if !(60..=86_400).contains(&reset_ttl.as_secs()) {
        return Err(err(
            "LATCHKEY_PASSWORD_RESET_TTL",
            "must be between 1m and 1d",
        ));
    }
    let require_verified = vars.boolean("LATCHKEY_REQUIRE_VERIFIED_EMAIL", false)?;
    if require_verified && transport.is_none() {
        return Err(err(
            "LATCHKEY_REQUIRE_VERIFIED_EMAIL",
            "needs LATCHKEY_SMTP_URL: without mail no one could verify an address",
        ));
    }
    let limit = RateLimit {
        per_address: vars.number("LATCHKEY_EMAIL_MAX_PER_IP", 20)?,
        global: vars.number("LATCHKEY_EMAIL_MAX_GLOBAL", 2_000)?,
        window: vars.duration("LATCHKEY_EMAIL_WINDOW", "1h")?,
    };
    if limit.per_address == 0 {
        return Err(err("LATCHKEY_EMAIL_MAX_PER_IP", "must be at least 1"));
    }
    if limit.global < limit.per_address {
        return Err(err(
            "LATCHKEY_EMAIL_MAX_GLOBAL",
            "must be at least LATCHKEY_EMAIL_MAX_PER_IP",
        ));
    }
    if limit.window.is_zero() {
        return Err(err("LATCHKEY_EMAIL_WINDOW", "must be at least 1s"));
    }
    let max_attempts = vars.number("LATCHKEY_MAIL_MAX_ATTEMPTS", 10u32)?;
    if !(1..=50).contains(&max_attempts) {
        return Err(err(
            "LATCHKEY_MAIL_MAX_ATTEMPTS",
            "must be between 1 and 50",
        ));
    }
    let poll_interval = match vars.get("LATCHKEY_MAIL_POLL_INTERVAL") {
        // Milliseconds are accepted too, for tests (`200ms`).
        Some(v) if v.ends_with("ms") => v
            .trim_end_matches("ms")
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| {
                err(
                    "LATCHKEY_MAIL_POLL_INTERVAL",
                    format!("`{v}` is not a duration"),
                )
            })?,
        _ => vars.duration("LATCHKEY_MAIL_POLL_INTERVAL", "5s")?,
    };
    if poll_interval < Duration::from_millis(50) || poll_interval > Duration::from_secs(3_600) {
        return Err(err(
            "LATCHKEY_MAIL_POLL_INTERVAL",
            "must be between 50ms and 1h",
        ));
    }
    Ok(MailConfig {
        transport,
        from,
        public_url,
        verify_ttl,
        reset_ttl,
        require_verified,
        limit,
        max_attempts,
        poll_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn smtp_urls_choose_the_port_and_tls_and_keep_the_password_secret() {
        let MailTransport::Smtp {
            host,
            port,
            tls,
            credentials,
        } = parse_transport("smtp://bob%40ex:p%3Ass+w@mail.example.com").unwrap()
        else {
            panic!("smtp");
        };
        assert_eq!(
            (host.as_str(), port, tls),
            ("mail.example.com", 587, SmtpTls::Required)
        );
        let (user, password) = credentials.unwrap();
        assert_eq!(user, "bob@ex");
        assert_eq!(password.expose_secret(), "p:ss+w");
        let shown = format!(
            "{:?}",
            parse_transport("smtp://bob:hunter2@mail.example.com").unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");

        let MailTransport::Smtp { port, tls, .. } =
            parse_transport("smtps://mail.example.com").unwrap()
        else {
            panic!("smtps");
        };
        assert_eq!((port, tls), (465, SmtpTls::Implicit));
        let MailTransport::Smtp { port, tls, .. } =
            parse_transport("smtp://127.0.0.1:2525?tls=none").unwrap()
        else {
            panic!("plain");
        };
        assert_eq!((port, tls), (2525, SmtpTls::None));
        assert!(matches!(
            parse_transport("log://").unwrap(),
            MailTransport::Log
        ));
    }

    #[test]
    fn bad_smtp_urls_are_refused() {
        for bad in [
            "http://mail.example.com",
            "smtp://",
            "smtp://h?tls=maybe",
            "smtps://h?tls=none",
            "smtp://h?foo=1",
            "not a url",
        ] {
            assert!(parse_transport(bad).is_err(), "{bad}");
        }
    }
}
