//! `/open-apis/facehub/v1/…` privacy administration (facehub's own
//! extension): erasing a person (`facehub:people`), and reading the audit
//! log of biometric data (`facehub:audit`).

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::extract::{Authed, PathParam, Query, endpoint, page_size, path_param};
use crate::api::feishu::envelope::{Envelope, Refusals};
use crate::domain::audit::{ActorKind, AuditFilter};
use crate::model::error::{Error, Result};

endpoint!(Erase, "facehub.people.erase", &["facehub:people"]);

endpoint!(AuditLogs, "facehub.audit_logs", &["facehub:audit"]);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open-apis/facehub/v1/people/{user_id}", delete(erase))
        .route("/open-apis/facehub/v1/audit_logs", get(audit_logs))
}

#[derive(Serialize, ToSchema)]
pub struct ErasureData {
    erasure: Erasure,
}

#[derive(Serialize, ToSchema)]
pub struct Erasure {
    /// Photos and crops removed (metadata and blobs).
    files: u64,
    /// Whether the database's write-ahead log could be emptied at once.
    log_truncated: bool,
    templates: u64,
    user_id: String,
}

/// Also what `facehub person erase --json` prints.
impl From<crate::domain::erasure::Erasure> for Erasure {
    fn from(done: crate::domain::erasure::Erasure) -> Erasure {
        Erasure {
            files: done.files as u64,
            log_truncated: done.log_truncated,
            templates: done.templates,
            user_id: done.user_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditData {
    has_more: bool,
    items: Vec<AuditRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditRecord {
    action: String,
    actor: String,
    /// app, user, device or admin.
    actor_kind: String,
    at_ms: i64,
    id: i64,
    log_id: Option<String>,
    object: Option<String>,
    result: String,
    subject: Option<String>,
}

/// Also what the console's audit page and `facehub audit list --json` show.
impl From<crate::model::audit::AuditRecord> for AuditRecord {
    fn from(r: crate::model::audit::AuditRecord) -> AuditRecord {
        AuditRecord {
            action: r.action,
            actor: r.actor,
            actor_kind: r.actor_kind,
            at_ms: r.at_ms,
            id: r.id,
            log_id: r.log_id,
            object: r.object,
            result: r.result,
            subject: r.subject,
        }
    }
}

#[utoipa::path(
    delete,
    path = "/open-apis/facehub/v1/people/{user_id}",
    tag = "facehub",
    params(("user_id" = String, Path)),
    responses((status = 200, body = Envelope<ErasureData>), Refusals),
    security(("bearer" = []))
)]
async fn erase(
    State(state): State<AppState>,
    auth: Authed<Erase>,
    user_id: PathParam,
) -> Result<Envelope<ErasureData>> {
    let user_id = path_param(user_id, "user_id")?;
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
    Ok(Envelope::success(ErasureData {
        erasure: done.into(),
    }))
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
    responses((status = 200, body = Envelope<AuditData>), Refusals),
    security(("bearer" = []))
)]
async fn audit_logs(
    State(state): State<AppState>,
    auth: Authed<AuditLogs>,
    Query(q): Query<AuditQuery>,
) -> Result<Envelope<AuditData>> {
    let refusal = "page_size must be 1 to 500";
    let page_size = page_size(q.page_size.as_deref(), 100, 500, refusal)?;
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
    let page_token = items
        .last()
        .filter(|_| has_more)
        .map(|last| last.id.to_string());
    Ok(Envelope::success(AuditData {
        has_more,
        items: items.into_iter().map(AuditRecord::from).collect(),
        page_token,
    }))
}
