//! The admin API.

pub mod helpers;
mod routes;
