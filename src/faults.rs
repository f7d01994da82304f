//! Fault injection for the fault suite (tests/process/faults.rs): named
//! points where a debug build fails with EIO on demand, configured at start
//! by the `FAILPOINTS` environment variable in the `fail` crate's syntax,
//! e.g. `FAILPOINTS='blob.write=5%return;audit.write=10%return'`. Release
//! builds compile every point out, so no setting can make them fail.
//!
//! The points: `blob.write` and `blob.finish` (a blob's bytes, either
//! store), `audit.write` (an audit record, in a write's own transaction or
//! the group commit), and `blob.part`, before each part of an S3
//! multipart upload (where tests/process/scaleout.rs stops an upload to
//! lose bucket nodes under it).

/// Returns `Err(EIO)` from the enclosing function when the point `$name`
/// is configured to `return`.
macro_rules! inject_eio {
    ($name:literal) => {
        #[cfg(debug_assertions)]
        fail::fail_point!($name, |_| Err(std::io::Error::from_raw_os_error(5).into()));
    };
}
pub(crate) use inject_eio;

/// Reads `FAILPOINTS` (debug builds; a no-op in release builds). The
/// points stay configured for the life of the process.
pub fn setup() {
    #[cfg(debug_assertions)]
    std::mem::forget(fail::FailScenario::setup());
}
