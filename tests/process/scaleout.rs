//! facehub on an S3-compatible object store: a real three-node Garage
//! cluster (testkit/src/garage.rs). The blob store's contract, the server
//! serving from it, orphans of a crash between the object's PUT and the
//! row's commit, and the loss of one and of two Garage nodes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::process::{ATTENDANCE_SCOPES, Server, facehub, run_ok, tenant_with_app};
use crate::common::{self, s3_credentials, tenant_token};
use crate::garage::Garage;
use crate::photos::{download_photo, upload_photo};
use facehub::store::blob::BlobStore;
use facehub::store::s3::{S3BlobStore, S3Location};
use serde_json::Value;
use tokio::io::AsyncReadExt;

fn store(g: &Garage, prefix: &str, namespace: &str) -> S3BlobStore {
    // SAFETY (of the test): object_store reads the credentials from the
    // environment; every test of this binary that reads them sets the
    // same values, and the servers the tests start have theirs set on
    // their command (`s3_credentials`) rather than inherited.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", common::S3_KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", common::S3_SECRET);
    }
    let loc = S3Location::parse(&g.blobs_url(prefix)).unwrap();
    S3BlobStore::open(&loc, namespace, &spool(namespace)).unwrap()
}

/// The upload spool of [`store`]'s stores: one per test process.
fn spool(namespace: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("facehub-spool-{}-{namespace}", std::process::id()))
}

fn spooled(namespace: &str) -> usize {
    std::fs::read_dir(spool(namespace)).unwrap().count()
}

async fn read(s: &S3BlobStore, key: &str) -> Option<Vec<u8>> {
    let mut r = s.open(key).await.unwrap()?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    Some(out)
}

fn noise(n: usize, seed: u64) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_blob_store_keeps_its_contract_on_garage() {
    let g = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let s = store(&g, "contract", "ns1");
    s.probe().await.unwrap();
    s.ping().await.unwrap();
    assert!(s.shared());

    // Nothing is visible before finish; a small blob is one PUT.
    let small = noise(1000, 1);
    let mut w = s.create("att_small01").await.unwrap();
    w.write(&small[..400]).await.unwrap();
    w.write(&small[400..]).await.unwrap();
    assert!(s.open("att_small01").await.unwrap().is_none());
    assert!(s.keys().await.unwrap().is_empty());
    w.finish().await.unwrap();
    assert_eq!(read(&s, "att_small01").await.unwrap(), small);

    // A large one goes up in parts (multipart upload) and reads back whole.
    let large = noise(12 * 1024 * 1024 + 17, 2);
    let mut w = s.create("att_large01").await.unwrap();
    for piece in large.chunks(64 * 1024) {
        w.write(piece).await.unwrap();
    }
    w.finish().await.unwrap();
    assert!(read(&s, "att_large01").await.unwrap() == large);
    // Downloads are ranged GETs of 1 MiB: a size on a range boundary.
    let even = noise(2 * 1024 * 1024, 4);
    let mut w = s.create("att_even01").await.unwrap();
    w.write(&even).await.unwrap();
    w.finish().await.unwrap();
    assert!(read(&s, "att_even01").await.unwrap() == even);
    // A reader whose object is replaced between two ranges fails; it
    // never splices the old object's start to the new one's rest.
    let mut r = s.open("att_even01").await.unwrap().unwrap();
    let mut head = vec![0u8; 1024 * 1024];
    r.read_exact(&mut head).await.unwrap();
    assert!(head == even[..1024 * 1024]);
    let mut w = s.create("att_even01").await.unwrap();
    w.write(&noise(2 * 1024 * 1024, 5)).await.unwrap();
    w.finish().await.unwrap();
    let mut rest = Vec::new();
    assert!(
        r.read_to_end(&mut rest).await.is_err(),
        "read {} bytes",
        rest.len()
    );
    s.delete("att_even01").await.unwrap();

    // An upload is spooled to a local file until its last byte is in
    // (a slow client holds no memory), and the file goes when it ends:
    // finished, aborted, or dropped mid-body (the client went away).
    assert_eq!(spooled("ns1"), 0);
    for (key, n) in [("att_abort01", 100), ("att_abort02", 7 * 1024 * 1024)] {
        let mut w = s.create(key).await.unwrap();
        w.write(&noise(n, 3)).await.unwrap();
        assert_eq!(spooled("ns1"), 1);
        w.abort().await;
        assert_eq!(spooled("ns1"), 0);
        assert!(s.open(key).await.unwrap().is_none(), "{key}");
        let mut w = s.create(key).await.unwrap();
        w.write(&noise(n, 3)).await.unwrap();
        drop(w);
        assert_eq!(spooled("ns1"), 0);
        assert!(s.open(key).await.unwrap().is_none(), "{key}");
    }
    // A crash leaves its spool file: the start-up sweep removes it.
    std::fs::write(spool("ns1").join("att_x.0123.part"), b"sealed").unwrap();
    assert_eq!(s.incomplete().await.unwrap(), 1);
    assert_eq!(s.sweep_incomplete().await.unwrap(), 1);
    assert_eq!(spooled("ns1"), 0);

    // Replacing is atomic: a reader sees the old or the new bytes.
    let mut w = s.create("att_small01").await.unwrap();
    w.write(b"replacement").await.unwrap();
    w.finish().await.unwrap();
    assert_eq!(read(&s, "att_small01").await.unwrap(), b"replacement");

    let mut listed = s.list().await.unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = listed.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(keys, ["att_large01", "att_small01"]);
    let age = std::time::SystemTime::now()
        .duration_since(listed[0].modified)
        .unwrap_or_default();
    assert!(age < Duration::from_secs(120), "modified {age:?} ago");

    // Namespaces (deployments) sharing the bucket do not see each other.
    let other = store(&g, "contract", "ns2");
    assert!(other.keys().await.unwrap().is_empty());
    assert!(other.open("att_small01").await.unwrap().is_none());
    other.delete("att_small01").await.unwrap();
    assert!(read(&s, "att_small01").await.is_some());

    // Delete is idempotent; keys are checked before any request.
    s.delete("att_small01").await.unwrap();
    s.delete("att_small01").await.unwrap();
    assert!(s.open("att_small01").await.unwrap().is_none());
    for bad in ["../etc", "A", "x/y", ""] {
        assert!(s.create(bad).await.is_err(), "{bad}");
        assert!(s.open(bad).await.is_err(), "{bad}");
    }

    // Wrong credentials fail the ping and the probe, not silently.
    unsafe { std::env::set_var("AWS_SECRET_ACCESS_KEY", "0".repeat(64)) };
    let loc = S3Location::parse(&g.blobs_url("contract")).unwrap();
    let bad = S3BlobStore::open(&loc, "ns1", &std::env::temp_dir()).unwrap();
    unsafe { std::env::set_var("AWS_SECRET_ACCESS_KEY", common::S3_SECRET) };
    assert!(bad.ping().await.is_err());
    assert!(bad.probe().await.is_err());
}

/// Starts the killed `nodes` again and waits until all three are healthy.
async fn nodes_back(mut g: Garage, nodes: &[usize]) -> Arc<Garage> {
    for &i in nodes {
        g.restart(i);
    }
    let g = Arc::new(g);
    tokio::task::spawn_blocking({
        let g = g.clone();
        move || g.wait_healthy(3)
    })
    .await
    .unwrap();
    g
}

/// Stops the next multipart upload before its `nth` part (the
/// `blob.part` fault point, debug builds) until the returned sender says
/// go; the receiver hears when it has stopped.
fn stop_before_part(
    nth: usize,
) -> (
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::SyncSender<()>,
) {
    let (reached, heard) = std::sync::mpsc::sync_channel(1);
    let (go, wait) = std::sync::mpsc::sync_channel::<()>(1);
    let wait = std::sync::Mutex::new(wait);
    let seen = std::sync::atomic::AtomicUsize::new(0);
    fail::cfg_callback("blob.part", move || {
        if seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth {
            reached.send(()).unwrap();
            wait.lock().unwrap().recv().unwrap();
        }
    })
    .unwrap();
    (heard, go)
}

/// Bucket nodes lost in the middle of a multipart upload (stopped between
/// its parts, with parts already stored): one of three, and the upload
/// completes on the write quorum and reads back whole; two of three, and
/// it fails cleanly within bounded time, leaves no object and no spool
/// file, and the same key uploads once the nodes are back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bucket_nodes_lost_mid_multipart_leave_nothing_half_written() {
    let mut g = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let s = Arc::new(store(&g, "midpart", "ns1"));
    // Four parts; each run stops before the third, after two are sent.
    let data = Arc::new(noise(3 * 5 * 1024 * 1024 + 99, 7));
    let upload = |key: &'static str| {
        let (s, data) = (s.clone(), data.clone());
        tokio::spawn(async move {
            let mut w = s.create(key).await?;
            w.write(&data).await?;
            w.finish().await
        })
    };
    // Starts `key`'s upload and returns once it stopped before its third
    // part: the upload's task, and the sender that lets it go on.
    let stopped_upload = |key: &'static str| {
        let (heard, go) = stop_before_part(3);
        let task = upload(key);
        async move {
            tokio::task::spawn_blocking(move || heard.recv_timeout(Duration::from_secs(60)))
                .await
                .unwrap()
                .expect("the upload reached its third part");
            (task, go)
        }
    };

    let (task, go) = stopped_upload("att_midpart1").await;
    g.kill(2);
    go.send(()).unwrap();
    task.await
        .unwrap()
        .expect("one node of three lost mid-upload");
    assert!(read(&s, "att_midpart1").await.unwrap() == *data);

    let (task, go) = stopped_upload("att_midpart2").await;
    g.kill(1);
    let started = Instant::now();
    go.send(()).unwrap();
    let failed = task.await.unwrap();
    let took = started.elapsed();
    fail::remove("blob.part");
    assert!(failed.is_err(), "stored without a write quorum");
    assert!(took < Duration::from_secs(60), "the failure took {took:?}");
    assert_eq!(spooled("ns1"), 0, "the failed upload's spool file stayed");

    let _cluster = nodes_back(g, &[1, 2]).await;
    // Nothing of the failed upload is visible, and its key takes a whole
    // upload again.
    assert!(s.open("att_midpart2").await.unwrap().is_none());
    let keys = s.keys().await.unwrap();
    assert!(!keys.iter().any(|k| k == "att_midpart2"), "{keys:?}");
    upload("att_midpart2").await.unwrap().unwrap();
    assert!(read(&s, "att_midpart2").await.unwrap() == *data);
    assert!(read(&s, "att_midpart1").await.unwrap() == *data);
    println!(
        "bucket nodes lost mid-multipart: one of three, completed and whole; two of three, \
         refused in {took:.1?}, nothing visible, stored whole once they were back"
    );
}

/// A tenant and app made before the first start, without `--blobs` (as
/// the README has it): the store is recorded by `serve`.
fn setup(data: &std::path::Path) -> Value {
    tenant_with_app(|| facehub(data), ATTENDANCE_SCOPES)
}

fn serve(data: &std::path::Path, blobs: &str, grace: u64) -> Server {
    Server::start_with(data, |c| {
        c.args(["--blobs", blobs])
            .env("FACEHUB_ORPHAN_GRACE_SECS", grace.to_string());
        s3_credentials(c);
    })
}

/// Whether the blob store `s` holds `key`.
async fn holds(s: &S3BlobStore, key: &str) -> bool {
    s.open(key).await.unwrap().is_some()
}

fn check(data: &std::path::Path, blobs: &str, grace: u64) -> (bool, Value) {
    let mut c = facehub(data);
    c.args(["--blobs", blobs, "check", "--json"])
        .env("FACEHUB_ORPHAN_GRACE_SECS", grace.to_string());
    s3_credentials(&mut c);
    let out = c.output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("check: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.success(), report)
}

/// The blob namespace facehub chose for this data directory.
fn namespace(data: &std::path::Path) -> String {
    if let Some(url) = crate::common::database_for(data) {
        let sql = "SELECT value FROM meta WHERE key='blob_namespace'";
        return crate::common::postgres::psql_at(&url, sql).unwrap();
    }
    let db = data.join("facehub.db");
    let out = run_ok(
        std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\
                 \"SELECT value FROM meta WHERE key='blob_namespace'\").fetchone()[0])",
            ])
            .arg(&db),
    );
    out.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_on_garage_serves_sweeps_and_survives_node_loss() {
    let mut g = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // This test names its blob store itself.
    crate::common::set_blobs(&data, None);
    let blobs = g.blobs_url("srv");
    let creds = setup(&data);
    let server = serve(&data, &blobs, 3600);
    let t = tenant_token(&server.base, &creds).await;

    // Uploads land in the bucket, sealed: no photo byte is stored plain.
    let mut stored = Vec::new();
    for i in 0..4u8 {
        let photo = crate::common::png(120 + u32::from(i), 120, i);
        let (status, v) = upload_photo(&server.base, &t, &photo).await;
        assert_eq!((status, v["code"].as_i64()), (200, Some(0)), "{v}");
        stored.push((
            v["data"]["file"]["file_id"].as_str().unwrap().to_string(),
            photo,
        ));
    }
    let ns = namespace(&data);
    let s = store(&g, "srv", &ns);
    let mut keys = s.keys().await.unwrap();
    keys.sort();
    let mut ids: Vec<String> = stored.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    assert_eq!(keys, ids, "one object per acknowledged upload");
    for (id, photo) in &stored {
        let raw = read(&s, id).await.unwrap();
        assert!(raw.starts_with(b"FHB"), "{id} is not sealed");
        assert!(
            !raw.windows(16).any(|w| w == &photo[100..116]),
            "{id} holds plain photo bytes"
        );
        let (status, got) = download_photo(&server.base, &t, id).await;
        assert_eq!(status, 200);
        assert!(got == *photo, "{id} changed");
    }
    let (ok, report) = check(&data, &blobs, 3600);
    assert!(ok, "{report}");
    assert_eq!(report["blobs_checked"], 4, "{report}");

    // A crash between the object's PUT and the row's commit leaves an
    // object no row refers to, and the intent recorded before the PUT.
    // check finds it once it is older than the grace (while younger it may
    // be another node's upload committing).
    let db = facehub::store::Db::open(
        crate::common::database_for(&data).as_deref(),
        &data.join("facehub.db"),
    )
    .await
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    db.intent_add("att_0rphan0000000000000000000000", now)
        .await
        .unwrap();
    db.close().await;
    let mut w = s.create("att_0rphan0000000000000000000000").await.unwrap();
    w.write(b"FHB\x01never committed").await.unwrap();
    w.finish().await.unwrap();
    let (ok, report) = check(&data, &blobs, 3600);
    assert!(ok, "{report}");
    assert_eq!(report["recent"], 1, "{report}");
    let (ok, report) = check(&data, &blobs, 0);
    assert!(!ok);
    assert_eq!(
        report["unreferenced"],
        serde_json::json!(["att_0rphan0000000000000000000000"]),
        "{report}"
    );
    // A node restarting with a long grace keeps it; with none, sweeps it.
    server.kill();
    let server = serve(&data, &blobs, 3600);
    assert!(holds(&s, "att_0rphan0000000000000000000000").await);
    server.kill();
    let server = serve(&data, &blobs, 0);
    assert!(
        !holds(&s, "att_0rphan0000000000000000000000").await,
        "the start-up sweep left the orphan"
    );
    let (ok, report) = check(&data, &blobs, 0);
    assert!(ok, "{report}");
    // An object this data directory never recorded (a restored copy of it
    // uploading to the same namespace, say) is reported, never deleted.
    let stray = "att_5tray000000000000000000000000";
    let mut w = s.create(stray).await.unwrap();
    w.write(b"FHB\x01another copy's upload").await.unwrap();
    w.finish().await.unwrap();
    server.kill();
    let server = serve(&data, &blobs, 0);
    assert!(
        s.open(stray).await.unwrap().is_some(),
        "the sweep deleted a stray"
    );
    let (ok, report) = check(&data, &blobs, 0);
    assert!(!ok);
    assert_eq!(
        report["unreferenced"],
        serde_json::json!([stray]),
        "{report}"
    );
    s.delete(stray).await.unwrap();

    // A copy of the data directory (a restored backup) started on the same
    // namespace after the live one has started again: its sweep deletes
    // nothing, not even the blob of a file the copy itself deleted.
    server.kill();
    let copy = dir.path().join("copy");
    // This test names its blob store itself.
    crate::common::set_blobs(&copy, None);
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    crate::common::copy_database(&data, &copy);
    drop(serve(&data, &blobs, 0));
    let db = facehub::store::Db::open(
        crate::common::database_for(&copy).as_deref(),
        &copy.join("facehub.db"),
    )
    .await
    .unwrap();
    db.delete_file(&stored[0].0).await.unwrap();
    db.close().await;
    drop(serve(&copy, &blobs, 0));
    assert!(
        s.open(&stored[0].0).await.unwrap().is_some(),
        "a copy's sweep deleted a blob of the live data directory"
    );
    let server = serve(&data, &blobs, 0);
    let t = tenant_token(&server.base, &creds).await;

    // One node of three down: uploads and downloads go on.
    g.kill(2);
    let photo = crate::common::png(150, 150, 9);
    let (status, v) = upload_photo(&server.base, &t, &photo).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (200, Some(0)),
        "one node down: {v}"
    );
    let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
    assert!(download_photo(&server.base, &t, &id).await.1 == photo);
    stored.push((id, photo));
    for (id, photo) in &stored {
        let (status, got) = download_photo(&server.base, &t, id).await;
        assert_eq!(status, 200, "one node down: {id}");
        assert!(got == *photo);
    }

    // Two down: no quorum. facehub answers the platform's 5xx envelope
    // quickly, and readiness says why.
    g.kill(1);
    let started = Instant::now();
    let (status, v) = upload_photo(&server.base, &t, &crate::common::png(150, 150, 10)).await;
    let took = started.elapsed();
    assert_eq!(status, 500, "two nodes down: {v}");
    assert!(v["code"].as_i64().is_some_and(|c| c != 0), "{v}");
    assert!(v["msg"].is_string(), "{v}");
    assert!(took < Duration::from_secs(30), "the upload took {took:?}");
    println!("two garage nodes down: upload answered {status} in {took:?}");
    let started = Instant::now();
    let (status, _) = download_photo(&server.base, &t, &stored[0].0).await;
    assert!(status >= 500, "two nodes down, download: {status}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let r = reqwest::get(format!("{}/readyz", server.base))
        .await
        .unwrap();
    // A HEAD on one node may still answer (no quorum needed to say 404);
    // either way the server did not hang.
    assert!(matches!(r.status().as_u16(), 200 | 503));

    // Both return: facehub recovers by itself, and nothing was lost.
    let _cluster = nodes_back(g, &[1, 2]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        let photo = crate::common::png(160, 160, 11);
        let (status, v) = upload_photo(&server.base, &t, &photo).await;
        if status == 200 {
            let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
            stored.push((id.clone(), photo));
            break id;
        }
        assert!(Instant::now() < deadline, "no recovery within 60 s: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!id.is_empty());
    println!(
        "nodes back: uploads succeed again {:?} after the cluster is healthy",
        Instant::now() + Duration::from_secs(60) - deadline
    );
    for (id, photo) in &stored {
        let (status, got) = download_photo(&server.base, &t, id).await;
        assert_eq!(status, 200, "after recovery: {id}");
        assert!(got == *photo);
    }
    // An upload refused for want of quorum may have left its object on
    // the surviving node (its delete failed too): an orphan, which the
    // next start-up sweep removes. Nothing else may be wrong.
    let (_, report) = check(&data, &blobs, 0);
    assert!(report["missing"].as_array().unwrap().is_empty(), "{report}");
    assert!(report["corrupt"].as_array().unwrap().is_empty(), "{report}");
    assert!(
        report["unreferenced"].as_array().unwrap().len() <= 1,
        "{report}"
    );
    server.kill();
    let server = serve(&data, &blobs, 0);
    let (ok, report) = check(&data, &blobs, 0);
    assert!(ok, "{report}");
    assert_eq!(report["blobs_checked"], stored.len(), "{report}");
    server.kill();
}

/// `facehub migrate-store`: an embedded deployment moves its blobs to the
/// bucket (verified, resumable), serves from there, and can move back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_blobs_to_garage_and_back() {
    let g = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // This test names its blob store itself.
    crate::common::set_blobs(&data, None);
    let blobs = g.blobs_url("migrated");
    let creds = tenant_with_app(|| facehub(&data), ATTENDANCE_SCOPES);
    // Photos on the embedded store.
    let server = Server::start(&data);
    let t = tenant_token(&server.base, &creds).await;
    let mut stored = Vec::new();
    for i in 0..6u8 {
        let photo = crate::common::png(100 + u32::from(i), 100, i);
        let (status, v) = upload_photo(&server.base, &t, &photo).await;
        assert_eq!(status, 200, "{v}");
        stored.push((
            v["data"]["file"]["file_id"].as_str().unwrap().to_string(),
            photo,
        ));
    }
    // Refused while the server runs: uploads meanwhile would be left out.
    let mut c = facehub(&data);
    c.args(["migrate-store", "--to", &blobs]);
    s3_credentials(&mut c);
    let out = c.output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server is running"));
    server.kill();

    let migrate = |args: &[&str]| -> Value {
        let mut c = facehub(&data);
        c.arg("migrate-store").args(args).arg("--json");
        s3_credentials(&mut c);
        serde_json::from_str(run_ok(&mut c).trim()).unwrap()
    };
    let m = migrate(&["--to", &blobs]);
    assert_eq!(
        (m["files"].as_u64(), m["copied"].as_u64()),
        (Some(6), Some(6)),
        "{m}"
    );
    // The data directory now uses the bucket: the same command again has
    // nothing to move, and says so.
    let mut c = facehub(&data);
    c.args(["migrate-store", "--to", &blobs]);
    s3_credentials(&mut c);
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("in s3://facehub/migrated?") && err.contains("already"),
        "{err}"
    );
    // Named again as the source (resuming): everything verified in place.
    let m = migrate(&["--from", "local", "--to", &blobs]);
    assert_eq!(
        (m["copied"].as_u64(), m["present"].as_u64()),
        (Some(0), Some(6)),
        "{m}"
    );

    // Served from the bucket alone: the local blobs are removed first.
    std::fs::remove_dir_all(data.join("blobs")).unwrap();
    let server = serve(&data, &blobs, 3600);
    let t = tenant_token(&server.base, &creds).await;
    for (id, photo) in &stored {
        let (status, got) = download_photo(&server.base, &t, id).await;
        assert_eq!(status, 200, "{id}");
        assert!(got == *photo, "{id} changed in the move");
    }
    let photo = crate::common::png(130, 130, 42);
    let (status, v) = upload_photo(&server.base, &t, &photo).await;
    assert_eq!(status, 200, "{v}");
    stored.push((
        v["data"]["file"]["file_id"].as_str().unwrap().to_string(),
        photo,
    ));
    server.kill();
    let (ok, report) = check(&data, &blobs, 0);
    assert!(ok, "{report}");

    // And back to the data directory.
    let m = migrate(&["--from", &blobs, "--to", "local"]);
    assert_eq!(m["copied"].as_u64(), Some(7), "{m}");
    let server = Server::start(&data);
    let t = tenant_token(&server.base, &creds).await;
    for (id, photo) in &stored {
        let (status, got) = download_photo(&server.base, &t, id).await;
        assert_eq!(status, 200, "{id}");
        assert!(got == *photo, "{id} changed in the move back");
    }
    server.kill();
}
