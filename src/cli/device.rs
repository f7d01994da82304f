//! `facehub device`: attendance and door terminals and their enrolments.

use std::io::Write;

use clap::Subcommand;
use serde::Serialize;

use super::{TenantArg, user_err};
use crate::api::facehub::devices::Enrolment;
use crate::domain::Core;
use crate::domain::devices::{DeviceRow, Presence};
use crate::model::{PendingDevice, ZkSettings};

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
    protocol: &'static str,
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
            protocol: d.protocol.as_str(),
            seen_version: now.seen_version,
            sn: d.sn.clone(),
        }
    }
}

/// A pending serial number as `device pending --json` shows it.
#[derive(Serialize)]
struct PendingListed {
    address: String,
    first_seen: i64,
    last_seen: i64,
    protocol: &'static str,
    sn: String,
}

/// `+08:00`, `-03:30`, `+8`, `0` as minutes east of UTC.
fn utc_offset_min(s: &str) -> anyhow::Result<i64> {
    let bad = || anyhow::anyhow!("--utc-offset {s:?}: expected ±hh:mm, e.g. +08:00");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let h: i64 = h.parse().map_err(|_| bad())?;
    let m: i64 = m.parse().map_err(|_| bad())?;
    if !(0..60).contains(&m) || !(0..=14).contains(&h) {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// Add a terminal by its serial number (and, for WeCom, its factory
    /// SecretNo)
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// The device's serial number
        #[arg(long)]
        sn: String,
        /// The device protocol it speaks: wecom (WebSocket) or zkteco
        /// (PUSH/ADMS, `/iclock/*`)
        #[arg(long, default_value = "wecom", value_parser = ["wecom", "zkteco"])]
        protocol: String,
        /// WeCom: the SecretNo burned into the device, which signs its
        /// `register`
        #[arg(long)]
        secret_no: Option<String>,
        /// ZKTeco: the UTC offset its clock is set to, e.g. +08:00
        #[arg(long, default_value = "+00:00", allow_hyphen_values = true)]
        utc_offset: String,
        /// ZKTeco: a network (CIDR) or address it may call from; repeat for
        /// more. A ZKTeco terminal proves nothing but its serial number, so
        /// one of --allow-from and --allow-any is required
        #[arg(long)]
        allow_from: Vec<String>,
        /// ZKTeco: let it call from any address (anyone who reads its
        /// serial number off its label can then act as it)
        #[arg(long, conflicts_with = "allow_from")]
        allow_any: bool,
        /// Bind it at once
        #[arg(long)]
        bind: bool,
    },
    /// Serial numbers of ZKTeco terminals that called before they were
    /// added, newest first
    Pending {
        #[arg(long)]
        json: bool,
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
            protocol,
            secret_no,
            utc_offset,
            allow_from,
            allow_any,
            bind,
        } => {
            let tenant = tenant.resolve(core).await?;
            let added = if protocol == "zkteco" {
                if secret_no.is_some() {
                    anyhow::bail!("a ZKTeco terminal has no SecretNo: leave out --secret-no");
                }
                if allow_from.is_empty() && !allow_any {
                    anyhow::bail!(
                        "a ZKTeco terminal names itself by serial number alone: give the \
                         networks it calls from (--allow-from CIDR), or --allow-any"
                    );
                }
                let zk = ZkSettings {
                    utc_offset_min: utc_offset_min(&utc_offset)?,
                    allow_from,
                };
                core.add_zk_device(&tenant, &sn, &zk).await
            } else {
                let Some(secret_no) = secret_no else {
                    anyhow::bail!("a WeCom terminal needs --secret-no, its factory SecretNo");
                };
                if !allow_from.is_empty() || allow_any || utc_offset != "+00:00" {
                    anyhow::bail!(
                        "--utc-offset, --allow-from and --allow-any are for ZKTeco terminals"
                    );
                }
                core.add_device(&tenant, &sn, &secret_no).await
            };
            added.map_err(user_err)?;
            if bind {
                core.bind_device(tenant.id, &sn).await.map_err(user_err)?;
            }
            writeln!(
                out,
                "added device {sn}{}",
                if bind { " (bound)" } else { "" }
            )?;
        }
        DeviceCmd::Pending { json } => {
            let pending = core.pending_devices().await?;
            let json_of = |p: &PendingDevice| PendingListed {
                address: p.address.clone(),
                first_seen: p.first_seen,
                last_seen: p.last_seen,
                protocol: p.protocol.as_str(),
                sn: p.sn.clone(),
            };
            let line_of = |p: &PendingDevice| {
                format!(
                    "{}\t{}\tfrom {}\tlast seen {}",
                    p.sn,
                    p.protocol.as_str(),
                    p.address,
                    p.last_seen
                )
            };
            super::listing(out, json, &pending, json_of, line_of)?;
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

#[cfg(test)]
mod tests {
    use super::utc_offset_min;

    #[test]
    fn utc_offsets() {
        for (given, min) in [
            ("+08:00", 480),
            ("-03:30", -210),
            ("+05:45", 345),
            ("8", 480),
            ("0", 0),
            ("+14:00", 840),
            ("-12:00", -720),
        ] {
            assert_eq!(utc_offset_min(given).unwrap(), min, "{given}");
        }
        for bad in ["", "+8:60", "+15:00", "UTC", "+08:00:00", "--1"] {
            assert!(utc_offset_min(bad).is_err(), "{bad}");
        }
    }
}
