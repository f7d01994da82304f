//! `facehub tenant`: create and list tenants.

use std::io::Write;

use clap::Subcommand;

use super::user_err;
use crate::api::console::views::TenantSummary;
use crate::domain::{Core, Tenant};

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
            let apps = if json { core.apps().await? } else { Vec::new() };
            let json_of = |t: &Tenant| TenantSummary::of(t, &apps);
            let line_of = |t: &Tenant| format!("{}\t{}", t.name, t.tenant_key);
            super::listing(out, json, &ts, json_of, line_of)?;
        }
    }
    Ok(())
}
