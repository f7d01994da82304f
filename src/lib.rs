//! facehub: a self-hosted store for face photos and biometric templates that
//! speaks the Feishu open-apis and the WeCom device protocol.

pub mod api;
#[cfg(test)]
mod architecture;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod durable;
pub mod faults;
pub mod image;
pub mod metrics;
pub mod model;
pub mod quiet;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::Application;
