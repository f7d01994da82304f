//! `facehub tenant`: create and list tenants.

use std::io::Write;

use clap::Subcommand;

use super::user_err;
use crate::api::console::views::TenantSummary;
use crate::domain::Core;

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant
    Create { name: String },
    /// List tenants
    List {
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(core: &Core, cmd: TenantCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        TenantCmd::Create { name } => {
            let t = core.create_tenant(&name).await.map_err(user_err)?;
            writeln!(
                out,
                "created tenant {} (tenant_key {})",
                t.name, t.tenant_key
            )?;
        }
        TenantCmd::List { json } => {
            let ts = core.tenants().await?;
            if json {
                let apps = core.apps().await?;
                let v: Vec<_> = ts.iter().map(|t| TenantSummary::of(t, &apps)).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for t in ts {
                    writeln!(out, "{}\t{}", t.name, t.tenant_key)?;
                }
            }
        }
    }
    Ok(())
}
