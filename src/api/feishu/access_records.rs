//! `/open-apis/acs/v1/access_records*`: the terminals' door records and
//! their capture photos.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::acs::CODES;
use super::download;
use super::envelope::{Envelope, Refusals};
use crate::api::AppState;
use crate::api::extract::{Authed, PathParam, Query, endpoint, page_size, path_param};
use crate::api::middleware::speaking;
use crate::domain::acs::IdType;
use crate::model::error::{Error, Result};

// The platform's write scope for door records, which includes reading,
// and its read scope.
const SCOPES: &[&str] = &["acs:access_record", "acs:access_record:readonly"];
endpoint!(List, "acs.access_records.list", SCOPES);
endpoint!(Photo, "acs.access_records.access_photo", SCOPES);

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/open-apis/acs/v1/access_records", get(list))
        .route(
            "/open-apis/acs/v1/access_records/{access_record_id}/access_photo",
            get(photo),
        );
    speaking(routes, &CODES)
}

#[derive(Serialize, ToSchema)]
pub struct AccessRecordsData {
    has_more: bool,
    items: Vec<AccessRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessRecord {
    access_record_id: String,
    /// Unix seconds, as a string.
    access_time: String,
    /// `FA` face, `QRCode`, `Fp` fingerprint; absent for a remote opening.
    #[serde(skip_serializing_if = "Option::is_none")]
    access_type: Option<&'static str>,
    /// As `acs/v1/devices` lists the terminal.
    device_id: String,
    is_clock_in: bool,
    is_door_open: bool,
    /// In `user_id_type`.
    user_id: String,
}

impl From<crate::domain::access_records::AccessRecord> for AccessRecord {
    fn from(r: crate::domain::access_records::AccessRecord) -> AccessRecord {
        AccessRecord {
            access_record_id: r.access_record_id,
            access_time: r.access_time.to_string(),
            access_type: r.access_type,
            device_id: r.device_id,
            is_clock_in: r.is_clock_in,
            is_door_open: r.is_door_open,
            user_id: r.user_id,
        }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    from: Option<String>,
    to: Option<String>,
    page_size: Option<String>,
    page_token: Option<String>,
    device_id: Option<String>,
    user_id_type: Option<String>,
}

/// `from` and `to`: Unix seconds, required.
fn seconds(raw: Option<&str>, name: &str) -> Result<i64> {
    let raw = raw
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::param(format!("{name} is required (Unix seconds)")))?;
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| Error::param(format!("{name} {raw:?} is not Unix seconds")))
}

#[utoipa::path(
    get,
    path = "/open-apis/acs/v1/access_records",
    tag = "acs",
    params(
        ("from" = i64, Query, description = "Unix seconds, inclusive"),
        ("to" = i64, Query, description = "Unix seconds, inclusive"),
        ("page_size" = Option<i64>, Query, description = "1 to 500, default 100"),
        ("page_token" = Option<String>, Query),
        ("device_id" = Option<String>, Query, description = "one terminal, as acs/v1/devices lists it"),
        ("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id"),
    ),
    responses((status = 200, body = Envelope<AccessRecordsData>), Refusals),
    security(("bearer" = []))
)]
async fn list(
    auth: Authed<List>,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Envelope<AccessRecordsData>> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    let window = (
        seconds(q.from.as_deref(), "from")?,
        seconds(q.to.as_deref(), "to")?,
    );
    let refusal = "page_size must be an integer from 1 to 500";
    let page_size = page_size(q.page_size.as_deref(), 100, 500, refusal)?;
    let page = state
        .core
        .access_records(
            &auth.caller,
            id_type,
            window,
            q.device_id.as_deref(),
            page_size,
            q.page_token.as_deref(),
        )
        .await?;
    Ok(Envelope::success(AccessRecordsData {
        has_more: page.has_more,
        items: page.items.into_iter().map(AccessRecord::from).collect(),
        page_token: page.page_token,
    }))
}

#[utoipa::path(
    get,
    path = "/open-apis/acs/v1/access_records/{access_record_id}/access_photo",
    tag = "acs",
    params(("access_record_id" = String, Path, description = "a door record with a capture photo")),
    responses((status = 200, description = "the capture photo's bytes", content_type = "application/octet-stream"), Refusals),
    security(("bearer" = []))
)]
async fn photo(
    auth: Authed<Photo>,
    State(state): State<AppState>,
    path: PathParam,
) -> Result<Response> {
    let id = path_param(path, "access_record_id")?;
    let file = state.core.access_photo(&auth.caller, &id).await?;
    Ok(download::file_response(file))
}
