//! `/open-apis/acs/v1/users*`: door-access users and their faces; and
//! `/open-apis/acs/v1/devices`: the terminals.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::envelope::{Codes, Empty, Envelope, Refusals};
use super::{download, multipart};
use crate::api::AppState;
use crate::api::extract::{Authed, Json, PathParam, Query, endpoint, page_size, path_param};
use crate::api::middleware::speaking;
use crate::domain::acs::IdType;
use crate::domain::files::StagedImage;
use crate::image::ImageFormat;
use crate::model::error::{Error, Result};

endpoint!(List, "acs.users.list", &["acs:users"]);
endpoint!(GetUser, "acs.users.get", &["acs:users"]);
endpoint!(Patch, "acs.users.patch", &["acs:users"]);
endpoint!(UpdateFace, "acs.user_face.update", &["acs:users"]);
endpoint!(GetFace, "acs.user_face.get", &["acs:users"]);
endpoint!(
    Devices,
    "acs.devices.list",
    &["acs:device", "acs:device:readonly"]
);

pub const CODES: Codes = Codes {
    // The ACS pages list no parameter code; the platform's generic
    // "request parameters missing or wrong" is used.
    param: (StatusCode::BAD_REQUEST, 99992402, "invalid param"),
    internal: (1490002, "internal server error"),
    user_not_found: (StatusCode::BAD_REQUEST, 1490101, Some("user not found")),
};

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/open-apis/acs/v1/users", get(list))
        .route(
            "/open-apis/acs/v1/users/{user_id}",
            get(get_user).patch(patch_user),
        )
        .route(
            "/open-apis/acs/v1/users/{user_id}/face",
            put(update_face).get(get_face),
        )
        .route("/open-apis/acs/v1/devices", get(devices));
    speaking(routes, &CODES)
}

#[derive(Serialize, ToSchema)]
pub struct AcsUser {
    feature: AcsFeature,
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct AcsFeature {
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<i64>,
    face_uploaded: bool,
}

impl From<crate::domain::acs::AcsUser> for AcsUser {
    fn from(u: crate::domain::acs::AcsUser) -> AcsUser {
        AcsUser {
            feature: AcsFeature {
                card: u.card,
                face_uploaded: u.face_uploaded,
            },
            user_id: u.user_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AcsUserData {
    user: AcsUser,
}

#[derive(Serialize, ToSchema)]
pub struct AcsUsersData {
    has_more: bool,
    items: Vec<AcsUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page_token: Option<String>,
}

#[derive(Deserialize)]
struct IdQuery {
    user_id_type: Option<String>,
}

#[derive(Deserialize)]
struct ListQuery {
    user_id_type: Option<String>,
    page_size: Option<String>,
    page_token: Option<String>,
}

fn user_id(p: PathParam) -> Result<String> {
    let id = path_param(p, "user_id")?;
    if id.is_empty() {
        return Err(Error::param("user_id is required"));
    }
    Ok(id)
}

#[derive(Serialize, ToSchema)]
pub struct AcsDevicesData {
    items: Vec<AcsDevice>,
}

#[derive(Serialize, ToSchema)]
pub struct AcsDevice {
    /// A decimal number derived from the serial number: stable, and the
    /// same on every node.
    device_id: String,
    /// The serial number: WeCom terminals report no name.
    device_name: String,
    device_sn: String,
    property: AcsDeviceProperty,
}

#[derive(Serialize, ToSchema)]
pub struct AcsDeviceProperty {
    /// People whose face template the terminal receives (in a face
    /// algorithm it subscribed with).
    current_device_face_count: i64,
    device_name: String,
    /// WeCom terminals are attendance clocks: their punches are check-ins.
    is_clock_in: bool,
    /// 1 logged in (on any node), 0 not.
    online_status: i64,
    /// Firmware version from `subscribe_corp` ("" before the first).
    version: String,
}

impl From<crate::domain::devices::Terminal> for AcsDevice {
    fn from(t: crate::domain::devices::Terminal) -> AcsDevice {
        AcsDevice {
            device_id: t.device_id,
            device_name: t.device.sn.clone(),
            property: AcsDeviceProperty {
                current_device_face_count: t.faces,
                device_name: t.device.sn.clone(),
                is_clock_in: true,
                online_status: i64::from(t.presence.online),
                version: t.device.firmware_version.unwrap_or_default(),
            },
            device_sn: t.device.sn,
        }
    }
}

#[utoipa::path(
    get,
    path = "/open-apis/acs/v1/devices",
    tag = "acs",
    responses((status = 200, body = Envelope<AcsDevicesData>), Refusals),
    security(("bearer" = []))
)]
async fn devices(
    auth: Authed<Devices>,
    State(state): State<AppState>,
) -> Result<Envelope<AcsDevicesData>> {
    let terminals = state.core.terminals(auth.caller.tenant_id).await?;
    Ok(Envelope::success(AcsDevicesData {
        items: terminals.into_iter().map(AcsDevice::from).collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/open-apis/acs/v1/users",
    tag = "acs",
    params(("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id"), ("page_size" = Option<i64>, Query, description = "1 to 100, default 20"), ("page_token" = Option<String>, Query)),
    responses((status = 200, body = Envelope<AcsUsersData>), Refusals),
    security(("bearer" = []))
)]
async fn list(
    auth: Authed<List>,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Envelope<AcsUsersData>> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    let refusal = "page_size must be an integer from 1 to 100";
    let page_size = page_size(q.page_size.as_deref(), 20, 100, refusal)?;
    let page = state
        .core
        .acs_users(&auth.caller, id_type, page_size, q.page_token.as_deref())
        .await?;
    Ok(Envelope::success(AcsUsersData {
        has_more: page.has_more,
        items: page.items.into_iter().map(AcsUser::from).collect(),
        page_token: page.page_token,
    }))
}

#[utoipa::path(
    get,
    path = "/open-apis/acs/v1/users/{user_id}",
    tag = "acs",
    params(("user_id" = String, Path, description = "the person, in user_id_type"), ("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id")),
    responses((status = 200, body = Envelope<AcsUserData>), Refusals),
    security(("bearer" = []))
)]
async fn get_user(
    auth: Authed<GetUser>,
    State(state): State<AppState>,
    path: PathParam,
    Query(q): Query<IdQuery>,
) -> Result<Envelope<AcsUserData>> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    let user = state
        .core
        .acs_user(&auth.caller, id_type, &user_id(path)?)
        .await?;
    Ok(Envelope::success(AcsUserData { user: user.into() }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AcsPatchBody)]
pub struct PatchBody {
    feature: Option<FeatureIn>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AcsFeaturePatch)]
pub struct FeatureIn {
    card: Option<i64>,
}

#[utoipa::path(
    patch,
    path = "/open-apis/acs/v1/users/{user_id}",
    tag = "acs",
    params(("user_id" = String, Path, description = "the person, in user_id_type"), ("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id")),
    request_body(content = PatchBody),
    responses((status = 200, body = Envelope<Empty>), Refusals),
    security(("bearer" = []))
)]
async fn patch_user(
    auth: Authed<Patch>,
    State(state): State<AppState>,
    path: PathParam,
    Query(q): Query<IdQuery>,
    Json(body): Json<PatchBody>,
) -> Result<Envelope<Empty>> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    let id = user_id(path)?;
    let card = body.feature.and_then(|f| f.card);
    state
        .core
        .acs_set_card(&auth.caller, id_type, &id, card)
        .await?;
    Ok(Envelope::success(Empty {}))
}

#[derive(Deserialize)]
struct FaceQuery {
    user_id_type: Option<String>,
    is_cropped: Option<String>,
}

#[utoipa::path(
    get,
    path = "/open-apis/acs/v1/users/{user_id}/face",
    tag = "acs",
    params(("user_id" = String, Path, description = "the person, in user_id_type"), ("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id"), ("is_cropped" = Option<bool>, Query, description = "the crop instead of the original")),
    responses((status = 200, description = "the face photo's bytes", content_type = "application/octet-stream"), Refusals),
    security(("bearer" = []))
)]
async fn get_face(
    auth: Authed<GetFace>,
    State(state): State<AppState>,
    path: PathParam,
    Query(q): Query<FaceQuery>,
) -> Result<Response> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    // The SDKs send `True` (Python) or `true`.
    let cropped = match q
        .is_cropped
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::param(format!(
                "is_cropped {other:?} is not a boolean"
            )));
        }
    };
    let file = state
        .core
        .acs_face(&auth.caller, id_type, &user_id(path)?, cropped)
        .await?;
    Ok(download::file_response(file))
}

// The face upload form (read field by field as it streams; this type only
// describes it).
#[derive(ToSchema)]
pub struct FaceForm {
    /// The photo (JPEG or PNG).
    #[schema(format = Binary)]
    pub files: String,
    /// `jpg` or `png`.
    pub file_type: String,
    pub file_name: Option<String>,
}

/// The parts of a face upload other than the image.
#[derive(Default)]
struct FaceFields {
    file_type: Option<String>,
    file_name: Option<String>,
}

#[utoipa::path(
    put,
    path = "/open-apis/acs/v1/users/{user_id}/face",
    tag = "acs",
    params(("user_id" = String, Path, description = "the person, in user_id_type"), ("user_id_type" = Option<String>, Query, description = "open_id (default), union_id or user_id")),
    request_body(content = inline(FaceForm), content_type = "multipart/form-data"),
    responses((status = 200, body = Envelope<Empty>), Refusals),
    security(("bearer" = []))
)]
async fn update_face(
    auth: Authed<UpdateFace>,
    State(state): State<AppState>,
    path: PathParam,
    Query(q): Query<IdQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Envelope<Empty>> {
    let id_type = IdType::parse(q.user_id_type.as_deref())?;
    let id = user_id(path)?;
    // 1490101 before any byte of the photo is read.
    state
        .core
        .acs_check_member(&auth.caller, id_type, &id)
        .await?;
    let permit = state.upload_permit()?;
    let mut staged = None;
    let form =
        multipart::within_deadline(&state, receive(&state, &headers, body, &mut staged)).await;
    let (form, staged) = multipart::with_image(form, staged, "files").await?;
    let declared = match form
        .file_type
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jpg") | Some("jpeg") => ImageFormat::Jpeg,
        Some("png") => ImageFormat::Png,
        None => {
            staged.discard().await;
            return Err(Error::param(
                "multipart field `file_type` is required (jpg or png)",
            ));
        }
        Some(other) => {
            staged.discard().await;
            return Err(Error::param(format!(
                "file_type {other:?} is not jpg or png"
            )));
        }
    };
    let name = form
        .file_name
        .unwrap_or_else(|| format!("face.{}", declared.extensions()[0]));
    if name.chars().count() > 255
        || name.chars().any(char::is_control)
        || name.contains(['/', '\\'])
    {
        staged.discard().await;
        return Err(Error::param(
            "file_name must be at most 255 characters without path separators or control characters",
        ));
    }
    state
        .core
        .acs_enrol_face(&auth.caller, id_type, &id, staged, declared, &name, permit)
        .await?;
    Ok(Envelope::success(Empty {}))
}

/// Reads `files`, `file_type` and `file_name` in any order; the image
/// streams into `staged`.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    staged: &mut Option<StagedImage>,
) -> Result<FaceFields> {
    let limits = &state.core.config().limits;
    let rules = state.core.attendance_rules();
    let mut form = multipart::reader(headers, body, rules.max_bytes)?;
    let idle = std::time::Duration::from_secs(limits.body_idle_timeout_secs);
    let mut out = FaceFields::default();
    while let Some(field) = multipart::next_field(&mut form, idle).await? {
        match field.name() {
            Some("files") | Some("file") => {
                if staged.is_some() {
                    return Err(Error::param(
                        "multipart field `files` appears more than once",
                    ));
                }
                let bytes = multipart::idle_timeout(multipart::field_stream(field), idle);
                *staged = Some(state.core.receive_image(rules, bytes).await?);
            }
            Some(name @ ("file_type" | "file_name")) => {
                let is_type = name == "file_type";
                let text = multipart::read_text(field, 1024, idle).await?;
                // Empty parts are how SDKs send unset fields.
                if !text.is_empty() {
                    if is_type {
                        out.file_type = Some(text);
                    } else {
                        out.file_name = Some(text);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
