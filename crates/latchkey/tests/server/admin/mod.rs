//! The admin API.

mod helpers;
mod routes;
