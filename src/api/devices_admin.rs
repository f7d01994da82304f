//! `/open-apis/facehub/v1/…`: the tenant's terminals over HTTP, for the
//! company's own tooling (facehub's extension; the platform manages devices
//! in its admin console). Tenant tokens with the `facehub:device` scope.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{Authed, Endpoint, Json, Query};
use super::{AppState, success};
use crate::domain::devices::Enrolment;
use crate::model::error::{Error, Result};

macro_rules! endpoint {
    ($name:ident, $label:literal) => {
        pub struct $name;
        impl Endpoint for $name {
            const NAME: &'static str = $label;
            const SCOPES: &'static [&'static str] = &["facehub:device"];
        }
    };
}
endpoint!(Devices, "facehub.devices");
endpoint!(Enrol, "facehub.device_enrolments");
endpoint!(Checkins, "facehub.checkins");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/open-apis/facehub/v1/devices", get(list))
        .route("/open-apis/facehub/v1/devices/{sn}/bind", post(bind))
        .route("/open-apis/facehub/v1/devices/{sn}/unbind", post(unbind))
        .route("/open-apis/facehub/v1/device_enrolments", post(start))
        .route(
            "/open-apis/facehub/v1/device_enrolments/{oper_id}",
            get(show).delete(cancel),
        )
        .route("/open-apis/facehub/v1/checkins", get(checkins))
}

fn enrolment_json(e: &Enrolment) -> Value {
    json!({
        "oper_id": e.oper_id, "sn": e.sn, "kind": e.kind, "status": e.status,
        "errcode": e.errcode, "errmsg": e.errmsg,
        "created_at": e.created_at, "finished_at": e.finished_at,
    })
}

#[utoipa::path(
    get,
    path = "/open-apis/facehub/v1/devices",
    tag = "facehub",
    responses((status = 200, body = super::openapi::Envelope<super::openapi::DevicesData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn list(State(state): State<AppState>, auth: Authed<Devices>) -> Result<axum::Json<Value>> {
    let tenant_id = auth.caller.tenant_id;
    let version = state.core.perm_version(tenant_id).await?;
    let items: Vec<Value> = state
        .core
        .devices(tenant_id)
        .await?
        .iter()
        .map(|d| {
            json!({
                "sn": d.sn, "bound": d.bound, "online": state.core.hub.is_online(&d.sn),
                "firmware_version": d.firmware_version,
                "fa_algorithms": d.fa_algorithms, "fp_algorithms": d.fp_algorithms,
                "last_seen": d.last_seen, "seen_version": d.seen_version,
                "backlog": (version - d.seen_version).max(0),
            })
        })
        .collect();
    Ok(success(json!({"perm_version": version, "items": items})))
}

type SnPath = std::result::Result<Path<String>, axum::extract::rejection::PathRejection>;

#[utoipa::path(
    post,
    path = "/open-apis/facehub/v1/devices/{sn}/bind",
    tag = "facehub",
    params(("sn" = String, Path)),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::ChangedData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn bind(
    State(state): State<AppState>,
    auth: Authed<Devices>,
    sn: SnPath,
) -> Result<axum::Json<Value>> {
    let Path(sn) = sn.map_err(|_| Error::param("sn is invalid"))?;
    let changed = state.core.bind_device(auth.caller.tenant_id, &sn).await?;
    Ok(success(json!({"changed": changed})))
}

#[utoipa::path(
    post,
    path = "/open-apis/facehub/v1/devices/{sn}/unbind",
    tag = "facehub",
    params(("sn" = String, Path)),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::ChangedData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn unbind(
    State(state): State<AppState>,
    auth: Authed<Devices>,
    sn: SnPath,
) -> Result<axum::Json<Value>> {
    let Path(sn) = sn.map_err(|_| Error::param("sn is invalid"))?;
    let changed = state.core.unbind_device(auth.caller.tenant_id, &sn).await?;
    Ok(success(json!({"changed": changed})))
}

#[derive(Deserialize)]
struct StartBody {
    sn: String,
    user_id: String,
    /// `fa`, `fp` or `photo`.
    kind: String,
}

#[utoipa::path(
    post,
    path = "/open-apis/facehub/v1/device_enrolments",
    tag = "facehub",
    request_body(content = super::openapi::EnrolmentStart),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::EnrolmentData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn start(
    State(state): State<AppState>,
    auth: Authed<Enrol>,
    Json(body): Json<StartBody>,
) -> Result<axum::Json<Value>> {
    let e = state
        .core
        .start_enrolment(auth.caller.tenant_id, &body.sn, &body.user_id, &body.kind)
        .await?;
    Ok(success(json!({"enrolment": enrolment_json(&e)})))
}

#[utoipa::path(
    get,
    path = "/open-apis/facehub/v1/device_enrolments/{oper_id}",
    tag = "facehub",
    params(("oper_id" = String, Path)),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::EnrolmentData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn show(
    State(state): State<AppState>,
    auth: Authed<Enrol>,
    Path(oper_id): Path<String>,
) -> Result<axum::Json<Value>> {
    let e = state
        .core
        .enrolment(auth.caller.tenant_id, &oper_id)
        .await?;
    Ok(success(json!({"enrolment": enrolment_json(&e)})))
}

#[utoipa::path(
    delete,
    path = "/open-apis/facehub/v1/device_enrolments/{oper_id}",
    tag = "facehub",
    params(("oper_id" = String, Path)),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::EnrolmentData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn cancel(
    State(state): State<AppState>,
    auth: Authed<Enrol>,
    Path(oper_id): Path<String>,
) -> Result<axum::Json<Value>> {
    let e = state
        .core
        .cancel_enrolment(auth.caller.tenant_id, &oper_id)
        .await?;
    Ok(success(json!({"enrolment": enrolment_json(&e)})))
}

#[derive(Deserialize)]
struct CheckinQuery {
    user_id: String,
    day: String,
}

#[utoipa::path(
    get,
    path = "/open-apis/facehub/v1/checkins",
    tag = "facehub",
    params(("user_id" = String, Query), ("day" = String, Query, description = "YYYY-MM-DD (UTC)")),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::CheckinsData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn checkins(
    State(state): State<AppState>,
    auth: Authed<Checkins>,
    Query(q): Query<CheckinQuery>,
) -> Result<axum::Json<Value>> {
    let items: Vec<Value> = state
        .core
        .checkins_on(auth.caller.tenant_id, &q.user_id, &q.day)
        .await?
        .into_iter()
        .map(|(sn, r)| json!({"sn": sn, "timestamp": r.timestamp, "pass_type": r.pass_type, "pass_method": r.pass_method}))
        .collect();
    Ok(success(json!({"items": items})))
}
