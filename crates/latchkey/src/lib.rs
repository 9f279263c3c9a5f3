//! Latchkey: a self-hostable authentication server for web APIs.
//!
//! Short-lived JWT access tokens in the JSON body, rotating refresh tokens in an httpOnly
//! cookie, keys and sessions in SQLite (embedded) behind the [`store::Store`] trait.

pub mod auth;
pub mod cli;
pub mod config;
pub mod http;
pub mod mail;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::Server;
