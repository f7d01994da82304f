//! `facehub device`: attendance and door terminals and their enrolments.

use std::io::Write;

use clap::Subcommand;
use serde::Serialize;

use super::{TenantArg, user_err};
use crate::api::facehub::devices::Enrolment;
use crate::domain::Core;
use crate::domain::devices::{DeviceRow, Presence};

/// A terminal as `device list --json` shows it: what the store knows, with
/// `online` from the presence lease of the node holding its connection.
/// Fields in alphabetical order.
#[derive(Serialize)]
struct DeviceListed {
    bound: bool,
    fa_algorithms: Vec<String>,
    firmware_version: Option<String>,
    fp_algorithms: Vec<String>,
    last_seen: Option<i64>,
    online: bool,
    perm_version: i64,
    seen_version: i64,
    sn: String,
}

impl DeviceListed {
    fn of(d: &DeviceRow, now: Presence, perm_version: i64) -> DeviceListed {
        DeviceListed {
            bound: d.bound,
            fa_algorithms: d.fa_algorithms.clone(),
            firmware_version: d.firmware_version.clone(),
            fp_algorithms: d.fp_algorithms.clone(),
            last_seen: now.last_seen,
            online: now.online,
            perm_version,
            seen_version: now.seen_version,
            sn: d.sn.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// Add a terminal by its serial number and factory SecretNo
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// The device's serial number
        #[arg(long)]
        sn: String,
        /// The SecretNo burned into the device, which signs its `register`
        #[arg(long)]
        secret_no: String,
        /// Bind it at once
        #[arg(long)]
        bind: bool,
    },
    /// Bind a terminal to its tenant: its `active` then returns a secret
    Bind {
        #[command(flatten)]
        tenant: TenantArg,
        /// The device's serial number
        #[arg(long)]
        sn: String,
    },
    /// Unbind: the device's secret dies and it must activate again
    Unbind {
        #[command(flatten)]
        tenant: TenantArg,
        /// The device's serial number
        #[arg(long)]
        sn: String,
    },
    /// List a tenant's terminals
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        json: bool,
    },
    /// Start an enrolment on a terminal: `fa`/`fp` opens its capture page,
    /// `photo` sends it the person's stored face photos
    Enrol {
        #[command(flatten)]
        tenant: TenantArg,
        /// The terminal to enrol on
        #[arg(long)]
        sn: String,
        /// The person to enrol
        #[arg(long)]
        user_id: String,
        /// fa: face capture on the device; fp: fingerprint capture; photo:
        /// the person's stored face photos, turned into templates by the device
        #[arg(long, value_parser = ["fa", "fp", "photo"])]
        kind: String,
    },
    /// Show an enrolment and its outcome
    Enrolment {
        #[command(flatten)]
        tenant: TenantArg,
        /// The oper_id `enrol` printed
        oper_id: String,
        /// Cancel it if it is still open
        #[arg(long)]
        cancel: bool,
    },
}

pub(super) async fn run(core: &Core, cmd: DeviceCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Add {
            tenant,
            sn,
            secret_no,
            bind,
        } => {
            let tenant = tenant.resolve(core).await?;
            core.add_device(&tenant, &sn, &secret_no)
                .await
                .map_err(user_err)?;
            if bind {
                core.bind_device(tenant.id, &sn).await.map_err(user_err)?;
            }
            writeln!(
                out,
                "added device {sn}{}",
                if bind { " (bound)" } else { "" }
            )?;
        }
        DeviceCmd::Bind { tenant, sn } => {
            let tenant = tenant.resolve(core).await?;
            let changed = core.bind_device(tenant.id, &sn).await.map_err(user_err)?;
            super::said(
                out,
                changed,
                format!("bound {sn}"),
                format!("{sn} was already bound"),
            )?;
        }
        DeviceCmd::Unbind { tenant, sn } => {
            let tenant = tenant.resolve(core).await?;
            let changed = core.unbind_device(tenant.id, &sn).await.map_err(user_err)?;
            super::said(
                out,
                changed,
                format!("unbound {sn}"),
                format!("{sn} was not bound"),
            )?;
        }
        DeviceCmd::List { tenant, json } => {
            let tenant = tenant.resolve(core).await?;
            let version = core.perm_version(tenant.id).await.map_err(user_err)?;
            let devices = core.devices(tenant.id).await?;
            let json_of = |d: &DeviceRow| DeviceListed::of(d, core.presence(d), version);
            let line_of = |d: &DeviceRow| {
                let now = core.presence(d);
                format!(
                    "{}\t{}\t{}\tfa {}\tfp {}\tbacklog {}",
                    d.sn,
                    if d.bound { "bound" } else { "unbound" },
                    if now.online { "online" } else { "offline" },
                    d.fa_algorithms.join(","),
                    d.fp_algorithms.join(","),
                    (version - now.seen_version).max(0)
                )
            };
            super::listing(out, json, &devices, json_of, line_of)?;
        }
        DeviceCmd::Enrol {
            tenant,
            sn,
            user_id,
            kind,
        } => {
            let tenant = tenant.resolve(core).await?;
            let e = core
                .start_enrolment(tenant.id, &sn, &user_id, &kind)
                .await
                .map_err(user_err)?;
            writeln!(out, "{}", serde_json::to_string(&Enrolment::from(e))?)?;
        }
        DeviceCmd::Enrolment {
            tenant,
            oper_id,
            cancel,
        } => {
            let tenant = tenant.resolve(core).await?;
            let e = if cancel {
                core.cancel_enrolment(tenant.id, &oper_id).await
            } else {
                core.enrolment(tenant.id, &oper_id).await
            }
            .map_err(user_err)?;
            writeln!(out, "{}", serde_json::to_string(&Enrolment::from(e))?)?;
        }
    }
    Ok(())
}
