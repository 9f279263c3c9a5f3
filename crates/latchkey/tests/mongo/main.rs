//! Black-box tests of Latchkey on MongoDB: a SecantusDB server per test, real Latchkey servers
//! on random ports, a real HTTP client. Skipped (with a message) when SecantusDB is not
//! installed, failed under `CI=true`.
// `cfg(test)` marks every module as test code, so clippy's allow-unwrap/expect/panic-in-tests
// also covers the helper functions, not only the `#[test]` bodies.

#[cfg(test)]
mod copy;
#[cfg(test)]
mod flows;
#[cfg(test)]
mod helpers;
#[cfg(test)]
mod instances;
#[cfg(test)]
mod outage;
#[cfg(test)]
#[path = "../support/secantus.rs"]
mod secantus;
