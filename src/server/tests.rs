//! Opening with keys.

use super::{Application, open_core};
use crate::config::Config;
use crate::crypto::Key;
use crate::domain::Core;

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
    core.close().await;

    let key_id = |k: &str| format!("{:08x}", Key::from_base64(k).unwrap().id());
    let recorded = async |core: &Core| core.recorded_key_id().await.unwrap();
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
    core.close().await;
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
    core.close().await;

    let mut serving = config(Some(K2), &[K1]);
    serving.listen = "127.0.0.1:0".parse().unwrap();
    let app = Application::build(serving).await.unwrap();
    let core = app.core();
    assert_eq!(recorded(&core).await, Some(key_id(K2)));
    let r = core.reseal_keys().await.unwrap();
    // The device's secret_no (its session secret comes at activation).
    assert_eq!((r.values_resealed, r.remaining), (1, 0), "{r:?}");
    core.close().await;
    drop((app, core));
    let core = open_core(config(Some(K2), &[])).await.unwrap();
    core.close().await;

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
