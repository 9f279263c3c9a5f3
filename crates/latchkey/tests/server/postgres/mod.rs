//! Latchkey on a real PostgreSQL server (`scripts/postgres.sh`): two instances on one
//! database, outages (a cluster of the test's own, stopped and restarted), `store copy` in
//! both directions. Skipped (with a message) without `LATCHKEY_TEST_POSTGRES_URL`, failed
//! under `CI=true`. The black-box suites run on PostgreSQL too, with
//! `LATCHKEY_TEST_STORE=postgres`.

mod copy;
mod helpers;
mod instances;
mod outage;
