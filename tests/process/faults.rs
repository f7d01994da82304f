//! Faults without damage, on the real binary: a data directory on a small
//! tmpfs, filled by uploads down to the free-space floor, then to its last
//! byte, then freed — and a SIGKILL at the end. Throughout, every
//! acknowledged photo reads back exactly, nothing is handed out without its
//! audit record, `/readyz` says whether the store can commit, and facehub
//! returns to normal by itself within seconds of space being freed.
//!
//! Mounting a tmpfs needs root (CI runs as root); elsewhere the test says
//! it did not run. The scale-out pass (metadata on PostgreSQL, blobs on
//! Garage) leaves the data directory's filesystem nothing to fill, so it
//! runs in the embedded pass only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::process::{Server, facehub, run_ok};
use crate::photos::{download_photo, upload_photo};

/// The filesystem under test, MiB.
const TMPFS_MIB: u64 = 48;
/// The free-space floor the server runs with, MiB.
const FLOOR_MIB: u64 = 12;
/// Space taken before the server starts and freed at the end, MiB.
const BALLAST_MIB: u64 = 16;

/// A tmpfs mounted on a temporary directory for as long as it lives.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mib: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700")])
                .arg("tmpfs")
                .arg(dir.path()),
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn free_mib(&self) -> u64 {
        let s = rustix::fs::statvfs(self.path()).unwrap();
        (s.f_bavail * s.f_frsize) >> 20
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn start(data: &Path) -> Server {
    Server::start_with(data, |c| {
        c.env("FACEHUB_LIMITS__MIN_FREE_MIB", FLOOR_MIB.to_string());
    })
}

/// A PNG of noise (it does not compress), about 0.75 MiB, unique per seed.
fn noise_png(seed: u64) -> Vec<u8> {
    crate::common::noise_png(512, 512, seed, [0, 0, 0])
}

async fn readyz(base: &str) -> u16 {
    match reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Writes `name` in `dir` until `mib` MiB or the filesystem's last byte
/// (`None`); the file's path.
fn fill(dir: &Path, name: &str, mib: Option<u64>) -> PathBuf {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    for _ in 0..mib.map_or(u64::MAX, |m| m * 16) {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    let _ = f.sync_all();
    path
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Every acknowledged photo downloaded: those served (200) must be exact;
/// a refusal must be the platform's envelope, never a 200 with other bytes.
/// Returns how many were served.
async fn read_back(base: &str, token: &str, stored: &[(String, Vec<u8>)], phase: &str) -> usize {
    read_back_tally(base, token, stored, phase).await.0
}

/// The same, with the refusals' (status, msg) counted.
async fn read_back_tally(
    base: &str,
    token: &str,
    stored: &[(String, Vec<u8>)],
    phase: &str,
) -> (usize, std::collections::BTreeMap<(u16, String), usize>) {
    let mut refusals = std::collections::BTreeMap::new();
    let mut served = 0;
    for (id, bytes) in stored {
        let (status, body) = download_photo(base, token, id).await;
        if status == 200 {
            assert!(body == *bytes, "{phase}: photo {id} came back different");
            served += 1;
        } else {
            let v: Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{phase}: a {status} without an envelope"));
            assert!(
                v["code"].as_i64().unwrap_or(0) != 0,
                "{phase}: {status} {v}"
            );
            let msg = v["msg"].as_str().unwrap_or_default().to_string();
            *refusals.entry((status, msg)).or_default() += 1;
        }
    }
    (served, refusals)
}

/// `photo.download` records that say `ok`, from the CLI's export.
fn download_records(data: &Path) -> usize {
    run_ok(facehub(data).args([
        "audit",
        "export",
        "--tenant",
        "acme",
        "--action",
        "photo.download",
        "--format",
        "jsonl",
    ]))
    .lines()
    .filter(|l| serde_json::from_str::<Value>(l).unwrap()["result"] == "ok")
    .count()
}

/// Whether a refusal is the full disk's: "storage full", whatever follows.
fn storage_full(v: &Value) -> bool {
    v["msg"]
        .as_str()
        .unwrap_or_default()
        .starts_with("storage full")
}

/// `facehub check --json` on `data`, which must pass; its report.
fn check_clean(data: &Path, after: &str) -> Value {
    let out = facehub(data).args(["check", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "check after {after}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How each test ends: a SIGKILL, then every download served has its
/// durable record, check is clean, and after `restart` every acknowledged
/// photo reads back whole. Check runs on the data as the kill left it, or
/// with `check_restarted` once the restart has recovered it. The restarted
/// server, check's report and how many photos read back.
async fn verify_after_kill(
    server: Server,
    data: &Path,
    creds: &Value,
    stored: &[(String, Vec<u8>)],
    served: usize,
    restart: fn(&Path) -> Server,
    check_restarted: bool,
) -> (Server, Value, usize) {
    server.kill();
    assert_eq!(
        download_records(data),
        served,
        "downloads served without a durable record"
    );
    let (server, report) = if check_restarted {
        let server = restart(data);
        (server, check_clean(data, "the SIGKILL and a restart"))
    } else {
        let report = check_clean(data, "the SIGKILL");
        (restart(data), report)
    };
    let token = crate::common::tenant_token(&server.base, creds).await;
    let after = read_back(&server.base, &token, stored, "restarted").await;
    assert_eq!(after, stored.len(), "acknowledged photos lost");
    (server, report, after)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_degrades_then_recovers_by_itself() {
    if std::env::var("TEST_PASS").as_deref() == Ok("scaleout") {
        eprintln!("faults: the embedded pass fills the data directory; nothing to fill here");
        return;
    }
    if !is_root() {
        // CI runs as root: there the proof must not vanish quietly.
        assert!(
            std::env::var_os("CI").is_none(),
            "the full-disk suite needs root to mount a tmpfs"
        );
        eprintln!("faults: NOT RUN: mounting a tmpfs needs root");
        return;
    }
    let fs = Tmpfs::mount(TMPFS_MIB);
    let data = fs.path().join("data");
    // What the operator deletes to free space at the end.
    let ballast = fill(fs.path(), "ballast", Some(BALLAST_MIB));
    let creds = crate::common::process::tenant_with_app(
        || facehub(&data),
        crate::common::process::ATTENDANCE_SCOPES,
    );
    let server = start(&data);
    let base = server.base.clone();
    let token = crate::common::tenant_token(&base, &creds).await;

    // Down to the floor: uploads are acknowledged until the free space
    // reaches it, then refused as "storage full" before their body is read.
    let mut stored: Vec<(String, Vec<u8>)> = Vec::new();
    let mut refused = 0;
    for seed in 0..200u64 {
        let photo = noise_png(seed);
        let (status, v) = upload_photo(&base, &token, &photo).await;
        match status {
            200 => stored.push((
                v["data"]["file"]["file_id"].as_str().unwrap().to_string(),
                photo,
            )),
            507 => {
                assert!(storage_full(&v), "{v}");
                refused += 1;
                break;
            }
            other => panic!("upload {seed}: {other} {v}"),
        }
    }
    assert_eq!(refused, 1, "the floor never refused an upload");
    assert!(stored.len() >= 10, "only {} uploads fit", stored.len());
    assert!(fs.free_mib() <= FLOOR_MIB, "{} MiB free", fs.free_mib());
    assert_eq!(
        readyz(&base).await,
        200,
        "at the floor the store still commits"
    );
    let mut served = read_back(&base, &token, &stored, "at the floor").await;
    assert_eq!(served, stored.len(), "reads stop at the floor");

    // To the last byte: uploads are refused, reads are served only with
    // their record, and /readyz says whether the store can commit.
    let filler = fill(fs.path(), "filler", None);
    assert_eq!(fs.free_mib(), 0);
    let (status, v) = upload_photo(&base, &token, &noise_png(1000)).await;
    assert_eq!(status, 507, "{v}");
    let (full_reads, full_refusals) = read_back_tally(&base, &token, &stored, "full").await;
    // A read it cannot audit is refused as the deployment's state, not as a
    // fault: "storage full", 507.
    for ((status, msg), n) in &full_refusals {
        assert!(
            *status == 507 && msg.starts_with("storage full"),
            "{n} reads refused with {status} {msg:?} while full"
        );
    }
    served += full_reads;
    // Honest: with not one read's record committed, the store cannot
    // commit, and /readyz must say so. (A WAL with pages to reuse may still
    // take a small commit on a full filesystem; then reads are served with
    // their records, and ready is the truth too.) A verdict serves the
    // probes of the next second, so the one taken at the floor is let go
    // stale first.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ready_full = readyz(&base).await;
    if full_reads == 0 {
        assert_eq!(ready_full, 503, "ready while no record could be committed");
    } else {
        assert!(
            [200, 503].contains(&ready_full),
            "/readyz answered {ready_full}"
        );
    }

    // Space freed: uploads and /readyz back within seconds, no restart.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&ballast).unwrap();
    let freed = Instant::now();
    let mut recovered = None;
    let mut seed = 2000;
    while freed.elapsed() < Duration::from_secs(30) {
        let photo = noise_png(seed);
        seed += 1;
        let (status, v) = upload_photo(&base, &token, &photo).await;
        match status {
            200 => {
                stored.push((
                    v["data"]["file"]["file_id"].as_str().unwrap().to_string(),
                    photo,
                ));
                recovered = Some(freed.elapsed());
                break;
            }
            500 | 503 | 507 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("after freeing: {other} {v}"),
        }
    }
    let recovered = recovered.expect("uploads still refused 30 s after space was freed");
    // (A verdict serves the probes of the second after it.)
    let mut ready = readyz(&base).await;
    while ready != 200 && freed.elapsed() < recovered + Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ready = readyz(&base).await;
    }
    let ready_after = freed.elapsed();
    assert_eq!(ready, 200, "not ready 5 s after uploads resumed");
    served += read_back(&base, &token, &stored, "freed").await;

    // Killed, restarted: every acknowledged photo is whole, check is clean
    // (no write without its record), and every download served has its
    // record.
    let (server, _, after) =
        verify_after_kill(server, &data, &creds, &stored, served, start, false).await;
    println!(
        "full disk: {} uploads acknowledged, {refused} refused at the {FLOOR_MIB} MiB floor, \
         {full_reads} of {} reads served with the filesystem full (/readyz {ready_full}), \
         uploads back {:.1} s and ready {:.1} s after space was freed, {} reads verified, \
         check clean",
        stored.len(),
        stored.len(),
        recovered.as_secs_f64(),
        ready_after.as_secs_f64(),
        served + after,
    );

    // Without a floor (0 turns it off) an upload meets the full disk in
    // the blob writer itself: still "storage full", never a 500, and
    // nothing of it stays.
    server.kill();
    let server = Server::start_with(&data, |c| {
        c.env("FACEHUB_LIMITS__MIN_FREE_MIB", "0");
    });
    let token = crate::common::tenant_token(&server.base, &creds).await;
    // Room for the audit record of a refusal, not for the photo: the
    // writer is what meets the full disk.
    let filler = fill(fs.path(), "filler", None);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap();
    f.set_len(f.metadata().unwrap().len() - 512 * 1024).unwrap();
    drop(f);
    let (status, v) = upload_photo(&server.base, &token, &noise_png(3000)).await;
    assert_eq!(
        status, 507,
        "an upload into a full disk without a floor: {v}"
    );
    assert!(storage_full(&v), "{v}");
    std::fs::remove_file(&filler).unwrap();
    let (status, v) = upload_photo(&server.base, &token, &noise_png(3001)).await;
    assert_eq!(status, 200, "after freeing, without a floor: {v}");
    server.kill();
    check_clean(&data, "an upload met the full disk");
}

/// Uploads and downloads while blob writes and audit records fail with EIO
/// at random (the debug build's fault points, src/faults.rs): each request
/// is answered, either acknowledged and whole or refused in the envelope;
/// after a SIGKILL and a restart without faults, exactly the acknowledged
/// photos exist, check is clean (no write without its record, no blob of
/// a refused upload left), and every download served has its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_errors_leave_nothing_half_written() {
    const WORKERS: u64 = 4;
    const UPLOADS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let creds = crate::common::process::tenant_with_app(
        || facehub(&data),
        crate::common::process::ATTENDANCE_SCOPES,
    );
    let server = Server::start_with(&data, |c| {
        c.env(
            "FAILPOINTS",
            "blob.write=3%return;blob.finish=10%return;audit.write=10%return",
        );
    });
    let base = server.base.clone();
    let token = crate::common::tenant_token(&base, &creds).await;
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (base, token) = (base.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let mut stored = Vec::new();
            let (mut refused, mut served, mut unserved) = (0, 0, 0);
            for i in 0..UPLOADS {
                let seed = (w * UPLOADS + i) as u8;
                let photo = crate::common::png(64 + i as u32, 64, seed.max(1));
                let (status, v) = upload_photo(&base, &token, &photo).await;
                match status {
                    200 => {
                        let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
                        stored.push((id, photo));
                    }
                    500 => {
                        assert!(v["code"].as_i64().unwrap_or(0) != 0, "{v}");
                        refused += 1;
                    }
                    other => panic!("upload: {other} {v}"),
                }
                // The newest acknowledged photo read back: served whole,
                // or refused (its record could not be written).
                let Some((id, bytes)) = stored.last() else {
                    continue;
                };
                let (status, body) = download_photo(&base, &token, id).await;
                match status {
                    200 => {
                        assert!(body == *bytes, "photo {id} came back different");
                        served += 1;
                    }
                    500 => unserved += 1,
                    other => panic!("download: {other}"),
                }
            }
            (stored, refused, served, unserved)
        }));
    }
    let mut stored = Vec::new();
    let (mut refused, mut served, mut unserved) = (0, 0, 0);
    for w in workers {
        let (s, r, sv, u) = w.await.unwrap();
        stored.extend(s);
        refused += r;
        served += sv;
        unserved += u;
    }
    assert!(refused > 0, "no upload met an injected fault");
    assert!(unserved > 0, "no download met an injected fault");

    // Check runs after the restart: the restart is what recovers the data
    // a SIGKILL left.
    let (_server, report, after) =
        verify_after_kill(server, &data, &creds, &stored, served, Server::start, true).await;
    assert_eq!(
        report["files"]["attendance_photo"].as_u64(),
        Some(stored.len() as u64),
        "stored photos other than the acknowledged ones: {report}"
    );
    println!(
        "write errors: {} uploads, {} acknowledged, {refused} refused by injected EIO; \
         {served} downloads served with their record, {unserved} refused; after SIGKILL \
         and restart {after} photos whole, check clean",
        WORKERS * UPLOADS,
        stored.len(),
    );
}

/// An upload, then a download of the newest acknowledged photo, each
/// answered — acknowledged and whole, or refused in the envelope:
/// (downloads served, requests refused).
async fn round(
    stored: &mut Vec<(String, Vec<u8>)>,
    base: &str,
    token: &str,
    seed: u8,
    allowed: &[u16],
) -> (usize, usize) {
    let answered = |status: u16, what: &str| {
        assert!(
            allowed.contains(&status),
            "{what} answered {status} where {allowed:?} were expected"
        );
    };
    let photo = crate::common::png(64 + u32::from(seed), 64, seed.max(1));
    let (status, v) = upload_photo(base, token, &photo).await;
    answered(status, "an upload");
    let mut got = (0, 0);
    if status == 200 {
        let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
        stored.push((id, photo));
    } else {
        // The platform's envelope, saying why.
        assert_eq!(v["code"], 1225000, "{v}");
        assert!(
            v["msg"].as_str().unwrap_or("").contains("unavailable"),
            "{v}"
        );
        got.1 += 1;
    }
    if let Some((id, bytes)) = stored.last() {
        let (status, body) = download_photo(base, token, id).await;
        answered(status, "a download");
        if status == 200 {
            assert!(body == *bytes, "photo {id} came back different");
            got.0 += 1;
        } else {
            got.1 += 1;
        }
    }
    got
}

/// PostgreSQL killed under load and started again, facehub left running:
/// while the database is gone every request is answered (refused in the
/// envelope, no hang) and `/readyz` says 503; once it is back, uploads and
/// readiness return without a restart; nothing acknowledged is lost,
/// nothing was served unaudited, and check is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_lost_under_load_recovers_without_restart() {
    if std::env::var("TEST_PASS").as_deref() == Ok("scaleout") {
        eprintln!("faults: runs its own PostgreSQL in the first pass");
        return;
    }
    let mut pg = crate::common::postgres::Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::set_database(&data, Some(&pg.create_database()));
    let creds = crate::common::process::tenant_with_app(
        || facehub(&data),
        crate::common::process::ATTENDANCE_SCOPES,
    );
    let server = Server::start(&data);
    let base = server.base.clone();
    let token = crate::common::tenant_token(&base, &creds).await;
    let mut stored: Vec<(String, Vec<u8>)> = Vec::new();
    let (mut served, mut refused) = (0, 0);
    let mut seed = 0u8;
    for _ in 0..10 {
        seed = seed.wrapping_add(1);
        let (s, r) = round(&mut stored, &base, &token, seed, &[200]).await;
        (served, refused) = (served + s, refused + r);
    }
    assert_eq!(refused, 0, "refusals before PostgreSQL went away");

    // A request already waiting for a connection when PostgreSQL goes
    // waits out the pool's acquire timeout (5 s, which a failover's
    // restart fits in); once the store's watch has seen it gone (within
    // a second), every request is refused at once: 503 in the envelope.
    pg.kill();
    let gone = Instant::now();
    const GONE_ROUNDS: u32 = 5;
    let mut slowest_round_after_first = Duration::ZERO;
    for i in 0..GONE_ROUNDS {
        seed = seed.wrapping_add(1);
        let t = Instant::now();
        let (s, r) = round(&mut stored, &base, &token, seed, &[503]).await;
        (served, refused) = (served + s, refused + r);
        if i > 0 {
            slowest_round_after_first = slowest_round_after_first.max(t.elapsed() / 2);
        }
    }
    let while_gone = gone.elapsed() / (2 * GONE_ROUNDS);
    assert_eq!(
        refused,
        2 * GONE_ROUNDS as usize,
        "served without a database"
    );
    assert!(
        slowest_round_after_first < Duration::from_secs(1),
        "a round's requests took {slowest_round_after_first:?} each on average to be refused with the database known lost"
    );
    assert_eq!(readyz(&base).await, 503, "ready without a database");

    pg.restart();
    let back = Instant::now();
    let mut recovered = None;
    while back.elapsed() < Duration::from_secs(30) {
        let before = stored.len();
        seed = seed.wrapping_add(1);
        let (s, r) = round(&mut stored, &base, &token, seed, &[200, 503]).await;
        (served, refused) = (served + s, refused + r);
        if stored.len() > before {
            recovered = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered = recovered.expect("uploads still refused 30 s after PostgreSQL came back");
    let mut ready = readyz(&base).await;
    while ready != 200 && back.elapsed() < recovered + Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ready = readyz(&base).await;
    }
    assert_eq!(ready, 200, "not ready after PostgreSQL came back");

    let (_server, _, after) =
        verify_after_kill(server, &data, &creds, &stored, served, Server::start, false).await;
    println!(
        "PostgreSQL lost: {} uploads acknowledged, {refused} requests refused while it was \
         gone (each answered in {:.2} s on average, at most {:.3} s a request in any later round), uploads back {:.1} s after it returned, {served} \
         downloads served with their record, {after} photos whole after restart, check clean",
        stored.len(),
        while_gone.as_secs_f64(),
        slowest_round_after_first.as_secs_f64(),
        recovered.as_secs_f64(),
    );
}
