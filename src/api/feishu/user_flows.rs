//! `/open-apis/attendance/v1/user_flows*`: punch records, terminals' and
//! other systems', read and written as the platform's attendance API
//! does (the attendance product's envelope and codes).

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::attendance::CODES;
use super::envelope::{Envelope, Refusals};
use crate::api::AppState;
use crate::api::extract::{Authed, Json, PathParam, Query, endpoint, path_param};
use crate::api::middleware::speaking;
use crate::domain::devices::device_id;
use crate::domain::flows::{FlowDraft, PersonFlow};
use crate::domain::people::EmployeeType;
use crate::model::FlowExtras;
use crate::model::error::{Error, Result};

endpoint!(
    Create,
    "attendance.user_flows.batch_create",
    &["attendance:task"]
);
endpoint!(
    QueryFlows,
    "attendance.user_flows.query",
    &["attendance:task", "attendance:task:readonly"]
);
endpoint!(
    GetFlow,
    "attendance.user_flows.get",
    &["attendance:task", "attendance:task:readonly"]
);
endpoint!(
    Delete,
    "attendance.user_flows.batch_del",
    &["attendance:task"]
);

/// The platform's record type of a terminal's punch: "attendance machine".
const TERMINAL_TYPE: i64 = 5;

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route(
            "/open-apis/attendance/v1/user_flows/batch_create",
            post(batch_create),
        )
        .route("/open-apis/attendance/v1/user_flows/query", post(query))
        .route(
            "/open-apis/attendance/v1/user_flows/batch_del",
            post(batch_del),
        )
        .route(
            "/open-apis/attendance/v1/user_flows/{user_flow_id}",
            get(get_flow),
        );
    speaking(routes, &CODES)
}

#[derive(Deserialize)]
struct FlowQuery {
    employee_type: Option<String>,
}

impl FlowQuery {
    fn kind(&self) -> Result<EmployeeType> {
        EmployeeType::parse(self.employee_type.as_deref().unwrap_or(""))
    }
}

/// Unix seconds as a string (as the platform writes them), or a number.
fn unix_seconds(field: &str, v: Option<&Value>) -> Result<i64> {
    let bad = || Error::param(format!("{field} must be a string of Unix seconds"));
    match v {
        None | Some(Value::Null) => Err(Error::param(format!("{field} is required"))),
        Some(Value::String(s)) => s.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(bad),
        Some(Value::Number(n)) => n.as_i64().filter(|t| *t >= 0).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// A record as sent: everything optional here, so that a missing field is
/// named in the refusal.
#[derive(Deserialize, ToSchema)]
pub struct FlowIn {
    user_id: Option<String>,
    creator_id: Option<String>,
    location_name: Option<String>,
    /// Unix seconds, as a string.
    #[schema(value_type = String)]
    check_time: Option<Value>,
    comment: Option<String>,
    idempotent_id: Option<String>,
    #[serde(flatten)]
    #[schema(inline)]
    extras: FlowExtrasIn,
}

/// The optional fields, as sent (`record_id` and `create_time` are the
/// server's and ignored).
#[derive(Deserialize, ToSchema, Default)]
pub struct FlowExtrasIn {
    longitude: Option<f64>,
    latitude: Option<f64>,
    ssid: Option<String>,
    bssid: Option<String>,
    is_field: Option<bool>,
    is_wifi: Option<bool>,
    #[serde(rename = "type")]
    kind: Option<i64>,
    photo_urls: Option<Vec<String>>,
    device_id: Option<String>,
    check_result: Option<String>,
    external_id: Option<String>,
}

impl FlowIn {
    fn draft(self, i: usize) -> Result<FlowDraft> {
        let at = |f: &str| format!("flow_records[{i}].{f}");
        let required = |v: Option<String>, f: &str| {
            v.filter(|s| !s.is_empty())
                .ok_or_else(|| Error::param(format!("{} is required", at(f))))
        };
        let e = self.extras;
        Ok(FlowDraft {
            user_id: required(self.user_id, "user_id")?,
            creator_id: required(self.creator_id, "creator_id")?,
            location_name: required(self.location_name, "location_name")?,
            check_time: unix_seconds(&at("check_time"), self.check_time.as_ref())?,
            comment: self.comment.unwrap_or_default(),
            idempotent_id: self.idempotent_id,
            extras: FlowExtras {
                longitude: e.longitude,
                latitude: e.latitude,
                ssid: e.ssid,
                bssid: e.bssid,
                is_field: e.is_field,
                is_wifi: e.is_wifi,
                kind: e.kind,
                photo_urls: e.photo_urls,
                device_id: e.device_id,
                check_result: e.check_result,
                external_id: e.external_id,
            },
        })
    }
}

/// A record as the platform answers it.
#[derive(Serialize, ToSchema)]
pub struct UserFlowOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    bssid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check_result: Option<String>,
    /// Unix seconds, as a string.
    check_time: String,
    comment: String,
    /// Unix seconds, as a string.
    create_time: String,
    creator_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_field: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_wifi: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latitude: Option<f64>,
    location_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    longitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    photo_urls: Option<Vec<String>>,
    record_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssid: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<i64>,
    /// In the request's `employee_type`.
    user_id: String,
}

impl UserFlowOut {
    /// A terminal's punch carries its device (`device_id` as
    /// `acs/v1/devices` lists it) and the terminal record type.
    fn of(pf: PersonFlow, kind: EmployeeType) -> UserFlowOut {
        let user_id = pf.user_id(kind);
        let f = pf.flow;
        let e = f.extras;
        let terminal = f.sn.as_deref();
        UserFlowOut {
            bssid: e.bssid,
            check_result: e.check_result,
            check_time: f.check_time.to_string(),
            comment: f.comment,
            create_time: f.created_at.to_string(),
            creator_id: f.creator_id,
            device_id: terminal.map(device_id).or(e.device_id),
            external_id: e.external_id,
            idempotent_id: f.idempotent_id,
            is_field: e.is_field,
            is_wifi: e.is_wifi,
            latitude: e.latitude,
            location_name: f.location_name,
            longitude: e.longitude,
            photo_urls: e.photo_urls,
            record_id: f.record_id,
            ssid: e.ssid,
            kind: if terminal.is_some() {
                Some(TERMINAL_TYPE)
            } else {
                e.kind
            },
            user_id,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    #[serde(default)]
    flow_records: Vec<FlowIn>,
}

#[derive(Serialize, ToSchema)]
pub struct FlowRecords {
    flow_records: Vec<UserFlowOut>,
}

#[utoipa::path(
    post,
    path = "/open-apis/attendance/v1/user_flows/batch_create",
    tag = "attendance",
    params(("employee_type" = String, Query, description = "employee_id or employee_no")),
    request_body(content = CreateBody),
    responses((status = 200, body = Envelope<FlowRecords>), Refusals),
    security(("bearer" = []))
)]
async fn batch_create(
    auth: Authed<Create>,
    State(state): State<AppState>,
    Query(q): Query<FlowQuery>,
    Json(body): Json<CreateBody>,
) -> Result<Envelope<FlowRecords>> {
    let kind = q.kind()?;
    let drafts = body
        .flow_records
        .into_iter()
        .enumerate()
        .map(|(i, f)| f.draft(i))
        .collect::<Result<Vec<_>>>()?;
    let stored = state
        .core
        .create_user_flows(auth.caller.tenant_id, kind, drafts)
        .await?;
    Ok(Envelope::success(FlowRecords {
        flow_records: stored
            .into_iter()
            .map(|f| UserFlowOut::of(f, kind))
            .collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct QueryBody {
    #[serde(default)]
    user_ids: Vec<String>,
    /// Unix seconds, as a string.
    #[schema(value_type = String)]
    check_time_from: Option<Value>,
    /// Unix seconds, as a string.
    #[schema(value_type = String)]
    check_time_to: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct QueryData {
    user_flow_results: Vec<UserFlowOut>,
}

#[utoipa::path(
    post,
    path = "/open-apis/attendance/v1/user_flows/query",
    tag = "attendance",
    params(
        ("employee_type" = String, Query, description = "employee_id or employee_no"),
        ("include_terminated_user" = Option<bool>, Query, description = "accepted; facehub keeps no departed people"),
    ),
    request_body(content = QueryBody),
    responses((status = 200, body = Envelope<QueryData>), Refusals),
    security(("bearer" = []))
)]
async fn query(
    auth: Authed<QueryFlows>,
    State(state): State<AppState>,
    Query(q): Query<FlowQuery>,
    Json(body): Json<QueryBody>,
) -> Result<Envelope<QueryData>> {
    let kind = q.kind()?;
    let from = unix_seconds("check_time_from", body.check_time_from.as_ref())?;
    let to = unix_seconds("check_time_to", body.check_time_to.as_ref())?;
    let found = state
        .core
        .query_user_flows(auth.caller.tenant_id, kind, &body.user_ids, from, to)
        .await?;
    Ok(Envelope::success(QueryData {
        user_flow_results: found
            .into_iter()
            .map(|f| UserFlowOut::of(f, kind))
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/open-apis/attendance/v1/user_flows/{user_flow_id}",
    tag = "attendance",
    params(
        ("user_flow_id" = String, Path, description = "the record_id"),
        ("employee_type" = String, Query, description = "employee_id or employee_no"),
    ),
    responses((status = 200, body = Envelope<UserFlowOut>), Refusals),
    security(("bearer" = []))
)]
async fn get_flow(
    auth: Authed<GetFlow>,
    State(state): State<AppState>,
    id: PathParam,
    Query(q): Query<FlowQuery>,
) -> Result<Envelope<UserFlowOut>> {
    let id = path_param(id, "user_flow_id")?;
    let kind = q.kind()?;
    let found = state.core.user_flow(auth.caller.tenant_id, &id).await?;
    Ok(Envelope::success(UserFlowOut::of(found, kind)))
}

#[derive(Deserialize, ToSchema)]
pub struct DeleteBody {
    #[serde(default)]
    record_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DeleteData {
    fail_record_ids: Vec<String>,
    success_record_ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/open-apis/attendance/v1/user_flows/batch_del",
    tag = "attendance",
    request_body(content = DeleteBody),
    responses((status = 200, body = Envelope<DeleteData>), Refusals),
    security(("bearer" = []))
)]
async fn batch_del(
    auth: Authed<Delete>,
    State(state): State<AppState>,
    Json(body): Json<DeleteBody>,
) -> Result<Envelope<DeleteData>> {
    let (deleted, failed) = state
        .core
        .delete_user_flows(&auth.caller, &body.record_ids)
        .await?;
    let data = DeleteData {
        fail_record_ids: failed,
        success_record_ids: deleted,
    };
    if data.fail_record_ids.is_empty() {
        return Ok(Envelope::success(data));
    }
    // As the platform does: each failure's reason in msg, as a JSON object.
    let reasons: serde_json::Map<String, Value> = data
        .fail_record_ids
        .iter()
        .map(|id| (id.clone(), Value::from("no such record of this tenant")))
        .collect();
    Ok(Envelope::success_saying(
        data,
        Value::Object(reasons).to_string(),
    ))
}
