//! Door access over HTTP: the ACS directory, cards, and face enrolment with
//! detection, on photographs scikit-image ships.

use crate::app::*;
use serde_json::{Value, json};

async fn setup() -> (TestApp, String) {
    let app = spawn_app().await;
    let creds = app.seed_acs().await;
    let t = app.token_for(&creds.app_id, &creds.app_secret).await;
    (app, t)
}

async fn get_json(app: &TestApp, t: &str, path: &str) -> Value {
    let r = app.get(path, t).await;
    assert_eq!(r.status(), 200, "{path}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 0, "{v}");
    v
}

#[tokio::test]
async fn directory_listing_paging_and_cards() {
    let (app, t) = setup().await;
    let v = get_json(
        &app,
        &t,
        "/open-apis/acs/v1/users?user_id_type=user_id&page_size=1",
    )
    .await;
    assert_eq!(
        v["data"]["items"],
        json!([{"user_id": "u1", "feature": {"face_uploaded": false}}])
    );
    assert_eq!(v["data"]["has_more"], true);
    let tok = v["data"]["page_token"].as_str().unwrap();
    let v = get_json(
        &app,
        &t,
        &format!("/open-apis/acs/v1/users?user_id_type=user_id&page_size=1&page_token={tok}"),
    )
    .await;
    assert_eq!(v["data"]["items"][0]["user_id"], "u2");
    assert_eq!(v["data"]["has_more"], false);
    assert!(v["data"].get("page_token").is_none());
    // Default id type is open_id, this app's.
    let v = get_json(&app, &t, "/open-apis/acs/v1/users").await;
    let open_id = v["data"]["items"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(open_id.starts_with("ou_"));
    let v = get_json(&app, &t, &format!("/open-apis/acs/v1/users/{open_id}")).await;
    assert_eq!(v["data"]["user"]["user_id"], open_id.as_str());

    // PATCH a card, by union_id.
    let u1 = app.core.person(app.tenant.id, "u1").await.unwrap().unwrap();
    let r = app
        .send_json(
            reqwest::Method::PATCH,
            &format!(
                "/open-apis/acs/v1/users/{}?user_id_type=union_id",
                u1.union_id
            ),
            &t,
            &json!({"feature": {"card": 123456}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v = get_json(&app, &t, "/open-apis/acs/v1/users/u1?user_id_type=user_id").await;
    assert_eq!(
        v["data"]["user"],
        json!({"user_id": "u1", "feature": {"card": 123456, "face_uploaded": false}})
    );

    // Not in the directory, unknown, bad id type, bad page size.
    for path in [
        "/open-apis/acs/v1/users/u3?user_id_type=user_id",
        "/open-apis/acs/v1/users/ghost?user_id_type=user_id",
        "/open-apis/acs/v1/users/ou_x",
    ] {
        expect_error(app.get(path, &t).await, 400, 1490101).await;
    }
    expect_error(
        app.get("/open-apis/acs/v1/users/u1?user_id_type=email", &t)
            .await,
        400,
        99992402,
    )
    .await;
    expect_error(
        app.get("/open-apis/acs/v1/users?page_size=0", &t).await,
        400,
        99992402,
    )
    .await;
    // Another tenant's app sees none of them.
    let other = app.core.create_tenant("globex").await.unwrap();
    let creds = make_app(&app.core, &other, &["acs:users"]).await;
    let t2 = app.token_for(&creds.app_id, &creds.app_secret).await;
    expect_error(
        app.get("/open-apis/acs/v1/users/u1?user_id_type=user_id", &t2)
            .await,
        400,
        1490101,
    )
    .await;
    let v = get_json(&app, &t2, "/open-apis/acs/v1/users").await;
    assert_eq!(v["data"]["items"], json!([]));
    // The attendance app lacks the scope.
    let ta = app.token().await;
    expect_error(app.get("/open-apis/acs/v1/users", &ta).await, 400, 99991672).await;
}

#[tokio::test]
async fn face_enrolment_detects_crops_and_refuses_what_it_must() {
    let (app, t) = setup().await;
    let astronaut = skimage_file("astronaut.png");
    let r = app.put_face(&t, "u1", "png", &astronaut).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!((status.as_u16(), v["code"].as_i64()), (200, Some(0)), "{v}");
    assert_eq!(v["data"], json!({}));
    let v = get_json(&app, &t, "/open-apis/acs/v1/users/u1?user_id_type=user_id").await;
    assert_eq!(v["data"]["user"]["feature"]["face_uploaded"], true);

    // The original comes back byte-identical; the crop is a JPEG holding a face.
    let r = app
        .get(
            "/open-apis/acs/v1/users/u1/face?user_id_type=user_id&is_cropped=false",
            &t,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap()[..], astronaut[..]);
    let r = app
        .get(
            "/open-apis/acs/v1/users/u1/face?user_id_type=user_id&is_cropped=True",
            &t,
        )
        .await;
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let crop = image::load_from_memory(&r.bytes().await.unwrap())
        .unwrap()
        .into_rgb8();
    assert!(crop.width() < 512 && crop.width() == crop.height());
    let faces = facehub::image::face::detect(&crop).unwrap();
    assert!(faces.iter().any(|f| f.score > 0.75), "{faces:?}");

    // No face: 1490108, and the enrolled face stays.
    for name in ["coffee.png", "rocket.jpg", "chelsea.png"] {
        let ft = if name.ends_with(".jpg") { "jpg" } else { "png" };
        let r = app.put_face(&t, "u1", ft, &skimage_file(name)).await;
        let v = expect_error(r, 400, 1490108).await;
        assert!(msg(&v).starts_with("user face crop fail"), "{v}");
    }
    let r = app
        .get("/open-apis/acs/v1/users/u1/face?user_id_type=user_id", &t)
        .await;
    assert_eq!(r.bytes().await.unwrap()[..], astronaut[..]);

    // Wrong file_type, not an image, not in the directory.
    let v = expect_error(
        app.put_face(&t, "u2", "jpg", &astronaut).await,
        400,
        99992402,
    )
    .await;
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("file_type jpeg does not match the file content (png)"),
        "{v}"
    );
    let refused: [(&str, &str, &[u8], i64); 3] = [
        ("u2", "gif", &astronaut, 99992402),
        ("u2", "png", b"definitely not a picture", 99992402),
        ("u3", "png", &astronaut, 1490101),
    ];
    for (user, file_type, bytes, code) in refused {
        expect_error(app.put_face(&t, user, file_type, bytes).await, 400, code).await;
    }
    expect_error(
        app.get("/open-apis/acs/v1/users/u2/face?user_id_type=user_id", &t)
            .await,
        400,
        99992402,
    )
    .await;

    // A second enrolment replaces the first; revoking deletes both files.
    let camera = skimage_file("camera.png");
    assert_eq!(app.put_face(&t, "u1", "png", &camera).await.status(), 200);
    let r = app
        .get("/open-apis/acs/v1/users/u1/face?user_id_type=user_id", &t)
        .await;
    assert_eq!(r.bytes().await.unwrap()[..], camera[..]);
    let blobs = app.blob_keys().await;
    assert_eq!(blobs.len(), 2, "original and crop only: {blobs:?}");
    app.core
        .acs_revoke(&app.tenant, &["u1".into()])
        .await
        .unwrap();
    assert!(app.blob_keys().await.is_empty());
    expect_error(
        app.get("/open-apis/acs/v1/users/u1/face?user_id_type=user_id", &t)
            .await,
        400,
        1490101,
    )
    .await;
    assert_eq!(app.tmp_files(), 0);
}

/// Enrolments racing for the same person all succeed, and the person ends
/// with exactly one original and one crop (no orphaned blobs).
#[tokio::test]
async fn concurrent_enrolments_of_one_person_all_succeed() {
    let (app, t) = setup().await;
    let astronaut = skimage_file("astronaut.png");
    let uploads = (0..12).map(|_| app.put_face(&t, "u1", "png", &astronaut));
    for r in futures_util::future::join_all(uploads).await {
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!((status.as_u16(), v["code"].as_i64()), (200, Some(0)), "{v}");
    }
    let blobs = app.blob_keys().await;
    assert_eq!(blobs.len(), 2, "original and crop only: {blobs:?}");
}
