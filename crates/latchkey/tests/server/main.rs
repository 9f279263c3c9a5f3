//! The server's black-box tests, one binary: real servers in-process on listeners the kit
//! already holds, real HTTP clients (and a real SMTP server for the `email` area). `kit` is
//! the harness (one `TestApp`, the backend switch `LATCHKEY_TEST_STORE=sqlite|mongodb|postgres`,
//! the test clock, the rule for missing services); the other modules are the areas.
// `cfg(test)` marks every module as test code, so clippy's allow-unwrap/expect/panic-in-tests
// also covers the helper functions, not only the `#[test]` bodies.

#[cfg(test)]
mod admin;
#[cfg(test)]
mod api;
#[cfg(test)]
mod audit;
#[cfg(test)]
mod email;
#[cfg(test)]
mod kit;
#[cfg(test)]
mod metrics;
#[cfg(test)]
mod mfa;
// The MongoDB area needs the `mongodb` feature (default-on); `LATCHKEY_TEST_STORE=mongodb`
// does too.
#[cfg(test)]
#[cfg(feature = "mongodb")]
mod mongo;
#[cfg(test)]
mod oidc;
#[cfg(test)]
mod ops;
#[cfg(test)]
mod passkeys;
#[cfg(test)]
mod postgres;
