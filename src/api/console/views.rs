//! What the console's JSON endpoints answer inside the platform envelope,
//! typed so that the OpenAPI document describes the very bytes. The CLI
//! prints some of them too (`facehub tenant list`, `app create`, `app list`).
//!
//! Fields are declared in alphabetical order: the bodies were built as
//! sorted JSON maps, and the wire stays byte-identical.

use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoResponses, ToSchema};

use crate::api::facehub::privacy::AuditRecord;
use crate::api::feishu::envelope::ErrorEnvelope;
use crate::domain::{App, Tenant};

/// The refusals of a console endpoint besides the shared ones.
#[derive(IntoResponses)]
pub enum AdminRefusals {
    #[response(status = 401, description = "no live administrator session")]
    LoginRequired(ErrorEnvelope),
    #[response(
        status = 403,
        description = "a change without the session's X-CSRF-Token"
    )]
    CsrfRejected(ErrorEnvelope),
}

/// The session's CSRF token, which every change must carry in `X-CSRF-Token`.
#[derive(Serialize, ToSchema)]
pub struct Csrf {
    pub csrf: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub items: Vec<TenantSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct TenantSummary {
    /// How many apps the tenant has.
    pub apps: usize,
    pub created_at: i64,
    pub name: String,
    pub tenant_key: String,
}

impl TenantSummary {
    /// `t` with the number of its apps among `apps`.
    pub fn of(t: &Tenant, apps: &[App]) -> TenantSummary {
        TenantSummary {
            apps: apps.iter().filter(|a| a.tenant_id == t.id).count(),
            created_at: t.created_at,
            name: t.name.clone(),
            tenant_key: t.tenant_key.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NewTenant {
    pub name: String,
    pub tenant_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct AppSummary {
    pub app_id: String,
    pub created_at: i64,
    pub disabled: bool,
    pub scopes: Vec<String>,
}

impl From<&App> for AppSummary {
    fn from(a: &App) -> AppSummary {
        AppSummary {
            app_id: a.app_id.clone(),
            created_at: a.created_at,
            disabled: a.disabled,
            scopes: a.scopes.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AppList {
    pub items: Vec<AppSummary>,
    /// Every scope an app may hold.
    #[schema(value_type = Vec<String>)]
    pub known_scopes: &'static [&'static str],
}

/// A new app and its secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewApp {
    pub app: AppSummary,
    pub app_secret: String,
}

/// An app's secret, shown this once (created or rotated).
#[derive(Serialize, ToSchema)]
pub struct AppSecret {
    pub app_id: String,
    pub app_secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct AppData {
    pub app: AppSummary,
}

#[derive(Serialize, ToSchema)]
pub struct PeoplePage {
    /// The first 200 matches.
    pub items: Vec<PersonSummary>,
    /// How many people match.
    pub total: usize,
}

#[derive(Serialize, ToSchema)]
pub struct PersonSummary {
    pub employee_no: Option<String>,
    pub name: String,
    pub user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ImportOutcome {
    pub created: u64,
    pub rejected: Vec<RejectedLine>,
    pub unchanged: u64,
    pub updated: u64,
}

#[derive(Serialize, ToSchema)]
pub struct RejectedLine {
    pub line: u64,
    pub reason: String,
}

/// One person, with their face settings and templates.
#[derive(Serialize, ToSchema)]
pub struct PersonCard {
    pub acs: Option<PersonAcs>,
    pub attendance: Option<PersonFace>,
    pub employee_no: Option<String>,
    pub name: String,
    pub templates: Vec<TemplateSummary>,
    pub union_id: String,
    pub user_id: String,
    /// 0 employee, 1 visitor, 2 student.
    pub user_type: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PersonAcs {
    pub card: Option<i64>,
    pub crop_file_id: Option<String>,
    /// The face's box in the photo, as stored.
    #[schema(value_type = Option<Object>)]
    pub face_box: Option<Value>,
    pub face_file_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PersonFace {
    pub face_key: String,
    pub face_key_open: bool,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateSummary {
    pub algorithm: String,
    pub modality: String,
    pub slot: i64,
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    /// The next 200 records after `after`.
    pub items: Vec<AuditRecord>,
}
