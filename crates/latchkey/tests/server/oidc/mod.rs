//! Sign-in with an OpenID Connect provider, against a real provider (npm `oidc-provider`,
//! started with node from `provider.mjs`) and a real Latchkey server.

mod errors;
mod helpers;
mod linking;
mod signin;
