//! Black-box tests of the admin API: a real server on a random port, a real HTTP client.

// Test helpers outside `#[test]` functions fail loudly too (clippy.toml covers only the latter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod helpers;
#[path = "../support/secantus.rs"]
mod secantus;
