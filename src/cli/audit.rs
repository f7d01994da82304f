//! `facehub audit`: list and export the audit log of biometric data.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{TenantArg, user_err};
use crate::domain::Core;
use crate::domain::audit::{AuditFilter, AuditRecord};

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// List audit records (oldest first)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// At most this many records
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Export every matching record, as CSV or JSON lines
    Export {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        filter: AuditFilterArgs,
        #[arg(long, value_parser = ["csv", "jsonl"], default_value = "csv")]
        format: String,
        /// Write here instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct AuditFilterArgs {
    /// Only records about this person
    #[arg(long)]
    user_id: Option<String>,
    /// Only this action (e.g. photo.download, face.enrol, template.sync, person.erase)
    #[arg(long)]
    action: Option<String>,
    /// From this time on (RFC 3339, e.g. 2026-11-01T00:00:00Z)
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339)
    #[arg(long)]
    until: Option<String>,
}

impl AuditFilterArgs {
    fn filter(&self) -> anyhow::Result<AuditFilter> {
        let ms = |v: &Option<String>, name: &str| -> anyhow::Result<Option<i64>> {
            v.as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|d| d.timestamp_millis())
                        .map_err(|e| anyhow::anyhow!("--{name} {t:?}: {e}"))
                })
                .transpose()
        };
        Ok(AuditFilter {
            subject: self.user_id.clone(),
            action: self.action.clone(),
            since_ms: ms(&self.since, "since")?,
            until_ms: ms(&self.until, "until")?,
        })
    }
}

pub(super) async fn run(core: &Core, cmd: AuditCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::List {
            tenant,
            filter,
            limit,
            json,
        } => {
            let tenant = tenant.resolve(core).await?;
            let records = core
                .audit_page(tenant.id, &filter.filter()?, 0, limit)
                .await
                .map_err(user_err)?;
            let json_of =
                |r: &AuditRecord| crate::api::facehub::privacy::AuditRecord::from(r.clone());
            super::listing(out, json, &records, json_of, audit_tsv)?;
        }
        AuditCmd::Export {
            tenant,
            filter,
            format,
            output,
        } => {
            let tenant = tenant.resolve(core).await?;
            let filter = filter.filter()?;
            let mut sink: Box<dyn Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(&mut *out),
            };
            let csv = format == "csv";
            if csv {
                sink.write_all(&csv_rows([[
                    "id",
                    "time",
                    "actor_kind",
                    "actor",
                    "action",
                    "subject",
                    "object",
                    "result",
                    "log_id",
                ]
                .map(String::from)])?)?;
            }
            let (mut after, mut n) = (0, 0u64);
            loop {
                let page = core
                    .audit_page(tenant.id, &filter, after, 1000)
                    .await
                    .map_err(user_err)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                n += page.len() as u64;
                if csv {
                    sink.write_all(&csv_rows(page.iter().map(|r| {
                        [
                            r.id.to_string(),
                            rfc3339_ms(r.at_ms),
                            r.actor_kind.clone(),
                            r.actor.clone(),
                            r.action.clone(),
                            r.subject.clone().unwrap_or_default(),
                            r.object.clone().unwrap_or_default(),
                            r.result.clone(),
                            r.log_id.clone().unwrap_or_default(),
                        ]
                    }))?)?;
                } else {
                    for r in &page {
                        serde_json::to_writer(&mut sink, r)?;
                        sink.write_all(b"\n")?;
                    }
                }
            }
            sink.flush()?;
            drop(sink);
            if let Some(p) = output {
                writeln!(out, "exported {n} records to {}", p.display())?;
            }
        }
    }
    Ok(())
}

fn csv_rows(rows: impl IntoIterator<Item = [String; 9]>) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        w.write_record(r)?;
    }
    Ok(w.into_inner()?)
}

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn audit_tsv(r: &AuditRecord) -> String {
    format!(
        "{}\t{}\t{}:{}\t{}\t{}\t{}\t{}",
        r.id,
        rfc3339_ms(r.at_ms),
        r.actor_kind,
        r.actor,
        r.action,
        r.subject.as_deref().unwrap_or("-"),
        r.object.as_deref().unwrap_or("-"),
        r.result
    )
}
