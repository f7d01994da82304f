//! The integration tests that drive the real `facehub` binary as child
//! processes (killed, restarted, several nodes on shared stores) and the
//! harnesses of the external servers they start, as one test binary.
//! tests/it holds the tests that run the server in-process.

#[path = "../common/mod.rs"]
mod common;
mod garage;
mod photos;
mod redis;

mod cli;
mod crash;
mod faults;
mod postgres_harness;
mod scaleout;
mod shared_limits;
mod two_nodes;
