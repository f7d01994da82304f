//! Operating endpoints: liveness, readiness, metrics.

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::time::{Duration, Instant};
use utoipa::ToSchema;

use super::AppState;
use crate::domain::Core;
use crate::metrics::{HttpLabels, RouteLabels};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

// Fields in alphabetical order, as the bodies always were.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    reason: Option<&'static str>,
    #[schema(value_type = String)]
    status: &'static str,
}

const OK: Health = Health {
    reason: None,
    status: "ok",
};

/// The process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "alive", body = Health)))]
async fn healthz() -> impl IntoResponse {
    axum::Json(OK)
}

/// The metadata store can commit and the blob store answers; 503 otherwise,
/// with the reason.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "ready", body = Health), (status = 503, description = "the metadata store cannot commit or the blob store does not answer", body = Health)))]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.readiness.check(&state.core).await {
        None => axum::Json(OK).into_response(),
        Some(what) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Health {
                reason: Some(what),
                status: "unavailable",
            }),
        )
            .into_response(),
    }
}

/// How long the readiness probe waits for a commit (and then for the blob
/// store): a store that holds a write this long is not serving uploads.
const PROBE_WAIT: Duration = Duration::from_secs(2);
/// A verdict serves the probes of the next second: each costs a commit
/// (an fsync), and `/readyz` needs no credential.
const PROBE_REUSE: Duration = Duration::from_secs(1);

/// The last readiness verdict: `None` when ready, else the reason.
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Option<&'static str>)>>,
}

impl Readiness {
    async fn check(&self, core: &Core) -> Option<&'static str> {
        // One probe at a time; those waiting take its verdict.
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = *last
            && at.elapsed() < PROBE_REUSE
        {
            return verdict;
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        let failed = match tokio::time::timeout(PROBE_WAIT, core.probe_commit(now_ms)).await {
            Err(_) => Some((
                "metadata store cannot commit",
                anyhow::anyhow!("no commit within {PROBE_WAIT:?}"),
            )),
            Ok(Err(e)) => Some(("metadata store cannot commit", e)),
            Ok(Ok(())) => match tokio::time::timeout(PROBE_WAIT, core.probe_blob_store()).await {
                Err(_) => Some((
                    "blob store",
                    anyhow::anyhow!("no answer within {PROBE_WAIT:?}"),
                )),
                Ok(Err(e)) => Some(("blob store", e)),
                Ok(Ok(())) => None,
            },
        };
        let verdict = failed.map(|(what, e)| {
            tracing::warn!(error = format!("{e:#}"), "readiness check failed: {what}");
            what
        });
        *last = Some((Instant::now(), verdict));
        verdict
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.core.metrics();
    m.devices_connected.set(state.core.devices_online() as i64);
    match state.core.sync_backlog().await {
        Ok(n) => {
            m.sync_backlog.set(n);
        }
        Err(e) => tracing::warn!(error = %e, "reading the sync backlog"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

/// Counts every request by route pattern and final status, and times it.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let start = std::time::Instant::now();
    let m = &state.core.metrics();
    let labels = RouteLabels {
        route: route.clone(),
    };
    let req = req.map(|b| {
        Body::new(Counted {
            inner: b,
            counter: m.bytes_in.get_or_create(&labels).clone(),
        })
    });
    let resp = next.run(req).await.map(|b| {
        Body::new(Counted {
            inner: b,
            counter: m.bytes_out.get_or_create(&labels).clone(),
        })
    });
    m.http_seconds
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&HttpLabels {
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

/// A body that counts the bytes passing through it, as they pass (so a
/// streamed upload or download is counted whatever its framing).
struct Counted {
    inner: Body,
    counter: prometheus_client::metrics::counter::Counter,
}

impl http_body::Body for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &poll
            && let Some(data) = frame.data_ref()
        {
            self.counter.inc_by(data.len() as u64);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
