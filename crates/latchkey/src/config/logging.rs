//! Logging: `main` reads these after the configuration, from the process environment
//! (`LATCHKEY_LOG` an `EnvFilter`, falling back to `RUST_LOG`; `LATCHKEY_LOG_FORMAT=json`);
//! listed here so that they count as known variables.

/// The variables read by `main`.
pub(super) const VARIABLES: &[&str] = &["LATCHKEY_LOG", "LATCHKEY_LOG_FORMAT"];
