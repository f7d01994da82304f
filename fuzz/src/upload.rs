//! The `upload` target: multipart bodies sent to the three upload endpoints
//! of the real router, in-process (no sockets).
//!
//! An input is `[selector, chunking, body...]`:
//! - `selector % 8` picks the endpoint: 0–3 attendance photo, 4–6 lingo
//!   image, 7 ACS face (rarer: a decodable photo there costs a face
//!   detection, seconds under the fuzzer's instrumentation);
//!   `selector / 8 % 8` the Content-Type (one of [`CONTENT_TYPES`], or, for
//!   7, the body's first line); `selector / 64` the attendance `file_name`
//!   (one of [`FILE_NAMES`]);
//! - `chunking` the size of the pieces the body arrives in (0: one piece);
//! - the rest is the request body.
//!
//! Properties, besides "never panics": the status is never 5xx (client input
//! is never the server's fault); every answer is the JSON envelope with an
//! integer `code` and a string `msg`, and `code` is 0 exactly when the
//! status is 200; an accepted upload downloads byte-identical to the `file`
//! part (as multer reads the whole body in one piece) and appears verbatim in
//! the body; nothing is left in the blob store or its temporary directory
//! once an accepted upload is deleted again.
//!
//! This file is also compiled into tests/it/fuzz_regressions.rs (by `#[path]`),
//! so it uses only crates facehub itself depends on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bytes::Bytes;
use facehub::Config;
use facehub::api::{AppState, router};
use facehub::domain::{Core, PersonDraft, Scope, Tenant, TokenKind};
use serde_json::Value;
use tower::ServiceExt;

/// The boundary the fixed Content-Types name and the seeds use.
pub const BOUNDARY: &str = "facehubfuzz";

/// Content-Type variants 0..7 (7 takes the body's first line).
pub const CONTENT_TYPES: [Option<&str>; 7] = [
    Some("multipart/form-data; boundary=facehubfuzz"),
    Some("multipart/form-data; boundary=\"facehubfuzz\""),
    Some("Multipart/Form-Data; charset=UTF-8; boundary=facehubfuzz"),
    Some("multipart/mixed; boundary=facehubfuzz"),
    Some("multipart/form-data; boundary="),
    Some("multipart/form-data"),
    None,
];

/// Attendance `file_name` query variants.
pub const FILE_NAMES: [&str; 4] = [
    "?file_name=face.png",
    "?file_name=face.jpg",
    "",
    "?file_name=%E4%BA%BA%E8%84%B8.JPEG",
];

/// The door-access user whose face the ACS variant replaces.
const ACS_USER: &str = "u1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Attendance,
    Lingo,
    Acs,
}

impl Endpoint {
    fn of(selector: u8) -> Endpoint {
        match selector % 8 {
            0..=3 => Endpoint::Attendance,
            4..=6 => Endpoint::Lingo,
            _ => Endpoint::Acs,
        }
    }

    /// The names of the part holding the file, as the handler reads them.
    fn file_parts(self) -> &'static [&'static str] {
        match self {
            Endpoint::Attendance | Endpoint::Lingo => &["file"],
            Endpoint::Acs => &["files", "file"],
        }
    }
}

/// The selector byte for an endpoint, Content-Type variant and file name.
pub fn selector(endpoint: Endpoint, content_type: u8, file_name: u8) -> u8 {
    let e = match endpoint {
        Endpoint::Attendance => 0,
        Endpoint::Lingo => 4,
        Endpoint::Acs => 7,
    };
    e + 8 * (content_type % 8) + 64 * (file_name % 4)
}

/// One input, decoded.
pub struct Case<'a> {
    pub endpoint: Endpoint,
    pub content_type: Option<&'a [u8]>,
    pub file_name: &'static str,
    /// Piece size; 0 sends the body as one piece.
    pub chunk: usize,
    pub body: &'a [u8],
}

impl<'a> Case<'a> {
    pub fn parse(data: &'a [u8]) -> Option<Case<'a>> {
        let (&sel, rest) = data.split_first()?;
        let (&chunking, body) = rest.split_first()?;
        let endpoint = Endpoint::of(sel);
        let variant = usize::from(sel / 8 % 8);
        let (content_type, body) = match CONTENT_TYPES.get(variant) {
            Some(ct) => (ct.map(str::as_bytes), body),
            None => match body.iter().position(|&b| b == b'\n') {
                Some(n) => (Some(&body[..n]), &body[n + 1..]),
                None => (Some(body), &body[body.len()..]),
            },
        };
        Some(Case {
            endpoint,
            content_type,
            file_name: FILE_NAMES[usize::from(sel / 64)],
            chunk: piece_len(chunking),
            body,
        })
    }
}

/// 0 (whole), 1..=127 bytes, or a power of two up to 32 KiB, so boundaries
/// split across pieces and large pieces are both exercised.
fn piece_len(b: u8) -> usize {
    match b {
        0 => 0,
        b if b & 0x80 != 0 => 1 << (b & 0x0f),
        b => usize::from(b),
    }
}

/// The server, built once per process.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
    core: Arc<Core>,
    tenant: Tenant,
    token: String,
    data_dir: PathBuf,
}

/// A data directory for this process, on tmpfs when there is one (every
/// accepted upload is fsynced); directories of processes that are gone are
/// removed first, as a crashed run cannot clean up after itself.
fn data_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
    .join("facehub-fuzz");
    if let Ok(entries) = std::fs::read_dir(&base) {
        for e in entries.flatten() {
            let pid = e.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = base.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the fuzz data directory");
    dir
}

impl Harness {
    pub fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Harness::new)
    }

    fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let data_dir = data_dir();
        let config = Config {
            data_dir: data_dir.clone(),
            // Neither limit is under test here; both would turn most
            // executions into 429s.
            rate_limit_per_second: 1_000_000,
            rate_limit_per_minute: 60_000_000,
            // Long runs must not see their token expire.
            token_ttl_secs: 10 * 365 * 86_400,
            ..Config::default()
        };
        let (router, core, tenant, token) = rt.block_on(async {
            let core = Arc::new(facehub::server::open_core(config).await.expect("open_core"));
            let tenant = core.create_tenant("fuzz").await.expect("tenant");
            let scopes: Vec<Scope> = ["attendance:rule", "attendance:rule:readonly"]
                .iter()
                .chain(&["baike:entity", "acs:users"])
                .map(|s| Scope::parse(s).expect("scope"))
                .collect();
            let app = core.create_app(&tenant, &scopes).await.expect("app");
            let token = core
                .issue_token(&app.app.app_id, &app.app_secret, TokenKind::Tenant)
                .await
                .expect("token")
                .token;
            let draft = PersonDraft::new(ACS_USER, "Fuzz", None).expect("person");
            core.upsert_person(&tenant, &draft).await.expect("person");
            core.acs_grant(&tenant, &[ACS_USER.to_string()])
                .await
                .expect("acs grant");
            // Load the face detector now, not inside the first execution.
            facehub::image::face::warm_up().expect("face detector");
            let router = router(AppState::new(core.clone()));
            (router, core, tenant, token)
        });
        Harness {
            rt,
            router,
            core,
            tenant,
            token,
            data_dir,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Bytes) {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 64 << 20)
            .await
            .expect("response body");
        (parts.status, parts.headers, bytes)
    }

    async fn get_file(&self, uri: &str) -> Bytes {
        let req = Request::get(uri)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .body(Body::empty())
            .unwrap();
        let (status, _, bytes) = self.send(req).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "download {uri} of an accepted upload: {}",
            String::from_utf8_lossy(&bytes)
        );
        bytes
    }

    /// Names in a directory of the data directory, sorted.
    fn entries(&self, sub: &str) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.data_dir.join(sub))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

/// The bytes of the file part as multer reads the whole body in one piece,
/// choosing the part as the handler does (the first part with a file name
/// of the endpoint). `None` when multer refuses the body or has no such
/// part.
async fn reference(endpoint: Endpoint, content_type: Option<&[u8]>, body: &[u8]) -> Option<Bytes> {
    let ct = std::str::from_utf8(content_type?).ok()?;
    let boundary = multer::parse_boundary(ct).ok()?;
    let once = futures_util::stream::once(std::future::ready(Ok::<_, std::io::Error>(
        Bytes::copy_from_slice(body),
    )));
    let mut form = multer::Multipart::new(once, boundary);
    let mut found = None;
    while let Some(field) = form.next_field().await.ok()? {
        let is_file = field
            .name()
            .is_some_and(|n| endpoint.file_parts().contains(&n));
        let bytes = field.bytes().await.ok()?;
        if is_file && found.is_none() {
            found = Some(bytes);
            // The attendance handler stops reading at its part.
            if endpoint == Endpoint::Attendance {
                break;
            }
        }
    }
    found
}

/// `FACEHUB_FUZZ_VERBOSE=1` prints each answer (to see what the seeds
/// reach).
fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("FACEHUB_FUZZ_VERBOSE").is_some())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Runs one input and checks every property; panics on a violation.
pub fn check(data: &[u8]) {
    let Some(case) = Case::parse(data) else {
        return;
    };
    let h = Harness::get();
    h.rt.block_on(run(h, &case));
}

async fn run(h: &Harness, case: &Case<'_>) {
    let (method, uri) = match case.endpoint {
        Endpoint::Attendance => (
            "POST",
            format!("/open-apis/attendance/v1/files/upload{}", case.file_name),
        ),
        Endpoint::Lingo => ("POST", "/open-apis/lingo/v1/files/upload".to_string()),
        Endpoint::Acs => (
            "PUT",
            format!("/open-apis/acs/v1/users/{ACS_USER}/face?user_id_type=user_id"),
        ),
    };
    let mut req = Request::builder()
        .method(method)
        .uri(&uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", h.token));
    if let Some(ct) = case.content_type
        && let Ok(v) = header::HeaderValue::from_bytes(ct)
    {
        req = req.header(header::CONTENT_TYPE, v);
    }
    let pieces: Vec<Result<Bytes, std::io::Error>> = if case.chunk == 0 {
        vec![Ok(Bytes::copy_from_slice(case.body))]
    } else {
        case.body
            .chunks(case.chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    };
    let req = req
        .body(Body::from_stream(futures_util::stream::iter(pieces)))
        .expect("request");
    let started = std::time::Instant::now();
    let (status, headers, bytes) = h.send(req).await;

    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !status.is_server_error(),
        "{} answered {status} to client input: {text}",
        uri
    );
    assert!(headers.contains_key("x-tt-logid"), "no X-Tt-Logid: {text}");
    let v: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("the answer is not JSON ({e}): {text}"));
    let code = v["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer code: {text}"));
    assert!(v["msg"].is_string(), "no string msg: {text}");
    assert_eq!(
        code == 0,
        status == StatusCode::OK,
        "code {code} with status {status}: {text}"
    );

    if verbose() {
        let ms = started.elapsed().as_millis();
        eprintln!("{:?} {status} {code} {} ({ms} ms)", case.endpoint, v["msg"]);
    }

    if code == 0 {
        let expected = reference(case.endpoint, case.content_type, case.body)
            .await
            .unwrap_or_else(|| panic!("accepted a body multer refuses whole: {text}"));
        let (download, stored) = match case.endpoint {
            Endpoint::Attendance => {
                let id = v["data"]["file"]["file_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no file_id: {text}"))
                    .to_string();
                let uri = format!("/open-apis/attendance/v1/files/{id}/download");
                (uri, Some(id))
            }
            Endpoint::Lingo => {
                let token = v["data"]["file_token"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no file_token: {text}"))
                    .to_string();
                let id = token.strip_prefix("box").expect("box token").to_string();
                (
                    format!("/open-apis/lingo/v1/files/{token}/download"),
                    Some(id),
                )
            }
            Endpoint::Acs => (
                format!("/open-apis/acs/v1/users/{ACS_USER}/face?user_id_type=user_id"),
                None,
            ),
        };
        let got = h.get_file(&download).await;
        assert!(
            got == expected,
            "stored {} bytes differ from the {} bytes of the file part",
            got.len(),
            expected.len()
        );
        assert!(
            contains(case.body, &got),
            "the stored file is not a slice of the request body"
        );
        // Leave the store as it was: later executions check it is empty.
        match stored {
            Some(id) => {
                let store = h.core.store_for_tests();
                store.db.delete_file(&id).await.expect("delete metadata");
                store.blobs.delete(&id).await.expect("delete blob");
            }
            None => {
                let users = [ACS_USER.to_string()];
                h.core.acs_revoke(&h.tenant, &users).await.expect("revoke");
                h.core.acs_grant(&h.tenant, &users).await.expect("grant");
            }
        }
    }
    assert_eq!(
        h.entries("tmp"),
        Vec::<String>::new(),
        "temporary files left behind"
    );
    let keys = h
        .core
        .store_for_tests()
        .blobs
        .store()
        .keys()
        .await
        .expect("blob keys");
    assert!(keys.is_empty(), "blobs left behind: {keys:?}");
}
