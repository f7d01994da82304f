//! Helpers both test binaries share (tests/it, tests/process): the stores
//! of a test's data directory in either pass, sample images, multipart
//! bodies, tokens, and the `facehub` binary as a process. The servers
//! behind those stores are facehub-testkit's (testkit/).

pub mod process;

// Where the tests have always named them (`common::postgres::psql_at`, …).
pub use facehub_testkit::garage::{S3_KEY_ID, S3_SECRET};
pub use facehub_testkit::postgres;

use serde_json::Value;

/// The metadata store of a test's data directory: `None` (SQLite in it)
/// normally; in the suite's PostgreSQL pass (`$TEST_POSTGRES_URL`
/// names a server, see scripts/test) a fresh database of that server, one
/// per data directory, so tests stay as isolated as with SQLite.
pub fn database_for(data: &std::path::Path) -> Option<String> {
    let mut map = databases().lock().unwrap();
    if let Some(url) = map.get(data) {
        return url.clone();
    }
    std::env::var(postgres::SHARED_ENV)
        .ok()
        .filter(|v| !v.is_empty())?;
    Some(
        map.entry(data.to_path_buf())
            .or_insert_with(|| Some(postgres::Postgres::from_env_or_start().create_database()))
            .clone()
            .expect("just inserted"),
    )
}

/// A store URL per data directory (`None`: the embedded one).
type PerDataDir = std::collections::HashMap<std::path::PathBuf, Option<String>>;

fn databases() -> &'static std::sync::Mutex<PerDataDir> {
    static MAP: std::sync::OnceLock<std::sync::Mutex<PerDataDir>> = std::sync::OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// The data directory `data` keeps its metadata in the database `url`
/// (a test of several nodes sharing one), or in its SQLite (`None`, in
/// either pass).
#[allow(dead_code)] // Only the process tests pin or copy stores.
pub fn set_database(data: &std::path::Path, url: Option<&str>) {
    databases()
        .lock()
        .unwrap()
        .insert(data.to_path_buf(), url.map(str::to_string));
}

/// `to` is a copy of the data directory `from` (a restored backup): in
/// the PostgreSQL pass its database is a copy of `from`'s too. Nothing may
/// be connected to `from`'s database meanwhile.
#[allow(dead_code)] // Only the process tests pin or copy stores.
pub fn copy_database(from: &std::path::Path, to: &std::path::Path) {
    let Some(src) = database_for(from) else {
        return;
    };
    let (server, src_name) = src.rsplit_once('/').unwrap();
    let name = format!("{src_name}_copy{}", databases().lock().unwrap().len());
    let sql = format!("CREATE DATABASE {name} TEMPLATE {src_name}");
    let admin = format!("{server}/postgres");
    let sessions = format!(
        "SELECT pid, application_name, state, backend_start, left(query, 60)
         FROM pg_stat_activity WHERE datname = '{src_name}' AND pid <> pg_backend_pid()"
    );
    let mut tries = 0;
    while let Err(e) = postgres::psql_at(&admin, &sql) {
        // Each refusal took PostgreSQL's own 5 s wait. The servers on
        // `from` are gone, so whatever session is left is a straggler (a
        // dead client's backend not yet noticed): end it, as restoring a
        // backup would, and say what it was.
        tries += 1;
        let left = postgres::psql_at(&admin, &sessions).unwrap_or_default();
        assert!(tries < 5, "{e}\nsessions left: {left}");
        eprintln!("copy_database: ending sessions of {src_name}: {left}");
        let _ = postgres::psql_at(
            &admin,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = '{src_name}' AND pid <> pg_backend_pid()"
            ),
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    databases()
        .lock()
        .unwrap()
        .insert(to.to_path_buf(), Some(format!("{server}/{name}")));
}

/// The test knob naming the bucket of the suite's scale-out pass
/// (scripts/test): `s3://bucket?endpoint=…&region=…` of a Garage cluster,
/// with its key in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
pub const BLOBS_ENV: &str = "TEST_BLOBS_URL";

/// `cmd` with the S3 key of every Garage cluster the tests use (a test's
/// own and the scale-out pass's), as the usual AWS variables.
pub fn s3_credentials(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("AWS_ACCESS_KEY_ID", S3_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
}

/// The blob store of a test's data directory: `None` (its `blobs/`
/// directory, or whatever the test passes itself) normally; in the
/// scale-out pass a prefix of that bucket of its own, one per data
/// directory, so tests stay as isolated as with local directories.
pub fn blobs_for(data: &std::path::Path) -> Option<String> {
    let mut map = blob_stores().lock().unwrap();
    if let Some(url) = map.get(data) {
        return url.clone();
    }
    let bucket = std::env::var(BLOBS_ENV).ok().filter(|v| !v.is_empty())?;
    let (bucket, query) = bucket.split_once('?').unwrap_or((&bucket, ""));
    // Unique across the run's test processes, whose pids may be reused.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!(
        "t{nanos:x}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let url = format!("{}/{prefix}?{query}", bucket.trim_end_matches('/'));
    map.insert(data.to_path_buf(), Some(url.clone()));
    Some(url)
}

/// The data directory `data` keeps its blobs in `url`, or (`None`) in
/// its own directory or wherever the test's own `--blobs` says: a test of
/// one kind of store pins it, in either pass.
#[allow(dead_code)] // Only the process tests pin or copy stores.
pub fn set_blobs(data: &std::path::Path, url: Option<&str>) {
    blob_stores()
        .lock()
        .unwrap()
        .insert(data.to_path_buf(), url.map(str::to_string));
}

fn blob_stores() -> &'static std::sync::Mutex<PerDataDir> {
    static MAP: std::sync::OnceLock<std::sync::Mutex<PerDataDir>> = std::sync::OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// How many files uploads in progress hold in the data directory `data`:
/// in `tmp/` beside local blobs, in `spool/` (parts before their PUT)
/// when the blobs are in a bucket.
pub fn tmp_files(data: &std::path::Path) -> usize {
    let dir = if blobs_for(data).is_some() {
        "spool"
    } else {
        "tmp"
    };
    std::fs::read_dir(data.join(dir))
        .unwrap_or_else(|e| panic!("{}: {e}", data.join(dir).display()))
        .count()
}

pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x as u8).wrapping_mul(seed), y as u8, seed])
    });
    encode(&img, image::ImageFormat::Png)
}

/// A PNG of `side`², unique per seed: its first `noisy` rows noise (which
/// keeps it from compressing), the rest the colour `flat`.
pub fn noise_png(side: u32, noisy: u32, seed: u64, flat: [u8; 3]) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let img = image::RgbImage::from_fn(side, side, |_, y| {
        if y < noisy {
            image::Rgb([rng.r#gen(), rng.r#gen(), rng.r#gen()])
        } else {
            image::Rgb(flat)
        }
    });
    encode(&img, image::ImageFormat::Png)
}

/// `img` encoded as `format`: the file's bytes.
pub fn encode(img: &image::RgbImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A multipart body built byte by byte, so tests control exactly what the
/// SDKs send (parts without filename or Content-Type, odd order, …).
pub struct RawMultipart {
    pub boundary: String,
    pub body: Vec<u8>,
}

impl RawMultipart {
    pub fn new() -> Self {
        RawMultipart {
            boundary: "b55a8c03374c41f48b2a1379cb55da65".into(),
            body: Vec::new(),
        }
    }

    /// `headers` are the part's header lines after Content-Disposition.
    pub fn part(mut self, disposition: &str, headers: &[&str], data: &[u8]) -> Self {
        self.body
            .extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
        self.body
            .extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        for h in headers {
            self.body.extend_from_slice(format!("{h}\r\n").as_bytes());
        }
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

/// The Python SDK's shape: one `file` part, no filename, no Content-Type.
pub fn sdk_file_body(bytes: &[u8]) -> (String, Vec<u8>) {
    RawMultipart::new()
        .part("form-data; name=\"file\"", &[], bytes)
        .finish()
}

/// Sends `req` and decodes the JSON reply, whatever its status.
pub async fn reply_json(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// A tenant_access_token from the server at `base` for `creds`
/// (`{"app_id", "app_secret"}`, as `facehub app create --json` prints them).
pub async fn tenant_token(base: &str, creds: &Value) -> String {
    let url = format!("{base}/open-apis/auth/v3/tenant_access_token/internal");
    let v = reply_json(reqwest::Client::new().post(url).json(creds)).await;
    assert_eq!(v["code"], 0, "{v}");
    v["tenant_access_token"].as_str().unwrap().to_string()
}

/// What the terminal `d` is told of one person (`get_userinfo_by_ids`).
pub async fn userinfo(d: &facehub_devsim::Device, user_id: &str, user_type: u8) -> Value {
    let items = serde_json::json!({"user_item": [{"userid": user_id, "user_type": user_type}]});
    d.call("get_userinfo_by_ids", items).await.unwrap()
}

/// The secret the terminal `d`, once bound, gets for its `active_code`.
pub async fn activate(d: &facehub_devsim::Device, active_code: &str) -> String {
    let v = d.call("active", serde_json::json!({"active_code": active_code}));
    v.await.unwrap()["secret"].as_str().unwrap().to_string()
}
