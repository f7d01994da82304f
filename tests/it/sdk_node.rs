//! Conformance: the official Node SDK (@larksuiteoapi/node-sdk from npm),
//! unchanged, against a facehub on localhost. `scripts/test` runs `npm ci`
//! in conformance/node; without it this test fails and says so.

use crate::app::*;
use crate::common::*;

#[tokio::test]
async fn larksuite_node_sdk_drives_attendance_and_lingo_endpoints() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/conformance/node");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/@larksuiteoapi/node-sdk")
            .exists(),
        "the Node SDK is needed: run scripts/test (it runs npm ci in conformance/node)"
    );
    // A hundred uploads in a row: more than lingo's 50/s quota allows.
    let app = spawn_with(|c| c.rate_limit_per_second = 10_000).await;
    let d = facehub::domain::PersonDraft::new("abd754f7", "Ann", None).unwrap();
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    let photo = app.dir.path().join("face.png");
    std::fs::write(&photo, png(150, 130, 21)).unwrap();
    let jpg = app.dir.path().join("face.jpg");
    std::fs::write(&jpg, jpeg(150, 130, 22)).unwrap();

    let wiki = make_app(&app.core, &app.tenant, &["baike:entity"]).await;
    let user = app
        .core
        .issue_user_token(&wiki.app_id, "abd754f7")
        .await
        .unwrap();
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
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "node-sdk check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"));
}
