//! The start-up sweep of a shared store.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::Config;
use crate::crypto::KeyRing;
use crate::domain::Core;
use crate::domain::files::commit_photo;
use crate::image::samples;
use crate::store::Db;
use crate::store::blob::{BlobInfo, BlobReader, BlobStore, BlobWriter, LocalBlobStore};
use crate::store::sealed::SealedBlobs;

/// The data directory's store, claiming to be shared like a bucket.
struct Shared(LocalBlobStore);

#[async_trait]
impl BlobStore for Shared {
    async fn create(&self, key: &str) -> anyhow::Result<Box<dyn BlobWriter>> {
        self.0.create(key).await
    }
    async fn open(&self, key: &str) -> anyhow::Result<Option<BlobReader>> {
        self.0.open(key).await
    }
    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.0.delete(key).await
    }
    async fn list(&self) -> anyhow::Result<Vec<BlobInfo>> {
        self.0.list().await
    }
    fn shared(&self) -> bool {
        true
    }
    async fn ping(&self) -> anyhow::Result<()> {
        self.0.ping().await
    }
    async fn sweep_incomplete(&self) -> anyhow::Result<usize> {
        self.0.sweep_incomplete().await
    }
    async fn incomplete(&self) -> anyhow::Result<usize> {
        self.0.incomplete().await
    }
}

async fn shared_core(dir: &std::path::Path) -> Arc<Core> {
    let config = Config {
        data_dir: dir.to_path_buf(),
        orphan_grace_secs: 0,
        ..Config::default()
    };
    let db = Db::open_sqlite(&config.database_path()).await.unwrap();
    let keys = KeyRing::load_or_create(&config.key_file()).unwrap();
    let store = Arc::new(Shared(LocalBlobStore::open(dir).unwrap()));
    let blobs = SealedBlobs::new(store, keys.clone());
    Arc::new(Core::new(config, db, blobs, keys).await.unwrap())
}

fn body(bytes: Vec<u8>) -> impl futures_util::Stream<Item = crate::model::error::Result<Bytes>> {
    futures_util::stream::iter([Ok(Bytes::from(bytes))])
}

async fn put(core: &Core, key: &str) {
    let mut w = core.blobs.store().create(key).await.unwrap();
    w.write(b"FHB sealed bytes").await.unwrap();
    w.finish().await.unwrap();
}

/// In a shared store the sweep deletes what the data directory said
/// might be left (uploads cut off, rows deleted), never an object it
/// knows nothing of; an upload whose intent the sweep claimed cannot
/// commit a row for a deleted blob.
#[tokio::test]
async fn the_sweep_of_a_shared_store_deletes_only_what_it_was_told_of() {
    let dir = tempfile::tempdir().unwrap();
    let core = shared_core(dir.path()).await;
    let tenant = core.create_tenant("acme").await.unwrap();
    let rules = core.attendance_rules();
    let upload = || async {
        let staged = core
            .receive_image(rules, body(samples::png(64, 64)))
            .await
            .unwrap();
        commit_photo(&core, staged, tenant.id, (), None).await
    };
    let kept = upload().await.unwrap();
    let gone = upload().await.unwrap();
    assert!(core.db.intent_keys().await.unwrap().is_empty());

    // A crash after an upload's PUT, before its row: its intent stays.
    let cut = "att_cut0ff00000000000000000000000";
    core.db.intent_add(cut, core.now()).await.unwrap();
    put(&core, cut).await;
    // A row deleted, its blob not yet (a crash in between).
    core.db.delete_file(&gone.file_id).await.unwrap();
    // An object nothing here knows of (another copy's upload).
    let stray = "att_5tray000000000000000000000000";
    put(&core, stray).await;

    core.recover().await.unwrap();
    let mut left = core.blobs.store().keys().await.unwrap();
    left.sort();
    let mut want = vec![kept.file_id.clone(), stray.to_string()];
    want.sort();
    assert_eq!(left, want);
    assert!(core.db.intent_keys().await.unwrap().is_empty());

    // Uploads refused or dropped before their bytes were sent forget
    // their intents (nothing of them can be in the store).
    let refused = core
        .receive_image(rules, body(b"not an image at all".to_vec()))
        .await;
    assert!(refused.is_err());
    let staged = core
        .receive_image(rules, body(samples::png(64, 64)))
        .await
        .unwrap();
    staged.discard().await;
    let mut left_intents = Vec::new();
    for _ in 0..100 {
        left_intents = core.db.intent_keys().await.unwrap();
        if left_intents.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(left_intents.is_empty(), "{left_intents:?}");

    // An upload that outlives the grace: the sweep claims its intent
    // first, and then its row can no longer commit.
    let staged = core
        .receive_image(rules, body(samples::png(64, 64)))
        .await
        .unwrap();
    let due = core.db.intents_due(i64::MAX).await.unwrap();
    assert_eq!(due.len(), 1);
    assert!(core.db.intent_doom(&due[0].0, due[0].1).await.unwrap());
    let e = commit_photo(&core, staged, tenant.id, (), None)
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("orphan_grace_secs"), "{e:?}");
    assert!(
        core.db
            .known_file_ids(&[due[0].0.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    core.recover().await.unwrap();
    let mut left = core.blobs.store().keys().await.unwrap();
    left.sort();
    assert_eq!(left, want, "the claimed upload's blob was not swept");
}
