//! Two facehub nodes on one scale-out deployment: the metadata in one
//! PostgreSQL, the blobs in one three-node Garage cluster, the rate limits
//! in one Redis, each node with its own data directory (spool, lock) and
//! the same encryption key — as behind a load balancer.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::admin::person_add;
use crate::common::postgres::Postgres;
use crate::common::process::{
    ATTENDANCE_SCOPES, Server, device_add, facehub, run_err, run_ok, tenant_with_app,
};
use crate::common::{reply_json, s3_credentials, tenant_token, userinfo};
use crate::garage::Garage;
use crate::photos::{download_photo, upload_photo};
use crate::redis::Redis;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub::store::Notice;
use facehub_devsim::Device;
use serde_json::{Value, json};

/// Base64 of 32 bytes, shared by every node.
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const PER_SECOND: usize = 20;

/// Uploads acknowledged: (file_id, photo).
type Acked = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

struct Deployment {
    blobs: String,
    redis: String,
}

impl Deployment {
    fn command(&self, data: &std::path::Path) -> Command {
        let mut c = facehub(data);
        self.configure(&mut c);
        c
    }

    fn configure(&self, c: &mut Command) {
        c.args(["--blobs", &self.blobs, "--redis", &self.redis])
            .env("FACEHUB_ENCRYPTION_KEY", KEY);
        s3_credentials(c);
    }

    fn serve(&self, data: &std::path::Path) -> Server {
        Server::start_with(data, |c| {
            self.configure(c);
            c.env("FACEHUB_RATE_LIMIT_PER_SECOND", PER_SECOND.to_string());
        })
    }
}

async fn device(base: &str, sn: &str, secret_no: &str) -> Arc<Device> {
    let ws = format!("{}/", base.replacen("http", "ws", 1));
    let d = Device::connect(&ws, sn, (&["X"], &[]), None).await.unwrap();
    d.bring_up(secret_no, chrono::Utc::now().timestamp())
        .await
        .unwrap();
    d
}

/// `from` announces a change of devices until `rx` hears of it, at most
/// 50 times: whether it did.
async fn announce_until_heard(
    from: &facehub::store::Db,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
) -> bool {
    for _ in 0..50 {
        from.devices_changed().await.unwrap();
        let wait = tokio::time::timeout(Duration::from_millis(200), rx.recv());
        if wait.await.is_ok() {
            return true;
        }
    }
    false
}

/// Two nodes' data directories on one new database of `pg`, each naming
/// its blob store itself (the test's shared one, or local blobs), and the
/// database's URL.
fn two_data_dirs(pg: &Postgres) -> (tempfile::TempDir, PathBuf, PathBuf, String) {
    let database = pg.create_database();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        crate::common::set_database(d, Some(&database));
        crate::common::set_blobs(d, None);
    }
    (dir, a, b, database)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_metadata_blobs_limits_and_devices() {
    let pg = Postgres::from_env_or_start();
    let (_dir, data_a, data_b, _) = two_data_dirs(&pg);
    let garage = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let redis = Redis::start();
    let dep = Deployment {
        blobs: garage.blobs_url("two-nodes"),
        redis: redis.url(),
    };

    // Set up through node A's directory; node B sees it through PostgreSQL.
    let creds = tenant_with_app(|| dep.command(&data_a), ATTENDANCE_SCOPES);
    run_ok(person_add(&mut dep.command(&data_a), "u1", "U One"));
    for sn in ["SN-A", "SN-B"] {
        let secret_no = format!("{sn}-factory-secret");
        run_ok(device_add(&mut dep.command(&data_a), sn, &secret_no).arg("--bind"));
    }
    let a = dep.serve(&data_a);
    let b = dep.serve(&data_b);
    let ta = tenant_token(&a.base, &creds).await;
    let tb = tenant_token(&b.base, &creds).await;

    // An upload through A downloads through B, and the other way round.
    let photo = crate::common::png(160, 160, 3);
    let (status, v) = upload_photo(&a.base, &ta, &photo).await;
    assert_eq!((status, v["code"].as_i64()), (200, Some(0)), "{v}");
    let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
    assert_eq!(
        download_photo(&b.base, &tb, &id).await,
        (200, photo.clone())
    );
    let photo2 = crate::common::png(170, 150, 4);
    let (status, v) = upload_photo(&b.base, &tb, &photo2).await;
    assert_eq!((status, v["code"].as_i64()), (200, Some(0)), "{v}");
    let id2 = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
    assert_eq!(download_photo(&a.base, &ta, &id2).await, (200, photo2));

    // A template a device uploads through B reaches a device on A, which
    // reads it back through A.
    let da = device(&a.base, "SN-A", "SN-A-factory-secret").await;
    let db = device(&b.base, "SN-B", "SN-B-factory-secret").await;
    da.drain_pushes(Duration::from_millis(300)).await.unwrap();
    let template = STANDARD.encode((0..256u32).map(|i| (i * 7) as u8).collect::<Vec<_>>());
    let sent = Instant::now();
    let reply = db
        .call(
            "upload_userinfo",
            json!({"userinfo": [{"userid": "u1", "user_type": 0, "fa_algorithm": "X",
                                 "fa_list": [{"id": 0, "data": template}]}]}),
        )
        .await
        .unwrap();
    assert_eq!(reply["fail_list"], json!([]), "{reply}");
    let push = da
        .push_of("push_change_contact", Duration::from_secs(10))
        .await
        .expect("the device on node A was not told of node B's template");
    let latency = sent.elapsed();
    let users = push["body"]["update_user"].to_string();
    assert!(users.contains("u1"), "{push}");
    let info = userinfo(&da, "u1", 0).await;
    assert_eq!(
        info["userinfo"][0]["fa_list"][0]["data"], template,
        "{info}"
    );
    eprintln!("two nodes: a template enrolled on B reached the device on A in {latency:?}");

    // A burst split across A and B spends one quota.
    let client = reqwest::Client::new();
    let mut limited = 0;
    let start = Instant::now();
    let burst = 3 * PER_SECOND;
    for i in 0..burst {
        let (base, t) = if i % 2 == 0 {
            (&a.base, &ta)
        } else {
            (&b.base, &tb)
        };
        let r = client
            .get(format!(
                "{base}/open-apis/attendance/v1/files/unknown/download"
            ))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["code"], 99991400, "{v}");
            limited += 1;
        }
    }
    let refill = (start.elapsed().as_secs_f64() * PER_SECOND as f64).ceil() as usize;
    let allowed = burst - limited;
    assert!(
        allowed <= PER_SECOND + refill,
        "{allowed} of {burst} allowed across two nodes at {PER_SECOND}/s (refill {refill}): \
         the quota is not shared"
    );
    assert!(limited > 0, "nothing limited");
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Node A killed while uploads are in flight through it: every upload it
    // acknowledged downloads through B, byte for byte.
    let acked: Acked = Arc::default();
    let mut workers = Vec::new();
    for w in 0..3u8 {
        let (base, t, acked) = (a.base.clone(), ta.clone(), acked.clone());
        workers.push(tokio::spawn(async move {
            for n in 0u8.. {
                let photo = crate::common::png(120 + u32::from(n % 40), 130, w * 50 + n % 50);
                let (status, v) = upload_photo(&base, &t, &photo).await;
                if status == 0 {
                    break;
                }
                if status == 200 && v["code"] == 0 {
                    let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
                    acked.lock().unwrap().push((id, photo));
                } else if status != 429 {
                    panic!("upload through A: {status} {v}");
                }
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    for (id, photo) in &acked {
        let (status, body) = loop {
            // (Within the shared quota.)
            match download_photo(&b.base, &tb, id).await {
                (429, _) => tokio::time::sleep(Duration::from_millis(200)).await,
                other => break other,
            }
        };
        assert_eq!(status, 200, "{id} acknowledged by A, lost");
        assert!(&body == photo, "{id} differs");
    }
    // Nothing half-written is visible: check finds every blob whole (an
    // upload cut off by the kill is at most a recent intent).
    let out = dep
        .command(&data_b)
        .args(["check", "--json"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!("check: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(out.status.success(), "{report}");
    eprintln!(
        "two nodes: {} uploads acknowledged by A before its kill, all read back through B",
        acked.len()
    );
    drop(da);
    drop(b);
}

/// What wakes another node's device sync at once (instead of at its next
/// one-second poll): a NOTIFY through PostgreSQL, heard by every node
/// sharing the database, and heard again after the listening connection
/// was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_changes_are_announced_to_every_node() {
    let pg = Postgres::from_env_or_start();
    let url = pg.create_database();
    let dir = tempfile::tempdir().unwrap();
    // Two nodes starting together on a new database: one migrates, the
    // other waits on the migrator's advisory lock, and both come up.
    let unused = dir.path().join("unused.db");
    let (node_a, node_b) = tokio::join!(
        facehub::store::Db::open(Some(&url), &unused),
        facehub::store::Db::open(Some(&url), &unused)
    );
    let (node_a, node_b) = (node_a.unwrap(), node_b.unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = node_a
        .on_notices(move |n| {
            if n != Notice::TokensRevoked {
                let _ = tx.send(());
            }
        })
        .expect("PostgreSQL listens");
    // Until the listener is in, an announcement can pass unheard.
    let heard = |rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>| {
        while rx.try_recv().is_ok() {}
    };
    assert!(
        announce_until_heard(&node_b, &mut rx).await,
        "node A never heard node B"
    );
    heard(&mut rx);
    let sent = Instant::now();
    node_b.devices_changed().await.unwrap();
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("an announcement went unheard");
    assert!(
        sent.elapsed() < Duration::from_millis(900),
        "{:?}",
        sent.elapsed()
    );

    // The listening connection cut (as by a PostgreSQL restart or a
    // network blip): it reconnects and hears again.
    let cut = pg.psql(
        url.rsplit('/').next().unwrap(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%' \
           AND pid <> pg_backend_pid()",
    );
    assert_eq!(cut, "t", "no listening connection to cut");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    heard(&mut rx);
    assert!(
        announce_until_heard(&node_b, &mut rx).await,
        "not heard after the listening connection was cut"
    );
    listener.abort();
    node_a.close().await;
    node_b.close().await;
}

/// A revocation made through one node takes effect on the other at once,
/// though that node had the token cached: the old secret's token, used on
/// node B, is refused there within a second of the secret's rotation
/// through node A's console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_on_every_node_at_once() {
    let pg = Postgres::from_env_or_start();
    let (_dir, data_a, data_b, _) = two_data_dirs(&pg);
    let garage = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let blobs = garage.blobs_url("revocation");
    let configure = |c: &mut Command| {
        c.args(["--blobs", &blobs])
            .env("FACEHUB_ENCRYPTION_KEY", KEY);
        s3_credentials(c);
    };
    let cmd = || {
        let mut c = facehub(&data_a);
        configure(&mut c);
        c
    };
    let creds = tenant_with_app(cmd, &["facehub:device"]);
    let app_id = creds["app_id"].as_str().unwrap().to_string();
    let password = "correct horse battery staple";
    let mut passwd = cmd()
        .args(["admin", "passwd"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        passwd.stdin.as_mut().unwrap(),
        format!("{password}\n").as_bytes(),
    )
    .unwrap();
    assert!(passwd.wait().unwrap().success());
    let a = Server::start_with(&data_a, configure);
    let b = Server::start_with(&data_b, configure);

    let http = reqwest::Client::new();
    // The envelope's code of node B's answer to `token` (0: accepted).
    let code_on_b = |token: &str| {
        let req = http
            .get(format!("{}/open-apis/facehub/v1/devices", b.base))
            .bearer_auth(token)
            .send();
        async move {
            let v: Value = req.await.unwrap().json().await.unwrap();
            v["code"].as_i64().unwrap()
        }
    };
    let token = tenant_token(&a.base, &creds).await;
    // Accepted on B, which now has it cached.
    assert_eq!(code_on_b(&token).await, 0);
    assert_eq!(code_on_b(&token).await, 0);

    // The secret rotated through node A's console.
    let login = http
        .post(format!("{}/admin/api/login", a.base))
        .json(&json!({"password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let v: Value = login.json().await.unwrap();
    let csrf = v["data"]["csrf"].as_str().unwrap();
    let rotate = http
        .post(format!("{}/admin/api/apps/{app_id}/secret", a.base))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&json!({}));
    let v = reply_json(rotate).await;
    assert_eq!(v["code"], 0, "{v}");
    let rotated = Instant::now();

    // Node B refuses it at once, not when its cache entry expires (30 s).
    let refused = loop {
        let code = code_on_b(&token).await;
        if code != 0 {
            break code;
        }
        assert!(
            rotated.elapsed() < Duration::from_secs(1),
            "node B still accepts the revoked token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refused, 99991663, "invalid tenant token");
    eprintln!(
        "node B refused the revoked token after {:?}",
        rotated.elapsed()
    );
}

/// Blobs in one node's data directory cannot be another node's: a second
/// data directory on the same database with local blobs is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_without_shared_blobs_is_refused() {
    let pg = Postgres::from_env_or_start();
    // Local blobs are what is under test.
    let (_dir, first, second, _) = two_data_dirs(&pg);
    let key = |c: &mut Command| {
        c.env("FACEHUB_ENCRYPTION_KEY", KEY);
    };
    let mut c = facehub(&first);
    key(&mut c);
    run_ok(c.args(["tenant", "create", "acme"]));
    Server::start_with(&first, key).kill();
    // The first directory goes on working.
    let mut c = facehub(&first);
    key(&mut c);
    assert!(run_ok(c.args(["tenant", "list"])).contains("acme"));
    let mut c = facehub(&second);
    key(&mut c);
    let err = run_err(c.args(["tenant", "list"]));
    assert!(err.contains("another data directory"), "{err}");
}

/// An embedded deployment moves its metadata to PostgreSQL (resumable,
/// every table proved), serves from there with the tokens, people and
/// files it had, and moves back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_moves_from_sqlite_to_postgresql_and_back() {
    let pg = Postgres::from_env_or_start();
    let database = pg.create_database();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::set_database(&data, None);
    let cli = |args: &[&str]| run_ok(facehub(&data).args(args));
    let creds = tenant_with_app(|| facehub(&data), ATTENDANCE_SCOPES);
    run_ok(person_add(&mut facehub(&data), "u1", "U One"));
    let server = Server::start(&data);
    let t = tenant_token(&server.base, &creds).await;
    let photo = crate::common::png(150, 140, 7);
    let (status, v) = upload_photo(&server.base, &t, &photo).await;
    assert_eq!(status, 200, "{v}");
    let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
    server.kill();

    // Refused while a server runs on the directory; then copied, twice.
    let held = facehub::store::lock_data_dir(&data).unwrap();
    run_err(facehub(&data).args(["migrate-store", "--to-database", &database]));
    drop(held);
    // Not into another deployment's database.
    let other_db = pg.create_database();
    let other = dir.path().join("other");
    crate::common::set_database(&other, Some(&other_db));
    run_ok(facehub(&other).args(["tenant", "create", "globex"]));
    let err = run_err(facehub(&data).args(["migrate-store", "--to-database", &other_db]));
    assert!(err.contains("another deployment"), "{err}");
    let first = cli(&["migrate-store", "--to-database", &database, "--json"]);
    let first: Value = serde_json::from_str(&first).unwrap();
    let tables = first.as_array().unwrap();
    assert!(tables.iter().all(|t| t["verified"] == true), "{first}");
    let copied = |r: &Value, table: &str| {
        r.as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == table)
            .map(|t| (t["rows"].as_u64().unwrap(), t["copied"].as_u64().unwrap()))
            .unwrap()
    };
    assert_eq!(copied(&first, "people"), (1, 1));
    assert_eq!(copied(&first, "files"), (1, 1));
    let again: Value = serde_json::from_str(&cli(&[
        "migrate-store",
        "--to-database",
        &database,
        "--json",
    ]))
    .unwrap();
    assert_eq!(copied(&again, "files"), (1, 0), "{again}");
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["copied"] == 0 && t["verified"] == true),
        "{again}"
    );

    // Served from PostgreSQL: the old token, the photo, the person; new
    // people get fresh ids (the sequences moved past the copied ones).
    crate::common::set_database(&data, Some(&database));
    let server = Server::start(&data);
    assert_eq!(
        download_photo(&server.base, &t, &id).await,
        (200, photo.clone())
    );
    run_ok(person_add(&mut facehub(&data), "u2", "U Two"));
    let people = cli(&["person", "list", "--tenant", "acme"]);
    assert!(people.contains("u1") && people.contains("u2"), "{people}");
    let photo2 = crate::common::png(151, 140, 8);
    let (status, v) = upload_photo(&server.base, &t, &photo2).await;
    assert_eq!(status, 200, "{v}");
    let id2 = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
    server.kill();

    // And back, into a fresh SQLite file.
    std::fs::rename(data.join("facehub.db"), dir.path().join("old.db")).unwrap();
    let _ = std::fs::remove_file(data.join("facehub.db-wal"));
    let _ = std::fs::remove_file(data.join("facehub.db-shm"));
    let back: Value =
        serde_json::from_str(&cli(&["migrate-store", "--to-database", "local", "--json"])).unwrap();
    assert!(
        back.as_array()
            .unwrap()
            .iter()
            .all(|t| t["verified"] == true),
        "{back}"
    );
    crate::common::set_database(&data, None);
    let server = Server::start(&data);
    assert_eq!(download_photo(&server.base, &t, &id).await, (200, photo));
    assert_eq!(download_photo(&server.base, &t, &id2).await, (200, photo2));
    let people = cli(&["person", "list", "--tenant", "acme"]);
    assert!(people.contains("u2"), "{people}");
    server.kill();
}

/// A key shared through the configuration rotates node by node, with
/// every node serving throughout: the new key is first readable
/// everywhere (`decryption_keys`), then current everywhere (the old one
/// still readable), then `key reseal` moves the data off the old key, which
/// only then may leave the configuration; a node without it before that is
/// refused, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_key_rotates_node_by_node() {
    let pg = Postgres::from_env_or_start();
    let (dir, data_a, data_b, database) = two_data_dirs(&pg);
    let garage = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let blobs = garage.blobs_url("rotation");
    let keyed = |c: &mut Command, key: &str, readable: &[&str]| {
        c.args(["--blobs", &blobs])
            .env("FACEHUB_ENCRYPTION_KEY", key)
            .env("FACEHUB_DECRYPTION_KEYS", readable.join(","));
        s3_credentials(c);
    };
    let cmd = |data: &std::path::Path, key: &str, readable: &[&str]| {
        let mut c = facehub(data);
        keyed(&mut c, key, readable);
        c
    };
    let serve = |data: &std::path::Path, key: &str, readable: &[&str]| {
        Server::start_with(data, |c| keyed(c, key, readable))
    };
    let new: Value =
        serde_json::from_str(&run_ok(facehub(&data_a).args(["key", "new", "--json"]))).unwrap();
    let (k1, k2) = (KEY, new["key"].as_str().unwrap());
    let k1_id = format!(
        "{:08x}",
        facehub::crypto::Key::from_base64(k1).unwrap().id()
    );
    assert_eq!(
        new["key_id"].as_str().unwrap(),
        format!(
            "{:08x}",
            facehub::crypto::Key::from_base64(k2).unwrap().id()
        )
    );
    assert_ne!(new["key_id"].as_str().unwrap(), k1_id);

    let creds = tenant_with_app(|| cmd(&data_a, k1, &[]), ATTENDANCE_SCOPES);
    run_ok(device_add(&mut cmd(&data_a, k1, &[]), "SN-R", "rot-factory-secret").arg("--bind"));
    let mut photos: Vec<(String, Vec<u8>)> = Vec::new();
    let upload = |base: String, t: String, seed: u8| async move {
        let photo = crate::common::png(100 + u32::from(seed), 90, seed);
        let (status, v) = upload_photo(&base, &t, &photo).await;
        assert_eq!(status, 200, "{v}");
        (
            v["data"]["file"]["file_id"].as_str().unwrap().to_string(),
            photo,
        )
    };
    let all_readable = |a: String, b: String, t: String, photos: Vec<(String, Vec<u8>)>| async move {
        for base in [a, b] {
            for (id, photo) in &photos {
                let (status, got) = download_photo(&base, &t, id).await;
                assert_eq!(status, 200, "{id} through {base}");
                assert!(got == *photo, "{id} changed through {base}");
            }
        }
    };

    // Both nodes on K1.
    let mut a = serve(&data_a, k1, &[]);
    let mut b = serve(&data_b, k1, &[]);
    let t = tenant_token(&a.base, &creds).await;
    photos.push(upload(a.base.clone(), t.clone(), 1).await);

    // Step 1, node by node: K2 readable everywhere, K1 still current.
    b.kill();
    b = serve(&data_b, k1, &[k2]);
    a.kill();
    a = serve(&data_a, k1, &[k2]);
    photos.push(upload(b.base.clone(), t.clone(), 2).await);

    // Step 2, node by node: K2 current, K1 readable. Between the two
    // restarts A seals under K2 and B under K1; each reads the other's.
    a.kill();
    a = serve(&data_a, k2, &[k1]);
    photos.push(upload(a.base.clone(), t.clone(), 3).await);
    photos.push(upload(b.base.clone(), t.clone(), 4).await);
    all_readable(a.base.clone(), b.base.clone(), t.clone(), photos.clone()).await;
    b.kill();
    b = serve(&data_b, k2, &[k1]);

    // Too early to drop K1: refused, naming it, for servers and commands.
    let err = run_err(cmd(&data_a, k2, &[]).args(["tenant", "list"]));
    assert!(
        err.contains(&k1_id) && err.contains("decryption_keys") && err.contains("key reseal"),
        "{err}"
    );
    // A third node joining without K1 does not start either.
    let data_c = dir.path().join("c");
    crate::common::set_database(&data_c, Some(&database));
    crate::common::set_blobs(&data_c, None);
    let err = run_err(cmd(&data_c, k2, &[]).args(["serve", "--listen", "127.0.0.1:0"]));
    assert!(
        err.contains(&k1_id) && err.contains("decryption_keys"),
        "{err}"
    );
    // key rotate cannot change every node's configuration; it says how.
    let err = run_err(cmd(&data_a, k2, &[k1]).args(["key", "rotate"]));
    assert!(err.contains("key reseal"), "{err}");

    // Step 3, with both nodes serving: everything moves to K2.
    let r: Value = serde_json::from_str(&run_ok(
        cmd(&data_a, k2, &[k1]).args(["key", "reseal", "--json"]),
    ))
    .unwrap();
    assert_eq!(r["key_id"], new["key_id"], "{r}");
    // The photos of steps 0, 1 and 2 sealed under K1 (one by B in step 2).
    assert_eq!(r["blobs_resealed"], 3, "{r}");
    // Sealed values too: at least the device's secrets, the file names.
    assert!(r["values_resealed"].as_u64().unwrap() >= 5, "{r}");
    assert_eq!(r["remaining"], 0, "{r}");
    let again: Value = serde_json::from_str(&run_ok(
        cmd(&data_b, k2, &[k1]).args(["key", "reseal", "--json"]),
    ))
    .unwrap();
    assert_eq!(
        (
            &again["blobs_resealed"],
            &again["values_resealed"],
            &again["remaining"]
        ),
        (&json!(0), &json!(0), &json!(0)),
        "{again}"
    );
    let said = run_ok(cmd(&data_b, k2, &[k1]).args(["key", "reseal"]));
    assert!(
        said.contains("re-sealed 0 blobs and 0 values")
            && said.contains("nothing is sealed under an older key"),
        "{said}"
    );
    all_readable(a.base.clone(), b.base.clone(), t.clone(), photos.clone()).await;

    // Step 4, node by node: K1 leaves the configuration.
    a.kill();
    a = serve(&data_a, k2, &[]);
    b.kill();
    b = serve(&data_b, k2, &[]);
    photos.push(upload(b.base.clone(), t.clone(), 5).await);
    all_readable(a.base.clone(), b.base.clone(), t.clone(), photos.clone()).await;
    // The device's secret (re-sealed under K2) still signs it in.
    device(&a.base, "SN-R", "rot-factory-secret").await;
    let (ok, report) = {
        let out = cmd(&data_a, k2, &[])
            .args(["check", "--json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("check: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.success(), v)
    };
    assert!(ok, "{report}");
    drop((a, b));
}
