//! `/open-apis/attendance/v1/*`: face photos and face settings.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::envelope::{Codes, Envelope, Refusals};
use super::{download, multipart};
use crate::api::AppState;
use crate::api::extract::{Authed, Json, PathParam, Query, endpoint, path_param};
use crate::api::middleware::speaking;
use crate::domain::PhotoName;
use crate::domain::people::EmployeeType;
use crate::model::error::{Error, Result};

endpoint!(Upload, "attendance.files.upload", &["attendance:rule"]);
endpoint!(
    Download,
    "attendance.files.download",
    &["attendance:rule:readonly"]
);
endpoint!(
    Modify,
    "attendance.user_settings.modify",
    &["attendance:rule"]
);
endpoint!(
    QuerySettings,
    "attendance.user_settings.query",
    &["attendance:rule:readonly"]
);

pub const CODES: Codes = Codes {
    param: (StatusCode::BAD_REQUEST, 1220001, "param is invalid"),
    internal: (1225000, "internal server error"),
    user_not_found: (StatusCode::BAD_REQUEST, 1220004, None),
};

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/open-apis/attendance/v1/files/upload", post(upload))
        .route(
            "/open-apis/attendance/v1/files/{file_id}/download",
            get(download),
        )
        .route(
            "/open-apis/attendance/v1/user_settings/modify",
            post(modify),
        )
        .route(
            "/open-apis/attendance/v1/user_settings/query",
            get(query).post(query),
        );
    speaking(routes, &CODES)
}

// The upload form (read field by field as it streams; this type only
// describes it).
#[derive(ToSchema)]
pub struct UploadForm {
    /// The photo (JPEG or PNG).
    #[schema(format = Binary)]
    pub file: String,
}

#[derive(Serialize, ToSchema)]
pub struct UploadFileData {
    file: FileRef,
}

#[derive(Serialize, ToSchema)]
pub struct FileRef {
    file_id: String,
}

#[derive(Deserialize)]
struct UploadQuery {
    file_name: Option<String>,
}

#[utoipa::path(
    post,
    path = "/open-apis/attendance/v1/files/upload",
    tag = "attendance",
    params(("file_name" = String, Query, description = "the photo's name; its extension must match the bytes")),
    request_body(content = inline(UploadForm), content_type = "multipart/form-data"),
    responses((status = 200, description = "stored", body = Envelope<UploadFileData>), Refusals),
    security(("bearer" = []))
)]
async fn upload(
    auth: Authed<Upload>,
    State(state): State<AppState>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Envelope<UploadFileData>> {
    let name = PhotoName::parse(q.file_name.as_deref().unwrap_or(""))?;
    let permit = state.upload_permit()?;
    multipart::within_deadline(
        &state,
        receive_photo(&state, &auth, &name, &headers, body, permit),
    )
    .await
}

async fn receive_photo(
    state: &AppState,
    auth: &Authed<Upload>,
    name: &PhotoName,
    headers: &HeaderMap,
    body: Body,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<Envelope<UploadFileData>> {
    let limits = &state.core.config().limits;
    // The photo limit is enforced precisely while streaming; this outer cap
    // only bounds what the multipart framing around it may add.
    let mut form = multipart::reader(headers, body, limits.photo_max_bytes)?;
    let idle = std::time::Duration::from_secs(limits.body_idle_timeout_secs);
    // Fields may come in any order; anything but `file` is ignored.
    while let Some(field) = multipart::next_field(&mut form, idle).await? {
        if field.name() != Some("file") {
            continue;
        }
        let body = multipart::idle_timeout(multipart::field_stream(field), idle);
        let record = state
            .core
            .store_attendance_photo(&auth.caller, name, body, permit)
            .await?;
        return Ok(Envelope::success(UploadFileData {
            file: FileRef {
                file_id: record.file_id,
            },
        }));
    }
    Err(Error::param("multipart field `file` is required"))
}

#[utoipa::path(
    get,
    path = "/open-apis/attendance/v1/files/{file_id}/download",
    tag = "attendance",
    params(("file_id" = String, Path)),
    responses((status = 200, description = "the photo's bytes", content_type = "application/octet-stream"), Refusals),
    security(("bearer" = []))
)]
async fn download(
    auth: Authed<Download>,
    State(state): State<AppState>,
    file_id: PathParam,
) -> Result<Response> {
    let file_id = path_param(file_id, "file_id")?;
    let photo = state
        .core
        .open_attendance_photo(&auth.caller, &file_id)
        .await?;
    Ok(download::file_response(photo))
}

#[derive(Deserialize)]
struct EmployeeTypeQuery {
    employee_type: Option<String>,
}

impl EmployeeTypeQuery {
    fn kind(&self) -> Result<EmployeeType> {
        EmployeeType::parse(self.employee_type.as_deref().unwrap_or(""))
    }
}

#[derive(Deserialize, ToSchema)]
pub struct ModifyBody {
    #[schema(required = true)]
    user_setting: Option<UserSettingIn>,
}

#[derive(Deserialize, ToSchema)]
pub struct UserSettingIn {
    #[schema(required = true)]
    user_id: Option<String>,
    #[schema(required = true)]
    face_key: Option<String>,
    /// Unix seconds, as a string (a number is accepted too).
    #[schema(value_type = Option<String>)]
    face_key_update_time: Option<Value>,
    face_key_open: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UserSetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    face_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    face_key_open: Option<bool>,
    /// Unix seconds, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    face_key_update_time: Option<String>,
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ModifyData {
    user_setting: UserSetting,
}

#[derive(Serialize, ToSchema)]
pub struct QueryData {
    user_settings: Vec<UserSetting>,
}

fn parse_update_time(v: Option<&Value>) -> Result<Option<i64>> {
    let bad = || Error::param("face_key_update_time must be a string of Unix seconds");
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse::<i64>()
            .ok()
            .filter(|t| *t >= 0)
            .map(Some)
            .ok_or_else(bad),
        Some(Value::Number(n)) => n.as_i64().filter(|t| *t >= 0).map(Some).ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

#[utoipa::path(
    post,
    path = "/open-apis/attendance/v1/user_settings/modify",
    tag = "attendance",
    params(("employee_type" = String, Query, description = "employee_id or employee_no")),
    request_body(content = ModifyBody),
    responses((status = 200, body = Envelope<ModifyData>), Refusals),
    security(("bearer" = []))
)]
async fn modify(
    auth: Authed<Modify>,
    State(state): State<AppState>,
    Query(q): Query<EmployeeTypeQuery>,
    Json(body): Json<ModifyBody>,
) -> Result<Envelope<ModifyData>> {
    let kind = q.kind()?;
    let s = body
        .user_setting
        .ok_or_else(|| Error::param("user_setting is required"))?;
    let user_id = s
        .user_id
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::param("user_setting.user_id is required"))?;
    let face_key = s
        .face_key
        .filter(|f| !f.is_empty())
        .ok_or_else(|| Error::param("user_setting.face_key is required"))?;
    let update_time = parse_update_time(s.face_key_update_time.as_ref())?;
    let saved = state
        .core
        .modify_user_setting(
            &auth.caller,
            kind,
            &user_id,
            &face_key,
            s.face_key_open,
            update_time,
        )
        .await?;
    Ok(Envelope::success(ModifyData {
        user_setting: UserSetting {
            face_key: Some(saved.face_key),
            face_key_open: None,
            face_key_update_time: Some(saved.face_key_update_time.to_string()),
            user_id,
        },
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct QueryBody {
    #[serde(default)]
    user_ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/open-apis/attendance/v1/user_settings/query",
    tag = "attendance",
    params(("employee_type" = String, Query, description = "employee_id or employee_no")),
    request_body(content = QueryBody),
    responses((status = 200, body = Envelope<QueryData>), Refusals),
    security(("bearer" = []))
)]
async fn query(
    auth: Authed<QuerySettings>,
    State(state): State<AppState>,
    Query(q): Query<EmployeeTypeQuery>,
    Json(body): Json<QueryBody>,
) -> Result<Envelope<QueryData>> {
    let kind = q.kind()?;
    let found = state
        .core
        .query_user_settings(auth.caller.tenant_id, kind, &body.user_ids)
        .await?;
    let user_settings = found
        .into_iter()
        .map(|f| match f.setting {
            Some(s) => UserSetting {
                face_key: Some(s.face_key),
                face_key_open: Some(s.face_key_open),
                face_key_update_time: Some(s.face_key_update_time.to_string()),
                user_id: f.user_id,
            },
            None => UserSetting {
                face_key: None,
                face_key_open: Some(false),
                face_key_update_time: None,
                user_id: f.user_id,
            },
        })
        .collect();
    Ok(Envelope::success(QueryData { user_settings }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_time_forms() {
        assert_eq!(
            parse_update_time(Some(&json!("1625681917"))).unwrap(),
            Some(1625681917)
        );
        assert_eq!(parse_update_time(Some(&json!(5))).unwrap(), Some(5));
        assert_eq!(parse_update_time(None).unwrap(), None);
        assert!(parse_update_time(Some(&json!("soon"))).is_err());
        assert!(parse_update_time(Some(&json!(-1))).is_err());
        assert!(parse_update_time(Some(&json!([1]))).is_err());
    }
}
