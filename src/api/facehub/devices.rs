//! `/open-apis/facehub/v1/…`: the tenant's terminals over HTTP, for the
//! company's own tooling (facehub's extension; the platform manages devices
//! in its admin console). Tenant tokens with the `facehub:device` scope.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::extract::{Authed, Json, PathParam, Query, endpoint, path_param};
use crate::api::feishu::envelope::{Envelope, Refusals};
use crate::domain::Core;
use crate::model::error::Result;

endpoint!(Devices, "facehub.devices", &["facehub:device"]);
endpoint!(Enrol, "facehub.device_enrolments", &["facehub:device"]);
endpoint!(Checkins, "facehub.checkins", &["facehub:device"]);

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

#[derive(Serialize, ToSchema)]
pub struct DevicesData {
    items: Vec<DeviceItem>,
    perm_version: i64,
}

impl DevicesData {
    /// A tenant's terminals with their sync backlog and whether they are
    /// online, as they are now: the listing of this API and of the console.
    pub(crate) async fn of(core: &Core, tenant_id: i64) -> Result<DevicesData> {
        let version = core.perm_version(tenant_id).await?;
        let items = core
            .devices(tenant_id)
            .await?
            .into_iter()
            .map(|d| {
                let now = core.presence(&d);
                DeviceItem {
                    backlog: (version - now.seen_version).max(0),
                    bound: d.bound,
                    fa_algorithms: d.fa_algorithms,
                    firmware_version: d.firmware_version,
                    fp_algorithms: d.fp_algorithms,
                    last_seen: now.last_seen,
                    online: now.online,
                    protocol: d.protocol.as_str(),
                    seen_version: now.seen_version,
                    sn: d.sn,
                }
            })
            .collect();
        Ok(DevicesData {
            items,
            perm_version: version,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeviceItem {
    /// Changes the device has not been sent yet.
    backlog: i64,
    bound: bool,
    fa_algorithms: Vec<String>,
    firmware_version: Option<String>,
    fp_algorithms: Vec<String>,
    last_seen: Option<i64>,
    online: bool,
    /// The device protocol it speaks: `wecom` or `zkteco`.
    protocol: &'static str,
    seen_version: i64,
    sn: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChangedData {
    changed: bool,
}

#[derive(Serialize, ToSchema)]
pub struct EnrolmentData {
    enrolment: Enrolment,
}

#[derive(Serialize, ToSchema)]
pub struct Enrolment {
    created_at: i64,
    errcode: Option<i64>,
    errmsg: Option<String>,
    finished_at: Option<i64>,
    /// `fa`, `fp` or `photo`.
    kind: String,
    oper_id: String,
    sn: String,
    /// queued, sent, succeeded, failed, timed_out or cancelled.
    status: String,
}

impl From<crate::domain::devices::Enrolment> for EnrolmentData {
    fn from(e: crate::domain::devices::Enrolment) -> EnrolmentData {
        EnrolmentData {
            enrolment: e.into(),
        }
    }
}

/// Also what `facehub device enrol` and `device enrolment` print.
impl From<crate::domain::devices::Enrolment> for Enrolment {
    fn from(e: crate::domain::devices::Enrolment) -> Enrolment {
        Enrolment {
            created_at: e.created_at,
            errcode: e.errcode,
            errmsg: e.errmsg,
            finished_at: e.finished_at,
            kind: e.kind,
            oper_id: e.oper_id,
            sn: e.sn,
            status: e.status,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CheckinsData {
    items: Vec<Checkin>,
}

#[derive(Serialize, ToSchema)]
pub struct Checkin {
    pass_method: Option<i64>,
    pass_type: Option<i64>,
    sn: String,
    timestamp: i64,
}

#[utoipa::path(
    get,
    path = "/open-apis/facehub/v1/devices",
    tag = "facehub",
    responses((status = 200, body = Envelope<DevicesData>), Refusals),
    security(("bearer" = []))
)]
async fn list(
    State(state): State<AppState>,
    auth: Authed<Devices>,
) -> Result<Envelope<DevicesData>> {
    Ok(Envelope::success(
        DevicesData::of(&state.core, auth.caller.tenant_id).await?,
    ))
}

#[utoipa::path(
    post,
    path = "/open-apis/facehub/v1/devices/{sn}/bind",
    tag = "facehub",
    params(("sn" = String, Path)),
    responses((status = 200, body = Envelope<ChangedData>), Refusals),
    security(("bearer" = []))
)]
async fn bind(
    State(state): State<AppState>,
    auth: Authed<Devices>,
    sn: PathParam,
) -> Result<Envelope<ChangedData>> {
    let sn = path_param(sn, "sn")?;
    let changed = state.core.bind_device(auth.caller.tenant_id, &sn).await?;
    Ok(Envelope::success(ChangedData { changed }))
}

#[utoipa::path(
    post,
    path = "/open-apis/facehub/v1/devices/{sn}/unbind",
    tag = "facehub",
    params(("sn" = String, Path)),
    responses((status = 200, body = Envelope<ChangedData>), Refusals),
    security(("bearer" = []))
)]
async fn unbind(
    State(state): State<AppState>,
    auth: Authed<Devices>,
    sn: PathParam,
) -> Result<Envelope<ChangedData>> {
    let sn = path_param(sn, "sn")?;
    let changed = state.core.unbind_device(auth.caller.tenant_id, &sn).await?;
    Ok(Envelope::success(ChangedData { changed }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = EnrolmentStart)]
pub struct StartBody {
    sn: String,
    user_id: String,
    /// `fa`, `fp` or `photo`.
    kind: String,
}

#[utoipa::path(
    post,
    path = "/open-apis/facehub/v1/device_enrolments",
    tag = "facehub",
    request_body(content = StartBody),
    responses((status = 200, body = Envelope<EnrolmentData>), Refusals),
    security(("bearer" = []))
)]
async fn start(
    State(state): State<AppState>,
    auth: Authed<Enrol>,
    Json(body): Json<StartBody>,
) -> Result<Envelope<EnrolmentData>> {
    let e = state
        .core
        .start_enrolment(auth.caller.tenant_id, &body.sn, &body.user_id, &body.kind)
        .await?;
    Ok(Envelope::success(e.into()))
}

#[utoipa::path(
    get,
    path = "/open-apis/facehub/v1/device_enrolments/{oper_id}",
    tag = "facehub",
    params(("oper_id" = String, Path)),
    responses((status = 200, body = Envelope<EnrolmentData>), Refusals),
    security(("bearer" = []))
)]
async fn show(
    State(state): State<AppState>,
    auth: Authed<Enrol>,
    Path(oper_id): Path<String>,
) -> Result<Envelope<EnrolmentData>> {
    let e = state
        .core
        .enrolment(auth.caller.tenant_id, &oper_id)
        .await?;
    Ok(Envelope::success(e.into()))
}

#[utoipa::path(
    delete,
    path = "/open-apis/facehub/v1/device_enrolments/{oper_id}",
    tag = "facehub",
    params(("oper_id" = String, Path)),
    responses((status = 200, body = Envelope<EnrolmentData>), Refusals),
    security(("bearer" = []))
)]
async fn cancel(
    State(state): State<AppState>,
    auth: Authed<Enrol>,
    Path(oper_id): Path<String>,
) -> Result<Envelope<EnrolmentData>> {
    let e = state
        .core
        .cancel_enrolment(auth.caller.tenant_id, &oper_id)
        .await?;
    Ok(Envelope::success(e.into()))
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
    responses((status = 200, body = Envelope<CheckinsData>), Refusals),
    security(("bearer" = []))
)]
async fn checkins(
    State(state): State<AppState>,
    auth: Authed<Checkins>,
    Query(q): Query<CheckinQuery>,
) -> Result<Envelope<CheckinsData>> {
    let items = state
        .core
        .checkins_on(auth.caller.tenant_id, &q.user_id, &q.day)
        .await?
        .into_iter()
        .map(|(sn, r)| Checkin {
            pass_method: r.pass_method,
            pass_type: r.pass_type,
            sn,
            timestamp: r.timestamp,
        })
        .collect();
    Ok(Envelope::success(CheckinsData { items }))
}
