//! The external servers facehub's tests run on, started the one way both
//! of their users need:
//!
//! - the integration tests (tests/it, tests/process) start a private
//!   server per test ([`postgres::Postgres::start`],
//!   [`garage::Garage::start`], [`redis::Redis::start`]), which the test
//!   may kill and restart and whose `Drop` stops it and removes its data;
//! - `scripts/test`'s scale-out pass and `scripts/bench-scaleout` start one
//!   PostgreSQL and one Garage cluster for a whole run through the
//!   `facehub-stores` binary ([`postgres::start_detached`],
//!   [`garage::start_detached`]), which leaves them running after it exits
//!   and stops them in a later call ([`postgres::stop`], [`garage::stop`]).
//!   The tests then share them: [`postgres::Postgres::from_env_or_start`]
//!   reads `$TEST_POSTGRES_URL`.
//!
//! How to run each server (versions, users, ports, configuration) lives
//! here only.

pub mod garage;
mod os;
pub mod postgres;
pub mod redis;
