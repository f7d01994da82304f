//! Attendance face photos and user settings over the wire.

use crate::app::*;
use crate::common::*;
use serde_json::{Value, json};

const MODIFY: &str = "/open-apis/attendance/v1/user_settings/modify";
const QUERY: &str = "/open-apis/attendance/v1/user_settings/query";

#[tokio::test]
async fn upload_and_download_roundtrip() {
    let app = spawn_app().await;
    let t = app.token().await;
    let p = png(120, 100, 7);
    let j = jpeg(200, 160, 9);
    let pid = app.upload(&t, "face.png", &p).await;
    let jid = app.upload(&t, "人脸照片.jpg", &j).await;
    assert_eq!(pid.len(), 32);
    assert!(pid.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(pid, jid);

    let r = app.download(&t, &pid).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["content-length"], p.len().to_string().as_str());
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"face.png\""
    );
    assert!(r.headers().contains_key("x-tt-logid"));
    assert_eq!(r.bytes().await.unwrap().as_ref(), &p[..]);

    // Like the Node SDK: a GET with Content-Type JSON and a `{}` body.
    let r = app
        .client
        .get(app.url(&format!("/open-apis/attendance/v1/files/{jid}/download")))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let cd = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cd.contains("filename*=UTF-8''%E4%BA%BA%E8%84%B8%E7%85%A7%E7%89%87.jpg"),
        "{cd}"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &j[..]);
}

#[tokio::test]
async fn large_photo_streams_through() {
    let app = spawn_app().await;
    let t = app.token().await;
    // Noise does not compress: a multi-chunk file of several MB.
    let mut seed = 12345u32;
    let img = image::RgbImage::from_fn(1600, 1200, |_, _| {
        seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
        let b = seed.to_be_bytes();
        image::Rgb([b[0], b[1], b[2]])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    let big = out.into_inner();
    assert!(big.len() > 5_000_000);
    let id = app.upload(&t, "big.png", &big).await;
    assert_eq!(app.download_ok(&t, &id).await, big);
}

#[tokio::test]
async fn multipart_forms_the_sdks_send() {
    let app = spawn_app().await;
    let t = app.token().await;
    let p = png(90, 90, 2);
    let forms = vec![
        // Node SDK with a Buffer: part Content-Type, no filename, dashed boundary.
        {
            let mut m = RawMultipart::new();
            m.boundary = "--------------------------fd24da57e8e0000bc23db29f".into();
            m.part(
                "form-data; name=\"file\"",
                &["Content-Type: application/octet-stream"],
                &p,
            )
            .finish()
        },
        // Go SDK: filename "unknown-file".
        RawMultipart::new()
            .part(
                "form-data; name=\"file\"; filename=\"unknown-file\"",
                &["Content-Type: application/octet-stream"],
                &p,
            )
            .finish(),
        // The doc's example: trailing `;` after the name.
        RawMultipart::new()
            .part(
                "form-data; name=\"file\";",
                &["Content-Type: application/octet-stream"],
                &p,
            )
            .finish(),
        // Extra and empty parts around the file, in any order.
        RawMultipart::new()
            .part("form-data; name=\"note\"", &[], b"")
            .part(
                "form-data; name=\"file\"; filename=\"face.png\"",
                &["Content-Type: image/png"],
                &p,
            )
            .part("form-data; name=\"other\"", &[], b"x")
            .finish(),
    ];
    for (ct, body) in forms {
        let r = app.upload_raw(&t, "?file_name=face.png", &ct, body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "{v}");
        let id = v["data"]["file"]["file_id"].as_str().unwrap();
        assert_eq!(app.download_ok(&t, id).await, p);
    }
    // reqwest's own multipart (filename + part type) too.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(p.clone())
            .file_name("face.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let r = app
        .client
        .post(app.url("/open-apis/attendance/v1/files/upload?file_name=face.png"))
        .bearer_auth(&t)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn blob_count(app: &TestApp) -> usize {
    crate::app::stored_blobs(app.dir.path()).await.len()
}

#[tokio::test]
async fn bad_uploads_get_1220001_and_leave_no_trace() {
    let app = spawn_with(|c| c.limits.photo_max_bytes = 200_000).await;
    let t = app.token().await;
    let good_png = png(100, 100, 5);
    let good_jpg = jpeg(100, 100, 6);
    let kept = [
        (
            app.upload(&t, "keep.png", &good_png).await,
            good_png.clone(),
        ),
        (
            app.upload(&t, "keep.jpg", &good_jpg).await,
            good_jpg.clone(),
        ),
    ];

    let file = |bytes: &[u8]| sdk_file_body(bytes);
    let mut noise = png(300, 300, 1);
    while noise.len() <= 200_000 {
        noise.extend_from_slice(&noise.clone());
    }
    let gif = b"GIF89a\x64\x00\x64\x00\x80\x00\x00junkjunkjunkjunk".to_vec();
    // (what, query, (content type, body), expected message part)
    type Case<'a> = (&'a str, String, (String, Vec<u8>), &'a str);
    let cases: Vec<Case> = vec![
        (
            "missing file_name",
            "".into(),
            file(&good_png),
            "file_name is required",
        ),
        (
            "empty file_name",
            "?file_name=".into(),
            file(&good_png),
            "file_name is required",
        ),
        (
            "no extension",
            "?file_name=face".into(),
            file(&good_png),
            "extension",
        ),
        (
            "path in name",
            "?file_name=..%2Fface.png".into(),
            file(&good_png),
            "path separators",
        ),
        (
            "PNG named .jpg",
            "?file_name=face.jpg".into(),
            file(&good_png),
            "does not match",
        ),
        (
            "JPEG named .png",
            "?file_name=face.png".into(),
            file(&good_jpg),
            "does not match",
        ),
        (
            "empty file",
            "?file_name=a.png".into(),
            file(b""),
            "file is empty",
        ),
        (
            "truncated PNG",
            "?file_name=a.png".into(),
            file(&good_png[..good_png.len() - 20]),
            "truncated",
        ),
        (
            "truncated JPEG",
            "?file_name=a.jpg".into(),
            file(&good_jpg[..good_jpg.len() / 2]),
            "truncated",
        ),
        (
            "header only",
            "?file_name=a.png".into(),
            file(&good_png[..20]),
            "file size 20 bytes is below 100 bytes",
        ),
        (
            "text",
            "?file_name=a.png".into(),
            file(b"hello world, not an image"),
            "file content is not a recognised image (accepted: png, jpeg)",
        ),
        (
            "gif",
            "?file_name=a.png".into(),
            file(&gif),
            "format gif is not accepted (accepted: png, jpeg)",
        ),
        (
            "too small",
            "?file_name=a.png".into(),
            file(&png(32, 32, 1)),
            "width 32 is below 64",
        ),
        (
            "oversize",
            "?file_name=a.png".into(),
            file(&noise),
            "file size exceeds",
        ),
        (
            "wrong field",
            "?file_name=a.png".into(),
            RawMultipart::new()
                .part("form-data; name=\"files\"", &[], &good_png)
                .finish(),
            "field `file` is required",
        ),
        (
            "no parts",
            "?file_name=a.png".into(),
            RawMultipart::new().finish(),
            "field `file` is required",
        ),
        (
            "not multipart",
            "?file_name=a.png".into(),
            ("image/png".into(), good_png.clone()),
            "multipart/form-data",
        ),
        (
            "broken multipart",
            "?file_name=a.png".into(),
            (
                "multipart/form-data; boundary=xyz".into(),
                b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc".to_vec(),
            ),
            "multipart",
        ),
    ];
    for (what, query, (ct, body), needle) in cases {
        let r = app.upload_raw(&t, &query, &ct, body).await;
        let v = expect_error(r, 400, 1220001).await;
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    // A body far beyond any limit is cut off, not buffered.
    let huge = vec![0xAB; 2_000_000];
    let r = app
        .upload_raw(
            &t,
            "?file_name=a.png",
            "multipart/form-data; boundary=b55a8c03374c41f48b2a1379cb55da65",
            {
                let (_, b) = sdk_file_body(&huge);
                b
            },
        )
        .await;
    assert_eq!(r.status(), 400);

    // Earlier uploads are intact; no partial blob or temp file remains.
    for (id, bytes) in &kept {
        assert_eq!(&app.download_ok(&t, id).await, bytes);
    }
    assert_eq!(blob_count(&app).await, 2);
    assert_eq!(app.tmp_files(), 0);
}

#[tokio::test]
async fn unknown_and_foreign_ids_are_not_found() {
    let app = spawn_app().await;
    let t = app.token().await;
    let id = app.upload(&t, "a.png", &png(80, 80, 4)).await;

    let other_tenant = app.core.create_tenant("globex").await.unwrap();
    let other = make_app(&app.core, &other_tenant, ALL_ATTENDANCE).await;
    let t2 = app.token_for(&other.app_id, &other.app_secret).await;

    let unknown = "0123456789abcdef0123456789abcdef";
    let a = expect_error(app.download(&t, unknown).await, 400, 1220001).await;
    let b = expect_error(app.download(&t2, &id).await, 400, 1220001).await;
    // Same answer for another tenant's file as for one that never existed.
    assert_eq!(
        a["msg"].as_str().unwrap().replace(unknown, "ID"),
        b["msg"].as_str().unwrap().replace(&id, "ID")
    );
    expect_error(
        app.download(&t, "..%2F..%2Fetc%2Fpasswd").await,
        400,
        1220001,
    )
    .await;
    expect_error(app.download(&t, "XYZ").await, 400, 1220001).await;
    // The owner still gets it.
    assert_eq!(app.download(&t, &id).await.status(), 200);
}

async fn add_person(
    app: &TestApp,
    tenant: &facehub::domain::Tenant,
    user_id: &str,
    no: Option<&str>,
) {
    let d = facehub::domain::PersonDraft::new(user_id, "Someone", no).unwrap();
    app.core.upsert_person(tenant, &d).await.unwrap();
}

#[tokio::test]
async fn modify_and_query_user_settings() {
    let app = spawn_app().await;
    let t = app.token().await;
    add_person(&app, &app.tenant, "abd754f7", Some("E001")).await;
    add_person(&app, &app.tenant, "nobody-face", None).await;
    let face = app.upload(&t, "face.jpg", &jpeg(100, 100, 3)).await;

    let v = app
        .post_json(&format!("{MODIFY}?employee_type=employee_id"), &t, &json!({"user_setting": {"user_id": "abd754f7", "face_key": face, "face_key_update_time": "1625681917"}}))
        .await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(
        v["data"]["user_setting"],
        json!({"user_id": "abd754f7", "face_key": face, "face_key_update_time": "1625681917"})
    );

    // GET with a JSON body, as the SDKs send it.
    let v = reply_json(
        app.client
            .get(app.url(&format!("{QUERY}?employee_type=employee_id")))
            .bearer_auth(&t)
            .header("content-type", "application/json; charset=utf-8")
            .body(json!({"user_ids": ["abd754f7", "nobody-face", "ghost"]}).to_string()),
    )
    .await;
    assert_eq!(v["code"], 0, "{v}");
    let list = v["data"]["user_settings"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["user_id"], "abd754f7");
    assert_eq!(list[0]["face_key"], face.as_str());
    assert_eq!(list[0]["face_key_update_time"], "1625681917");
    assert_eq!(list[0]["face_key_open"], true);
    assert_eq!(
        list[1],
        json!({"user_id": "nobody-face", "face_key_open": false})
    );

    // By employee number, POST, and without an update time (the server's now).
    let face2 = app.upload(&t, "face2.png", &png(100, 100, 8)).await;
    let v = app
        .post_json(
            &format!("{MODIFY}?employee_type=employee_no"),
            &t,
            &json!({"user_setting": {"user_id": "E001", "face_key": face2}}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let when: i64 = v["data"]["user_setting"]["face_key_update_time"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((when - app.core.now()).abs() < 5);
    let v = app
        .post_json(
            &format!("{QUERY}?employee_type=employee_no"),
            &t,
            &json!({"user_ids": ["E001"]}),
        )
        .await;
    assert_eq!(v["data"]["user_settings"][0]["face_key"], face2.as_str());
    assert_eq!(v["data"]["user_settings"][0]["user_id"], "E001");
}

#[tokio::test]
async fn user_settings_bad_input() {
    let app = spawn_app().await;
    let t = app.token().await;
    add_person(&app, &app.tenant, "u1", None).await;
    let face = app.upload(&t, "face.png", &png(100, 100, 1)).await;

    let other_tenant = app.core.create_tenant("globex").await.unwrap();
    let other = make_app(&app.core, &other_tenant, ALL_ATTENDANCE).await;
    let t2 = app.token_for(&other.app_id, &other.app_secret).await;
    add_person(&app, &other_tenant, "g1", None).await;
    let foreign_face = app.upload(&t2, "g.png", &png(100, 100, 2)).await;

    let ok_body = json!({"user_setting": {"user_id": "u1", "face_key": face}});
    let q = "?employee_type=employee_id";
    let setting = |user_id: Value, face_key: &str| json!({"user_setting": {"user_id": user_id, "face_key": face_key}});
    // (query, body, expected code)
    let cases = [
        ("", ok_body.clone(), 1220001),
        ("?employee_type=email", ok_body.clone(), 1220001),
        (q, json!({}), 1220001),
        (q, json!({"user_setting": {"user_id": "u1"}}), 1220001),
        (q, json!({"user_setting": {"face_key": face}}), 1220001),
        (q, setting(json!(5), &face), 1220001),
        (
            q,
            json!({"user_setting": {"user_id": "u1", "face_key": face, "face_key_update_time": "yesterday"}}),
            1220001,
        ),
        (q, setting(json!("ghost"), &face), 1220004),
        (
            q,
            setting(json!("u1"), "0123456789abcdef0123456789abcdef"),
            1220001,
        ),
        // Another tenant's photo, another tenant's person.
        (q, setting(json!("u1"), &foreign_face), 1220001),
        (q, setting(json!("g1"), &face), 1220004),
    ];
    for (query, body, code) in cases {
        let r = app
            .send_json(
                reqwest::Method::POST,
                &format!("{MODIFY}{query}"),
                &t,
                &body,
            )
            .await;
        expect_error(r, 400, code).await;
    }
    let r = app
        .client
        .post(app.url(&format!("{MODIFY}{q}")))
        .bearer_auth(&t)
        .body("{broken")
        .send()
        .await
        .unwrap();
    expect_error(r, 400, 1220001).await;

    let query_path = format!("{QUERY}{q}");
    let many: Vec<String> = (0..101).map(|i| format!("u{i}")).collect();
    for body in [
        json!({"user_ids": []}),
        json!({"user_ids": many}),
        json!({"user_ids": "u1"}),
    ] {
        let r = app
            .send_json(reqwest::Method::POST, &query_path, &t, &body)
            .await;
        expect_error(r, 400, 1220001).await;
    }
    // Tenant B sees nothing of tenant A's people.
    let v = app
        .post_json(&query_path, &t2, &json!({"user_ids": ["u1"]}))
        .await;
    assert_eq!(v["data"]["user_settings"], json!([]));
    // Nothing was bound by the failed calls.
    let v = app
        .post_json(&query_path, &t, &json!({"user_ids": ["u1"]}))
        .await;
    assert_eq!(
        v["data"]["user_settings"],
        json!([{"user_id": "u1", "face_key_open": false}])
    );
}

#[tokio::test]
async fn concurrent_uploads_all_land() {
    let app = spawn_app().await;
    let t = app.token().await;
    let photos: Vec<Vec<u8>> = (0..24).map(|i| png(80 + i, 80, i as u8)).collect();
    let ids = futures_util::future::join_all(photos.iter().enumerate().map(|(i, p)| {
        let app = &app;
        let t = &t;
        async move { app.upload(t, &format!("p{i}.png"), p).await }
    }))
    .await;
    for (id, p) in ids.iter().zip(&photos) {
        assert_eq!(&app.download_ok(&t, id).await, p);
    }
    assert_eq!(blob_count(&app).await, photos.len());
}

#[tokio::test]
async fn photos_are_encrypted_at_rest() {
    let app = spawn_app().await;
    let t = app.token().await;
    let p = png(200, 200, 77);
    let id = app.upload(&t, "secret-face.png", &p).await;
    let needle = &p[p.len() / 2..p.len() / 2 + 48];
    let mut files = vec![app.dir.path().to_path_buf()];
    let mut scanned = 0;
    while let Some(f) = files.pop() {
        if f.is_dir() {
            files.extend(std::fs::read_dir(&f).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let raw = std::fs::read(&f).unwrap();
        scanned += 1;
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "plaintext found in {}",
            f.display()
        );
    }
    assert!(scanned >= 2);
    assert_eq!(app.download_ok(&t, &id).await, p);
}

#[tokio::test]
async fn a_stalled_upload_is_abandoned_and_cleaned_up() {
    let app = spawn_with(|c| c.limits.body_idle_timeout_secs = 1).await;
    let t = app.token().await;
    // Half a body, and then nothing more.
    let mut s = app.half_upload(&t, &png(100, 100, 9)).await;
    let text = read_reply(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("upload stalled"), "{text}");
    assert_eq!(app.tmp_files(), 0);
    assert_eq!(blob_count(&app).await, 0);
}

#[tokio::test]
async fn uploads_beyond_the_concurrency_cap_get_429() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_with(|c| c.limits.max_concurrent_uploads = 1).await;
    let t = app.token().await;
    let p = png(100, 100, 9);
    let (ct, body) = sdk_file_body(&p);
    // One upload in progress (half its body sent) ...
    let mut s = app.half_upload(&t, &p).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // ... so the next one is refused with the frequency-limit answer.
    let r = app
        .upload_raw(&t, "?file_name=b.png", &ct, body.clone())
        .await;
    expect_error(r, 429, 99991400).await;
    // When it finishes, uploads are accepted again.
    s.write_all(&body[body.len() / 2..]).await.unwrap();
    assert!(read_reply(&mut s).await.starts_with("HTTP/1.1 200"));
    drop(s);
    app.upload(&t, "c.png", &p).await;
}

/// A refusal sent before the body is read ends the connection, and says so:
/// a client that reuses connections must not send into a closing socket.
#[tokio::test]
async fn early_refusals_of_uploads_close_the_connection_openly() {
    let app = spawn_app().await;
    let t = app.token().await;
    let photo = png(320, 320, 7);
    let (ct, body) = sdk_file_body(&vec![7u8; 100_000]);
    let r = app
        .upload_raw("not-a-token", "?file_name=a.png", &ct, body)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["connection"], "close");
    // An accepted upload keeps the connection.
    let (ct, body) = sdk_file_body(&photo);
    let r = app.upload_raw(&t, "?file_name=a.png", &ct, body).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("connection").is_none_or(|v| v != "close"));
}
