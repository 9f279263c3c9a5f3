//! Latchkey on MongoDB: a SecantusDB server per test (key flows, two instances, outages,
//! `store copy`). Skipped (with a message) when SecantusDB is not installed, failed under
//! `CI=true`. These tests bring their own server, so they are not repeated per backend.

mod copy;
mod flows;
mod helpers;
mod instances;
mod outage;
