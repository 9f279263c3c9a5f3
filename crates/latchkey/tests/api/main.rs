//! Black-box tests of the HTTP API: a real server on a random port, a real HTTP client.
// `cfg(test)` marks every module as test code, so clippy's allow-unwrap/expect/panic-in-tests
// also covers the helper functions, not only the `#[test]` bodies.

#[cfg(test)]
mod bad_input;
#[cfg(test)]
mod cookie_sessions;
#[cfg(test)]
mod hardening;
#[cfg(test)]
mod headers_csrf;
#[cfg(test)]
mod health;
#[cfg(test)]
mod helpers;
#[cfg(test)]
mod import;
#[cfg(test)]
mod keys;
#[cfg(test)]
mod login;
#[cfg(test)]
mod logout;
#[cfg(test)]
mod me_sessions;
#[cfg(test)]
mod openapi;
#[cfg(test)]
mod refresh;
#[cfg(test)]
mod register;
#[cfg(test)]
mod restart;
#[cfg(test)]
#[path = "../support/secantus.rs"]
mod secantus;
#[cfg(test)]
mod sessions;
#[cfg(test)]
mod throttling;
#[cfg(test)]
mod well_known;
