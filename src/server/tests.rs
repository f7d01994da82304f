//! Opening with keys, and the start-up sweep of a shared store.

use std::sync::Arc;

use super::recover::recover;
use super::{Application, open_core};
use crate::config::Config;
use crate::crypto::{Key, KeyRing};
use crate::domain::Core;
use crate::domain::files::FileKind;
use crate::image::samples;
use crate::store::Db;
use crate::store::blob::{BlobInfo, BlobReader, BlobWriter};
use crate::store::blob::{BlobStore, LocalBlobStore};
use crate::store::sealed::SealedBlobs;
use async_trait::async_trait;
use bytes::Bytes;

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

/// Keys from the configuration: `decryption_keys` widen what is
/// readable; a node lacking a key data is still sealed under is
/// refused, naming it; decryption keys without `encryption_key` (a key
/// file keeps its own older keys) and bad ones are refused.
#[tokio::test]
async fn a_node_must_hold_every_key_its_data_is_sealed_under() {
    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "+/8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0=";
    let dir = tempfile::tempdir().unwrap();
    let config = |key: Option<&str>, readable: &[&str]| Config {
        data_dir: dir.path().to_path_buf(),
        encryption_key: key.map(str::to_string),
        decryption_keys: readable.iter().map(|k| k.to_string()).collect(),
        ..Config::default()
    };
    let core = open_core(config(Some(K1), &[])).await.unwrap();
    let tenant = core.create_tenant("acme").await.unwrap();
    core.add_device(&tenant, "SN-1", "app-test-factory-secret")
        .await
        .unwrap();
    core.db.close().await;

    let key_id = |k: &str| format!("{:08x}", Key::from_base64(k).unwrap().id());
    let recorded = |core: &Core| {
        let db = core.db.clone();
        async move { db.meta_get("key_id").await.unwrap() }
    };
    // An admin command with K2 current reads K1's data, and records
    // nothing: only a server starting says what the nodes seal under.
    let core = open_core(config(Some(K2), &[K1])).await.unwrap();
    assert_eq!(recorded(&core).await, Some(key_id(K1)));
    // So key reseal, which would move the data to its key, refuses.
    let e = core.reseal_keys().await.unwrap_err();
    assert!(
        format!("{e:#}").contains("not the key the last server"),
        "{e:#}"
    );
    core.db.close().await;
    // Without K1 a node is refused, naming the key, and records nothing.
    let Err(e) = open_core(config(Some(K2), &[])).await else {
        panic!("opened without K1")
    };
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&key_id(K1)) && msg.contains("decryption_keys"),
        "{msg}"
    );

    let core = open_core(config(Some(K2), &[K1])).await.unwrap();
    assert_eq!(
        recorded(&core).await,
        Some(key_id(K1)),
        "a refused node's key"
    );
    core.db.close().await;

    let mut serving = config(Some(K2), &[K1]);
    serving.listen = "127.0.0.1:0".parse().unwrap();
    let app = Application::build(serving).await.unwrap();
    let core = app.core();
    assert_eq!(recorded(&core).await, Some(key_id(K2)));
    let r = core.reseal_keys().await.unwrap();
    // The device's secret_no (its session secret comes at activation).
    assert_eq!((r.values_resealed, r.remaining), (1, 0), "{r:?}");
    core.db.close().await;
    drop((app, core));
    let core = open_core(config(Some(K2), &[])).await.unwrap();
    core.db.close().await;

    let Err(e) = open_core(config(None, &[K1])).await else {
        panic!("opened")
    };
    assert!(
        format!("{e:#}").contains("decryption_keys go with"),
        "{e:#}"
    );
    let Err(e) = open_core(config(Some(K2), &["not a key"])).await else {
        panic!("opened")
    };
    assert!(format!("{e:#}").contains("decryption_keys[0]"), "{e:#}");
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
        core.commit_image(
            staged,
            tenant.id,
            FileKind::AttendancePhoto,
            "a.png",
            (),
            None,
        )
        .await
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

    recover(&core).await.unwrap();
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
    let e = core
        .commit_image(
            staged,
            tenant.id,
            FileKind::AttendancePhoto,
            "a.png",
            (),
            None,
        )
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
    recover(&core).await.unwrap();
    let mut left = core.blobs.store().keys().await.unwrap();
    left.sort();
    assert_eq!(left, want, "the claimed upload's blob was not swept");
}
