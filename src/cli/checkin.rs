//! `facehub checkin`: the punch records terminals uploaded.

use std::io::Write;

use clap::Subcommand;

use super::{TenantArg, user_err};
use crate::domain::Core;

#[derive(Subcommand, Debug)]
pub enum CheckinCmd {
    /// A person's punch records on one day (UTC)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        /// The person whose records to list
        #[arg(long)]
        user_id: String,
        /// YYYY-MM-DD
        #[arg(long)]
        day: String,
    },
}

pub(super) async fn run(core: &Core, cmd: CheckinCmd, out: &mut impl Write) -> anyhow::Result<()> {
    let CheckinCmd::List {
        tenant,
        user_id,
        day,
    } = cmd;
    let tenant = tenant.resolve(core).await?;
    let records = core
        .checkins_on(tenant.id, &user_id, &day)
        .await
        .map_err(user_err)?;
    for (sn, r) in records {
        let at = chrono::DateTime::from_timestamp(r.timestamp, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        writeln!(
            out,
            "{at}\t{sn}\tpass_type {}\tpass_method {}",
            r.pass_type.map_or("-".into(), |v| v.to_string()),
            r.pass_method.map_or("-".into(), |v| v.to_string())
        )?;
    }
    Ok(())
}
