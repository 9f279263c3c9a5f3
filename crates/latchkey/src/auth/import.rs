//! `latchkey user import`: users from another system, one JSON object per line, with their
//! existing password hashes (verified as they are and upgraded to Argon2id at the first
//! successful login; see [`super::legacy_hash`]).
//!
//! Each line is checked whole before anything is written and then written with one store
//! operation, so a line goes in entirely or not at all. Existing usernames are skipped (or,
//! with `update`, overwritten field by field with what the line gives).

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use argon2::{Params, PasswordHash};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::admin::validate_roles;
use super::legacy_hash::{passport_local_mongoose, validate_legacy};
use super::now_on;
use super::password::normalize_username;
use crate::store::{Store, StoreError, UserRecord};
use latchkey_guard::Clock;

/// The longest line accepted, in bytes.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Argon2 hashes above these parameters are refused at import (memory in KiB, passes, lanes).
const MAX_ARGON2: (u32, u32, u32) = (262_144, 16, 16);
/// How many "already exists" notices are printed before they are only counted.
const MAX_SKIP_NOTICES: u64 = 100;

/// One line of the import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    username: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    password_hash: Option<String>,
    #[serde(default)]
    passport_local_mongoose: Option<Plm>,
}

/// passport-local-mongoose's fields, with the library's defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plm {
    salt: String,
    hash: String,
    #[serde(default = "plm_iterations")]
    iterations: u32,
    #[serde(default = "plm_keylen")]
    keylen: usize,
    #[serde(default = "plm_digest", alias = "digestAlgorithm")]
    digest: String,
}

fn plm_iterations() -> u32 {
    25_000
}
fn plm_keylen() -> usize {
    512
}
fn plm_digest() -> String {
    "sha256".into()
}

/// How an import run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// New users.
    pub created: u64,
    /// Existing users overwritten (`--update`).
    pub updated: u64,
    /// Existing users left alone.
    pub skipped: u64,
    /// Lines refused (malformed, invalid, or a store failure).
    pub failed: u64,
}

impl ImportReport {
    /// The process exit code: 0 when every line went in, 2 when the only lines that did not
    /// were existing users skipped, 1 when a line failed.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        if self.failed > 0 {
            1
        } else if self.skipped > 0 {
            2
        } else {
            0
        }
    }
}

/// A user checked and ready to write.
struct Checked {
    username: String,
    username_key: String,
    email: Option<String>,
    roles: Option<Vec<String>>,
    created_at: Option<OffsetDateTime>,
    password_hash: Option<String>,
}

/// Reads JSON Lines from `input` and imports them into `store` (users created at `clock`'s
/// time unless the line says when); problems go to `errors` with
/// their line numbers. `total_bytes` (when known) makes the progress bar show a percentage;
/// the bar is drawn only when standard error is a terminal.
///
/// # Errors
/// Only when `input` cannot be read; bad lines are counted in the report.
pub async fn import_users(
    store: &dyn Store,
    clock: &dyn Clock,
    input: impl BufRead,
    update: bool,
    total_bytes: Option<u64>,
    errors: &mut impl Write,
) -> std::io::Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut progress = Progress::new(total_bytes);
    let mut read = 0u64;
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line?;
        read += line.len() as u64 + 1;
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t.trim(),
            Err(_) => {
                report.failed += 1;
                progress.clear();
                writeln!(errors, "line {number}: not UTF-8")?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        match import_line(store, clock, text, update).await {
            Ok(Outcome::Created) => report.created += 1,
            Ok(Outcome::Updated) => report.updated += 1,
            Ok(Outcome::Skipped(name)) => {
                report.skipped += 1;
                if report.skipped <= MAX_SKIP_NOTICES {
                    progress.clear();
                    writeln!(errors, "line {number}: user `{name}` exists, skipped")?;
                }
            }
            Err(why) => {
                report.failed += 1;
                progress.clear();
                writeln!(errors, "line {number}: {why}")?;
            }
        }
        progress.tick(&report, read);
    }
    progress.clear();
    if report.skipped > MAX_SKIP_NOTICES {
        writeln!(
            errors,
            "... and {} more existing users skipped",
            report.skipped - MAX_SKIP_NOTICES
        )?;
    }
    Ok(report)
}

enum Outcome {
    Created,
    Updated,
    Skipped(String),
}

async fn import_line(
    store: &dyn Store,
    clock: &dyn Clock,
    text: &str,
    update: bool,
) -> Result<Outcome, String> {
    if text.len() > MAX_LINE_BYTES {
        return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
    }
    let line: Line = serde_json::from_str(text).map_err(json_error)?;
    let user = check(line)?;
    let unavailable = |e: StoreError| format!("store: {e}");
    let existing = store
        .find_user_by_username(&user.username_key)
        .await
        .map_err(unavailable)?;
    match existing {
        Some(old) if update => {
            let email = user.email.or_else(|| old.email.clone());
            let password_hash = user.password_hash.or_else(|| old.password_hash.clone());
            let merged = UserRecord {
                id: old.id,
                username: user.username,
                username_key: user.username_key,
                // A verification holds only for the address it verified.
                email_verified: old.email_verified && email == old.email,
                // A replaced password ends sealed cookie sessions, as a password change does.
                generation: old.generation + u64::from(password_hash != old.password_hash),
                email,
                password_hash,
                roles: user.roles.unwrap_or(old.roles),
                disabled: old.disabled,
                created_at: user.created_at.unwrap_or(old.created_at),
            };
            store.import_user(&merged).await.map_err(unavailable)?;
            Ok(Outcome::Updated)
        }
        Some(old) => Ok(Outcome::Skipped(old.username)),
        None => {
            let record = UserRecord {
                id: Uuid::now_v7(),
                username: user.username.clone(),
                username_key: user.username_key,
                email: user.email,
                password_hash: user.password_hash,
                roles: user.roles.unwrap_or_default(),
                disabled: false,
                email_verified: false,
                generation: 0,
                created_at: user.created_at.unwrap_or_else(|| now_on(clock)),
            };
            match store.create_user(&record).await {
                Ok(()) => Ok(Outcome::Created),
                // Created meanwhile by someone else: skipped like any existing user.
                Err(StoreError::Conflict) => Ok(Outcome::Skipped(user.username)),
                Err(e) => Err(unavailable(e)),
            }
        }
    }
}

/// A JSON error without the values it quotes (they may be password hashes).
fn json_error(error: serde_json::Error) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in error.to_string().chars() {
        if c == '"' {
            quoted = !quoted;
            if quoted {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
        } else if !quoted {
            out.push(c);
        }
    }
    format!("invalid JSON: {out}")
}

fn check(line: Line) -> Result<Checked, String> {
    let username = normalize_username(&line.username).map_err(|e| e.to_string())?;
    let email = match line
        .email
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
    {
        Some(e) if e.len() > 254 || !e.contains('@') || e.chars().any(char::is_whitespace) => {
            return Err("email is not a valid address".into());
        }
        other => other,
    };
    let roles = match line.roles {
        Some(r) => Some(validate_roles(r).map_err(|e| e.to_string())?),
        None => None,
    };
    let created_at = match line.created_at {
        Some(t) => Some(
            OffsetDateTime::parse(&t, &Rfc3339)
                .map_err(|_| "created_at must be an RFC 3339 time".to_owned())?
                .to_offset(time::UtcOffset::UTC),
        ),
        None => None,
    };
    let password_hash = match (line.password_hash, line.passport_local_mongoose) {
        (Some(_), Some(_)) => {
            return Err("give password_hash or passport_local_mongoose, not both".into());
        }
        (Some(hash), None) => Some(check_hash(hash)?),
        (None, Some(p)) => Some(passport_local_mongoose(
            &p.salt,
            &p.hash,
            &p.digest,
            p.iterations,
            p.keylen,
        )?),
        (None, None) => None,
    };
    Ok(Checked {
        username: username.display,
        username_key: username.key,
        email,
        roles,
        created_at,
        password_hash,
    })
}

fn check_hash(hash: String) -> Result<String, String> {
    if hash.starts_with("$argon2id$") || hash.starts_with("$argon2i$") {
        let parsed = PasswordHash::new(&hash).map_err(|_| "malformed Argon2 hash".to_owned())?;
        let params = Params::try_from(&parsed).map_err(|_| "bad Argon2 parameters".to_owned())?;
        let (m, t, p) = MAX_ARGON2;
        if params.m_cost() > m || params.t_cost() > t || params.p_cost() > p {
            return Err(format!(
                "Argon2 parameters above the bound m={m}, t={t}, p={p}"
            ));
        }
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err("malformed Argon2 hash".into());
        }
        return Ok(hash);
    }
    if hash.starts_with("$argon2d$") {
        return Err("Argon2d hashes are not accepted".into());
    }
    validate_legacy(&hash).map_err(|e| {
        format!("password_hash: {e} (bcrypt, $argon2id$/$argon2i$ or $pbkdf2-sha256$/$pbkdf2-sha512$ expected)")
    })?;
    Ok(hash)
}

/// A one-line progress bar on standard error, only when it is a terminal.
struct Progress {
    on: bool,
    total: Option<u64>,
    last: Instant,
}

impl Progress {
    fn new(total: Option<u64>) -> Self {
        Self {
            on: std::io::stderr().is_terminal(),
            total: total.filter(|t| *t > 0),
            last: Instant::now(),
        }
    }

    fn tick(&mut self, report: &ImportReport, read: u64) {
        if !self.on || self.last.elapsed() < Duration::from_millis(200) {
            return;
        }
        self.last = Instant::now();
        let done = report.created + report.updated + report.skipped + report.failed;
        let bar = match self.total {
            Some(total) => {
                let fraction = (read.min(total) * 30 / total) as usize;
                format!(
                    "[{}{}] {:>3}% ",
                    "#".repeat(fraction),
                    " ".repeat(30 - fraction),
                    read.min(total) * 100 / total
                )
            }
            None => String::new(),
        };
        eprint!("\r{bar}{done} users read, {} failed", report.failed);
    }

    /// Erases the bar, before a message or at the end.
    fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[2K");
        }
    }
}
