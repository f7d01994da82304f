//! The admin console: a page served at `/admin` and the JSON it calls
//! under `/admin/api/`, behind the administrator password.
//!
//! The session is a random token in an `HttpOnly; SameSite=Strict` cookie
//! scoped to `/admin` (stored hashed); every change must also carry the
//! session's CSRF token in `X-CSRF-Token`, which a cross-site form cannot
//! set. Photos are served through `/admin/api/files/…` to a live session
//! only, and each view is audited.

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AppState;
use super::client::ClientIp;
use super::extract::Json;
use super::facehub::devices::DevicesData;
use super::feishu::envelope::{Empty, Envelope, Refusals};
use crate::domain::audit::{ActorKind, AuditEvent, AuditFilter};
use crate::model::error::{Error, Result};

pub(super) mod tenancy;
pub mod views;

use views::*;

const COOKIE: &str = "facehub_admin";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/", get(page))
        .route("/admin/app.js", get(script))
        .route("/admin/app.css", get(style))
        .route("/admin/api/login", post(login))
        .route("/admin/api/logout", post(logout))
        .route("/admin/api/session", get(session))
        .route(
            "/admin/api/tenants",
            get(tenancy::tenants).post(tenancy::create_tenant),
        )
        .route(
            "/admin/api/tenants/{tenant}/apps",
            get(tenancy::apps).post(tenancy::create_app),
        )
        .route(
            "/admin/api/apps/{app_id}/secret",
            post(tenancy::rotate_secret),
        )
        .route("/admin/api/apps/{app_id}/scopes", put(tenancy::set_scopes))
        .route("/admin/api/tenants/{tenant}/people", get(people))
        .route("/admin/api/tenants/{tenant}/people/import", post(import))
        .route("/admin/api/tenants/{tenant}/people/{user_id}", get(person))
        .route("/admin/api/tenants/{tenant}/devices", get(devices))
        .route("/admin/api/tenants/{tenant}/audit", get(audit))
        .route("/admin/api/files/{file_id}", get(file))
}

/// Static assets, with a policy that allows nothing but this origin.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn page() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("console/index.html"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("console/app.js"),
    )
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("console/app.css"))
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// A request from a logged-in administrator.
pub struct Admin {
    token: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let token = cookie_token(&parts.headers).ok_or(Error::AdminLoginRequired)?;
        let csrf = state
            .core
            .admin_session(&token)
            .await?
            .ok_or(Error::AdminLoginRequired)?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts.headers.get("x-csrf-token").map(HeaderValue::as_bytes);
            let same = sent.is_some_and(|s| {
                use subtle::ConstantTimeEq;
                s.ct_eq(csrf.as_bytes()).into()
            });
            if !same {
                return Err(Error::CsrfRejected);
            }
        }
        Ok(Admin { token })
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AdminLogin)]
pub struct LoginBody {
    #[serde(default)]
    password: String,
}

#[utoipa::path(
    post,
    path = "/admin/api/login",
    tag = "console",
    request_body = LoginBody,
    responses(
        (status = 200, description = "logged in; the session cookie is set", body = Envelope<Csrf>),
        AdminRefusals,
        Refusals
    )
)]
async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> Result<Response> {
    // Guessing is bounded per address and per account by the core's gate.
    let Some(s) = state.core.admin_login(&body.password, client).await? else {
        return Err(Error::AdminLoginRequired);
    };
    let secure = if state.core.config().tls.is_some() || forwarded_https(&headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        s.token,
        crate::domain::admin::SESSION_SECS
    );
    let mut resp = Envelope::success(Csrf { csrf: s.csrf }).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| Error::internal(e.to_string()))?,
    );
    Ok(resp)
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

#[utoipa::path(
    post,
    path = "/admin/api/logout",
    tag = "console",
    responses((status = 200, body = Envelope<Empty>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
async fn logout(State(state): State<AppState>, admin: Admin) -> Result<Response> {
    state.core.admin_logout(&admin.token).await?;
    let mut resp = Envelope::success(Empty {}).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "facehub_admin=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    Ok(resp)
}

/// The CSRF token of the current session (after a reload of the page).
#[utoipa::path(
    get,
    path = "/admin/api/session",
    tag = "console",
    responses((status = 200, body = Envelope<Csrf>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
async fn session(State(state): State<AppState>, admin: Admin) -> Result<Envelope<Csrf>> {
    let csrf = state
        .core
        .admin_session(&admin.token)
        .await?
        .ok_or(Error::AdminLoginRequired)?;
    Ok(Envelope::success(Csrf { csrf }))
}

#[derive(Deserialize)]
struct PeopleQuery {
    q: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/api/tenants/{tenant}/people",
    tag = "console",
    params(
        ("tenant" = String, Path, description = "the tenant's name"),
        ("q" = Option<String>, Query, description = "part of a user_id, name or employee number"),
    ),
    responses((status = 200, body = Envelope<PeoplePage>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
async fn people(
    State(state): State<AppState>,
    _: Admin,
    Path(tenant): Path<String>,
    Query(q): Query<PeopleQuery>,
) -> Result<Envelope<PeoplePage>> {
    let t = state.core.tenant(&tenant).await?;
    let needle = q.q.unwrap_or_default().to_lowercase();
    let all = state.core.people(t.id).await?;
    let matching: Vec<_> = all
        .iter()
        .filter(|p| {
            needle.is_empty()
                || p.user_id.to_lowercase().contains(&needle)
                || p.name.to_lowercase().contains(&needle)
                || p.employee_no
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains(&needle))
        })
        .collect();
    let items = matching
        .iter()
        .take(200)
        .map(|p| PersonSummary {
            employee_no: p.employee_no.clone(),
            name: p.name.clone(),
            user_id: p.user_id.clone(),
        })
        .collect();
    Ok(Envelope::success(PeoplePage {
        items,
        total: matching.len(),
    }))
}

/// A CSV of people (`user_id,name[,employee_no,…]`); the page sends a
/// large file in slices, each with the header row, to show progress.
/// The largest CSV the console imports at once (some 150,000 people).
const IMPORT_MAX_BYTES: usize = 8 * 1024 * 1024;

#[utoipa::path(
    post,
    path = "/admin/api/tenants/{tenant}/people/import",
    tag = "console",
    params(("tenant" = String, Path, description = "the tenant's name")),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = Envelope<ImportOutcome>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
async fn import(
    State(state): State<AppState>,
    _: Admin,
    Path(tenant): Path<String>,
    body: Body,
) -> Result<Envelope<ImportOutcome>> {
    let t = state.core.tenant(&tenant).await?;
    let deadline = std::time::Duration::from_secs(state.core.config().limits.upload_deadline_secs);
    let body = super::extract::bounded_body(body, IMPORT_MAX_BYTES, deadline).await?;
    let r = state.core.import_people(&t, body.as_ref(), |_| {}).await?;
    let rejected = r
        .rejected
        .into_iter()
        .map(|(line, reason)| RejectedLine { line, reason })
        .collect();
    Ok(Envelope::success(ImportOutcome {
        created: r.created,
        rejected,
        unchanged: r.unchanged,
        updated: r.updated,
    }))
}

#[utoipa::path(
    get,
    path = "/admin/api/tenants/{tenant}/people/{user_id}",
    tag = "console",
    params(
        ("tenant" = String, Path, description = "the tenant's name"),
        ("user_id" = String, Path),
    ),
    responses((status = 200, body = Envelope<PersonCard>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
async fn person(
    State(state): State<AppState>,
    _: Admin,
    Path((tenant, user_id)): Path<(String, String)>,
) -> Result<Envelope<PersonCard>> {
    let t = state.core.tenant(&tenant).await?;
    let detail = state
        .core
        .person_detail(t.id, &user_id)
        .await?
        .ok_or_else(|| Error::UserNotFound(user_id.clone()))?;
    let (p, attendance, acs) = (detail.person, detail.attendance, detail.acs);
    let templates = detail
        .templates
        .into_iter()
        .map(|(modality, algorithm, slot, updated_at)| TemplateSummary {
            algorithm,
            modality,
            slot,
            updated_at,
        })
        .collect();
    Ok(Envelope::success(PersonCard {
        acs: acs.map(|a| PersonAcs {
            card: a.card,
            crop_file_id: a.crop_file_id,
            face_box: a.face_box.and_then(|b| serde_json::from_str(&b).ok()),
            face_file_id: a.face_file_id,
        }),
        attendance: attendance.map(|a| PersonFace {
            face_key: a.face_key,
            face_key_open: a.face_key_open,
        }),
        employee_no: p.employee_no,
        name: p.name,
        templates,
        union_id: p.union_id,
        user_id: p.user_id,
        user_type: p.user_type.as_i64(),
    }))
}

#[utoipa::path(
    get,
    path = "/admin/api/tenants/{tenant}/devices",
    tag = "console",
    params(("tenant" = String, Path, description = "the tenant's name")),
    responses((status = 200, body = Envelope<DevicesData>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
async fn devices(
    State(state): State<AppState>,
    _: Admin,
    Path(tenant): Path<String>,
) -> Result<Envelope<DevicesData>> {
    let t = state.core.tenant(&tenant).await?;
    Ok(Envelope::success(DevicesData::of(&state.core, t.id).await?))
}

#[derive(Deserialize)]
struct AuditQuery {
    user_id: Option<String>,
    action: Option<String>,
    after: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/api/tenants/{tenant}/audit",
    tag = "console",
    params(
        ("tenant" = String, Path, description = "the tenant's name"),
        ("user_id" = Option<String>, Query, description = "only records about this person"),
        ("action" = Option<String>, Query, description = "only this action"),
        ("after" = Option<i64>, Query, description = "the id of the last record already shown"),
    ),
    responses((status = 200, body = Envelope<AuditList>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
async fn audit(
    State(state): State<AppState>,
    _: Admin,
    Path(tenant): Path<String>,
    Query(q): Query<AuditQuery>,
) -> Result<Envelope<AuditList>> {
    let t = state.core.tenant(&tenant).await?;
    let filter = AuditFilter {
        subject: q.user_id.filter(|s| !s.is_empty()),
        action: q.action.filter(|s| !s.is_empty()),
        ..AuditFilter::default()
    };
    let items = state
        .core
        .audit_page(t.id, &filter, q.after.unwrap_or(0), 200)
        .await?;
    Ok(Envelope::success(AuditList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// A stored photo, for the administrator's eyes only (audited).
#[utoipa::path(
    get,
    path = "/admin/api/files/{file_id}",
    tag = "console",
    params(("file_id" = String, Path)),
    responses(
        (status = 200, description = "the photo", content_type = "application/octet-stream"),
        AdminRefusals,
        Refusals
    ),
    security(("admin_session" = []))
)]
async fn file(
    State(state): State<AppState>,
    _: Admin,
    Path(file_id): Path<String>,
) -> Result<Response> {
    let not_found = || Error::param(format!("file_id {file_id:?} not found"));
    let id = crate::domain::FileId::parse(&file_id).ok_or_else(not_found)?;
    let (tenant_id, kind) = state.core.file_owner(&id).await?.ok_or_else(not_found)?;
    let f = state
        .core
        .open_file(tenant_id, kind, &id)
        .await?
        .ok_or_else(not_found)?;
    let event = AuditEvent {
        tenant_id,
        actor_kind: ActorKind::Admin,
        actor: "console".into(),
        action: "photo.download",
        subject: f.record.owner.clone(),
        object: Some(f.record.file_id.clone()),
        result: "ok".into(),
        log_id: None,
    };
    // The view is recorded before a byte leaves: unaudited, it is refused.
    let f = state.core.audited(event, Ok(f)).await?;
    let mime = match f.format.name() {
        "png" => "image/png",
        "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "webp" => "image/webp",
        _ => "application/octet-stream",
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        Body::from_stream(f.body.into_stream()),
    )
        .into_response())
}
