//! `facehub app`: create apps (app_id / app_secret with scopes) and list them.

use std::io::Write;

use clap::Subcommand;
use serde::Serialize;

use super::user_err;
use crate::api::console::views::{AppSecret, AppSummary};
use crate::domain::{App, Core, Scope};

/// An app as the console lists it, with the name of its tenant (the CLI
/// lists every tenant's apps at once).
#[derive(Serialize)]
struct TenantApp {
    #[serde(flatten)]
    app: AppSummary,
    tenant: String,
}

#[derive(Subcommand, Debug)]
pub enum AppCmd {
    /// Create an app and print its app_id and app_secret (shown only once)
    Create {
        /// Name of the tenant the app belongs to
        #[arg(long)]
        tenant: String,
        /// A scope the app holds; repeat for several
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Print {"app_id": …, "app_secret": …}
        #[arg(long)]
        json: bool,
    },
    /// List apps
    List {
        /// Only this tenant's apps
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(core: &Core, cmd: AppCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        AppCmd::Create {
            tenant,
            scopes,
            json,
        } => {
            let tenant = core.tenant(&tenant).await.map_err(user_err)?;
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!(e))?;
            let created = core.create_app(&tenant, &scopes).await.map_err(user_err)?;
            if json {
                let secret = AppSecret {
                    app_id: created.app.app_id.clone(),
                    app_secret: created.app_secret.clone(),
                };
                writeln!(out, "{}", serde_json::to_string(&secret)?)?;
            } else {
                writeln!(out, "app_id:     {}", created.app.app_id)?;
                writeln!(out, "app_secret: {}", created.app_secret)?;
                writeln!(out, "scopes:     {}", created.app.scopes.join(" "))?;
                writeln!(out, "(the secret is stored only as a hash: keep it now)")?;
            }
        }
        AppCmd::List { tenant, json } => {
            let tenants = core.tenants().await?;
            let name_of = |id: i64| {
                tenants
                    .iter()
                    .find(|t| t.id == id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            };
            let apps: Vec<_> = core
                .apps()
                .await?
                .into_iter()
                .filter(|a| tenant.as_ref().is_none_or(|t| &name_of(a.tenant_id) == t))
                .collect();
            let json_of = |a: &App| TenantApp {
                app: a.into(),
                tenant: name_of(a.tenant_id),
            };
            let line_of = |a: &App| {
                let scopes = a.scopes.join(" ");
                format!("{}\t{}\t{scopes}", a.app_id, name_of(a.tenant_id))
            };
            super::listing(out, json, &apps, json_of, line_of)?;
        }
    }
    Ok(())
}
