//! The OpenAPI 3 description of every HTTP endpoint, served at
//! `/openapi.json`. Paths come from the `#[utoipa::path]` attributes on the
//! handlers themselves; the schemas below describe the wire shapes (the
//! handlers build their JSON with `json!`, so these are kept beside them
//! and checked against the running server by schemathesis in CI).

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::AppState;

/// Every refusal: a non-zero `code`, the reason in `msg`, and the request's
/// log id.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorEnvelope {
    /// The platform's error code (never 0).
    code: i64,
    msg: String,
    data: Option<Value>,
    error: Option<ErrorDetail>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// The request's X-Tt-Logid.
    log_id: String,
}

/// `code: 0, msg: "success"` and the endpoint's data.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Envelope<T: ToSchema> {
    /// 0 on success.
    code: i64,
    msg: String,
    data: T,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Empty {}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Credentials {
    app_id: String,
    app_secret: String,
}

/// Token fields sit at the top level, as on the platform.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TenantTokenReply {
    code: i64,
    msg: String,
    tenant_access_token: Option<String>,
    /// Seconds left.
    expire: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AppTokenReply {
    code: i64,
    msg: String,
    app_access_token: Option<String>,
    tenant_access_token: Option<String>,
    expire: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The photo (JPEG or PNG).
    #[schema(format = Binary)]
    file: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FileRef {
    file_id: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadFileData {
    file: FileRef,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UserSetting {
    user_id: String,
    face_key: Option<String>,
    /// Unix seconds, as a string.
    face_key_update_time: Option<String>,
    face_key_open: Option<bool>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ModifyBody {
    user_setting: UserSetting,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ModifyData {
    user_setting: UserSetting,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueryBody {
    user_ids: Vec<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QueryData {
    user_settings: Vec<UserSetting>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LingoForm {
    /// The image's name, with its extension.
    name: String,
    #[schema(format = Binary)]
    file: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LingoUploadData {
    file_token: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcsFeature {
    card: Option<i64>,
    face_uploaded: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcsUser {
    user_id: String,
    feature: AcsFeature,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcsUserData {
    user: AcsUser,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcsUsersData {
    items: Vec<AcsUser>,
    has_more: bool,
    page_token: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcsPatchBody {
    feature: Option<AcsFeaturePatch>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcsFeaturePatch {
    card: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FaceForm {
    /// The photo (JPEG or PNG).
    #[schema(format = Binary)]
    files: String,
    /// `jpg` or `png`.
    file_type: String,
    file_name: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DeviceItem {
    sn: String,
    bound: bool,
    online: bool,
    firmware_version: Option<String>,
    fa_algorithms: Vec<String>,
    fp_algorithms: Vec<String>,
    last_seen: Option<i64>,
    seen_version: i64,
    /// Changes the device has not been sent yet.
    backlog: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DevicesData {
    perm_version: i64,
    items: Vec<DeviceItem>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChangedData {
    changed: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EnrolmentStart {
    sn: String,
    user_id: String,
    /// `fa`, `fp` or `photo`.
    kind: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Enrolment {
    oper_id: String,
    sn: String,
    kind: String,
    /// queued, sent, succeeded, failed or timed_out.
    status: String,
    errcode: Option<i64>,
    errmsg: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EnrolmentData {
    enrolment: Enrolment,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Checkin {
    sn: String,
    timestamp: i64,
    pass_type: Option<i64>,
    pass_method: Option<i64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CheckinsData {
    items: Vec<Checkin>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Erasure {
    user_id: String,
    files: i64,
    templates: i64,
    log_truncated: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErasureData {
    erasure: Erasure,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditRecord {
    id: i64,
    at_ms: i64,
    /// app, user, device or admin.
    actor_kind: String,
    actor: String,
    action: String,
    subject: Option<String>,
    object: Option<String>,
    result: String,
    log_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AuditData {
    items: Vec<AuditRecord>,
    has_more: bool,
    page_token: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    status: String,
    reason: Option<String>,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "facehub",
        description = "Face photos and biometric templates over the Feishu/Lark open-apis \
                       (and facehub's own /open-apis/facehub/ administration endpoints)."
    ),
    paths(
        super::auth::tenant_access_token,
        super::auth::app_access_token,
        super::attendance::upload,
        super::attendance::download,
        super::attendance::modify,
        super::attendance::query,
        super::lingo::upload,
        super::lingo::download,
        super::acs::list,
        super::acs::get_user,
        super::acs::patch_user,
        super::acs::get_face,
        super::acs::update_face,
        super::devices_admin::list,
        super::devices_admin::bind,
        super::devices_admin::unbind,
        super::devices_admin::start,
        super::devices_admin::show,
        super::devices_admin::cancel,
        super::devices_admin::checkins,
        super::privacy::erase,
        super::privacy::audit_logs,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
    ),
    components(schemas(ErrorEnvelope, Credentials, TenantTokenReply, AppTokenReply)),
    modifiers(&Security),
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
