//! `facehub acs`: grant and revoke door access.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{TenantArg, user_err};
use crate::domain::Core;

#[derive(Subcommand, Debug)]
pub enum AcsCmd {
    /// Grant door access to people (by user_id)
    Grant {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(required = true, value_name = "USER_ID")]
        user_ids: Vec<String>,
    },
    /// Revoke door access (their enrolled faces are deleted)
    Revoke {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(required = true, value_name = "USER_ID")]
        user_ids: Vec<String>,
    },
    /// Grant door access to every user_id in a CSV file (column `user_id`)
    Import {
        #[command(flatten)]
        tenant: TenantArg,
        file: PathBuf,
    },
}

pub(super) async fn run(core: &Core, cmd: AcsCmd, out: &mut impl Write) -> anyhow::Result<()> {
    let (tenant, ids, grant) = match cmd {
        AcsCmd::Grant { tenant, user_ids } => (tenant, user_ids, true),
        AcsCmd::Revoke { tenant, user_ids } => (tenant, user_ids, false),
        AcsCmd::Import { tenant, file } => (tenant, user_ids_in(&file)?, true),
    };
    let tenant = tenant.resolve(core).await?;
    let n = if grant {
        core.acs_grant(&tenant, &ids).await.map_err(user_err)?
    } else {
        core.acs_revoke(&tenant, &ids).await.map_err(user_err)?
    };
    let verb = if grant { "granted" } else { "revoked" };
    writeln!(out, "{verb} door access for {n} of {} people", ids.len())?;
    Ok(())
}

/// The non-empty values of the CSV file's `user_id` column.
fn user_ids_in(file: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("reading {}", file.display()))?;
    let col = rdr
        .headers()?
        .iter()
        .position(|h| h == "user_id")
        .context("the CSV has no user_id column")?;
    let mut ids = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        if let Some(id) = rec.get(col).filter(|s| !s.is_empty()) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}
