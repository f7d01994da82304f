//! The integration tests that drive the real `facehub` binary as child
//! processes (killed, restarted, several nodes on shared stores), as one test
//! binary; the external servers they start are facehub-testkit's.
//! tests/it holds the tests that run the server in-process.

mod admin;
#[path = "../common/mod.rs"]
mod common;
mod photos;

use facehub_testkit::{garage, redis};

mod cli;
mod crash;
mod faults;
mod postgres_harness;
mod scaleout;
mod shared_limits;
mod two_nodes;
