//! Black-box tests of files-api: a real Latchkey and a real files-api on random ports, driven
//! by a real HTTP client.

// Test helpers outside `#[test]` functions fail loudly too (clippy.toml covers only the latter).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cors;
mod helpers;
mod keys;
mod matrix;
mod tokens;
