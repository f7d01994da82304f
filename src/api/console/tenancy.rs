//! The console's tenants and apps: list and create them, rotate an app's
//! secret, set its scopes.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;

use super::Admin;
use super::views::*;
use crate::api::AppState;
use crate::api::extract::Json;
use crate::api::feishu::envelope::{Envelope, Refusals};
use crate::domain::Scope;
use crate::model::error::{Error, Result};

#[utoipa::path(
    get,
    path = "/admin/api/tenants",
    tag = "console",
    responses((status = 200, body = Envelope<TenantList>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
pub(super) async fn tenants(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Envelope<TenantList>> {
    let apps = state.core.apps().await?;
    let items = state
        .core
        .tenants()
        .await?
        .iter()
        .map(|t| TenantSummary::of(t, &apps))
        .collect();
    Ok(Envelope::success(TenantList { items }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AdminTenantName)]
pub struct NameBody {
    #[serde(default)]
    name: String,
}

#[utoipa::path(
    post,
    path = "/admin/api/tenants",
    tag = "console",
    request_body = NameBody,
    responses((status = 200, body = Envelope<NewTenant>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
pub(super) async fn create_tenant(
    State(state): State<AppState>,
    _: Admin,
    Json(body): Json<NameBody>,
) -> Result<Envelope<NewTenant>> {
    let t = state.core.create_tenant(&body.name).await?;
    Ok(Envelope::success(NewTenant {
        name: t.name,
        tenant_key: t.tenant_key,
    }))
}

#[utoipa::path(
    get,
    path = "/admin/api/tenants/{tenant}/apps",
    tag = "console",
    params(("tenant" = String, Path, description = "the tenant's name")),
    responses((status = 200, body = Envelope<AppList>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
pub(super) async fn apps(
    State(state): State<AppState>,
    _: Admin,
    Path(tenant): Path<String>,
) -> Result<Envelope<AppList>> {
    let t = state.core.tenant(&tenant).await?;
    let items = state
        .core
        .apps_of(t.id)
        .await?
        .iter()
        .map(AppSummary::from)
        .collect();
    Ok(Envelope::success(AppList {
        items,
        known_scopes: Scope::KNOWN,
    }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AdminScopes)]
pub struct ScopesBody {
    #[serde(default)]
    scopes: Vec<String>,
}

fn parse_scopes(names: &[String]) -> Result<Vec<Scope>> {
    names
        .iter()
        .map(|s| Scope::parse(s).map_err(Error::param))
        .collect()
}

#[utoipa::path(
    post,
    path = "/admin/api/tenants/{tenant}/apps",
    tag = "console",
    params(("tenant" = String, Path, description = "the tenant's name")),
    request_body = ScopesBody,
    responses((status = 200, body = Envelope<NewApp>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
pub(super) async fn create_app(
    State(state): State<AppState>,
    _: Admin,
    Path(tenant): Path<String>,
    Json(body): Json<ScopesBody>,
) -> Result<Envelope<NewApp>> {
    let t = state.core.tenant(&tenant).await?;
    let created = state
        .core
        .create_app(&t, &parse_scopes(&body.scopes)?)
        .await?;
    Ok(Envelope::success(NewApp {
        app: AppSummary::from(&created.app),
        app_secret: created.app_secret,
    }))
}

#[utoipa::path(
    post,
    path = "/admin/api/apps/{app_id}/secret",
    tag = "console",
    params(("app_id" = String, Path)),
    responses((status = 200, body = Envelope<AppSecret>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    _: Admin,
    Path(app_id): Path<String>,
) -> Result<Envelope<AppSecret>> {
    let app_secret = state.core.rotate_app_secret(&app_id).await?;
    Ok(Envelope::success(AppSecret { app_id, app_secret }))
}

#[utoipa::path(
    put,
    path = "/admin/api/apps/{app_id}/scopes",
    tag = "console",
    params(("app_id" = String, Path)),
    request_body = ScopesBody,
    responses((status = 200, body = Envelope<AppData>), AdminRefusals, Refusals),
    security(("admin_session" = []))
)]
pub(super) async fn set_scopes(
    State(state): State<AppState>,
    _: Admin,
    Path(app_id): Path<String>,
    Json(body): Json<ScopesBody>,
) -> Result<Envelope<AppData>> {
    let app = state
        .core
        .set_app_scopes(&app_id, &parse_scopes(&body.scopes)?)
        .await?;
    Ok(Envelope::success(AppData {
        app: AppSummary::from(&app),
    }))
}
