//! The OpenAPI 3 description of every HTTP endpoint, served at
//! `/openapi.json`. Paths come from the `#[utoipa::path]` attributes on the
//! handlers, and schemas from the very types the handlers serialise (each
//! surface's module declares them), so document and wire cannot drift;
//! schemathesis checks them against the running server in CI.

use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::AppState;
use super::feishu::auth::{AppTokenReply, Credentials, TenantTokenReply};
use super::feishu::envelope::ErrorEnvelope;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        // The console's session cookie, set by its login.
        components.add_security_scheme(
            "admin_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("facehub_admin"))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "facehub",
        description = "Face photos and biometric templates over the Feishu/Lark open-apis \
                       (and facehub's own /open-apis/facehub/ administration endpoints), \
                       and the JSON behind the admin console (/admin/api/)."
    ),
    paths(
        super::feishu::auth::tenant_access_token,
        super::feishu::auth::app_access_token,
        super::feishu::attendance::upload,
        super::feishu::attendance::download,
        super::feishu::attendance::modify,
        super::feishu::attendance::query,
        super::feishu::lingo::upload,
        super::feishu::lingo::download,
        super::feishu::user_flows::batch_create,
        super::feishu::user_flows::query,
        super::feishu::user_flows::get_flow,
        super::feishu::user_flows::batch_del,
        super::feishu::acs::list,
        super::feishu::acs::devices,
        super::feishu::acs::get_user,
        super::feishu::acs::patch_user,
        super::feishu::acs::get_face,
        super::feishu::acs::update_face,
        super::feishu::access_records::list,
        super::feishu::access_records::photo,
        super::feishu::access_rules::put_rule,
        super::feishu::access_rules::get_rules,
        super::feishu::access_rules::delete_rule,
        super::feishu::access_rules::device_bind,
        super::feishu::visitors::create,
        super::feishu::visitors::remove,
        super::facehub::devices::list,
        super::facehub::devices::bind,
        super::facehub::devices::unbind,
        super::facehub::devices::start,
        super::facehub::devices::show,
        super::facehub::devices::cancel,
        super::facehub::devices::checkins,
        super::facehub::privacy::erase,
        super::facehub::privacy::audit_logs,
        super::console::login,
        super::console::logout,
        super::console::session,
        super::console::tenancy::tenants,
        super::console::tenancy::create_tenant,
        super::console::tenancy::apps,
        super::console::tenancy::create_app,
        super::console::tenancy::rotate_secret,
        super::console::tenancy::set_scopes,
        super::console::people,
        super::console::import,
        super::console::person,
        super::console::devices,
        super::console::audit,
        super::console::file,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
    ),
    // The shared refusals (`Refusals`) refer to ErrorEnvelope without
    // registering it.
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
