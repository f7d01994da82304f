//! The integration tests that run the server in-process (`app::spawn_app`),
//! as one test binary: the helpers compile and the suite links once.
//! tests/process holds the tests that drive the `facehub` binary itself.

mod app;
#[path = "../common/mod.rs"]
mod common;

mod access_records;
mod access_rules;
mod acs;
mod attendance;
mod auth;
mod console;
mod device;
mod early_refusals;
mod face;
mod fuzz_regressions;
mod isolation;
mod lingo;
mod openapi;
mod ops;
mod overload;
mod pass_stores;
mod privacy;
mod sdk_node;
mod sdk_python;
mod user_flows;
mod zk_access;
mod zk_photos;
mod zk_templates;
mod zkteco;
