//! facehub: a self-hosted store for face photos and biometric templates that
//! speaks the Feishu open-apis and the WeCom device protocol.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod image;
pub mod metrics;
pub mod store;

pub use app::Application;
pub use config::Config;
