//! `/open-apis/acs/v1/visitors*`: visitors, who reach terminals through
//! access rules (`rule_external`'s `visitors`).

use axum::Router;
use axum::extract::State;
use axum::routing::{delete, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::access_rules::Id;
use super::acs::CODES;
use super::envelope::{Empty, Envelope, Refusals};
use crate::api::AppState;
use crate::api::extract::{Authed, Json, PathParam, endpoint, path_param};
use crate::api::middleware::speaking;
use crate::domain::auth::TokenTypes;
use crate::domain::visitors::VisitorDraft;
use crate::model::error::{Error, Result};

// The Python SDK sends a user access token to these calls, the Node SDK a
// tenant one unless told otherwise: both are taken.
const SCOPES: &[&str] = &["acs:visitor"];
endpoint!(
    Create,
    "acs.visitors.create",
    SCOPES,
    TokenTypes::TENANT_OR_USER
);
endpoint!(
    Delete,
    "acs.visitors.delete",
    SCOPES,
    TokenTypes::TENANT_OR_USER
);

pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .route("/open-apis/acs/v1/visitors", post(create))
        .route("/open-apis/acs/v1/visitors/{visitor_id}", delete(remove));
    speaking(routes, &CODES)
}

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    user: Option<VisitorIn>,
}

/// The visitor as sent: `user_name` is what terminals show; the rest is
/// kept as given and listed with the rules that name them.
#[derive(Deserialize, ToSchema)]
pub struct VisitorIn {
    user_type: Option<i64>,
    user_id: Option<Id>,
    user_name: Option<String>,
    phone_num: Option<String>,
    department_id: Option<Id>,
}

impl VisitorIn {
    fn draft(self) -> Result<VisitorDraft> {
        let name = self
            .user_name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| Error::param("user.user_name is required"))?;
        let mut details = Map::new();
        let mut keep = |field: &str, v: Option<String>, max: usize| -> Result<()> {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                if v.chars().count() > max || v.chars().any(char::is_control) {
                    return Err(Error::param(format!(
                        "user.{field} must be at most {max} printable characters"
                    )));
                }
                details.insert(field.to_string(), Value::String(v));
            }
            Ok(())
        };
        keep("user_id", self.user_id.map(Id::text), 64)?;
        keep("phone_num", self.phone_num, 32)?;
        keep("department_id", self.department_id.map(Id::text), 64)?;
        if let Some(t) = self.user_type {
            details.insert("user_type".into(), Value::from(t));
        }
        Ok(VisitorDraft { name, details })
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreateData {
    visitor_id: String,
}

#[utoipa::path(
    post,
    path = "/open-apis/acs/v1/visitors",
    tag = "acs",
    params(("user_id_type" = Option<String>, Query, description = "accepted; a visitor is named by its visitor_id")),
    request_body(content = CreateBody),
    responses((status = 200, body = Envelope<CreateData>), Refusals),
    security(("bearer" = []))
)]
async fn create(
    auth: Authed<Create>,
    State(state): State<AppState>,
    Json(body): Json<CreateBody>,
) -> Result<Envelope<CreateData>> {
    let draft = body
        .user
        .ok_or_else(|| Error::param("user is required"))?
        .draft()?;
    let visitor_id = state.core.create_visitor(&auth.caller, draft).await?;
    Ok(Envelope::success(CreateData { visitor_id }))
}

#[utoipa::path(
    delete,
    path = "/open-apis/acs/v1/visitors/{visitor_id}",
    tag = "acs",
    params(
        ("visitor_id" = String, Path, description = "as visitors.create answered"),
        ("user_id_type" = Option<String>, Query, description = "accepted; a visitor is named by its visitor_id"),
    ),
    responses((status = 200, body = Envelope<Empty>), Refusals),
    security(("bearer" = []))
)]
async fn remove(
    auth: Authed<Delete>,
    State(state): State<AppState>,
    visitor_id: PathParam,
) -> Result<Envelope<Empty>> {
    let visitor_id = path_param(visitor_id, "visitor_id")?;
    state.core.delete_visitor(&auth.caller, &visitor_id).await?;
    Ok(Envelope::success(Empty {}))
}
