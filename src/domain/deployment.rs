//! What the metadata records about the deployment beside its data: which
//! blob store holds the blobs, whether a migrate-store copy is running,
//! the key new data is sealed under, the blobs' namespace in a bucket.
//! The composition reads some of these before a [`Core`] exists (through
//! the free functions over a [`Db`]); everything after goes through the core.

use super::Core;
use crate::model::ids;
use crate::store::Db;
use crate::store::s3::S3Location;

/// Meta key set while `migrate-store` runs (with the data directory's
/// lock held); a stale one (the copy was killed) is ignored.
pub const MAINTENANCE: &str = "maintenance";

/// Meta key of the blob store the metadata's blobs are in, in canonical
/// form: `local` or an `s3://` URL.
pub const BLOB_STORE: &str = "blob_store";

/// Meta key naming the blobs' namespace in a bucket: every node of a
/// deployment agrees on it, another deployment differs.
const BLOB_NAMESPACE: &str = "blob_namespace";

/// `local`, or the `s3://` URL as parsed, so that spellings of one store
/// compare equal.
pub fn canonical_blob_store(spec: Option<&str>) -> anyhow::Result<String> {
    Ok(match spec {
        None | Some("local") => "local".to_string(),
        Some(url) => S3Location::parse(url)?.to_string(),
    })
}

/// Whether a migrate-store marker is set (alive or left by a killed copy).
pub async fn migration_marked(db: &Db) -> anyhow::Result<bool> {
    Ok(db
        .meta_get(MAINTENANCE)
        .await?
        .is_some_and(|m| !m.is_empty()))
}

/// The blobs' namespace in a bucket, chosen by the first node to ask.
pub async fn blob_namespace(db: &Db) -> anyhow::Result<String> {
    db.meta_get_or_init(BLOB_NAMESPACE, || hex::encode(ids::random_bytes::<8>()))
        .await
}

impl Core {
    /// What a server records as it starts, holding the data directory's
    /// lock: the blob store (see `server::blob_store_spec`), the key this
    /// node seals under (with keys from the configuration, the
    /// deployment's: `key reseal` checks it), and that any migrate-store
    /// marker is a killed copy's.
    pub async fn begin_serving(&self) -> anyhow::Result<()> {
        if self.db.meta_get(BLOB_STORE).await?.is_none() {
            let spec = canonical_blob_store(self.config.blobs.as_deref())?;
            self.db.meta_set(BLOB_STORE, &spec).await?;
        }
        let current = crate::crypto::key_id_hex(self.keys.current().id());
        if self.db.meta_get("key_id").await?.as_deref() != Some(current.as_str()) {
            self.db.meta_set("key_id", &current).await?;
        }
        if migration_marked(&self.db).await? {
            self.db.meta_set(MAINTENANCE, "").await?;
        }
        Ok(())
    }

    /// See [`blob_namespace`].
    pub async fn blob_namespace(&self) -> anyhow::Result<String> {
        blob_namespace(&self.db).await
    }

    /// The key id the last server to start recorded as the one new data
    /// is sealed under.
    pub async fn recorded_key_id(&self) -> anyhow::Result<Option<String>> {
        self.db.meta_get("key_id").await
    }

    /// Closes the metadata store's connections; the core is not used after.
    pub async fn close(&self) {
        self.db.close().await;
    }
}
