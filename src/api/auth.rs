//! `/open-apis/auth/v3/*`: access tokens for self-built apps.
//!
//! As on the platform, a refused token request is answered with HTTP 200 and
//! a non-zero `code` (the SDKs check `code`), and the token fields sit at the
//! top level of the body, not under `data`.

use axum::extract::State;
use axum::routing::post;
use axum::{Router, response::IntoResponse};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::client::ClientIp;
use super::extract::Json;
use crate::domain::TokenKind;
use crate::domain::guard::ClientKey;
use crate::model::error::{Error, Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/open-apis/auth/v3/tenant_access_token/internal",
            post(tenant_access_token),
        )
        .route(
            "/open-apis/auth/v3/tenant_access_token/internal/",
            post(tenant_access_token),
        )
        .route(
            "/open-apis/auth/v3/app_access_token/internal",
            post(app_access_token),
        )
        .route(
            "/open-apis/auth/v3/app_access_token/internal/",
            post(app_access_token),
        )
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    app_id: String,
    #[serde(default)]
    app_secret: String,
}

fn credentials(body: Result<Json<Credentials>>) -> Result<Credentials> {
    body.map(|Json(c)| c)
        .map_err(|_| Error::TokenParam("invalid param".into()))
}

/// Token requests per client address: each costs a metadata lookup and a
/// secret check before any credential is known, so a stranger's flood is
/// bounded here (keyed by address, not by the app_id the stranger writes).
async fn limit(state: &AppState, ClientIp(ip): ClientIp) -> Result<()> {
    // (The app quotas' limiter, under keys no app_id can take.)
    let key = format!("addr:{}", ClientKey::of(ip));
    state
        .limiter
        .check(&key, "auth.token", false)
        .await
        .inspect_err(|_| state.core.metrics.rate_limit_hit("auth.token"))
}

#[utoipa::path(
    post,
    path = "/open-apis/auth/v3/tenant_access_token/internal",
    tag = "auth",
    request_body = super::openapi::Credentials,
    responses((status = 200, description = "a token, or a refusal with a non-zero code (the platform answers token errors with 200)", body = super::openapi::TenantTokenReply), (status = 429, description = "too many token requests from this client address", body = super::openapi::ErrorEnvelope))
)]
async fn tenant_access_token(
    State(state): State<AppState>,
    client: ClientIp,
    body: Result<Json<Credentials>>,
) -> Result<impl IntoResponse> {
    limit(&state, client).await?;
    let c = credentials(body)?;
    let t = state
        .core
        .issue_token(&c.app_id, &c.app_secret, TokenKind::Tenant)
        .await?;
    Ok(axum::Json(json!({
        "code": 0,
        "msg": "ok",
        "tenant_access_token": t.token,
        "expire": t.expire,
    })))
}

#[utoipa::path(
    post,
    path = "/open-apis/auth/v3/app_access_token/internal",
    tag = "auth",
    request_body = super::openapi::Credentials,
    responses((status = 200, description = "tokens, or a refusal with a non-zero code", body = super::openapi::AppTokenReply), (status = 429, description = "too many token requests from this client address", body = super::openapi::ErrorEnvelope))
)]
async fn app_access_token(
    State(state): State<AppState>,
    client: ClientIp,
    body: Result<Json<Credentials>>,
) -> Result<impl IntoResponse> {
    limit(&state, client).await?;
    let c = credentials(body)?;
    let app = state.core.verify_app(&c.app_id, &c.app_secret).await?;
    let a = state.core.token_for(&app, TokenKind::App).await?;
    let t = state.core.token_for(&app, TokenKind::Tenant).await?;
    Ok(axum::Json(json!({
        "code": 0,
        "msg": "ok",
        "app_access_token": a.token,
        "expire": a.expire,
        "tenant_access_token": t.token,
    })))
}
