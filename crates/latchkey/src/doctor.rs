//! `latchkey doctor`: reads the configuration and the store and reports what is unsafe or
//! unusual for production, each finding with what is wrong and the fix.
//!
//! Three severities: `unsafe` (the deployment is exposed: the command exits 1, so it can gate
//! a deploy), `warning` (unusual, or worse than it could be: exit 1 only with `--strict`) and
//! `ok` (checked, nothing to do). Nothing secret is printed: findings name variables, never
//! their secret values, and store errors are scrubbed of every configured secret.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;
use url::Url;

use crate::auth::admin::ADMIN_ROLE;
use crate::auth::keys::rollover::{KeyState, key_states};
use crate::config::{Config, SameSite, SigningAlg, format_duration};
use crate::store::Store;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Checked, nothing to do.
    Ok,
    /// Unusual or weaker than it could be.
    Warning,
    /// Exposed: fix before going live.
    Unsafe,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warning => "warning",
            Self::Unsafe => "UNSAFE",
        }
    }
}

/// One result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// A stable name for the check, like `cookies.secure`.
    pub check: &'static str,
    /// How bad.
    pub severity: Severity,
    /// The variable to change, when one is at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variable: Option<&'static str>,
    /// What was found.
    pub message: String,
    /// What to do (absent for `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(check: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        check,
        severity: Severity::Ok,
        variable: None,
        message: message.into(),
        fix: None,
    }
}

fn bad(
    severity: Severity,
    check: &'static str,
    variable: Option<&'static str>,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        check,
        severity,
        variable,
        message: message.into(),
        fix: Some(fix.into()),
    }
}

use Severity::{Unsafe, Warning};

/// What the checks are told besides the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// A current signing key older than this is reported (`--max-key-age`, default 90 days).
    pub max_key_age: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_key_age: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Every finding of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Unsafe first, then warnings, then what is fine, each in check order.
    pub findings: Vec<Finding>,
}

impl Report {
    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// 1 when something is unsafe (or, `strict`, merely a warning), else 0.
    #[must_use]
    pub fn exit_code(&self, strict: bool) -> i32 {
        let worst = self.findings.iter().map(|f| f.severity).max();
        match worst {
            Some(Unsafe) => 1,
            Some(Warning) if strict => 1,
            _ => 0,
        }
    }

    /// The report for a terminal.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "latchkey doctor: {} unsafe, {} warning(s), {} ok\n",
            self.count(Unsafe),
            self.count(Warning),
            self.count(Severity::Ok)
        );
        for f in &self.findings {
            out.push_str(&format!(
                "\n{:<8} {}: {}\n",
                f.severity.label(),
                f.check,
                f.message
            ));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("{:<8} fix: {fix}\n", ""));
            }
        }
        out
    }

    /// The report as one JSON document.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "unsafe": self.count(Unsafe),
            "warnings": self.count(Warning),
            "ok": self.count(Severity::Ok),
            "findings": self.findings,
        })
    }
}

/// Runs every check: the configuration's, then the store's (opened from `config`).
/// `env` holds the `LATCHKEY_*` variables (and `RUST_LOG`) as set, for what the configuration
/// does not keep.
pub async fn run(config: &Config, env: &HashMap<String, String>, options: &Options) -> Report {
    let mut findings = check_config(config, env);
    findings.extend(check_store(config, options).await);
    let secrets = secrets_of(config);
    for f in &mut findings {
        f.message = scrub(&f.message, &secrets);
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Report { findings }
}

/// Whether a URL host is this machine.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The OWASP Password Storage Cheat Sheet's Argon2id minimums, as (memory KiB, iterations)
/// with one lane: any one of them is enough.
pub const OWASP_ARGON2: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// The checks of the configuration alone (no I/O).
#[must_use]
pub fn check_config(config: &Config, env: &HashMap<String, String>) -> Vec<Finding> {
    let mut out = Vec::new();
    let issuer = Url::parse(&config.issuer).ok();
    let local_issuer = issuer.as_ref().is_some_and(is_loopback_host);
    let https_issuer = issuer.as_ref().is_some_and(|u| u.scheme() == "https");

    // The issuer.
    out.push(if https_issuer {
        ok(
            "issuer.https",
            format!("the issuer {} is HTTPS", config.issuer),
        )
    } else if local_issuer {
        bad(
            Warning,
            "issuer.https",
            Some("LATCHKEY_ISSUER"),
            format!(
                "the issuer {} is this machine: a development setting, unreachable for anyone else",
                config.issuer
            ),
            "set LATCHKEY_ISSUER to the public https:// URL clients use",
        )
    } else {
        bad(
            Unsafe,
            "issuer.https",
            Some("LATCHKEY_ISSUER"),
            format!(
                "the issuer {} is plain http:// on the network: passwords, tokens and cookies \
                 cross it readable by anyone on the path",
                config.issuer
            ),
            "terminate TLS in front of Latchkey and set LATCHKEY_ISSUER=https://…",
        )
    });

    // Cookies.
    out.push(if config.cookie_secure {
        ok(
            "cookies.secure",
            "cookies are Secure (sent over HTTPS only)",
        )
    } else if local_issuer {
        bad(
            Warning,
            "cookies.secure",
            Some("LATCHKEY_COOKIE_SECURE"),
            "cookies are not Secure (acceptable only for local development over http://)",
            "set LATCHKEY_COOKIE_SECURE=true (the default) in production",
        )
    } else {
        bad(
            Unsafe,
            "cookies.secure",
            Some("LATCHKEY_COOKIE_SECURE"),
            format!(
                "LATCHKEY_COOKIE_SECURE=false with the issuer {}: browsers send the refresh and \
                 session cookies over plain HTTP too, where they can be read and replayed",
                config.issuer
            ),
            "remove LATCHKEY_COOKIE_SECURE (default true) and serve over HTTPS",
        )
    });
    out.push(
        if config.cookie_same_site == SameSite::None && config.allowed_origins.is_empty() {
            bad(
                Unsafe,
                "cookies.samesite",
                Some("LATCHKEY_COOKIE_SAMESITE"),
                "SameSite=None but no LATCHKEY_ALLOWED_ORIGINS: the cookies ride along on \
                 requests from every site while no other site may use them, leaving the \
                 Origin check as the only CSRF defence",
                "set LATCHKEY_COOKIE_SAMESITE=Strict (or Lax), or list the front-end origins in \
                 LATCHKEY_ALLOWED_ORIGINS",
            )
        } else {
            ok(
                "cookies.samesite",
                format!("SameSite={}", config.cookie_same_site.as_str()),
            )
        },
    );

    // Allowed origins.
    let plain: Vec<&String> = config
        .allowed_origins
        .iter()
        .filter(|o| Url::parse(o).is_ok_and(|u| u.scheme() == "http" && !is_loopback_host(&u)))
        .collect();
    out.push(if plain.is_empty() {
        ok(
            "origins.https",
            format!(
                "{} allowed origin(s), none on plain http://",
                config.allowed_origins.len()
            ),
        )
    } else {
        bad(
            Unsafe,
            "origins.https",
            Some("LATCHKEY_ALLOWED_ORIGINS"),
            format!(
                "credentialed cross-origin requests are allowed from plain-HTTP origins ({}): \
                 anyone on the network path can inject a script there that acts as the user",
                plain
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "list only https:// origins in LATCHKEY_ALLOWED_ORIGINS",
        )
    });

    // Password hashing.
    let a = config.argon2;
    let owasp = OWASP_ARGON2
        .iter()
        .any(|(m, t)| a.memory_kib >= *m && a.iterations >= *t);
    out.push(if owasp {
        ok(
            "passwords.argon2",
            format!(
                "Argon2id m={} KiB, t={}, p={} meets OWASP's minimum",
                a.memory_kib, a.iterations, a.parallelism
            ),
        )
    } else {
        bad(
            Unsafe,
            "passwords.argon2",
            Some("LATCHKEY_ARGON2_MEMORY_KIB"),
            format!(
                "Argon2id m={} KiB, t={} is under OWASP's minimum (m=19456 KiB with t=2, or \
                 m=47104 with t=1, m=12288 with t=3, m=9216 with t=4, m=7168 with t=5): \
                 stolen hashes are cheap to crack",
                a.memory_kib, a.iterations
            ),
            "remove LATCHKEY_ARGON2_MEMORY_KIB and LATCHKEY_ARGON2_ITERATIONS (defaults 19456 \
             and 2) or raise them; existing hashes are upgraded at the next login",
        )
    });
    out.push(if config.password_min_length >= 15 {
        ok(
            "passwords.min_length",
            format!("passwords need {} characters", config.password_min_length),
        )
    } else {
        bad(
            Warning,
            "passwords.min_length",
            Some("LATCHKEY_PASSWORD_MIN_LENGTH"),
            format!(
                "passwords need only {} characters; NIST SP 800-63B asks for 15 when the \
                 password is the only factor",
                config.password_min_length
            ),
            "set LATCHKEY_PASSWORD_MIN_LENGTH=15 (the default)",
        )
    });

    // Tokens and keys.
    out.push(if config.access_token_ttl <= Duration::from_secs(15 * 60) {
        ok(
            "tokens.access_ttl",
            format!(
                "access tokens live {}",
                format_duration(config.access_token_ttl)
            ),
        )
    } else {
        bad(
            Warning,
            "tokens.access_ttl",
            Some("LATCHKEY_ACCESS_TOKEN_TTL"),
            format!(
                "access tokens live {}: a revoked session or disabled user keeps API access \
                 that long",
                format_duration(config.access_token_ttl)
            ),
            "set LATCHKEY_ACCESS_TOKEN_TTL to 15m or less (default 10m)",
        )
    });
    out.push(
        if config.refresh_reuse_interval <= Duration::from_secs(60) {
            ok(
                "tokens.reuse_interval",
                format!(
                    "a rotated refresh token is re-accepted for {}",
                    format_duration(config.refresh_reuse_interval)
                ),
            )
        } else {
            bad(
                Warning,
                "tokens.reuse_interval",
                Some("LATCHKEY_REFRESH_REUSE_INTERVAL"),
                format!(
                    "a rotated refresh token is re-accepted for {}: a stolen one is usable that \
                 long without tripping reuse detection",
                    format_duration(config.refresh_reuse_interval)
                ),
                "keep LATCHKEY_REFRESH_REUSE_INTERVAL at a few seconds (default 10s)",
            )
        },
    );
    out.push(if config.signing_alg == SigningAlg::HS256 {
        bad(
            Warning,
            "keys.algorithm",
            Some("LATCHKEY_SIGNING_ALG"),
            "HS256: every service that verifies tokens holds the secret and can mint tokens \
             for anyone; the key cannot be rotated without a restart of all of them",
            "use LATCHKEY_SIGNING_ALG=EdDSA (the default), ES256 or RS256 and let services \
             verify with the published JWKS",
        )
    } else {
        ok(
            "keys.algorithm",
            format!(
                "{} with keys published in the JWKS",
                config.signing_alg.as_str()
            ),
        )
    });

    // Proxies and client addresses.
    let everyone = config
        .trusted_proxies
        .networks
        .iter()
        .any(|n| n.prefix_len() == 0);
    out.push(if everyone {
        bad(
            Unsafe,
            "proxies.trusted",
            Some("LATCHKEY_TRUSTED_PROXIES"),
            "every address is a trusted proxy (a /0 network): any client sets its own address \
             with a forwarded header, escaping per-address throttling and faking the address \
             of sessions and logs",
            "list only your load balancers' networks in LATCHKEY_TRUSTED_PROXIES",
        )
    } else if config.trusted_proxies.is_empty() && https_issuer {
        bad(
            Warning,
            "proxies.trusted",
            Some("LATCHKEY_TRUSTED_PROXIES"),
            "the issuer is HTTPS, so a TLS-terminating proxy is in front of Latchkey, but no \
             proxy is trusted: every client appears with the proxy's address, so per-address \
             throttling counts them all together and sessions show the proxy",
            "set LATCHKEY_TRUSTED_PROXIES to the proxy's network (and LATCHKEY_FORWARDED_HEADER \
             if it writes Forwarded rather than X-Forwarded-For)",
        )
    } else {
        ok(
            "proxies.trusted",
            format!(
                "{} trusted proxy network(s), {} read from them",
                config.trusted_proxies.networks.len(),
                config.trusted_proxies.header.as_str()
            ),
        )
    });

    // Mail.
    out.push(mail_transport(config));

    // The metrics listener.
    out.push(metrics_listener(env));

    // The database connection.
    out.push(database_tls(config));

    // Headers, logs, typos.
    out.push(
        if config.content_security_policy.as_deref() == Some("none") {
            bad(
                Warning,
                "headers.csp",
                Some("LATCHKEY_CONTENT_SECURITY_POLICY"),
                "the Content-Security-Policy header is removed",
                "remove LATCHKEY_CONTENT_SECURITY_POLICY (the default policy blocks everything) \
             or set a policy",
            )
        } else {
            ok("headers.csp", "a Content-Security-Policy is sent")
        },
    );
    let filter = env
        .get("LATCHKEY_LOG")
        .or_else(|| env.get("RUST_LOG"))
        .map(|f| f.to_ascii_lowercase());
    out.push(
        if filter
            .as_deref()
            .is_some_and(|f| f.contains("debug") || f.contains("trace"))
        {
            bad(
                Warning,
                "logging.level",
                Some("LATCHKEY_LOG"),
                "debug or trace logging is on: verbose, slower, and it records user ids and \
                 request details at every step",
                "set LATCHKEY_LOG=info (or remove it)",
            )
        } else {
            ok("logging.level", "logging at info or quieter")
        },
    );
    out.push(if config.unknown_variables.is_empty() {
        ok("config.unknown", "no unknown LATCHKEY_ variables")
    } else {
        bad(
            Warning,
            "config.unknown",
            None,
            format!(
                "unknown variables are ignored: {} (a typo leaves the default in force)",
                config.unknown_variables.join(", ")
            ),
            "correct or remove them",
        )
    });
    out
}

/// `LATCHKEY_SMTP_URL`: `log://` writes tokens to the log; plain SMTP sends them in clear.
fn mail_transport(config: &Config) -> Finding {
    use crate::config::{MailTransport, SmtpTls};
    const VAR: &str = "LATCHKEY_SMTP_URL";
    match &config.mail.transport {
        None => ok(
            "mail.transport",
            "no mail is sent (LATCHKEY_SMTP_URL unset)",
        ),
        Some(MailTransport::Log) => bad(
            Unsafe,
            "mail.transport",
            Some(VAR),
            "log:// writes every verification and password-reset link, token included, to the \
             log: whoever reads the logs can take over accounts",
            "set LATCHKEY_SMTP_URL to your SMTP server (smtp://… with STARTTLS, or smtps://…)",
        ),
        Some(MailTransport::Smtp { host, tls, .. }) => {
            let local =
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            match tls {
                SmtpTls::None if !local => bad(
                    Unsafe,
                    "mail.transport",
                    Some(VAR),
                    format!(
                        "mail to {host} is sent without TLS: reset links cross the network in clear"
                    ),
                    "remove `?tls=none` (STARTTLS is required by default) or use smtps://",
                ),
                SmtpTls::Opportunistic if !local => bad(
                    Warning,
                    "mail.transport",
                    Some(VAR),
                    format!(
                        "mail to {host} falls back to plain text when STARTTLS is not offered (or is stripped)"
                    ),
                    "remove `?tls=opportunistic` so STARTTLS is required",
                ),
                _ => ok("mail.transport", format!("mail goes to {host} over TLS")),
            }
        }
    }
}

/// Whether `ip` is reachable only inside a private network (RFC 1918, unique local,
/// link-local, shared address space).
fn is_private(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || (v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// `LATCHKEY_METRICS_LISTEN`: off, loopback, private or public.
fn metrics_listener(env: &HashMap<String, String>) -> Finding {
    const VAR: &str = "LATCHKEY_METRICS_LISTEN";
    let Some(value) = env.get(VAR).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return ok("metrics.listen", "the metrics listener is off");
    };
    let Ok(addr) = value.parse::<SocketAddr>() else {
        return bad(
            Warning,
            "metrics.listen",
            Some(VAR),
            format!("`{value}` is not an address like 127.0.0.1:9090"),
            "set LATCHKEY_METRICS_LISTEN=127.0.0.1:9090 (or a private address)",
        );
    };
    let ip = addr.ip().to_canonical();
    if ip.is_loopback() {
        ok(
            "metrics.listen",
            format!("metrics on {addr}, this machine only"),
        )
    } else if ip.is_unspecified() {
        bad(
            Unsafe,
            "metrics.listen",
            Some(VAR),
            format!("metrics listen on every interface ({addr}), the public one included"),
            "bind LATCHKEY_METRICS_LISTEN to 127.0.0.1 or to an internal address the scraper \
             reaches",
        )
    } else if is_private(ip) {
        bad(
            Warning,
            "metrics.listen",
            Some(VAR),
            format!("metrics listen on the private address {addr}: reachable by the whole network"),
            "prefer 127.0.0.1 with a local scraper, or firewall the port to the scraper",
        )
    } else {
        bad(
            Unsafe,
            "metrics.listen",
            Some(VAR),
            format!("metrics listen on the public address {addr}"),
            "bind LATCHKEY_METRICS_LISTEN to 127.0.0.1 or to an internal address",
        )
    }
}

/// Whether the connection to a networked database is encrypted and verified.
fn database_tls(config: &Config) -> Finding {
    const VAR: &str = "LATCHKEY_DATABASE_URL";
    let url = &config.database_url;
    let scheme = url.scheme();
    if scheme == "sqlite" {
        return ok(
            "database.tls",
            "SQLite: a local file, no connection to encrypt",
        );
    }
    let Ok(parsed) = Url::parse(url.expose()) else {
        return ok("database.tls", "not checked: the URL could not be read");
    };
    let query = |name: &str| {
        parsed
            .query_pairs()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let hosts = parsed.host_str().unwrap_or("");
    let local = hosts.is_empty()
        || hosts.starts_with('/')
        || hosts.split(',').all(|h| {
            let h = h.trim_start_matches('[').split(']').next().unwrap_or(h);
            let h = h.split(':').next().unwrap_or(h);
            h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        })
        || query("host").is_some_and(|h| h.starts_with('/'));
    let encrypted = match scheme {
        "postgres" | "postgresql" => matches!(
            query("sslmode").as_deref(),
            Some("require" | "verify-ca" | "verify-full")
        ),
        "mongodb+srv" => query("tls").or_else(|| query("ssl")).as_deref() != Some("false"),
        _ => matches!(
            query("tls").or_else(|| query("ssl")).as_deref(),
            Some("true")
        ),
    };
    if local || encrypted {
        ok(
            "database.tls",
            if local {
                "the database is on this machine"
            } else {
                "the database connection uses TLS"
            },
        )
    } else {
        let fix = if scheme.starts_with("postgres") {
            "add sslmode=verify-full (or at least require) to LATCHKEY_DATABASE_URL"
        } else {
            "add tls=true to LATCHKEY_DATABASE_URL (or use mongodb+srv://)"
        };
        bad(
            Warning,
            "database.tls",
            Some(VAR),
            "the connection to a database on another machine is not required to use TLS: \
             password hashes, refresh-token hashes and signing keys cross the network",
            fix,
        )
    }
}

/// The checks that read the store.
async fn check_store(config: &Config, options: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    if config.database_url.scheme() == "sqlite" {
        out.push(sqlite_filesystem(config));
    }
    #[cfg(feature = "mongodb")]
    if matches!(config.database_url.scheme(), "mongodb" | "mongodb+srv") {
        out.push(mongo_replica_set(config).await);
    }
    let store = match crate::store::open(&config.database_url).await {
        Ok(store) => store,
        Err(e) => {
            out.push(unreachable(&e.to_string()));
            return out;
        }
    };
    if let Err(e) = store.ping().await {
        out.push(unreachable(&e.to_string()));
        return out;
    }
    out.push(ok("store.reachable", "the store answers"));
    out.push(match signing_key_age(&*store, config, options).await {
        Ok(f) => f,
        Err(e) => unreachable(&e.to_string()),
    });
    out.push(match admin_exists(&*store).await {
        Ok(f) => f,
        Err(e) => unreachable(&e.to_string()),
    });
    out
}

fn unreachable(error: &str) -> Finding {
    bad(
        Unsafe,
        "store.reachable",
        Some("LATCHKEY_DATABASE_URL"),
        format!("the store could not be read: {error}"),
        "check LATCHKEY_DATABASE_URL and that the database is up and reachable from here",
    )
}

async fn signing_key_age(
    store: &dyn Store,
    config: &Config,
    options: &Options,
) -> Result<Finding, crate::store::StoreError> {
    if config.signing_alg == SigningAlg::HS256 {
        return Ok(ok("keys.age", "HS256: no stored signing keys"));
    }
    let now = time::OffsetDateTime::from(config.clock.now());
    let keys = store.signing_keys().await?;
    let states = key_states(&keys, now, time::Duration::ZERO);
    let current = keys
        .iter()
        .zip(&states)
        .filter(|(_, s)| **s == KeyState::Current)
        .map(|(k, _)| k)
        .max_by_key(|k| k.activates_at);
    let pending = states.contains(&KeyState::Pending);
    let Some(key) = current else {
        return Ok(ok(
            "keys.age",
            "no signing key yet: the server creates one at its first start",
        ));
    };
    let age = now - key.created_at;
    let days = age.whole_days();
    let max_days = options.max_key_age.as_secs() / 86_400;
    Ok(
        if age.whole_seconds() > 0 && age.unsigned_abs() > options.max_key_age && !pending {
            bad(
                Warning,
                "keys.age",
                None,
                format!(
                    "the signing key {} ({}) was created {days} days ago (more than {max_days})",
                    key.kid, key.alg
                ),
                "run `latchkey keys rotate` (the old key stays published until its tokens expire)",
            )
        } else {
            ok(
                "keys.age",
                format!(
                    "the signing key {} ({}) is {days} day(s) old{}",
                    key.kid,
                    key.alg,
                    if pending {
                        "; a new key is pending"
                    } else {
                        ""
                    }
                ),
            )
        },
    )
}

async fn admin_exists(store: &dyn Store) -> Result<Finding, crate::store::StoreError> {
    let mut after = None;
    let (mut admins, mut disabled) = (0u64, 0u64);
    loop {
        let page = store.list_users(after, 100).await?;
        for user in &page {
            if user.roles.iter().any(|r| r == ADMIN_ROLE) {
                if user.disabled {
                    disabled += 1;
                } else {
                    admins += 1;
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == 100 && admins == 0 => after = Some(last.id),
            _ => break,
        }
    }
    Ok(if admins > 0 {
        ok("admin.exists", "an enabled user holds the admin role")
    } else {
        bad(
            Warning,
            "admin.exists",
            None,
            format!(
                "no enabled user holds the `{ADMIN_ROLE}` role{}: nobody can use the admin API \
                 to disable an account or revoke its sessions",
                if disabled > 0 {
                    format!(" ({disabled} disabled admin(s))")
                } else {
                    String::new()
                }
            ),
            "create one: `latchkey user create --username … --role admin --password-stdin`",
        )
    })
}

/// Filesystem type magic numbers (`statfs.f_type`) of network and FUSE filesystems, where
/// SQLite's locking is unreliable.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn network_filesystem(magic: u64) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "NFS",
        0xff53_4d42 => "CIFS",
        0xfe53_4d42 => "SMB2",
        0x517b => "SMB",
        0x6573_5546 => "FUSE",
        0x0102_1997 => "9P",
        0x00c3_6400 => "Ceph",
        0x5346_414f => "AFS",
        0x0bd0_0bd0 => "Lustre",
        0x4750_4653 => "GPFS",
        _ => return None,
    })
}

/// Whether the SQLite file is on a network filesystem.
fn sqlite_filesystem(config: &Config) -> Finding {
    use std::str::FromStr;
    let Ok(options) = sqlx::sqlite::SqliteConnectOptions::from_str(config.database_url.expose())
    else {
        return ok(
            "sqlite.filesystem",
            "not checked: the URL could not be read",
        );
    };
    let path = options.get_filename().to_path_buf();
    // The file may not exist yet: its directory decides.
    let probe = if path.exists() {
        path.clone()
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }
    };
    #[cfg(target_os = "linux")]
    {
        match rustix::fs::statfs(&probe) {
            Ok(stat) => {
                // Magic numbers are 32-bit; `f_type` is signed and 32 or 64 bits wide.
                #[allow(clippy::cast_sign_loss, clippy::unnecessary_cast)]
                let magic = (stat.f_type as u64) & 0xffff_ffff;
                match network_filesystem(magic) {
                    Some(kind) => bad(
                        Unsafe,
                        "sqlite.filesystem",
                        Some("LATCHKEY_DATABASE_URL"),
                        format!(
                            "the SQLite database {} is on a {kind} filesystem: its locks are \
                             not reliable there, so concurrent writes can corrupt it",
                            path.display()
                        ),
                        "put the database file on a local disk, or use PostgreSQL or MongoDB",
                    ),
                    None => ok(
                        "sqlite.filesystem",
                        format!(
                            "the SQLite database {} is on a local filesystem",
                            path.display()
                        ),
                    ),
                }
            }
            Err(e) => ok(
                "sqlite.filesystem",
                format!("not checked: statfs({}) failed: {e}", probe.display()),
            ),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = probe;
        ok(
            "sqlite.filesystem",
            "not checked on this system: keep the database file on a local disk",
        )
    }
}

/// Whether the MongoDB deployment is a replica set (or a sharded cluster).
#[cfg(feature = "mongodb")]
async fn mongo_replica_set(config: &Config) -> Finding {
    use mongodb::bson::doc;
    const VAR: &str = "LATCHKEY_DATABASE_URL";
    let hello = async {
        let mut options = mongodb::options::ClientOptions::parse(config.database_url.expose())
            .await
            .map_err(|e| e.to_string())?;
        options.server_selection_timeout = Some(Duration::from_secs(5));
        options.connect_timeout = Some(Duration::from_secs(5));
        let client = mongodb::Client::with_options(options).map_err(|e| e.to_string())?;
        client
            .database("admin")
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(10), hello).await {
        Ok(Ok(reply)) => {
            if let Ok(name) = reply.get_str("setName") {
                ok("mongodb.replica_set", format!("replica set `{name}`"))
            } else if reply.get_str("msg").is_ok_and(|m| m == "isdbgrid") {
                ok("mongodb.replica_set", "a sharded cluster (mongos)")
            } else {
                bad(
                    Warning,
                    "mongodb.replica_set",
                    Some(VAR),
                    "MongoDB is a standalone server, not a replica set: no failover, and a \
                     crash can lose acknowledged writes (a revocation, a rotated refresh token)",
                    "run a replica set of three members and name it in the URL \
                     (`?replicaSet=rs0`)",
                )
            }
        }
        Ok(Err(e)) => bad(
            Unsafe,
            "mongodb.replica_set",
            Some(VAR),
            format!("MongoDB did not answer `hello`: {e}"),
            "check LATCHKEY_DATABASE_URL and that the database is up",
        ),
        Err(_) => bad(
            Unsafe,
            "mongodb.replica_set",
            Some(VAR),
            "MongoDB did not answer `hello` within 10 s",
            "check LATCHKEY_DATABASE_URL and that the database is up",
        ),
    }
}

/// Every configured secret, to scrub from messages that quote other programs' errors.
fn secrets_of(config: &Config) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Ok(url) = Url::parse(config.database_url.expose()) {
        if let Some(p) = url.password() {
            secrets.push(p.to_owned());
            if let Ok(decoded) = percent_decode(p) {
                secrets.push(decoded);
            }
        }
        for (k, v) in url.query_pairs() {
            if matches!(&*k, "password" | "sslpassword") {
                secrets.push(v.into_owned());
            }
        }
    }
    if let Some(s) = &config.hs256_secret {
        secrets.push(s.expose_secret().to_owned());
    }
    if let Some(crate::config::MailTransport::Smtp {
        credentials: Some((_, password)),
        ..
    }) = &config.mail.transport
    {
        secrets.push(password.expose_secret().to_owned());
    }
    for p in &config.oauth.providers {
        secrets.push(p.client_secret.expose_secret().to_owned());
    }
    secrets.retain(|s| s.len() >= 3);
    // Longest first, so that a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "REDACTED"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut map: HashMap<String, String> = [
            ("LATCHKEY_ISSUER", "https://auth.example.com"),
            ("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/8"),
        ]
        .iter()
        .chain(pairs)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        map.retain(|_, v| !v.is_empty());
        Config::from_env_map(&map).unwrap()
    }

    fn severity_of(findings: &[Finding], check: &str) -> Severity {
        findings
            .iter()
            .find(|f| f.check == check)
            .unwrap_or_else(|| panic!("no {check}"))
            .severity
    }

    #[test]
    fn a_production_configuration_is_all_ok() {
        let findings = check_config(&config(&[]), &HashMap::new());
        let bad: Vec<_> = findings
            .iter()
            .filter(|f| f.severity != Severity::Ok)
            .collect();
        assert!(bad.is_empty(), "{bad:#?}");
    }

    #[test]
    fn each_bad_setting_is_named() {
        let env = HashMap::new();
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Severity);
        let cases: &[Case<'_>] = &[
            (
                &[("LATCHKEY_COOKIE_SECURE", "false")],
                "cookies.secure",
                Unsafe,
            ),
            (
                &[("LATCHKEY_ISSUER", "http://auth.example.com")],
                "issuer.https",
                Unsafe,
            ),
            (
                &[("LATCHKEY_ISSUER", "http://localhost:8080")],
                "issuer.https",
                Warning,
            ),
            (
                &[("LATCHKEY_COOKIE_SAMESITE", "None")],
                "cookies.samesite",
                Unsafe,
            ),
            (
                &[("LATCHKEY_ALLOWED_ORIGINS", "http://app.example.com")],
                "origins.https",
                Unsafe,
            ),
            (
                &[("LATCHKEY_ARGON2_MEMORY_KIB", "4096")],
                "passwords.argon2",
                Unsafe,
            ),
            (
                &[("LATCHKEY_TRUSTED_PROXIES", "0.0.0.0/0")],
                "proxies.trusted",
                Unsafe,
            ),
            (
                &[("LATCHKEY_TRUSTED_PROXIES", "10.0.0.1, ::/0")],
                "proxies.trusted",
                Unsafe,
            ),
            (
                &[("LATCHKEY_TRUSTED_PROXIES", "")],
                "proxies.trusted",
                Warning,
            ),
            (
                &[("LATCHKEY_PASSWORD_MIN_LENGTH", "8")],
                "passwords.min_length",
                Warning,
            ),
            (
                &[("LATCHKEY_ACCESS_TOKEN_TTL", "1h")],
                "tokens.access_ttl",
                Warning,
            ),
            (
                &[(
                    "LATCHKEY_DATABASE_URL",
                    "postgres://u:p@db.example/latchkey",
                )],
                "database.tls",
                Warning,
            ),
            (&[("LATCHKEY_SMTP_URL", "log://")], "mail.transport", Unsafe),
            (
                &[
                    ("LATCHKEY_SMTP_URL", "smtp://mail.example.com?tls=none"),
                    ("LATCHKEY_MAIL_FROM", "a@example.com"),
                ],
                "mail.transport",
                Unsafe,
            ),
            (
                &[
                    (
                        "LATCHKEY_SMTP_URL",
                        "smtp://mail.example.com?tls=opportunistic",
                    ),
                    ("LATCHKEY_MAIL_FROM", "a@example.com"),
                ],
                "mail.transport",
                Warning,
            ),
            (
                &[("LATCHKEY_CONTENT_SECURITY_POLICY", "none")],
                "headers.csp",
                Warning,
            ),
        ];
        for (pairs, check, want) in cases {
            let findings = check_config(&config(pairs), &env);
            assert_eq!(severity_of(&findings, check), *want, "{pairs:?}");
        }
        // SameSite=None with an allowed origin is what it is for.
        let c = config(&[
            ("LATCHKEY_COOKIE_SAMESITE", "None"),
            ("LATCHKEY_ALLOWED_ORIGINS", "https://app.example.com"),
        ]);
        assert_eq!(
            severity_of(&check_config(&c, &env), "cookies.samesite"),
            Severity::Ok
        );
        // Arguments equal to one of OWASP's other pairs pass.
        let c = config(&[
            ("LATCHKEY_ARGON2_MEMORY_KIB", "47104"),
            ("LATCHKEY_ARGON2_ITERATIONS", "1"),
        ]);
        assert_eq!(
            severity_of(&check_config(&c, &env), "passwords.argon2"),
            Severity::Ok
        );
    }

    #[test]
    fn the_metrics_listener_is_judged_by_its_address() {
        for (addr, want) in [
            ("127.0.0.1:9090", Severity::Ok),
            ("[::1]:9090", Severity::Ok),
            ("0.0.0.0:9090", Unsafe),
            ("[::]:9090", Unsafe),
            ("203.0.113.5:9090", Unsafe),
            ("10.1.2.3:9090", Warning),
            ("[fd00::1]:9090", Warning),
        ] {
            let env = HashMap::from([("LATCHKEY_METRICS_LISTEN".to_owned(), addr.to_owned())]);
            assert_eq!(metrics_listener(&env).severity, want, "{addr}");
        }
        assert_eq!(metrics_listener(&HashMap::new()).severity, Severity::Ok);
    }

    #[test]
    fn database_tls_is_judged_by_host_and_parameters() {
        for (url, want) in [
            ("postgres://u:p@localhost/l", Severity::Ok),
            (
                "postgres://u:p@db.example/l?sslmode=verify-full",
                Severity::Ok,
            ),
            ("postgres://u:p@db.example/l?sslmode=prefer", Warning),
            (
                "mongodb://db1.example,db2.example/l?replicaSet=rs0",
                Warning,
            ),
            ("mongodb://db1.example/l?tls=true", Severity::Ok),
            ("mongodb+srv://cluster.example/l", Severity::Ok),
            ("mongodb://127.0.0.1:27017/l", Severity::Ok),
        ] {
            let c = config(&[("LATCHKEY_DATABASE_URL", url)]);
            assert_eq!(database_tls(&c).severity, want, "{url}");
        }
    }

    #[test]
    fn network_filesystems_are_known_by_their_magic() {
        assert_eq!(network_filesystem(0x6969), Some("NFS"));
        assert_eq!(network_filesystem(0xff53_4d42), Some("CIFS"));
        assert_eq!(network_filesystem(0x6573_5546), Some("FUSE"));
        assert_eq!(network_filesystem(0xef53), None, "ext4");
        assert_eq!(network_filesystem(0x0102_1994), None, "tmpfs");
    }

    #[test]
    fn secrets_are_scrubbed_even_percent_encoded() {
        let c = config(&[
            (
                "LATCHKEY_DATABASE_URL",
                "postgres://u:s%40cret-pw@db.example/l",
            ),
            ("LATCHKEY_SIGNING_ALG", "HS256"),
            (
                "LATCHKEY_HS256_SECRET",
                "an-hs256-secret-of-32-characters!!",
            ),
        ]);
        let secrets = secrets_of(&c);
        let text = "failed for u:s%40cret-pw and s@cret-pw and an-hs256-secret-of-32-characters!!";
        let clean = scrub(text, &secrets);
        assert!(!clean.contains("cret-pw"), "{clean}");
        assert!(!clean.contains("hs256-secret"), "{clean}");
    }

    #[test]
    fn the_exit_code_follows_the_worst_finding() {
        let report = |s: Severity| Report {
            findings: vec![Finding {
                check: "x",
                severity: s,
                variable: None,
                message: String::new(),
                fix: None,
            }],
        };
        assert_eq!(report(Severity::Ok).exit_code(true), 0);
        assert_eq!(report(Warning).exit_code(false), 0);
        assert_eq!(report(Warning).exit_code(true), 1);
        assert_eq!(report(Unsafe).exit_code(false), 1);
    }
}
