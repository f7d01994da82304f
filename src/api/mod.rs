//! The HTTP surfaces: the Feishu open-apis ([`feishu`]), facehub's own
//! endpoints beside them ([`facehub`]), the WeCom and ZKTeco device
//! protocols ([`wecom`], [`zkteco`]), the admin console and the operating endpoints. Each owns
//! its routes, wire types and error codes; [`router`] merges them under one
//! middleware that sets `X-Tt-Logid`, renders errors in the platform
//! envelope and turns handler panics into 500 envelopes.

pub mod client;
pub mod console;
pub mod extract;
pub mod facehub;
pub mod feishu;
pub mod linger;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod ratelimit;
pub mod wecom;
pub mod zkteco;

use std::sync::Arc;

use axum::Router;

use crate::domain::Core;
use crate::model::error::Error;

#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub limiter: Arc<ratelimit::RateLimiter>,
    /// Bounds the uploads in progress (each holds buffers and a temp file).
    pub uploads: Arc<tokio::sync::Semaphore>,
    /// Device connections that have not yet proved who they are.
    pub device_anonymous: Arc<wecom::admission::Anonymous>,
    /// Commands per terminal (this node's: a terminal talks to one node).
    pub device_commands: Arc<ratelimit::RateLimiter>,
    pub readiness: Arc<ops::Readiness>,
}

impl AppState {
    /// With per-node rate limits.
    pub fn new(core: Arc<Core>) -> AppState {
        let limiter = ratelimit::RateLimiter::new(
            core.config().rate_limit_per_second,
            core.config().rate_limit_per_minute,
        );
        Self::with_limiter(core, limiter)
    }

    pub fn with_limiter(core: Arc<Core>, limiter: Arc<ratelimit::RateLimiter>) -> AppState {
        let uploads = Arc::new(tokio::sync::Semaphore::new(
            core.config().limits.max_concurrent_uploads.max(1),
        ));
        let device_anonymous = Arc::new(wecom::admission::Anonymous::new(&core.config().security));
        let per_terminal = core.config().device.commands_per_second;
        let device_commands =
            ratelimit::RateLimiter::new(per_terminal, per_terminal.saturating_mul(60));
        AppState {
            core,
            limiter,
            uploads,
            device_anonymous,
            device_commands,
            readiness: Arc::default(),
        }
    }

    /// A place for one more upload, or the frequency-limit error (or
    /// "storage full" below the free-space floor).
    pub fn upload_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        self.core.check_free_space()?;
        self.uploads.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!("refusing an upload: too many in progress");
            self.core.metrics().rate_limit_hit("uploads");
            Error::RateLimited {
                limit: self.core.config().rate_limit_per_second,
                reset_secs: 1,
            }
        })
    }
}

pub fn router(state: AppState) -> Router {
    // Every request body must keep moving; the upload handler has its own,
    // more specific idle check, so this outer one is looser.
    let idle = std::time::Duration::from_secs(state.core.config().limits.body_idle_timeout_secs);
    Router::new()
        .merge(feishu::router())
        .merge(facehub::router())
        .merge(wecom::router())
        .merge(zkteco::router())
        .merge(openapi::router())
        .merge(console::router())
        .merge(ops::router())
        .fallback(|| async { Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(idle * 2))
        .layer(axum::middleware::from_fn(middleware::envelope))
        // Outermost: sees the status the envelope settled on.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::track,
        ))
        .with_state(state)
}
