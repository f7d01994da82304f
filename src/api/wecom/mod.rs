//! The WeCom device protocol: one WebSocket per terminal, one JSON object
//! per text frame. Requests are `{cmd, headers:{req_id}, body}`; replies
//! echo `req_id` with `errcode`/`errmsg` and carry no `cmd`; pushes are
//! `push_*` frames. See docs/device-protocol.md for the choices the
//! platform leaves open.
//!
//! - [`connection`]: the upgrade, admission stages, read loop and writer;
//! - [`admission`]: what a connection may do before it proves who it is;
//! - [`dispatch`]: `cmd` → typed request → core call → reply;
//! - [`frames`]: every frame's JSON, read into and written from the core's
//!   typed values (`domain::devices::messages`), and the error codes.

pub mod admission;
mod connection;
mod dispatch;
pub mod frames;

use axum::Router;
use axum::routing::get;

pub use frames::{Frame, FrameError, device_code, error_frame, parse_frame};

use super::AppState;

pub fn router() -> Router<AppState> {
    // The platform's URL is the host root; firmware seen in the wild dials
    // `/websocket`.
    Router::new()
        .route("/", get(connection::upgrade))
        .route("/websocket", get(connection::upgrade))
}
