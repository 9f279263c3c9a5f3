//! Prometheus metrics: the separate listener that serves `GET /metrics` (off by default, so
//! metrics are never public by accident) and how often the store's counts are sampled.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, Vars, err};

/// The variables read here.
pub(super) const VARIABLES: &[&str] = &[
    "LATCHKEY_METRICS_LISTEN",
    "LATCHKEY_METRICS_SAMPLE_INTERVAL",
];

/// `LATCHKEY_METRICS_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `LATCHKEY_METRICS_LISTEN`: where `GET /metrics` is served; `None` (the default) turns
    /// metrics off entirely (no recorder, nothing counted).
    pub listen: Option<SocketAddr>,
    /// `LATCHKEY_METRICS_SAMPLE_INTERVAL`: how often live refresh families, sessions and users
    /// are counted in the store (default 60s, at least 1s).
    pub sample_interval: Duration,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            sample_interval: Duration::from_secs(60),
        }
    }
}

pub(super) fn parse(vars: &Vars<'_>) -> Result<MetricsConfig, ConfigError> {
    let listen = match vars.get("LATCHKEY_METRICS_LISTEN") {
        None => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
            err(
                "LATCHKEY_METRICS_LISTEN",
                format!("`{text}` is not an address like 127.0.0.1:9464"),
            )
        })?),
    };
    let sample_interval = vars.duration("LATCHKEY_METRICS_SAMPLE_INTERVAL", "60s")?;
    if sample_interval.is_zero() {
        return Err(err(
            "LATCHKEY_METRICS_SAMPLE_INTERVAL",
            "must be at least 1s",
        ));
    }
    Ok(MetricsConfig {
        listen,
        sample_interval,
    })
}
