//! Prometheus metrics (`LATCHKEY_METRICS_LISTEN`): a known sequence of requests, then a scrape
//! of the metrics listener parsed by the real Prometheus text parser (Python's
//! `prometheus_client`, installed into `.venv` by `scripts/test.sh`), with exact counts.

mod helpers;
mod scrape;
