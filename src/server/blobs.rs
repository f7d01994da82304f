//! Which blob store a data directory's blobs are in, and pinning it: the
//! metadata records the store, so that a node started with another one is
//! refused instead of splitting the data between two stores.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::domain::deployment::{BLOB_STORE, canonical_blob_store};
use crate::store::Db;
use crate::store::blob::{BlobStore, LocalBlobStore};
use crate::store::s3::{S3BlobStore, S3Location};

/// The store to open: the data directory records where its blobs are, so
/// a command run without `--blobs` still finds them, and a server started
/// with another store is refused instead of splitting the data between
/// two stores. The store is recorded by the first `serve` (or the first
/// command to find files already stored), so admin commands run before it
/// without `--blobs` do not pin the embedded store.
pub async fn blob_store_spec(configured: Option<&str>, db: &Db) -> anyhow::Result<String> {
    let configured = configured
        .map(|c| canonical_blob_store(Some(c)))
        .transpose()?;
    match (db.meta_get(BLOB_STORE).await?, configured) {
        (Some(recorded), None) => Ok(recorded),
        (Some(recorded), Some(c)) if recorded == c => Ok(recorded),
        (Some(recorded), Some(c)) => anyhow::bail!(
            "blobs: this data directory's blobs are in {recorded}, not {c}; move them with \
             `facehub migrate-store --to {c}` first"
        ),
        (None, c) => {
            let c = c.unwrap_or_else(|| "local".to_string());
            if db.file_count().await? > 0 {
                db.meta_set(BLOB_STORE, &c).await?;
            }
            Ok(c)
        }
    }
}

/// The blob store `spec` names: `None` or `"local"` for the data
/// directory, else an `s3://` URL, in the namespace the metadata names
/// (`namespace`, awaited only for a bucket: see
/// [`crate::domain::deployment::blob_namespace`]).
pub async fn open_blob_store(
    spec: Option<&str>,
    config: &Config,
    namespace: impl Future<Output = anyhow::Result<String>>,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match spec {
        None | Some("local") => Arc::new(LocalBlobStore::open(&config.data_dir)?),
        Some(url) => {
            let loc = S3Location::parse(url)?;
            let ns = namespace.await?;
            Arc::new(S3BlobStore::open(
                &loc,
                &ns,
                &config.data_dir.join("spool"),
            )?)
        }
    })
}

/// Meta key naming the data directory that holds a PostgreSQL
/// database's blobs when they are local (see `claim_local_blobs`).
const LOCAL_BLOBS_OWNER: &str = "local_blobs_owner";

/// A database other nodes can share, with blobs in one node's data
/// directory: only that directory can serve them, and another node would
/// answer its uploads' downloads with 404s. The database records which
/// directory it is (an id kept in the directory), and any other is refused.
pub(super) async fn claim_local_blobs(db: &Db, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let file = data_dir.join("blobs-owner");
    let ours = match std::fs::read_to_string(&file) {
        Ok(id) => id.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = hex::encode(crate::model::ids::random_bytes::<8>());
            std::fs::write(&file, &id).with_context(|| format!("writing {}", file.display()))?;
            id
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let owner = db
        .meta_get_or_init(LOCAL_BLOBS_OWNER, || ours.clone())
        .await?;
    anyhow::ensure!(
        owner == ours,
        "this database keeps its blobs in another data directory (blobs = local, the \
         default): nodes sharing a database need shared blobs (--blobs s3://…), and admin \
         commands run where the blobs are"
    );
    Ok(())
}
