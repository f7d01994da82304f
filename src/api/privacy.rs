//! `/open-apis/facehub/v1/…` privacy administration (facehub's own
//! extension): erasing a person (`facehub:people`), and reading the audit
//! log of biometric data (`facehub:audit`).

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Authed, Endpoint, Query};
use super::{AppState, success};
use crate::domain::audit::{ActorKind, AuditFilter};
use crate::model::error::{Error, Result};

pub struct Erase;
impl Endpoint for Erase {
    const NAME: &'static str = "facehub.people.erase";
    const SCOPES: &'static [&'static str] = &["facehub:people"];
}

pub struct AuditLogs;
impl Endpoint for AuditLogs {
    const NAME: &'static str = "facehub.audit_logs";
    const SCOPES: &'static [&'static str] = &["facehub:audit"];
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open-apis/facehub/v1/people/{user_id}", delete(erase))
        .route("/open-apis/facehub/v1/audit_logs", get(audit_logs))
}

#[utoipa::path(
    delete,
    path = "/open-apis/facehub/v1/people/{user_id}",
    tag = "facehub",
    params(("user_id" = String, Path)),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::ErasureData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn erase(
    State(state): State<AppState>,
    auth: Authed<Erase>,
    user_id: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<axum::Json<Value>> {
    let Path(user_id) = user_id.map_err(|_| Error::param("user_id is invalid"))?;
    let done = state
        .core
        .erase_person(
            auth.caller.tenant_id,
            &user_id,
            ActorKind::App,
            &auth.caller.app_id,
            auth.caller.log_id.clone(),
        )
        .await?;
    Ok(success(json!({"erasure": done})))
}

#[derive(Deserialize)]
struct AuditQuery {
    page_size: Option<String>,
    page_token: Option<String>,
    user_id: Option<String>,
    action: Option<String>,
    /// Unix seconds, inclusive.
    start_time: Option<String>,
    /// Unix seconds, exclusive.
    end_time: Option<String>,
}

fn seconds(v: Option<&str>, name: &str) -> Result<Option<i64>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|t| (0..=253_402_300_799).contains(t))
                .map(|t| t * 1000)
                .ok_or_else(|| Error::param(format!("{name} must be unix seconds")))
        })
        .transpose()
}

#[utoipa::path(
    get,
    path = "/open-apis/facehub/v1/audit_logs",
    tag = "facehub",
    params(("page_size" = Option<i64>, Query, description = "1 to 500, default 100"), ("page_token" = Option<String>, Query), ("user_id" = Option<String>, Query), ("action" = Option<String>, Query), ("start_time" = Option<i64>, Query, description = "unix seconds, inclusive"), ("end_time" = Option<i64>, Query, description = "unix seconds, exclusive")),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::AuditData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn audit_logs(
    State(state): State<AppState>,
    auth: Authed<AuditLogs>,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Value>> {
    let page_size = match q.page_size.as_deref().filter(|s| !s.is_empty()) {
        None => 100,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| Error::param("page_size must be 1 to 500"))?,
    };
    let after = match q.page_token.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(t) => t
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::param("page_token is invalid"))?,
    };
    let filter = AuditFilter {
        subject: q.user_id.filter(|s| !s.is_empty()),
        action: q.action.filter(|s| !s.is_empty()),
        since_ms: seconds(q.start_time.as_deref(), "start_time")?,
        until_ms: seconds(q.end_time.as_deref(), "end_time")?,
    };
    // One more than asked tells whether there is a next page.
    let mut items = state
        .core
        .audit_page(auth.caller.tenant_id, &filter, after, page_size + 1)
        .await?;
    let has_more = items.len() as i64 > page_size;
    items.truncate(page_size as usize);
    let mut data = json!({"items": items, "has_more": has_more});
    if has_more && let Some(last) = items.last() {
        data["page_token"] = json!(last.id.to_string());
    }
    Ok(success(data))
}
