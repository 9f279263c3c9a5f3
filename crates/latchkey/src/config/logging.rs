//! Logging: the line format (`LATCHKEY_LOG_FORMAT`, `text` or `json`) is read here; `main`
//! reads the filter itself from the process environment (`LATCHKEY_LOG`, an `EnvFilter`,
//! falling back to `RUST_LOG`), listed here so that it counts as a known variable.

use super::{ConfigError, Vars, err};

/// The variables read here and by `main`.
pub(super) const VARIABLES: &[&str] = &["LATCHKEY_LOG", "LATCHKEY_LOG_FORMAT"];

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, the request's fields (`request_id`, `method`, `route`,
    /// `client_ip`) at the top level beside `timestamp`, `level`, `target` and `message`.
    Json,
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<LogFormat, ConfigError> {
    match vars
        .get("LATCHKEY_LOG_FORMAT")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(v) => Err(err(
            "LATCHKEY_LOG_FORMAT",
            format!("`{v}` is not text or json"),
        )),
    }
}
