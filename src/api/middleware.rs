//! The one middleware every request passes through ([`envelope`]), and the
//! layer that makes a surface's routes answer in its codes ([`speaking`]).

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tracing::Instrument;

use super::feishu::envelope::{Codes, PendingError};
use super::linger::{self, Linger};
use crate::model::error::Error;

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

/// Runs `handler`, turning a panic into an internal error (its detail
/// logged, never answered).
async fn catching_panics(handler: impl Future<Output = Response>) -> Response {
    match AssertUnwindSafe(handler).catch_unwind().await {
        Ok(resp) => resp,
        Err(panic) => {
            tracing::error!(panic = panic_message(&*panic), "handler panicked");
            Error::internal("handler panicked").into_response()
        }
    }
}

/// The codes a surface's errors are rendered with, left in the response
/// extensions by [`speaking`].
#[derive(Clone, Copy)]
struct Speaks(&'static Codes);

/// `router` with its errors (and panics) answered in `codes`.
pub fn speaking<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    codes: &'static Codes,
) -> Router<S> {
    router.layer(axum::middleware::from_fn_with_state(codes, speaks))
}

async fn speaks(State(codes): State<&'static Codes>, req: Request, next: Next) -> Response {
    let mut resp = catching_panics(next.run(req)).await;
    resp.extensions_mut().insert(Speaks(codes));
    resp
}

/// Sets the log id, renders errors in the platform envelope (in the codes
/// of the surface that answered; facehub's own for routes outside every
/// Feishu surface), turns panics into 500 envelopes, and closes connections
/// whose request body was refused unread.
pub async fn envelope(mut req: Request, next: Next) -> Response {
    let log_id = LogId::generate();
    let span = tracing::info_span!(
        "request",
        log_id = %log_id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    req.extensions_mut().insert(log_id.clone());
    // A refusal can come before the body is read (bad token, unknown user);
    // hyper then closes the connection. Say so, or a client that reuses
    // connections sends its next request into a closing socket.
    let unread_body_closes = req.version() <= axum::http::Version::HTTP_11
        && (req
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING)
            || req
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != b"0"));
    // Whether the handler reads the body to its end; if not, the
    // connection lingers after the answer (api::linger).
    let linger = req.extensions().get::<Arc<Linger>>().cloned();
    let (body, body_end) = linger::tracked(std::mem::take(req.body_mut()));
    *req.body_mut() = body;
    let start = Instant::now();
    let mut resp = catching_panics(next.run(req))
        .instrument(span.clone())
        .await;
    let _enter = span.enter();
    let refused = resp.extensions().get::<PendingError>().is_some();
    if let Some(PendingError(err)) = resp.extensions_mut().remove::<PendingError>() {
        match &*err {
            Error::Internal(e) => tracing::error!(error = format!("{e:#}"), "internal error"),
            other => tracing::info!(error = %other, "request refused"),
        }
        let codes = resp
            .extensions()
            .get::<Speaks>()
            .map_or(&super::facehub::CODES, |s| s.0);
        resp = codes.to_response(&err, log_id.as_str());
    }
    if let Ok(v) = HeaderValue::from_str(log_id.as_str()) {
        resp.headers_mut().insert("x-tt-logid", v);
    }
    // (The auth surface answers its errors with 200, as the platform does.)
    let unread = unread_body_closes && !body_end.reached();
    if unread_body_closes
        && (unread || refused || resp.status().is_client_error() || resp.status().is_server_error())
    {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
        if unread && let Some(linger) = linger {
            linger.arm();
        }
    }
    tracing::info!(
        status = resp.status().as_u16(),
        elapsed_ms = start.elapsed().as_secs_f64() * 1000.0,
        "served"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::feishu;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn app() -> Router {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        async fn refused() -> Result<&'static str, Error> {
            Err(Error::param("bad thing"))
        }
        let attendance = Router::new()
            .route("/open-apis/attendance/v1/boom", get(boom))
            .route("/open-apis/attendance/v1/refused", get(refused));
        let lingo = Router::new().route("/open-apis/lingo/v1/boom", get(boom));
        let auth = Router::new().route("/open-apis/auth/v3/refused", get(refused));
        Router::new()
            .merge(speaking(attendance, &feishu::attendance::CODES))
            .merge(speaking(lingo, &feishu::lingo::CODES))
            .merge(speaking(auth, &feishu::auth::CODES))
            .route("/elsewhere/boom", get(boom))
            .route("/elsewhere/refused", get(refused))
            .layer(axum::middleware::from_fn(envelope))
    }

    async fn call(path: &str) -> (u16, serde_json::Value, String) {
        let resp = app()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let logid = resp.headers()["x-tt-logid"].to_str().unwrap().to_string();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap(), logid)
    }

    #[tokio::test]
    async fn panic_becomes_500_envelope() {
        let (status, v, logid) = call("/open-apis/attendance/v1/boom").await;
        assert_eq!(status, 500);
        assert_eq!(v["code"], 1225000);
        assert_eq!(v["msg"], "internal server error");
        assert_eq!(v["error"]["log_id"], logid.as_str());
        assert!(!v.to_string().contains("handler bug"));
        let (status, v, _) = call("/open-apis/lingo/v1/boom").await;
        assert_eq!((status, v["code"].as_i64().unwrap()), (500, 2250002));
        assert_eq!(v["msg"], "network anomaly, please try again");
        let (status, v, _) = call("/elsewhere/boom").await;
        assert_eq!((status, v["code"].as_i64().unwrap()), (500, 1225000));
    }

    #[tokio::test]
    async fn errors_take_the_surface_code() {
        let (status, v, _) = call("/open-apis/attendance/v1/refused").await;
        assert_eq!((status, v["code"].as_i64().unwrap()), (400, 1220001));
        let (status, v, _) = call("/open-apis/auth/v3/refused").await;
        assert_eq!((status, v["code"].as_i64().unwrap()), (200, 10003));
        // Outside every Feishu surface: facehub's own codes.
        let (status, v, _) = call("/elsewhere/refused").await;
        assert_eq!((status, v["code"].as_i64().unwrap()), (400, 1220001));
    }

    #[test]
    fn log_ids_look_like_the_platform_s() {
        let a = LogId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str()[..14].bytes().all(|b| b.is_ascii_digit()));
        assert_ne!(a, LogId::generate());
    }
}
