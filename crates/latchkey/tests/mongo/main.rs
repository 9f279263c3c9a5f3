//! Black-box tests of Latchkey on MongoDB: a SecantusDB server per test, real Latchkey servers
//! on random ports, a real HTTP client. Skipped (with a message) when SecantusDB is not
//! installed, failed under `CI=true`.

#[path = "../support/secantus.rs"]
mod secantus;

mod copy;
mod flows;
mod helpers;
mod instances;
mod outage;
