//! The one middleware every request passes through.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;
use tracing::Instrument;

use crate::error::{Error, PendingError, Surface};

/// The request's log id, as the platform's `X-Tt-Logid`: a UTC timestamp
/// followed by random hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogId(String);

impl LogId {
    pub fn generate() -> LogId {
        let ts = chrono::Utc::now().format("%Y%m%d%H%M%S");
        let rand: [u8; 9] = rand::random();
        LogId(format!("{ts}{}", hex::encode_upper(rand)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic")
}

pub async fn envelope(mut req: Request, next: Next) -> Response {
    let log_id = LogId::generate();
    let surface = Surface::of_path(req.uri().path());
    let span = tracing::info_span!(
        "request",
        log_id = %log_id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    req.extensions_mut().insert(log_id.clone());
    let start = Instant::now();
    let result = AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let _enter = span.enter();
    let mut resp = match result {
        Ok(resp) => resp,
        Err(panic) => {
            tracing::error!(panic = panic_message(&*panic), "handler panicked");
            Error::internal("handler panicked").to_response(surface, log_id.as_str())
        }
    };
    if let Some(PendingError(err)) = resp.extensions_mut().remove::<PendingError>() {
        match &*err {
            Error::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            other => tracing::info!(error = %other, "request refused"),
        }
        resp = err.to_response(surface, log_id.as_str());
    }
    if let Ok(v) = HeaderValue::from_str(log_id.as_str()) {
        resp.headers_mut().insert("x-tt-logid", v);
    }
    tracing::info!(
        status = resp.status().as_u16(),
        elapsed_ms = start.elapsed().as_secs_f64() * 1000.0,
        "served"
    );
    resp
}
