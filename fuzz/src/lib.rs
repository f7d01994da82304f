//! Harnesses and properties of the fuzz targets, one module per target.
//! tests/it/fuzz_regressions.rs compiles the same files to replay the inputs
//! kept in tests/fixtures/fuzz/ under plain `cargo test`.

pub mod device_frame;
pub mod push_templates;
pub mod push_text;
pub mod upload;
