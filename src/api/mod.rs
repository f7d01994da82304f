//! The HTTP surfaces. Each module owns its routes; [`router`] merges them
//! under one middleware that sets `X-Tt-Logid`, renders errors in the
//! platform envelope and turns handler panics into 500 envelopes.

pub mod attendance;
pub mod auth;
pub mod extract;
pub mod middleware;
pub mod multipart;
pub mod ratelimit;

use std::sync::Arc;

use axum::Router;

use crate::domain::Core;
use crate::error::Error;

#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub limiter: Arc<ratelimit::RateLimiter>,
}

impl AppState {
    pub fn new(core: Arc<Core>) -> AppState {
        let limiter = ratelimit::RateLimiter::new(core.config.rate_limit_per_second);
        AppState { core, limiter }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(auth::router())
        .merge(attendance::router())
        .fallback(|| async { Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { Error::MethodNotAllowed })
        .layer(axum::middleware::from_fn(middleware::envelope))
        .with_state(state)
}
