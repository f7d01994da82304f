//! The server in-process on 127.0.0.1:0 with a fresh data directory, and
//! typed requests to it.

use std::net::SocketAddr;
use std::sync::Arc;

use facehub::domain::{Core, Scope, Tenant};
use facehub::{Application, Config};
use serde_json::Value;

use crate::common::*;

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

pub fn jpeg(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x as u8) ^ seed, (y as u8).wrapping_add(seed), 99])
    });
    encode(&img, image::ImageFormat::Jpeg)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn token_for(&self, app_id: &str, secret: &str) -> String {
        tenant_token(
            &self.base,
            &serde_json::json!({"app_id": app_id, "app_secret": secret}),
        )
        .await
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
        let path = format!("/open-apis/attendance/v1/files/upload{query}");
        let form = (content_type.to_string(), body);
        self.send_form(reqwest::Method::POST, &path, token, form)
            .await
    }

    /// Sends a body `(content type, bytes)` — a multipart form as
    /// `RawMultipart::finish` returns it — with `method` and `token`.
    pub async fn send_form(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        (content_type, body): (String, Vec<u8>),
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` with `token`: the reply, whatever its status.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        let req = self.client.get(self.url(path)).bearer_auth(token);
        req.send().await.unwrap()
    }

    /// `GET path` with `token`: the status and the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self.get(path, token).await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// A terminal of `tenant`, added, bound and logged in over the WeCom
    /// protocol, subscribed with these (face, fingerprint) algorithms.
    pub async fn terminal(
        &self,
        tenant: &Tenant,
        sn: &str,
        secret_no: &str,
        algorithms: (&[&str], &[&str]),
    ) -> Arc<facehub_devsim::Device> {
        self.core.add_device(tenant, sn, secret_no).await.unwrap();
        self.core.bind_device(tenant.id, sn).await.unwrap();
        let url = format!("{}/", self.base.replacen("http", "ws", 1));
        let d = facehub_devsim::Device::connect(&url, sn, algorithms, None)
            .await
            .unwrap();
        d.bring_up(secret_no, self.core.now()).await.unwrap();
        d
    }

    /// `DELETE path` with `token`: the reply, whatever its status.
    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        let req = self.client.delete(self.url(path)).bearer_auth(token);
        req.send().await.unwrap()
    }

    /// Adds (or updates) the person `user_id` named `name` to the tenant.
    pub async fn add_person(&self, user_id: &str, name: &str) {
        let d = facehub::domain::PersonDraft::new(user_id, name, None).unwrap();
        self.core.upsert_person(&self.tenant, &d).await.unwrap();
    }

    /// A user access token of the person `user_id` for the app `app_id`.
    pub async fn user_token(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> facehub::domain::auth::IssuedToken {
        self.core.issue_user_token(app_id, user_id).await.unwrap()
    }

    /// Grants door access to `user_ids` and makes an `acs:users` app.
    pub async fn acs_app(&self, user_ids: &[&str]) -> Creds {
        let ids: Vec<String> = user_ids.iter().map(|u| u.to_string()).collect();
        self.core.acs_grant(&self.tenant, &ids).await.unwrap();
        make_app(
            &self.core,
            &self.tenant,
            &["acs:users", "acs:device:readonly"],
        )
        .await
    }

    /// The door-access people: u1 Ann, u2 Bob (both granted) and u3 Cy
    /// (not); an `acs:users` app that may also list terminals.
    pub async fn seed_acs(&self) -> Creds {
        for (uid, name) in [("u1", "Ann"), ("u2", "Bob"), ("u3", "Cy")] {
            self.add_person(uid, name).await;
        }
        self.acs_app(&["u1", "u2"]).await
    }

    /// The names of every stored blob.
    pub async fn blob_keys(&self) -> Vec<String> {
        let blobs = &self.core.store_for_tests().blobs;
        blobs.store().keys().await.unwrap()
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

/// The ACS face upload's form as the SDK sends it: the photo in `files`,
/// declared as `file_type` and named `face.<file_type>`.
pub fn face_form(photo: &[u8], file_type: &str) -> (String, Vec<u8>) {
    let name = format!("face.{file_type}");
    face_parts(photo, file_type)
        .part("form-data; name=\"file_name\"", &[], name.as_bytes())
        .finish()
}

/// The same without `file_name`: the least an ACS face upload sends.
pub fn bare_face_form(photo: &[u8], file_type: &str) -> (String, Vec<u8>) {
    face_parts(photo, file_type).finish()
}

fn face_parts(photo: &[u8], file_type: &str) -> RawMultipart {
    RawMultipart::new()
        .part("form-data; name=\"files\"", &[], photo)
        .part("form-data; name=\"file_type\"", &[], file_type.as_bytes())
}

/// The `file_type` an SDK user declares for `photo`: `png` or `jpg`, by
/// its bytes.
pub fn face_file_type(photo: &[u8]) -> &'static str {
    if photo.starts_with(b"\x89PNG") {
        "png"
    } else {
        "jpg"
    }
}

impl TestApp {
    /// `PUT /open-apis/acs/v1/users/{user_id}/face` (a `user_id`-type id)
    /// with `photo` declared as `file_type`.
    pub async fn put_face(
        &self,
        token: &str,
        user_id: &str,
        file_type: &str,
        photo: &[u8],
    ) -> reqwest::Response {
        self.put_face_form(token, user_id, face_form(photo, file_type))
            .await
    }

    /// `PUT /open-apis/acs/v1/users/{user_id}/face` (a `user_id`-type id)
    /// with the multipart `form` as it is.
    pub async fn put_face_form(
        &self,
        token: &str,
        user_id: &str,
        form: (String, Vec<u8>),
    ) -> reqwest::Response {
        let path = format!("/open-apis/acs/v1/users/{user_id}/face?user_id_type=user_id");
        self.send_form(reqwest::Method::PUT, &path, token, form)
            .await
    }

    /// The same with `photo` declared as what it is, expected to succeed.
    pub async fn put_face_ok(&self, token: &str, user_id: &str, photo: &[u8]) {
        let r = self
            .put_face(token, user_id, face_file_type(photo), photo)
            .await;
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], 0, "{v}");
    }
}

/// The envelope's `msg`.
pub fn msg(v: &Value) -> &str {
    v["msg"].as_str().unwrap()
}

/// The header `name` of `r` as a number.
pub fn header_u64(r: &reqwest::Response, name: &str) -> u64 {
    r.headers()[name].to_str().unwrap().parse().unwrap()
}

/// The directory `dir`, once `module` is installed in its `node_modules`;
/// `hint` says how to install it.
pub fn npm_installed(dir: &'static str, module: &str, hint: &str) -> &'static str {
    let module = std::path::Path::new(dir).join("node_modules").join(module);
    assert!(module.exists(), "{hint}");
    dir
}

/// A conformance check's run (`what` names it) passed and said so: its
/// output is printed, and shown in full when it did not.
pub fn expect_checks_pass(out: &std::process::Output, what: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"));
}

/// A server on `dir` that a test stops (and starts again on the same
/// directory): (core, its WebSocket URL, the stop, the task).
pub async fn start_at(
    dir: &std::path::Path,
) -> (
    Arc<Core>,
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let config = config_for(dir);
    let app = Application::build(config).await.unwrap();
    let url = format!("ws://{}/", app.local_addr());
    let core = app.core();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_with_shutdown(async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (core, url, stop, task)
}
