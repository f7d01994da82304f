//! Test harness: the real server on 127.0.0.1:0 with a fresh data directory.
#![allow(dead_code)]

pub mod garage;
pub mod postgres;
pub mod process;
pub mod redis;

use std::net::SocketAddr;
use std::sync::Arc;

use facehub::domain::{Core, Scope, Tenant};
use facehub::{Application, Config};
use serde_json::Value;

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub core: Arc<Core>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub tenant: Tenant,
    pub app_id: String,
    pub app_secret: String,
}

pub struct Creds {
    pub app_id: String,
    pub app_secret: String,
}

pub const ALL_ATTENDANCE: &[&str] = &["attendance:rule", "attendance:rule:readonly"];

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

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
pub fn set_database(data: &std::path::Path, url: Option<&str>) {
    databases()
        .lock()
        .unwrap()
        .insert(data.to_path_buf(), url.map(str::to_string));
}

/// `to` is a copy of the data directory `from` (a restored backup): in
/// the PostgreSQL pass its database is a copy of `from`'s too. Nothing may
/// be connected to `from`'s database meanwhile.
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

/// Every file below `dir`, with its bytes.
pub fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// Every stored blob of the data directory `data`, as stored (sealed):
/// its name and bytes, read straight from the directory or the bucket,
/// not through facehub. A bucket's bookkeeping objects (`.epoch`) are no
/// blobs.
pub async fn stored_blobs(data: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    use futures_util::TryStreamExt;
    use object_store::ObjectStore;
    let Some(url) = blobs_for(data) else {
        let root = data.join("blobs");
        let mut out: Vec<(String, Vec<u8>)> = files_under(&root)
            .into_iter()
            .map(|(p, b)| (p.strip_prefix(&root).unwrap().display().to_string(), b))
            .collect();
        out.sort();
        return out;
    };
    let loc = facehub::store::s3::S3Location::parse(&url).unwrap();
    let s3 = loc.client().unwrap();
    let prefix = object_store::path::Path::from(loc.prefix.as_str());
    let metas: Vec<_> = s3.list(Some(&prefix)).try_collect().await.unwrap();
    let mut out = Vec::new();
    for m in metas {
        if m.location.filename().is_some_and(|f| f.starts_with('.')) {
            continue;
        }
        let bytes = s3.get(&m.location).await.unwrap().bytes().await.unwrap();
        out.push((m.location.to_string(), bytes.to_vec()));
    }
    out.sort();
    out
}

/// The configuration of a server on the data directory `data`, on a
/// random loopback port, with the stores of the pass (see `database_for`,
/// `blobs_for`).
pub fn config_for(data: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: data.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        database: database_for(data),
        blobs: blobs_for(data),
        ..Config::default()
    };
    if config.blobs.is_some() {
        // One node on the bucket prefix: an unreferenced object is an
        // orphan at once, as in a local directory.
        config.orphan_grace_secs = 0;
    }
    config
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    tweak(&mut config);
    let app = Application::build(config).await.expect("build app");
    let addr = app.local_addr();
    let core = app.core();
    tokio::spawn(app.run_until_stopped());
    let tenant = core.create_tenant("acme").await.unwrap();
    let creds = make_app(&core, &tenant, ALL_ATTENDANCE).await;
    TestApp {
        addr,
        base: format!("http://{addr}"),
        core,
        client: reqwest::Client::new(),
        dir,
        tenant,
        app_id: creds.app_id,
        app_secret: creds.app_secret,
    }
}

pub async fn make_app(core: &Core, tenant: &Tenant, scopes: &[&str]) -> Creds {
    let scopes: Vec<Scope> = scopes.iter().map(|s| Scope::parse(s).unwrap()).collect();
    let a = core.create_app(tenant, &scopes).await.unwrap();
    Creds {
        app_id: a.app.app_id,
        app_secret: a.app_secret,
    }
}

pub fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x as u8).wrapping_mul(seed), y as u8, seed])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

pub fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x as u8) ^ seed, (y as u8).wrapping_add(seed), 99])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
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

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn token_for(&self, app_id: &str, secret: &str) -> String {
        let v: Value = self
            .client
            .post(self.url("/open-apis/auth/v3/tenant_access_token/internal"))
            .json(&serde_json::json!({"app_id": app_id, "app_secret": secret}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["code"], 0, "{v}");
        v["tenant_access_token"].as_str().unwrap().to_string()
    }

    pub async fn token(&self) -> String {
        self.token_for(&self.app_id, &self.app_secret).await
    }

    pub async fn upload_raw(
        &self,
        token: &str,
        query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/open-apis/attendance/v1/files/upload{query}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Uploads like the Python SDK and returns the file_id.
    pub async fn upload(&self, token: &str, name: &str, bytes: &[u8]) -> String {
        let (ct, body) = sdk_file_body(bytes);
        let q = format!(
            "?file_name={}",
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
        );
        let resp = self.upload_raw(token, &q, &ct, body).await;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["code"], 0, "{v}");
        assert_eq!(v["msg"], "success");
        v["data"]["file"]["file_id"].as_str().unwrap().to_string()
    }

    pub async fn download(&self, token: &str, file_id: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!(
                "/open-apis/attendance/v1/files/{file_id}/download"
            )))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn download_ok(&self, token: &str, file_id: &str) -> Vec<u8> {
        let r = self.download(token, file_id).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }
}

/// Asserts an error envelope and returns it.
pub async fn expect_error(resp: reqwest::Response, status: u16, code: i64) -> Value {
    let got_status = resp.status().as_u16();
    let logid = resp
        .headers()
        .get("x-tt-logid")
        .expect("every response carries X-Tt-Logid")
        .to_str()
        .unwrap()
        .to_string();
    let v: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(
        (got_status, v["code"].as_i64().unwrap()),
        (status, code),
        "{v}"
    );
    assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert_eq!(v["error"]["log_id"], logid.as_str());
    v
}

impl TestApp {
    /// Sends `body` as JSON with the given method and token; returns the reply.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs JSON and decodes the JSON reply, whatever its status.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Value {
        self.send_json(reqwest::Method::POST, path, token, body)
            .await
            .json()
            .await
            .unwrap()
    }

    pub fn tmp_files(&self) -> usize {
        tmp_files(self.dir.path())
    }

    /// Starts an upload over a raw connection and sends only the first half
    /// of its body.
    pub async fn half_upload(&self, token: &str, bytes: &[u8]) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let (ct, body) = sdk_file_body(bytes);
        let head = format!(
            "POST /open-apis/attendance/v1/files/upload?file_name=a.png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut s = self.raw(head.as_bytes()).await;
        s.write_all(&body[..body.len() / 2]).await.unwrap();
        s
    }

    /// Opens a connection and writes `bytes` to it.
    pub async fn raw(&self, bytes: &[u8]) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        s.write_all(bytes).await.unwrap();
        s
    }
}

/// The first reply bytes on a raw connection, waiting at most 10 s.
pub async fn read_reply(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the server answers within 10 s")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The bytes of a photograph scikit-image ships in `skimage/data`
/// (installed into `.venv` by scripts/test).
pub fn skimage_file(name: &str) -> Vec<u8> {
    let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/lib");
    let dir = std::fs::read_dir(lib)
        .expect(
            "scikit-image is needed: run scripts/test (it installs conformance/requirements.txt)",
        )
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/skimage/data"))
        .find(|p| p.exists())
        .expect("skimage/data in .venv");
    std::fs::read(dir.join(name)).unwrap()
}
