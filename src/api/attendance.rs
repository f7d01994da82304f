//! `/open-apis/attendance/v1/*`: face photos and face settings.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::{Authed, Endpoint, Json, Query};
use super::{AppState, success};
use super::{download, multipart};
use crate::domain::PhotoName;
use crate::domain::people::EmployeeType;
use crate::model::error::{Error, Result};

pub struct Upload;
impl Endpoint for Upload {
    const NAME: &'static str = "attendance.files.upload";
    const SCOPES: &'static [&'static str] = &["attendance:rule"];
}
pub struct Download;
impl Endpoint for Download {
    const NAME: &'static str = "attendance.files.download";
    const SCOPES: &'static [&'static str] = &["attendance:rule:readonly"];
}
pub struct Modify;
impl Endpoint for Modify {
    const NAME: &'static str = "attendance.user_settings.modify";
    const SCOPES: &'static [&'static str] = &["attendance:rule"];
}
pub struct QuerySettings;
impl Endpoint for QuerySettings {
    const NAME: &'static str = "attendance.user_settings.query";
    const SCOPES: &'static [&'static str] = &["attendance:rule:readonly"];
}

pub fn router() -> Router<AppState> {
    Router::new()
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
        )
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
    request_body(content = inline(super::openapi::UploadForm), content_type = "multipart/form-data"),
    responses((status = 200, description = "stored", body = super::openapi::Envelope<super::openapi::UploadFileData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn upload(
    auth: Authed<Upload>,
    State(state): State<AppState>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse> {
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
) -> Result<axum::Json<Value>> {
    let limits = &state.core.config.limits;
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
        return Ok(success(json!({"file": {"file_id": record.file_id}})));
    }
    Err(Error::param("multipart field `file` is required"))
}

#[utoipa::path(
    get,
    path = "/open-apis/attendance/v1/files/{file_id}/download",
    tag = "attendance",
    params(("file_id" = String, Path)),
    responses((status = 200, description = "the photo's bytes", content_type = "application/octet-stream"), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn download(
    auth: Authed<Download>,
    State(state): State<AppState>,
    file_id: std::result::Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response> {
    let Path(file_id) = file_id.map_err(|_| Error::param("file_id is invalid"))?;
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

#[derive(Deserialize)]
struct ModifyBody {
    user_setting: Option<UserSettingIn>,
}

#[derive(Deserialize)]
struct UserSettingIn {
    user_id: Option<String>,
    face_key: Option<String>,
    /// Documented as a string of Unix seconds; a number is accepted too.
    face_key_update_time: Option<Value>,
    face_key_open: Option<bool>,
}

#[derive(Serialize)]
struct UserSettingOut {
    user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    face_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    face_key_update_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    face_key_open: Option<bool>,
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
    request_body(content = super::openapi::ModifyBody),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::ModifyData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn modify(
    auth: Authed<Modify>,
    State(state): State<AppState>,
    Query(q): Query<EmployeeTypeQuery>,
    Json(body): Json<ModifyBody>,
) -> Result<impl IntoResponse> {
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
    Ok(success(json!({
        "user_setting": UserSettingOut {
            user_id,
            face_key: Some(saved.face_key),
            face_key_update_time: Some(saved.face_key_update_time.to_string()),
            face_key_open: None,
        }
    })))
}

#[derive(Deserialize)]
struct QueryBody {
    #[serde(default)]
    user_ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/open-apis/attendance/v1/user_settings/query",
    tag = "attendance",
    params(("employee_type" = String, Query, description = "employee_id or employee_no")),
    request_body(content = super::openapi::QueryBody),
    responses((status = 200, body = super::openapi::Envelope<super::openapi::QueryData>), (status = 400, description = "refused: a bad parameter, token or scope", body = super::openapi::ErrorEnvelope), (status = 429, description = "frequency limit", body = super::openapi::ErrorEnvelope), (status = 500, description = "internal fault", body = super::openapi::ErrorEnvelope)),
    security(("bearer" = []))
)]
async fn query(
    auth: Authed<QuerySettings>,
    State(state): State<AppState>,
    Query(q): Query<EmployeeTypeQuery>,
    Json(body): Json<QueryBody>,
) -> Result<impl IntoResponse> {
    let kind = q.kind()?;
    let found = state
        .core
        .query_user_settings(auth.caller.tenant_id, kind, &body.user_ids)
        .await?;
    let list: Vec<UserSettingOut> = found
        .into_iter()
        .map(|f| match f.setting {
            Some(s) => UserSettingOut {
                user_id: f.user_id,
                face_key: Some(s.face_key),
                face_key_update_time: Some(s.face_key_update_time.to_string()),
                face_key_open: Some(s.face_key_open),
            },
            None => UserSettingOut {
                user_id: f.user_id,
                face_key: None,
                face_key_update_time: None,
                face_key_open: Some(false),
            },
        })
        .collect();
    Ok(success(json!({ "user_settings": list })))
}

#[cfg(test)]
mod tests {
    use super::*;

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
