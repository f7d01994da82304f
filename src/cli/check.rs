//! `facehub check`: verify the data directory.

use std::io::Write;

use clap::Args;

use crate::domain::Core;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(core: &Core, args: CheckArgs, out: &mut impl Write) -> anyhow::Result<()> {
    // With a server running, an upload's blob lands just before its
    // row commits: look twice before calling a blob unreferenced.
    let settle = if crate::store::server_running(&core.config().data_dir) {
        std::time::Duration::from_secs(2)
    } else {
        std::time::Duration::ZERO
    };
    let report = core.check(settle).await?;
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        writeln!(
            out,
            "blobs checked: {} ({} bytes)\nsealed values checked: {}\n\
             missing: {}\ncorrupt: {}\nunreferenced: {}\ndangling face files: {}\n\
             temporary files: {}\nrecent unreferenced (uploads in flight?): {}\n\
             writes without their audit record: {}",
            report.blobs_checked,
            report.blob_bytes,
            report.sealed_checked,
            report.missing.len(),
            report.corrupt.len() + report.sealed_bad.len(),
            report.unreferenced.len(),
            report.dangling.len(),
            report.temporary,
            report.recent,
            report.unaudited.len()
        )?;
        for id in &report.missing {
            writeln!(out, "missing\t{id}")?;
        }
        for p in report.corrupt.iter().chain(&report.sealed_bad) {
            writeln!(out, "corrupt\t{}\t{}", p.id, p.why)?;
        }
        for id in &report.unreferenced {
            writeln!(out, "unreferenced\t{id}")?;
        }
        for id in &report.dangling {
            writeln!(out, "dangling\t{id}")?;
        }
        for w in &report.unaudited {
            writeln!(out, "unaudited\t{w}")?;
        }
        for p in &report.weak_secret_nos {
            writeln!(out, "warning: weak SecretNo\t{}\t{}", p.id, p.why)?;
        }
    }
    out.flush()?;
    anyhow::ensure!(
        report.problems() == 0,
        "{} problem(s) found",
        report.problems()
    );
    Ok(())
}
