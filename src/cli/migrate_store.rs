//! `facehub migrate-store`: move the blobs to another blob store, the
//! metadata to another database, or both.

use std::io::Write;

use anyhow::Context;
use clap::Args;

use crate::domain::Core;
use crate::domain::deployment::canonical_blob_store;
use crate::server::open_blob_store;

#[derive(Args, Debug)]
pub struct MigrateStoreArgs {
    /// The source: "local" (the data directory) or s3://bucket[/prefix]?endpoint=…
    /// [default: the configured blob store]
    #[arg(long, value_name = "STORE")]
    from: Option<String>,
    /// The blobs' destination: "local" or s3://bucket[/prefix]?endpoint=…
    #[arg(long, value_name = "STORE")]
    to: Option<String>,
    /// The metadata's destination: postgres://… (from the data
    /// directory's SQLite or --database), or "local" (the data
    /// directory's SQLite, from --database)
    #[arg(long, value_name = "DATABASE")]
    to_database: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(
    core: &Core,
    args: MigrateStoreArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let MigrateStoreArgs {
        from,
        to,
        to_database,
        json,
    } = args;
    // Uploads during the copy would be left behind in the source.
    let _lock = crate::store::lock_data_dir(&core.config().data_dir)
        .context("a server is running on this data directory: stop it before migrate-store")?;
    anyhow::ensure!(
        to.is_some() || to_database.is_some(),
        "name --to (the blobs' destination), --to-database (the metadata's), or both"
    );
    if let Some(to) = to {
        migrate_blobs(core, from, &to, json, out).await?;
    }
    if let Some(target) = to_database {
        migrate_metadata(core, &target, json, out).await?;
    }
    Ok(())
}

/// `migrate-store --to`: every blob copied and verified; once all are there,
/// the data directory switches to the destination.
async fn migrate_blobs(
    core: &Core,
    from: Option<String>,
    to: &str,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    // The source is where the data directory's blobs are now,
    // unless named (resuming after a switch, say).
    let from = match from {
        Some(f) => canonical_blob_store(Some(&f))?,
        None => canonical_blob_store(core.config().blobs.as_deref())?,
    };
    let to = canonical_blob_store(Some(to))?;
    anyhow::ensure!(
        from != to,
        "the blobs are in {to} already (a migrate-store to it finished); name --from to \
         copy from another store"
    );
    let source = open_blob_store(Some(&from), core.config(), core.blob_namespace()).await?;
    let dest = open_blob_store(Some(&to), core.config(), core.blob_namespace()).await?;
    dest.probe().await.context("the destination")?;
    let bar = super::progress(0, "{spinner} copying blobs [{bar:40}] {pos}/{len} ({eta})");
    let m = core
        .move_blobs(source, dest, &to, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&m)?)?;
    } else {
        writeln!(
            out,
            "files: {}\ncopied: {} ({} bytes)\nalready there: {}\nmissing: {}\ncorrupt: {}",
            m.files,
            m.copied,
            m.copied_bytes,
            m.present,
            m.missing.len(),
            m.corrupt.len()
        )?;
        for id in &m.missing {
            writeln!(out, "missing\t{id}")?;
        }
        for p in &m.corrupt {
            writeln!(out, "corrupt\t{}\t{}", p.id, p.why)?;
        }
        if m.complete() {
            writeln!(
                out,
                "every blob is in {to}, and the data directory now uses it: start the \
                 server (without --blobs, or with this one); the source's blobs can then \
                 be removed"
            )?;
        }
    }
    out.flush()?;
    anyhow::ensure!(
        m.complete(),
        "{} blob(s) could not be copied",
        m.missing.len() + m.corrupt.len()
    );
    Ok(())
}

/// `migrate-store --to-database`: every table copied and proved.
async fn migrate_metadata(
    core: &Core,
    target: &str,
    json: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let (to, shown) = match target {
        "local" => {
            anyhow::ensure!(
                core.config().database.is_some(),
                "the metadata is in the data directory's SQLite already"
            );
            (None, core.config().database_path().display().to_string())
        }
        url => {
            anyhow::ensure!(
                core.config().database.as_deref() != Some(url),
                "the metadata is in {} already",
                crate::config::redact_url(url)
            );
            (Some(url), crate::config::redact_url(url))
        }
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} copying metadata: {msg}")
            .expect("valid template"),
    );
    let tables = core
        .copy_metadata(to, |table, rows| {
            bar.set_message(format!("{table} ({rows} rows)"))
        })
        .await;
    bar.finish_and_clear();
    let tables = tables?;
    let bad: Vec<&str> = tables
        .iter()
        .filter(|t| !t.verified)
        .map(|t| t.table.as_str())
        .collect();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tables)?)?;
    } else {
        for t in &tables {
            writeln!(
                out,
                "{}\t{} rows\t{} copied\t{}",
                t.table,
                t.rows,
                t.copied,
                if t.verified { "verified" } else { "DIFFERS" }
            )?;
        }
        if bad.is_empty() {
            writeln!(
                out,
                "the metadata is in {shown}, every table verified: start every node with \
                 --database (or \"database\" in its configuration) naming it"
            )?;
        }
    }
    out.flush()?;
    anyhow::ensure!(
        bad.is_empty(),
        "these tables differ between the two stores (rows changed in the destination, or in \
         the source since an earlier run): {}",
        bad.join(", ")
    );
    Ok(())
}
