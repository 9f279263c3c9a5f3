//! The HTTP API: tokens, refresh, cookie sessions, keys, hardening, the contract.

mod bad_input;
mod cookie_sessions;
mod hardening;
mod headers_csrf;
mod health;
mod import;
mod keys;
mod login;
mod logout;
mod me_sessions;
mod openapi;
mod refresh;
mod register;
mod restart;
mod session_twins;
mod sessions;
mod throttling;
mod well_known;
