//! `/open-apis/auth/v3/*`: access tokens for self-built apps.
//!
//! As on the platform, a refused token request is answered with HTTP 200 and
//! a non-zero `code` (the SDKs check `code`), and the token fields sit at the
//! top level of the body, not under `data`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::envelope::{Codes, ErrorEnvelope};
use crate::api::AppState;
use crate::api::client::ClientIp;
use crate::api::extract::Json;
use crate::api::middleware::speaking;
use crate::domain::TokenKind;
use crate::domain::guard::ClientKey;
use crate::model::error::{Error, Result};

pub const CODES: Codes = Codes {
    param: (StatusCode::OK, 10003, "invalid param"),
    internal: (10013, "internal server error"),
    user_not_found: (StatusCode::OK, 10003, None),
};

pub fn router() -> Router<AppState> {
    let routes = Router::new()
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
        );
    speaking(routes, &CODES)
}

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    #[serde(default)]
    #[schema(required = true)]
    app_id: String,
    #[serde(default)]
    #[schema(required = true)]
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
        .inspect_err(|_| state.core.metrics().rate_limit_hit("auth.token"))
}

// A refused token request is answered with 200 and this body's `code`, but
// without the token fields, so the schemas do not require them.

/// Token fields sit at the top level, as on the platform.
#[derive(Serialize, ToSchema)]
pub struct TenantTokenReply {
    code: i64,
    /// Seconds left.
    #[schema(required = false)]
    expire: i64,
    #[schema(value_type = String)]
    msg: &'static str,
    #[schema(required = false)]
    tenant_access_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct AppTokenReply {
    #[schema(required = false)]
    app_access_token: String,
    code: i64,
    /// Seconds left (of the app access token).
    #[schema(required = false)]
    expire: i64,
    #[schema(value_type = String)]
    msg: &'static str,
    #[schema(required = false)]
    tenant_access_token: String,
}

#[utoipa::path(
    post,
    path = "/open-apis/auth/v3/tenant_access_token/internal",
    tag = "auth",
    request_body = Credentials,
    responses((status = 200, description = "a token, or a refusal with a non-zero code (the platform answers token errors with 200)", body = TenantTokenReply), (status = 429, description = "too many token requests from this client address", body = ErrorEnvelope))
)]
async fn tenant_access_token(
    State(state): State<AppState>,
    client: ClientIp,
    body: Result<Json<Credentials>>,
) -> Result<axum::Json<TenantTokenReply>> {
    limit(&state, client).await?;
    let c = credentials(body)?;
    let t = state
        .core
        .issue_token(&c.app_id, &c.app_secret, TokenKind::Tenant)
        .await?;
    Ok(axum::Json(TenantTokenReply {
        code: 0,
        expire: t.expire,
        msg: "ok",
        tenant_access_token: t.token,
    }))
}

#[utoipa::path(
    post,
    path = "/open-apis/auth/v3/app_access_token/internal",
    tag = "auth",
    request_body = Credentials,
    responses((status = 200, description = "tokens, or a refusal with a non-zero code", body = AppTokenReply), (status = 429, description = "too many token requests from this client address", body = ErrorEnvelope))
)]
async fn app_access_token(
    State(state): State<AppState>,
    client: ClientIp,
    body: Result<Json<Credentials>>,
) -> Result<axum::Json<AppTokenReply>> {
    limit(&state, client).await?;
    let c = credentials(body)?;
    let app = state.core.verify_app(&c.app_id, &c.app_secret).await?;
    let a = state.core.token_for(&app, TokenKind::App).await?;
    let t = state.core.token_for(&app, TokenKind::Tenant).await?;
    Ok(axum::Json(AppTokenReply {
        app_access_token: a.token,
        code: 0,
        expire: a.expire,
        msg: "ok",
        tenant_access_token: t.token,
    }))
}
