//! Conformance: the official Python SDK (lark-oapi from PyPI), unchanged,
//! against a facehub on localhost. `scripts/test` installs it into `.venv`
//! and sets LARK_OAPI_PYTHON; without it this test fails and says so.

use crate::app::*;
use crate::common::*;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub::image::ImageFormat;
use facehub::image::samples;

fn python() -> String {
    std::env::var("LARK_OAPI_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        if std::path::Path::new(venv).exists() {
            venv.to_string()
        } else {
            panic!("lark-oapi is needed: run scripts/test (it creates .venv with conformance/requirements.txt) or set LARK_OAPI_PYTHON")
        }
    })
}

/// Runs a conformance script; fails with its output unless it passes.
async fn run_script(script: &str, env: &[(&str, String)]) {
    let path = format!("{}/conformance/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(python())
        .arg(path)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .expect("run python");
    expect_checks_pass(&out, script);
}

#[tokio::test]
async fn lark_oapi_python_sdk_drives_lingo_endpoints() {
    let app = spawn_app().await;
    let creds = make_app(&app.core, &app.tenant, &["baike:entity"]).await;
    app.add_person("writer", "Wei").await;
    let user = app.user_token(&creds.app_id, "writer").await;
    let mut images = Vec::new();
    for format in ImageFormat::ALL {
        let path = app
            .dir
            .path()
            .join(format!("图片-{format}.{}", format.extensions()[0]));
        std::fs::write(&path, samples::noisy(format, 330, 340)).unwrap();
        images.push(path.display().to_string());
    }
    let bad = app.dir.path().join("small.png");
    std::fs::write(&bad, samples::noisy(ImageFormat::Png, 200, 200)).unwrap();
    run_script(
        "lark_sdk_lingo.py",
        &[
            ("FACEHUB_BASE_URL", app.base.clone()),
            ("FACEHUB_APP_ID", creds.app_id),
            ("FACEHUB_APP_SECRET", creds.app_secret),
            ("FACEHUB_USER_TOKEN", user.token),
            ("FACEHUB_IMAGES", images.join(":")),
            ("FACEHUB_BAD_IMAGE", bad.display().to_string()),
        ],
    )
    .await;
}

#[tokio::test]
async fn lark_oapi_python_sdk_drives_acs_endpoints() {
    let app = spawn_app().await;
    let creds = app.seed_acs().await;
    let face = app.dir.path().join("astronaut.png");
    std::fs::write(&face, skimage_file("astronaut.png")).unwrap();
    let no_face = app.dir.path().join("coffee.png");
    std::fs::write(&no_face, skimage_file("coffee.png")).unwrap();
    app.core
        .add_device(&app.tenant, "SDK-TERM-1", "sdk-secret-no-4815162342")
        .await
        .unwrap();
    run_script(
        "lark_sdk_acs.py",
        &[
            ("FACEHUB_DEVICE_SN", "SDK-TERM-1".into()),
            ("FACEHUB_BASE_URL", app.base.clone()),
            ("FACEHUB_APP_ID", creds.app_id),
            ("FACEHUB_APP_SECRET", creds.app_secret),
            ("FACEHUB_FACE", face.display().to_string()),
            ("FACEHUB_NO_FACE", no_face.display().to_string()),
        ],
    )
    .await;
}

#[tokio::test]
async fn lark_oapi_python_sdk_drives_attendance_endpoints() {
    let app = spawn_app().await;
    let d = facehub::domain::PersonDraft::new("abd754f7", "Ann", Some("E-42")).unwrap();
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    let photo = app.dir.path().join("face.png");
    std::fs::write(&photo, png(160, 120, 11)).unwrap();
    let jpg = app.dir.path().join("face.jpg");
    std::fs::write(&jpg, jpeg(160, 120, 12)).unwrap();

    run_script(
        "lark_sdk_check.py",
        &[
            ("FACEHUB_BASE_URL", app.base.clone()),
            ("FACEHUB_APP_ID", app.app_id.clone()),
            ("FACEHUB_APP_SECRET", app.app_secret.clone()),
            ("FACEHUB_USER_ID", "abd754f7".into()),
            ("FACEHUB_EMPLOYEE_NO", "E-42".into()),
            ("FACEHUB_PHOTO", photo.display().to_string()),
            ("FACEHUB_JPEG", jpg.display().to_string()),
        ],
    )
    .await;
}

#[tokio::test]
async fn lark_oapi_python_sdk_drives_user_flows() {
    let app = spawn_app().await;
    app.add_person("abd754f7", "Ann").await;
    let creds = make_app(
        &app.core,
        &app.tenant,
        &["attendance:task", "acs:access_record:readonly"],
    )
    .await;
    // A terminal the person punched at: by face with a capture photo (a
    // door record too), and an hour before by QR code, without one (a door
    // record outside the punch queries' windows).
    let sn = "SDK-CLOCK-1";
    let secret_no = "sdk-flows-secret-4815162342";
    let d = app.terminal(&app.tenant, sn, secret_no, (&[], &[])).await;
    let t = 1_763_900_000i64;
    let qr_time = t - 3600;
    let capture = jpeg(320, 240, 31);
    let capture_path = app.dir.path().join("capture.jpg");
    std::fs::write(&capture_path, &capture).unwrap();
    let punch = serde_json::json!({"checkin_data": [
        {"userid": "abd754f7", "user_type": 0, "timestamp": t, "pass_type": 1, "pass_method": 1,
         "capture_photo": STANDARD.encode(&capture)},
        {"userid": "abd754f7", "user_type": 0, "timestamp": qr_time, "pass_type": 1, "pass_method": 2}]});
    let reply = d.call("checkin", punch).await.unwrap();
    assert!(
        reply
            .get("fail_list")
            .is_none_or(|f| f == &serde_json::json!([]))
            && reply.get("photo_fail_list").is_none(),
        "{reply}"
    );
    run_script(
        "lark_sdk_flows.py",
        &[
            ("FACEHUB_BASE_URL", app.base.clone()),
            ("FACEHUB_APP_ID", creds.app_id),
            ("FACEHUB_APP_SECRET", creds.app_secret),
            ("FACEHUB_USER_ID", "abd754f7".into()),
            ("FACEHUB_SN", sn.into()),
            ("FACEHUB_DEVICE_ID", facehub::domain::devices::device_id(sn)),
            ("FACEHUB_PUNCH_TIME", t.to_string()),
            ("FACEHUB_QR_PUNCH_TIME", qr_time.to_string()),
            ("FACEHUB_CAPTURE_PHOTO", capture_path.display().to_string()),
        ],
    )
    .await;
}

#[tokio::test]
async fn lark_oapi_python_sdk_drives_access_rules() {
    let app = spawn_app().await;
    for (u, name) in [("ann", "Ann"), ("bob", "Bob"), ("cy", "Cy")] {
        app.add_person(u, name).await;
    }
    let creds = make_app(
        &app.core,
        &app.tenant,
        &["acs:rule_external", "acs:visitor"],
    )
    .await;
    let user = app.user_token(&creds.app_id, "ann").await;
    let sn = "SDK-DOOR-1";
    let d = app
        .terminal(&app.tenant, sn, "sdk-rules-secret-4815162342", (&[], &[]))
        .await;
    d.catch_up().await.unwrap();
    assert_eq!(d.book.lock().await.users.len(), 3);
    run_script(
        "lark_sdk_rules.py",
        &[
            ("FACEHUB_BASE_URL", app.base.clone()),
            ("FACEHUB_APP_ID", creds.app_id),
            ("FACEHUB_APP_SECRET", creds.app_secret),
            ("FACEHUB_USER_TOKEN", user.token),
            ("FACEHUB_SN", sn.into()),
            ("FACEHUB_DEVICE_ID", facehub::domain::devices::device_id(sn)),
        ],
    )
    .await;
    // The terminal the SDK bound holds the rule's people, with its window,
    // by its pushes and by a full pull alike.
    let version = app.core.perm_version(app.tenant.id).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.book.lock().await.perm_version < version && tokio::time::Instant::now() < deadline {
        d.drain_pushes(std::time::Duration::from_millis(200))
            .await
            .unwrap();
    }
    let held = |book: &facehub_devsim::Book| {
        let mut users: Vec<(String, Vec<String>)> = book
            .users
            .iter()
            .map(|((u, _), l)| (u.clone(), l.pass_rules.clone()))
            .collect();
        users.sort();
        users
    };
    let want = vec![
        ("ann".to_string(), vec!["9:00-12:00 * * 0,6 *".to_string()]),
        ("bob".to_string(), vec!["9:00-12:00 * * 0,6 *".to_string()]),
    ];
    assert_eq!(held(&*d.book.lock().await), want);
    d.full_pull(200).await.unwrap();
    assert_eq!(held(&*d.book.lock().await), want);
}
