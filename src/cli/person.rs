//! `facehub person`: add, import, list, show and erase the people of a tenant.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::Serialize;

use super::{TenantArg, user_err};
use crate::api::facehub::privacy::Erasure;
use crate::domain::audit::ActorKind;
use crate::domain::{Core, Person, PersonDraft};

/// A person as `person list --json` shows it (the console's list has no
/// `union_id`). Fields in alphabetical order, as the output has always been.
#[derive(Serialize)]
struct PersonRow {
    employee_no: Option<String>,
    name: String,
    union_id: String,
    user_id: String,
}

/// A person as `person show` prints it: the ids each app sees and the
/// extra fields, which the console's card leaves out.
#[derive(Serialize)]
struct PersonShown {
    attendance: Option<ShownFace>,
    employee_no: Option<String>,
    extra: serde_json::Map<String, serde_json::Value>,
    name: String,
    /// open_id by app_id.
    open_ids: std::collections::BTreeMap<String, String>,
    union_id: String,
    user_id: String,
}

#[derive(Serialize)]
struct ShownFace {
    face_key: String,
    face_key_open: bool,
    face_key_update_time: i64,
}

#[derive(Subcommand, Debug)]
pub enum PersonCmd {
    /// Add a person, or update the name and employee number of an existing one
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// Tenant-wide user id (the attendance `employee_id`)
        #[arg(long)]
        user_id: String,
        /// Display name
        #[arg(long)]
        name: String,
        /// Employee number (the attendance `employee_no`), unique in the tenant
        #[arg(long)]
        employee_no: Option<String>,
        /// On the device protocol: 0 employee (default for a new person),
        /// 1 visitor, 2 student
        #[arg(long)]
        user_type: Option<String>,
    },
    /// Import people from a CSV file with columns user_id, name[, employee_no, …]
    Import {
        #[command(flatten)]
        tenant: TenantArg,
        file: PathBuf,
    },
    /// List the people of a tenant
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        json: bool,
    },
    /// Show one person with their ids and face setting
    Show {
        #[command(flatten)]
        tenant: TenantArg,
        user_id: String,
    },
    /// Erase a person: every photo ever bound to them, their door-access
    /// face and crop, templates, enrolments, punch records and tokens, from
    /// the database and blob storage; connected terminals are told to
    /// delete them. Cannot be undone.
    Erase {
        #[command(flatten)]
        tenant: TenantArg,
        user_id: String,
        /// Print the outcome as JSON
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn run(core: &Core, cmd: PersonCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        PersonCmd::Add {
            tenant,
            user_id,
            name,
            employee_no,
            user_type,
        } => {
            let tenant = tenant.resolve(core).await?;
            let mut draft =
                PersonDraft::new(&user_id, &name, employee_no.as_deref()).map_err(user_err)?;
            draft.user_type = user_type
                .map(|t| crate::domain::UserType::parse(&t))
                .transpose()
                .map_err(user_err)?;
            let (p, outcome) = core
                .upsert_person(&tenant, &draft)
                .await
                .map_err(user_err)?;
            writeln!(out, "{:?} {} (union_id {})", outcome, p.user_id, p.union_id)?;
        }
        PersonCmd::Import { tenant, file } => {
            let tenant = tenant.resolve(core).await?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let len = f.metadata()?.len();
            let bar = super::progress(
                len,
                "{spinner} importing [{bar:40}] {bytes}/{total_bytes} ({eta})",
            );
            let report = core
                .import_people(&tenant, std::io::BufReader::new(f), |pos| {
                    bar.set_position(pos)
                })
                .await
                .map_err(user_err)?;
            bar.finish_and_clear();
            writeln!(
                out,
                "created {}, updated {}, unchanged {}, rejected {}",
                report.created,
                report.updated,
                report.unchanged,
                report.rejected.len()
            )?;
            for (line, why) in &report.rejected {
                writeln!(out, "  line {line}: {why}")?;
            }
        }
        PersonCmd::List { tenant, json } => {
            let tenant = tenant.resolve(core).await?;
            let people = core.people(tenant.id).await?;
            let json_of = |p: &Person| PersonRow {
                employee_no: p.employee_no.clone(),
                name: p.name.clone(),
                union_id: p.union_id.clone(),
                user_id: p.user_id.clone(),
            };
            let line_of = |p: &Person| {
                let no = p.employee_no.as_deref().unwrap_or("-");
                format!("{}\t{}\t{no}", p.user_id, p.name)
            };
            super::listing(out, json, &people, json_of, line_of)?;
        }
        PersonCmd::Show { tenant, user_id } => {
            let tenant = tenant.resolve(core).await?;
            let Some(detail) = core.person_detail(tenant.id, &user_id).await? else {
                bail!("no person {user_id:?} in tenant {}", tenant.name);
            };
            let p = detail.person;
            let v = PersonShown {
                attendance: detail.attendance.map(|s| ShownFace {
                    face_key: s.face_key,
                    face_key_open: s.face_key_open,
                    face_key_update_time: s.face_key_update_time,
                }),
                employee_no: p.employee_no,
                extra: p.extra,
                name: p.name,
                open_ids: detail.open_ids.into_iter().collect(),
                union_id: p.union_id,
                user_id: p.user_id,
            };
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        PersonCmd::Erase {
            tenant,
            user_id,
            json,
        } => {
            let tenant = tenant.resolve(core).await?;
            let done = core
                .erase_person(tenant.id, &user_id, ActorKind::Admin, "cli", None)
                .await
                .map_err(user_err)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&Erasure::from(done))?)?;
            } else {
                writeln!(
                    out,
                    "erased {}: {} photos, {} templates; terminals are told at their next sync",
                    done.user_id, done.files, done.templates
                )?;
            }
        }
    }
    Ok(())
}
