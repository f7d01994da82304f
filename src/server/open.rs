//! Opening a data directory: the database, the key ring (and the checks
//! that keep data readable under it), the blob store it is pinned to.

use anyhow::Context;

use super::blobs::{blob_store_spec, claim_local_blobs, open_blob_store};
use crate::config::Config;
use crate::crypto::{Key, KeyRing};
use crate::domain::Core;
use crate::domain::deployment::{blob_namespace, migration_marked};
use crate::store::sealed::SealedBlobs;
use crate::store::{Db, server_running};

/// Opens the data directory (database, blobs, key) without serving; used by
/// `serve` and by every admin command, which works whether a server runs on
/// the same directory or not.
pub async fn open_core(mut config: Config) -> anyhow::Result<Core> {
    crate::store::private::data_dir(&config.data_dir)?;
    let db = Db::open(config.database.as_deref(), &config.database_path()).await?;
    let recorded = db.meta_get("key_id").await?;
    let keys = match &config.encryption_key {
        Some(k) => {
            let mut ring = vec![Key::from_base64(k).context("encryption_key")?];
            for (i, d) in config.decryption_keys.iter().enumerate() {
                ring.push(Key::from_base64(d).with_context(|| format!("decryption_keys[{i}]"))?);
            }
            KeyRing::from_keys(ring)
        }
        None => {
            anyhow::ensure!(
                config.decryption_keys.is_empty(),
                "decryption_keys go with encryption_key; a key file keeps its older keys itself"
            );
            let file = config.key_file();
            // A key file is generated only for a new data directory: data
            // already sealed needs its own key, never a fresh one.
            anyhow::ensure!(
                recorded.is_none() || file.exists(),
                "the key file {} is missing, but this data directory holds data sealed with \
                 key id {}; restore the file or set encryption_key",
                file.display(),
                recorded.as_deref().unwrap_or_default()
            );
            KeyRing::load_or_create(&file)?
        }
    };
    // Every refusal comes before any write: on a shared database a refused
    // node must not leave its key recorded for the others.
    let current = crate::crypto::key_id_hex(keys.current().id());
    let from_config = config.encryption_key.is_some();
    // With a key file, the data was sealed with this ring's keys: starting
    // with another key would fail every read and mix keys in new writes. A
    // recorded key older than the ring's current one is a rotation that
    // stopped after writing the key file; the file is the authority. (Keys
    // from the configuration may change node by node; the check below
    // covers them.)
    if let (Some(recorded), false) = (&recorded, from_config) {
        let known = u32::from_str_radix(recorded, 16)
            .ok()
            .and_then(|id| keys.get(id))
            .is_some();
        anyhow::ensure!(
            known,
            "the encryption key in use (id {current}) is not the key this data directory was \
             written with (id {recorded}); restore {} or set encryption_key",
            config.key_file().display()
        );
    }
    // Data sealed under a key this node lacks could not be read: the wrong
    // key, or a key dropped from decryption_keys before `key reseal` moved
    // everything off it. One scan of the sealed columns.
    let missing: Vec<String> = db
        .key_usage()
        .await?
        .into_iter()
        .filter(|(id, _)| keys.get(*id).is_none())
        .map(|(id, n)| format!("{} ({n} items)", crate::crypto::key_id_hex(id)))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "data is sealed under key id {} that {} does not hold; {}",
        missing.join(", "),
        if from_config {
            "the configuration (encryption_key, decryption_keys)"
        } else {
            "the key file"
        },
        if from_config {
            "keep that key in decryption_keys until `facehub key reseal` reports nothing left \
             under it"
        } else {
            "restore the key file"
        }
    );
    // The key new data is sealed under. With keys from the configuration
    // only a server starting changes it (Application::with_core): an admin
    // command run with another node's configuration does not.
    match recorded {
        None => db.meta_set("key_id", &current).await?,
        Some(r) if r != current && !from_config => db.meta_set("key_id", &current).await?,
        Some(_) => {}
    }
    // A copy of blobs is half done while migrate-store runs: any other
    // writer (an erasure, a rotation, an import) would leave its change in
    // the source only.
    if migration_marked(&db).await? && server_running(&config.data_dir) {
        anyhow::bail!(
            "migrate-store is copying this data directory's blobs; wait until it has finished"
        );
    }
    let spec = blob_store_spec(config.blobs.as_deref(), &db).await?;
    if spec == "local" && db.backend() == crate::store::Backend::Postgres {
        claim_local_blobs(&db, &config.data_dir).await?;
    }
    let store = open_blob_store(Some(&spec), &config, blob_namespace(&db)).await?;
    config.blobs = Some(spec);
    let blobs = SealedBlobs::new(store, keys.clone());
    Core::new(config, db, blobs, keys).await
}
