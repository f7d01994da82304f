//! `/open-apis/acs/v1/rule_external*`: access rules, who may open which
//! terminal and when, and which rules bind a terminal.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::acs::CODES;
use super::envelope::{Empty, Envelope, Refusals};
use crate::api::AppState;
use crate::api::extract::{Authed, Json, Query, endpoint};
use crate::api::middleware::speaking;
use crate::domain::access_rules::{RuleDraft, RuleOut};
use crate::domain::acs::IdType;
use crate::domain::auth::TokenTypes;
use crate::model::DayTime;
use crate::model::error::{Error, Result};

const WRITE: &[&str] = &["acs:rule_external"];
const READ: &[&str] = &["acs:rule_external", "acs:rule_external:readonly"];
// The Python SDK sends a user access token to these calls, the Node SDK a
// tenant one unless told otherwise: both are taken.
const TOKENS: TokenTypes = TokenTypes::TENANT_OR_USER;
endpoint!(Put, "acs.rule_external.create", WRITE, TOKENS);
endpoint!(Get, "acs.rule_external.get", READ, TOKENS);
endpoint!(Delete, "acs.rule_external.delete", WRITE, TOKENS);
endpoint!(Bind, "acs.rule_external.device_bind", WRITE, TOKENS);

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route(
            "/open-apis/acs/v1/rule_external",
            post(put_rule).get(get_rules).delete(delete_rule),
        )
        .route(
            "/open-apis/acs/v1/rule_external/device_bind",
            post(device_bind),
        );
    speaking(routes, &CODES)
}

/// An id as SDKs send it: the Node SDK types ids as strings, the Python
/// SDK as integers (so a JSON number when given one).
#[derive(Deserialize, ToSchema, Clone)]
#[serde(untagged)]
pub enum Id {
    Text(String),
    Int(u64),
}

impl Id {
    pub(super) fn text(self) -> String {
        match self {
            Id::Text(s) => s,
            Id::Int(n) => n.to_string(),
        }
    }
}

/// A number as SDKs send it: a JSON number, or a string of one.
#[derive(Deserialize, ToSchema, Clone)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Text(String),
}

impl Number {
    fn get(&self, field: &str) -> Result<i64> {
        match self {
            Number::Int(n) => Ok(*n),
            Number::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| Error::param(format!("{field} {s:?} is not an integer"))),
        }
    }
}

fn number(n: &Option<Number>, field: &str) -> Result<Option<i64>> {
    n.as_ref().map(|n| n.get(field)).transpose()
}

#[derive(Deserialize, ToSchema)]
pub struct PutBody {
    rule: Option<RuleIn>,
}

/// A rule as sent; `id`, `user_count` and `visitor_count` are the
/// server's and ignored.
#[derive(Deserialize, ToSchema)]
pub struct RuleIn {
    name: Option<String>,
    devices: Option<Vec<DeviceRef>>,
    users: Option<Vec<UserRef>>,
    visitors: Option<Vec<UserRef>>,
    remind_face: Option<bool>,
    opening_time: Option<OpeningIn>,
    is_temp: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
pub struct DeviceRef {
    id: Option<Id>,
}

/// A person in a rule: `user_id` is what counts (a visitor's is its
/// `visitor_id`); the rest is the platform's display and ignored.
#[derive(Deserialize, ToSchema)]
pub struct UserRef {
    user_id: Option<Id>,
}

#[derive(Deserialize, ToSchema)]
pub struct OpeningIn {
    valid_day: Option<ValidDayIn>,
    weekdays: Option<Vec<Number>>,
    day_times: Option<Vec<DayTimeIn>>,
}

#[derive(Deserialize, ToSchema)]
pub struct ValidDayIn {
    start_day: Option<Number>,
    end_day: Option<Number>,
}

#[derive(Deserialize, ToSchema)]
pub struct DayTimeIn {
    start_hhmm: Option<Number>,
    end_hhmm: Option<Number>,
}

impl RuleIn {
    fn draft(self) -> Result<RuleDraft> {
        let ids = |list: Option<Vec<UserRef>>, field: &str| -> Result<Option<Vec<String>>> {
            list.map(|l| {
                l.into_iter()
                    .enumerate()
                    .map(|(i, u)| {
                        u.user_id
                            .map(Id::text)
                            .filter(|s| !s.is_empty())
                            .ok_or_else(|| {
                                Error::param(format!("rule.{field}[{i}].user_id is required"))
                            })
                    })
                    .collect()
            })
            .transpose()
        };
        let devices = self
            .devices
            .map(|l| {
                l.into_iter()
                    .enumerate()
                    .map(|(i, d)| {
                        d.id.map(Id::text).filter(|s| !s.is_empty()).ok_or_else(|| {
                            Error::param(format!("rule.devices[{i}].id is required"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        let mut draft = RuleDraft {
            name: self.name,
            remind_face: self.remind_face,
            is_temp: self.is_temp,
            opening: self.opening_time.is_some(),
            users: ids(self.users, "users")?,
            visitors: ids(self.visitors, "visitors")?,
            devices,
            ..RuleDraft::default()
        };
        if let Some(o) = self.opening_time {
            if let Some(v) = o.valid_day {
                draft.valid_from = number(&v.start_day, "opening_time.valid_day.start_day")?;
                draft.valid_to = number(&v.end_day, "opening_time.valid_day.end_day")?;
            }
            for d in o.weekdays.unwrap_or_default() {
                draft.weekdays.push(d.get("opening_time.weekdays")?);
            }
            for (i, w) in o.day_times.unwrap_or_default().into_iter().enumerate() {
                let field = |f: &str| format!("opening_time.day_times[{i}].{f}");
                let get = |n: &Option<Number>, f: &str| {
                    number(n, &field(f))?
                        .ok_or_else(|| Error::param(format!("{} is required", field(f))))
                };
                draft.day_times.push(DayTime {
                    start_hhmm: get(&w.start_hhmm, "start_hhmm")?,
                    end_hhmm: get(&w.end_hhmm, "end_hhmm")?,
                });
            }
        }
        Ok(draft)
    }
}

#[derive(Deserialize)]
struct PutQuery {
    rule_id: Option<String>,
    user_id_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PutData {
    rule_id: String,
}

#[utoipa::path(
    post,
    path = "/open-apis/acs/v1/rule_external",
    tag = "acs",
    params(
        ("rule_id" = Option<String>, Query, description = "the rule to replace; absent: create one"),
        ("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id, for rule.users"),
    ),
    request_body(content = PutBody),
    responses((status = 200, body = Envelope<PutData>), Refusals),
    security(("bearer" = []))
)]
async fn put_rule(
    auth: Authed<Put>,
    State(state): State<AppState>,
    Query(q): Query<PutQuery>,
    Json(body): Json<PutBody>,
) -> Result<Envelope<PutData>> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    let rule = body
        .rule
        .ok_or_else(|| Error::param("rule is required"))?
        .draft()?;
    let rule_id = state
        .core
        .put_rule(&auth.caller, id_type, q.rule_id.as_deref(), rule)
        .await?;
    Ok(Envelope::success(PutData { rule_id }))
}

#[derive(Deserialize)]
struct GetQuery {
    device_id: Option<String>,
    user_id_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RulesData {
    rules: Vec<RuleOutWire>,
}

/// A rule as listed.
#[derive(Serialize, ToSchema)]
#[schema(as = Rule)]
pub struct RuleOutWire {
    devices: Vec<DeviceOut>,
    id: String,
    is_temp: bool,
    name: String,
    opening_time: OpeningOut,
    remind_face: bool,
    /// A count, as a string.
    user_count: String,
    users: Vec<UserOut>,
    visitor_count: String,
    visitors: Vec<UserOut>,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceOut {
    id: String,
    /// The serial number: WeCom terminals report no name.
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserOut {
    /// A visitor's, as given when it was created.
    #[serde(skip_serializing_if = "Option::is_none")]
    department_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_num: Option<String>,
    user_id: String,
    user_name: String,
    /// 1 staff, 2 visitor.
    user_type: i64,
}

#[derive(Serialize, ToSchema)]
pub struct OpeningOut {
    day_times: Vec<DayTimeOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_day: Option<ValidDayOut>,
    weekdays: Vec<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ValidDayOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    end_day: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_day: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DayTimeOut {
    end_hhmm: i64,
    start_hhmm: i64,
}

impl From<RuleOut> for RuleOutWire {
    fn from(r: RuleOut) -> RuleOutWire {
        let spec = r.row.spec;
        let valid_day =
            (spec.valid_from.is_some() || spec.valid_to.is_some()).then_some(ValidDayOut {
                end_day: spec.valid_to,
                start_day: spec.valid_from,
            });
        RuleOutWire {
            devices: r
                .devices
                .into_iter()
                .map(|(id, name)| DeviceOut { id, name })
                .collect(),
            id: r.row.rule_id,
            is_temp: spec.is_temp,
            name: spec.name,
            opening_time: OpeningOut {
                day_times: spec
                    .day_times
                    .iter()
                    .map(|w| DayTimeOut {
                        end_hhmm: w.end_hhmm,
                        start_hhmm: w.start_hhmm,
                    })
                    .collect(),
                valid_day,
                weekdays: spec.weekdays,
            },
            remind_face: spec.remind_face,
            user_count: r.users.len().to_string(),
            users: r
                .users
                .into_iter()
                .map(|(user_id, p)| UserOut {
                    department_id: None,
                    phone_num: None,
                    user_id,
                    user_name: p.name,
                    user_type: 1,
                })
                .collect(),
            visitor_count: r.visitors.len().to_string(),
            visitors: r
                .visitors
                .into_iter()
                .map(|p| {
                    let detail =
                        |k: &str| p.extra.get(k).and_then(|v| v.as_str()).map(String::from);
                    UserOut {
                        department_id: detail("department_id"),
                        phone_num: detail("phone_num"),
                        user_id: p.user_id.clone(),
                        user_name: p.name.clone(),
                        user_type: 2,
                    }
                })
                .collect(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/open-apis/acs/v1/rule_external",
    tag = "acs",
    params(
        ("device_id" = Option<String>, Query, description = "only the rules bound to this terminal"),
        ("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id"),
    ),
    responses((status = 200, body = Envelope<RulesData>), Refusals),
    security(("bearer" = []))
)]
async fn get_rules(
    auth: Authed<Get>,
    State(state): State<AppState>,
    Query(q): Query<GetQuery>,
) -> Result<Envelope<RulesData>> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    let rules = state
        .core
        .rules(&auth.caller, id_type, q.device_id.as_deref())
        .await?;
    Ok(Envelope::success(RulesData {
        rules: rules.into_iter().map(RuleOutWire::from).collect(),
    }))
}

#[derive(Deserialize)]
struct DeleteQuery {
    rule_id: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/open-apis/acs/v1/rule_external",
    tag = "acs",
    params(("rule_id" = String, Query, description = "the rule to delete")),
    responses((status = 200, body = Envelope<Empty>), Refusals),
    security(("bearer" = []))
)]
async fn delete_rule(
    auth: Authed<Delete>,
    State(state): State<AppState>,
    Query(q): Query<DeleteQuery>,
) -> Result<Envelope<Empty>> {
    let rule_id = q.rule_id.unwrap_or_default();
    state.core.delete_rule(&auth.caller, &rule_id).await?;
    Ok(Envelope::success(Empty {}))
}

#[derive(Deserialize, ToSchema)]
pub struct BindBody {
    device_id: Option<Id>,
    rule_ids: Option<Vec<Id>>,
}

#[utoipa::path(
    post,
    path = "/open-apis/acs/v1/rule_external/device_bind",
    tag = "acs",
    request_body(content = BindBody),
    responses((status = 200, body = Envelope<Empty>), Refusals),
    security(("bearer" = []))
)]
async fn device_bind(
    auth: Authed<Bind>,
    State(state): State<AppState>,
    Json(body): Json<BindBody>,
) -> Result<Envelope<Empty>> {
    let device = body.device_id.map(Id::text).unwrap_or_default();
    let rule_ids: Vec<String> = body
        .rule_ids
        .ok_or_else(|| Error::param("rule_ids is required (empty: no rule)"))?
        .into_iter()
        .map(Id::text)
        .collect();
    state
        .core
        .bind_rules(&auth.caller, &device, &rule_ids)
        .await?;
    Ok(Envelope::success(Empty {}))
}
