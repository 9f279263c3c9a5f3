//! Black-box tests of sign-in with an OpenID Connect provider, against a real provider
//! (npm `oidc-provider`, started with node from `provider.mjs`) and a real Latchkey server.
// `cfg(test)` marks every module as test code, so clippy's allow-unwrap/expect/panic-in-tests
// also covers the helper functions, not only the `#[test]` bodies.

#[cfg(test)]
mod errors;
#[cfg(test)]
mod helpers;
#[cfg(test)]
mod linking;
#[cfg(test)]
#[path = "../support/secantus.rs"]
mod secantus;
#[cfg(test)]
mod signin;
