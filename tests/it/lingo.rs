//! Wiki (lingo) images over HTTP: the corpus of good and bad files with
//! their exact answers, field order, tokens of both kinds, isolation.

use crate::app::*;
use crate::common::*;
use facehub::image::ImageFormat;
use facehub::image::samples::{self, IcoEntry};
use serde_json::Value;

const UPLOAD: &str = "/open-apis/lingo/v1/files/upload";
const WIKI: &[&str] = &["baike:entity"];

/// The refusal of a name with a path separator or control character.
const SEPARATORS: &str = "name must not contain path separators or control characters";

/// (Content-Type, body) of a request.
type Body = (String, Vec<u8>);

fn download_path(token: &str) -> String {
    format!("/open-apis/lingo/v1/files/{token}/download")
}

/// A multipart body the way the Python SDK sends it: `name`, then `file`
/// without a filename.
fn form(name: &str, bytes: &[u8]) -> Body {
    RawMultipart::new()
        .part("form-data; name=\"name\"", &[], name.as_bytes())
        .part("form-data; name=\"file\"", &[], bytes)
        .finish()
}

async fn post(app: &TestApp, token: &str, body: Body) -> reqwest::Response {
    app.send_form(reqwest::Method::POST, UPLOAD, token, body)
        .await
}

async fn upload_ok(app: &TestApp, token: &str, body: Body) -> String {
    let r = post(app, token, body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!((status.as_u16(), v["code"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["msg"], "success");
    let t = v["data"]["file_token"].as_str().unwrap().to_string();
    assert!(t.starts_with("box"), "{t}");
    t
}

async fn get(app: &TestApp, token: &str, file_token: &str) -> reqwest::Response {
    app.get(&download_path(file_token), token).await
}

/// A wiki app's tenant token on a fresh server.
async fn wiki_app() -> (TestApp, String) {
    let app = spawn_app().await;
    let creds = make_app(&app.core, &app.tenant, WIKI).await;
    let t = app.token_for(&creds.app_id, &creds.app_secret).await;
    (app, t)
}

async fn blob_count(app: &TestApp) -> usize {
    crate::app::stored_blobs(app.dir.path()).await.len()
}

#[tokio::test]
async fn corpus_of_good_and_bad_images_with_exact_answers() {
    let (app, t) = wiki_app().await;
    const MB10: usize = 10 * 1024 * 1024;

    // ---- accepted: every format at the edges ----
    let good: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "png 320",
            "a.png".into(),
            samples::at_least(samples::png(320, 320), 3072),
        ),
        ("png 4096", "示例图片.png".into(), samples::png(4096, 4096)),
        (
            "jpeg 320",
            "a.jpg".into(),
            samples::at_least(samples::jpeg(320, 320), 3072),
        ),
        ("jpeg 4096", "a.jpeg".into(), samples::jpeg(4096, 4096)),
        (
            "gif animated",
            "a.gif".into(),
            samples::gif_animated(320, 320, 3),
        ),
        ("gif 4096", "a.gif".into(), samples::gif(4096, 4096)),
        ("bmp 320", "a.bmp".into(), samples::bmp(320, 320)),
        ("bmp 4096 wide", "a.bmp".into(), samples::bmp(4096, 320)),
        (
            "webp 320",
            "a.webp".into(),
            samples::noisy(ImageFormat::Webp, 320, 320),
        ),
        ("webp 4096", "a.webp".into(), samples::webp(4096, 4096)),
        (
            "ico multi-image",
            "a.ico".into(),
            samples::ico(&[
                IcoEntry::Png(16, 16),
                IcoEntry::Bmp(32, 32),
                IcoEntry::Png(320, 320),
            ]),
        ),
        (
            "ico 4096",
            "a.icon".into(),
            samples::ico(&[IcoEntry::Png(4096, 4096)]),
        ),
        (
            "exactly 3 KB",
            "small.png".into(),
            samples::pad_to(&samples::flat(ImageFormat::Png, 320, 320), 3072),
        ),
        (
            "exactly 10 MB",
            "big.jpg".into(),
            samples::pad_to(&samples::flat(ImageFormat::Jpeg, 320, 320), MB10),
        ),
        (
            "no extension",
            "logo".into(),
            samples::at_least(samples::png(400, 400), 3072),
        ),
        (
            "100 characters",
            "图".repeat(100),
            samples::at_least(samples::png(400, 400), 3072),
        ),
    ];
    let mut stored = Vec::new();
    for (what, name, bytes) in &good {
        let ft = upload_ok(&app, &t, form(name, bytes)).await;
        stored.push((what, ft, bytes.clone()));
    }
    // File tokens are distinct.
    let mut tokens: Vec<&String> = stored.iter().map(|(_, t, _)| t).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), good.len());

    // ---- refused: each with its exact message ----
    let png400 = samples::at_least(samples::png(400, 400), 3072);
    let mut bomb = samples::forge_png_size(&png400, 60000, 60000);
    bomb.truncate(bomb.len().min(8000));
    let mut wrong_magic = png400.clone();
    wrong_magic[..4].copy_from_slice(b"XXXX");
    let over = samples::pad_to(&samples::flat(ImageFormat::Jpeg, 320, 320), MB10 + 1);
    // Each format cut short: refused, as truncated or corrupt depending on
    // where the cut falls.
    let mut cases: Vec<(String, Body, String)> = Vec::new();
    for format in ImageFormat::ALL {
        let whole = samples::noisy(format, 400, 400);
        let ext = format.extensions()[0];
        let cut = &whole[..whole.len() * 2 / 3];
        cases.push((
            format!("{format} truncated"),
            form(&format!("t.{ext}"), cut),
            String::new(),
        ));
    }
    let exact: Vec<(&str, Body, &str)> = vec![
        (
            "wrong magic",
            form("a.png", &wrong_magic),
            "file content is not a recognised image (accepted: ico, bmp, gif, png, jpeg, webp)",
        ),
        (
            "tiff",
            form("a.tiff", &[b"II*\0".as_slice(), &[7u8; 4000]].concat()),
            "format tiff is not accepted (accepted: ico, bmp, gif, png, jpeg, webp)",
        ),
        (
            "4097 px",
            form("a.png", &samples::at_least(samples::png(4097, 320), 3072)),
            "width 4097 exceeds 4096",
        ),
        (
            "319 px",
            form("a.png", &samples::at_least(samples::png(400, 319), 3072)),
            "height 319 is below 320",
        ),
        (
            "bomb 60000²",
            form("a.png", &bomb),
            "width 60000 exceeds 4096",
        ),
        (
            "PNG named .gif",
            form("a.gif", &png400),
            "name extension .gif does not match the file content (png)",
        ),
        ("zero bytes", form("a.png", b""), "file is empty"),
        (
            "below 3 KB",
            form(
                "a.png",
                &samples::pad_to(&samples::flat(ImageFormat::Png, 320, 320), 2400),
            ),
            "file size 2.3 KB is below 3 KB",
        ),
        (
            "10 MB + 1 byte",
            form("a.jpg", &over),
            "file size exceeds 10 MB",
        ),
        (
            "name of 101 characters",
            form(&"a".repeat(101), &png400),
            "name is 101 characters, at most 100 are allowed",
        ),
        ("name with /", form("../a.png", &png400), SEPARATORS),
        ("name with \\", form("a\\b.png", &png400), SEPARATORS),
        (
            "name with control",
            form("a\u{7}b.png", &png400),
            SEPARATORS,
        ),
        (
            "no name",
            RawMultipart::new()
                .part("form-data; name=\"file\"", &[], &png400)
                .finish(),
            "multipart field `name` is required",
        ),
        (
            "empty name",
            form("", &png400),
            "multipart field `name` is required",
        ),
        (
            "no file",
            RawMultipart::new()
                .part("form-data; name=\"name\"", &[], b"a.png")
                .finish(),
            "multipart field `file` is required",
        ),
        (
            "two files",
            RawMultipart::new()
                .part("form-data; name=\"file\"", &[], &png400)
                .part("form-data; name=\"file\"", &[], &png400)
                .part("form-data; name=\"name\"", &[], b"a.png")
                .finish(),
            "multipart field `file` appears more than once",
        ),
        ("not multipart", ("image/png".into(), png400.clone()), ""),
    ];
    cases.extend(
        exact
            .into_iter()
            .map(|(w, b, m)| (w.to_string(), b, m.to_string())),
    );
    for (what, body, want) in cases {
        let r = post(&app, &t, body).await;
        let v = expect_error(r, 400, 2250001).await;
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.starts_with("invalid param: "), "{what}: {msg}");
        if !want.is_empty() {
            assert_eq!(msg, format!("invalid param: {want}"), "{what}");
        } else if what.ends_with("truncated") {
            assert!(
                msg.contains("truncated") || msg.contains("corrupt") || msg.contains("below 3 KB"),
                "{what}: {msg}"
            );
        }
    }

    // ---- nothing refused left a trace; everything stored is intact ----
    assert_eq!(app.tmp_files(), 0);
    assert_eq!(blob_count(&app).await, stored.len());
    for (what, ft, bytes) in &stored {
        let r = get(&app, &t, ft).await;
        assert_eq!(r.status(), 200, "{what}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("image/"), "{what}: {ct}");
        assert_eq!(r.headers()["cache-control"], "private, no-store");
        let got = r.bytes().await.unwrap();
        assert!(got[..] == bytes[..], "{what} changed");
    }
}

#[tokio::test]
async fn fields_in_any_order_with_or_without_filename_and_type() {
    let (app, t) = wiki_app().await;
    let png = samples::at_least(samples::png(400, 400), 3072);
    // open-lark style: file first (with a filename), then name.
    let body = RawMultipart::new()
        .part(
            "form-data; name=\"file\"; filename=\"pic.png\"",
            &["Content-Type: image/png"],
            &png,
        )
        .part("form-data; name=\"name\"", &[], "图片.png".as_bytes())
        .part("form-data; name=\"extra\"", &[], b"ignored")
        .finish();
    let ft = upload_ok(&app, &t, body).await;
    let r = get(&app, &t, &ft).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"__.png\"; filename*=UTF-8''%E5%9B%BE%E7%89%87.png"
    );
    assert_eq!(r.bytes().await.unwrap()[..], png[..]);
    // A declared Content-Type that lies does not matter: the bytes decide.
    let body = RawMultipart::new()
        .part("form-data; name=\"name\"", &[], b"x.png")
        .part(
            "form-data; name=\"file\"",
            &["Content-Type: image/gif"],
            &png,
        )
        .finish();
    upload_ok(&app, &t, body).await;
}

#[tokio::test]
async fn user_tokens_and_scopes() {
    let (app, tenant_token) = wiki_app().await;
    let creds = make_app(&app.core, &app.tenant, &["baike:entity:exempt_review"]).await;
    app.add_person("u-alice", "Alice").await;
    let user = app.user_token(&creds.app_id, "u-alice").await;
    assert!(user.token.starts_with("u-") && user.expire == 7200);
    let png = samples::at_least(samples::png(400, 400), 3072);

    // A user token uploads and downloads; the tenant's other app sees it too.
    let ft = upload_ok(&app, &user.token, form("a.png", &png)).await;
    assert_eq!(get(&app, &user.token, &ft).await.status(), 200);
    assert_eq!(get(&app, &tenant_token, &ft).await.status(), 200);

    // A user token on a tenant-only endpoint.
    let r = app
        .download(&user.token, "00000000000000000000000000000000")
        .await;
    expect_error(r, 400, 99991668).await;
    // Unknown and expired user tokens.
    let r = get(&app, "u-0000000000000000000000000000000000000000", &ft).await;
    expect_error(r, 400, 99991668).await;
    app.core.advance_clock(7200);
    let r = get(&app, &user.token, &ft).await;
    let v = expect_error(r, 400, 99991677).await;
    assert_eq!(v["msg"], "token expire");
    // The token belongs to a person of the app's tenant.
    assert!(
        app.core
            .issue_user_token(&creds.app_id, "nobody")
            .await
            .is_err()
    );

    // An app without a wiki scope.
    let t2 = app.token().await; // attendance scopes only
    let r = post(&app, &t2, form("a.png", &png)).await;
    let v = expect_error(r, 400, 99991672).await;
    assert!(v["msg"].as_str().unwrap().contains("baike:entity"), "{v}");
    let r = get(&app, &t2, &ft).await;
    expect_error(r, 400, 99991672).await;
}

#[tokio::test]
async fn tokens_are_private_to_their_tenant() {
    let (app, t) = wiki_app().await;
    let png = samples::at_least(samples::png(400, 400), 3072);
    let ft = upload_ok(&app, &t, form("a.png", &png)).await;
    let other = app.core.create_tenant("globex").await.unwrap();
    let creds = make_app(&app.core, &other, WIKI).await;
    let t_other = app.token_for(&creds.app_id, &creds.app_secret).await;
    let theirs = expect_error(get(&app, &t_other, &ft).await, 400, 2250001).await;
    let unknown = format!("box{}", "0".repeat(32));
    let none = expect_error(get(&app, &t_other, &unknown).await, 400, 2250001).await;
    // Same answer shape for another tenant's token and one that never existed.
    assert_eq!(
        theirs["msg"].as_str().unwrap().replace(&ft, "X"),
        none["msg"].as_str().unwrap().replace(&unknown, "X")
    );
    for junk in [
        "abc",
        "box",
        "box%2F..%2F..",
        &format!("box{}", "G".repeat(32)),
    ] {
        let r = get(&app, &t, junk).await;
        expect_error(r, 400, 2250001).await;
    }
    // An attendance file id is not a wiki token, even in the same tenant.
    let t_att = app.token().await;
    let fid = app.upload(&t_att, "a.png", &png).await;
    expect_error(get(&app, &t, &format!("box{fid}")).await, 400, 2250001).await;
}

#[tokio::test]
async fn per_minute_quota_on_lingo_endpoints() {
    let app = spawn_with(|c| c.rate_limit_per_minute = 3).await;
    let creds = make_app(&app.core, &app.tenant, WIKI).await;
    let t = app.token_for(&creds.app_id, &creds.app_secret).await;
    let missing = format!("box{}", "0".repeat(32));
    for _ in 0..3 {
        expect_error(get(&app, &t, &missing).await, 400, 2250001).await;
    }
    let r = get(&app, &t, &missing).await;
    assert_eq!(r.headers()["x-ogw-ratelimit-limit"], "3");
    let reset = header_u64(&r, "x-ogw-ratelimit-reset");
    assert!((1..=20).contains(&reset), "{reset}");
    let v = expect_error(r, 429, 99991400).await;
    assert_eq!(v["msg"], "request trigger frequency limit");
    // The attendance endpoints have no per-minute quota.
    let ta = app.token().await;
    for _ in 0..5 {
        let r = app.download(&ta, &"0".repeat(32)).await;
        expect_error(r, 400, 1220001).await;
    }
}
