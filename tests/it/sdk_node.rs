//! Conformance: the official Node SDK (@larksuiteoapi/node-sdk from npm),
//! unchanged, against a facehub on localhost. `scripts/test` runs `npm ci`
//! in conformance/node; without it this test fails and says so.

use crate::app::*;
use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[tokio::test]
async fn larksuite_node_sdk_drives_attendance_and_lingo_endpoints() {
    let dir = npm_installed(
        concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/node"),
        "@larksuiteoapi/node-sdk",
        "the Node SDK is needed: run scripts/test (it runs npm ci in conformance/node)",
    );
    // A hundred uploads in a row: more than lingo's 50/s quota allows.
    let app = spawn_with(|c| c.rate_limit_per_second = 10_000).await;
    app.add_person("abd754f7", "Ann").await;
    let photo = app.dir.path().join("face.png");
    std::fs::write(&photo, png(150, 130, 21)).unwrap();
    let jpg = app.dir.path().join("face.jpg");
    std::fs::write(&jpg, jpeg(150, 130, 22)).unwrap();

    let wiki = make_app(&app.core, &app.tenant, &["baike:entity"]).await;
    let user = app.user_token(&wiki.app_id, "abd754f7").await;
    let wiki_image = app.dir.path().join("wiki.png");
    std::fs::write(
        &wiki_image,
        facehub::image::samples::noisy(facehub::image::ImageFormat::Png, 360, 330),
    )
    .unwrap();

    // Refused on its header (4097 px), ~8 MB of noise so that the SDK is
    // still sending when the answer comes.
    let wide_image = app.dir.path().join("wide.png");
    std::fs::write(
        &wide_image,
        facehub::image::samples::noisy(facehub::image::ImageFormat::Png, 4097, 700),
    )
    .unwrap();
    let acs = make_app(&app.core, &app.tenant, &["acs:device"]).await;
    let flows = make_app(&app.core, &app.tenant, &["attendance:task"]).await;
    app.core
        .add_device(&app.tenant, "NODE-TERM-1", "node-secret-no-4815162342")
        .await
        .unwrap();

    // Door records, in a tenant of their own (the first one's only terminal
    // stays the one that never connected): Ann passes a door by QR code, and
    // an hour later by face with a capture photo.
    let doors = app.core.create_tenant("Doors").await.unwrap();
    let ann = facehub::domain::PersonDraft::new("abd754f7", "Ann", None).unwrap();
    app.core.upsert_person(&doors, &ann).await.unwrap();
    let door_app = make_app(
        &app.core,
        &doors,
        &["acs:access_record", "acs:rule_external", "acs:visitor"],
    )
    .await;
    let (door_sn, door_secret_no) = ("NODE-DOOR-1", "node-door-secret-4815162342");
    let door = app
        .terminal(&doors, door_sn, door_secret_no, (&[], &[]))
        .await;
    let t = 1_763_900_000i64;
    let qr_time = t - 3600;
    let capture = jpeg(320, 240, 23);
    let capture_path = app.dir.path().join("capture.jpg");
    std::fs::write(&capture_path, &capture).unwrap();
    let reply = door
        .call(
            "checkin",
            serde_json::json!({"checkin_data": [
                {"userid": "abd754f7", "user_type": 0, "timestamp": qr_time, "pass_type": 1,
                 "pass_method": 2},
                {"userid": "abd754f7", "user_type": 0, "timestamp": t, "pass_type": 1,
                 "pass_method": 1, "capture_photo": STANDARD.encode(&capture)}]}),
        )
        .await
        .unwrap();
    assert!(
        reply
            .get("fail_list")
            .is_none_or(|f| f == &serde_json::json!([]))
            && reply.get("photo_fail_list").is_none(),
        "{reply}"
    );
    let out = tokio::process::Command::new("node")
        .arg("check.js")
        .current_dir(dir)
        .env("FACEHUB_BASE_URL", &app.base)
        .env("FACEHUB_APP_ID", &app.app_id)
        .env("FACEHUB_APP_SECRET", &app.app_secret)
        .env("FACEHUB_USER_ID", "abd754f7")
        .env("FACEHUB_PHOTO", &photo)
        .env("FACEHUB_JPEG", &jpg)
        .env("FACEHUB_WIKI_APP_ID", &wiki.app_id)
        .env("FACEHUB_WIKI_APP_SECRET", &wiki.app_secret)
        .env("FACEHUB_USER_TOKEN", &user.token)
        .env("FACEHUB_WIKI_IMAGE", &wiki_image)
        .env("FACEHUB_WIDE_IMAGE", &wide_image)
        .env("FACEHUB_ACS_APP_ID", &acs.app_id)
        .env("FACEHUB_ACS_APP_SECRET", &acs.app_secret)
        .env("FACEHUB_DEVICE_SN", "NODE-TERM-1")
        .env("FACEHUB_FLOWS_APP_ID", &flows.app_id)
        .env("FACEHUB_FLOWS_APP_SECRET", &flows.app_secret)
        .env("FACEHUB_DOORS_APP_ID", &door_app.app_id)
        .env("FACEHUB_DOORS_APP_SECRET", &door_app.app_secret)
        .env(
            "FACEHUB_DOOR_DEVICE_ID",
            facehub::domain::devices::device_id(door_sn),
        )
        .env("FACEHUB_DOOR_SN", door_sn)
        .env("FACEHUB_PUNCH_TIME", t.to_string())
        .env("FACEHUB_QR_PUNCH_TIME", qr_time.to_string())
        .env("FACEHUB_CAPTURE_PHOTO", &capture_path)
        .output()
        .await
        .expect("run node");
    expect_checks_pass(&out, "node-sdk check");
}
