//! Door records through `acs/v1/access_records`: a terminal's passes (with
//! their capture photos, through the validation core) come out paged and
//! newest first; the photos are served byte for byte, audited, erased with
//! their person, and deleted with their records past the retention.

use crate::app::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub::domain::audit::AuditFilter;
use facehub::domain::{PersonDraft, UserType};
use facehub_devsim::Device;
use serde_json::{Value, json};

const SECRET_NO: &str = "doors-factory-secret-0815";
const T0: i64 = 1_763_900_000;

/// A terminal of the app's tenant, logged in.
async fn terminal(app: &TestApp, sn: &str) -> std::sync::Arc<Device> {
    app.terminal(&app.tenant, sn, SECRET_NO, (&["A"], &[]))
        .await
}

async fn person(app: &TestApp, user_id: &str) {
    let mut p = PersonDraft::new(user_id, user_id, None).unwrap();
    p.user_type = Some(UserType::Employee);
    app.core.upsert_person(&app.tenant, &p).await.unwrap();
}

async fn actions(app: &TestApp, action: &str) -> Vec<(String, String, Option<String>)> {
    let filter = AuditFilter {
        action: Some(action.into()),
        ..Default::default()
    };
    app.core
        .audit_page(app.tenant.id, &filter, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.actor_kind, r.result, r.subject))
        .collect()
}

/// Every record of `query` (which ends in `&`), page by page.
async fn all_pages(app: &TestApp, token: &str, query: &str, page_size: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let (status, v) = app
            .get_json(
                &format!("{query}page_size={page_size}&page_token={page_token}"),
                token,
            )
            .await;
        assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
        items.extend(v["data"]["items"].as_array().unwrap().iter().cloned());
        if v["data"]["has_more"] != true {
            assert!(v["data"].get("page_token").is_none(), "{v}");
            return items;
        }
        page_token = v["data"]["page_token"].as_str().unwrap().to_string();
    }
}

#[tokio::test]
async fn door_passes_are_access_records_with_their_capture_photos() {
    let app = spawn_app().await;
    person(&app, "ann").await;
    person(&app, "bob").await;
    let creds = make_app(&app.core, &app.tenant, &["acs:access_record:readonly"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let door = terminal(&app, "DOOR-1").await;
    let gate = terminal(&app, "GATE-1").await;
    let capture = jpeg(320, 240, 7);
    let blobs_before = app.blob_keys().await.len();

    let frame = json!({"checkin_data": [
        {"userid": "ann", "user_type": 0, "timestamp": T0, "pass_type": 1, "pass_method": 1,
         "capture_photo": STANDARD.encode(&capture)},
        {"userid": "ann", "user_type": 0, "timestamp": T0 + 60, "pass_type": 2, "pass_method": 4},
        // A punch without a pass type is attendance only, not a door record:
        // its photo could never be read, so it is not kept.
        {"userid": "ann", "user_type": 0, "timestamp": T0 + 120,
         "capture_photo": STANDARD.encode(&capture)},
        {"userid": "bob", "user_type": 0, "timestamp": T0 + 180, "pass_type": 3, "pass_method": 3,
         "capture_photo": "not base64!"},
        {"userid": "bob", "user_type": 0, "timestamp": T0 + 240, "pass_type": 1, "pass_method": 1,
         "capture_photo": STANDARD.encode(b"GIF89a but not a picture at all, only words")},
        {"userid": "nobody", "user_type": 0, "timestamp": T0 + 300, "pass_type": 1, "pass_method": 1,
         "capture_photo": STANDARD.encode(&capture)},
    ]});
    let reply = door.call("checkin", frame.clone()).await.unwrap();
    assert_eq!(
        reply["fail_list"],
        json!([{"userid": "nobody", "user_type": 0, "timestamp": T0 + 300}]),
        "{reply}"
    );
    let refused = reply["photo_fail_list"].as_array().unwrap();
    assert_eq!(refused.len(), 3, "{reply}");
    assert_eq!(refused[0]["timestamp"], T0 + 120);
    assert!(
        refused[0]["errmsg"]
            .as_str()
            .unwrap()
            .contains("door record"),
        "{reply}"
    );
    assert_eq!(refused[1]["timestamp"], T0 + 180);
    assert!(
        refused[1]["errmsg"].as_str().unwrap().contains("base64"),
        "{reply}"
    );
    assert_eq!(refused[2]["timestamp"], T0 + 240);
    assert_eq!(refused[2]["userid"], "bob");
    // The frame again: nothing new, and no second copy of the photo.
    let again = door.call("checkin", frame).await.unwrap();
    assert!(again.get("photo_fail_list").is_none(), "{again}");
    assert_eq!(app.blob_keys().await.len(), blobs_before + 1);
    gate.call(
        "checkin",
        json!({"checkin_data": [
            {"userid": "bob", "user_type": 0, "timestamp": T0 + 30, "pass_type": 1, "pass_method": 2}]}),
    )
    .await
    .unwrap();

    let base = format!(
        "/open-apis/acs/v1/access_records?from={}&to={}&user_id_type=user_id&",
        T0 - 10,
        T0 + 1000
    );
    let items = all_pages(&app, &token, &base, 100).await;
    let times: Vec<&str> = items
        .iter()
        .map(|i| i["access_time"].as_str().unwrap())
        .collect();
    let t = |d: i64| (T0 + d).to_string();
    assert_eq!(times, [t(240), t(180), t(60), t(30), t(0)], "{items:?}");
    let door_id = facehub::domain::devices::device_id("DOOR-1");
    let first = &items[4];
    let id = first["access_record_id"].as_str().unwrap().to_string();
    assert!(id.parse::<u64>().is_ok(), "{first}");
    assert_eq!(
        *first,
        json!({"access_record_id": id, "access_time": T0.to_string(), "access_type": "FA",
               "device_id": door_id, "is_clock_in": true, "is_door_open": true,
               "user_id": "ann"})
    );
    assert_eq!(items[2]["access_type"], "Fp");
    assert_eq!(items[3]["access_type"], "QRCode");
    // A remote opening has no access type of the platform's.
    assert!(items[1].get("access_type").is_none(), "{}", items[1]);
    // Page by page, the same records in the same order.
    assert_eq!(all_pages(&app, &token, &base, 2).await, items);
    assert_eq!(all_pages(&app, &token, &base, 1).await, items);
    // One terminal; the window's ends count.
    let gate_only = all_pages(
        &app,
        &token,
        &format!(
            "{base}device_id={}&",
            facehub::domain::devices::device_id("GATE-1")
        ),
        10,
    )
    .await;
    assert_eq!(gate_only.len(), 1);
    assert_eq!(gate_only[0]["user_id"], "bob");
    let edge = all_pages(
        &app,
        &token,
        &format!("/open-apis/acs/v1/access_records?from={T0}&to={T0}&"),
        10,
    )
    .await;
    assert_eq!(edge.len(), 1);
    // open_id by default: the app's own id for ann.
    assert!(edge[0]["user_id"].as_str().unwrap().starts_with("ou_"));

    // The capture photo, byte for byte.
    let r = app
        .get(
            &format!("/open-apis/acs/v1/access_records/{id}/access_photo"),
            &token,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.bytes().await.unwrap().as_ref(), capture.as_slice());
    let no_photo = items[2]["access_record_id"].as_str().unwrap();
    for (record, why) in [
        (no_photo, "has no capture photo"),
        ("12345", "not found"),
        ("%20", "not found"),
    ] {
        let r = app
            .get(
                &format!("/open-apis/acs/v1/access_records/{record}/access_photo"),
                &token,
            )
            .await;
        let v = expect_error(r, 400, 99992402).await;
        assert!(msg(&v).contains(why), "{v}");
    }
    assert_eq!(
        actions(&app, "access_photo.upload").await,
        [
            (
                "device".to_string(),
                "ok".to_string(),
                Some("ann".to_string())
            ),
            (
                "device".to_string(),
                "invalid_param".to_string(),
                Some("bob".to_string())
            )
        ]
    );
    let reads = actions(&app, "access_photo.download").await;
    assert_eq!(reads.len(), 4, "{reads:?}");
    assert_eq!(
        reads[0],
        ("app".to_string(), "ok".to_string(), Some("ann".to_string()))
    );
    // Upload and download name the photo alike: by its file id.
    let objects = |action: &'static str| {
        let filter = AuditFilter {
            action: Some(action.into()),
            ..Default::default()
        };
        let core = app.core.clone();
        async move {
            let page = core
                .audit_page(app.tenant.id, &filter, 0, 100)
                .await
                .unwrap();
            page.into_iter()
                .filter(|r| r.result == "ok")
                .map(|r| r.object.unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    let uploaded = objects("access_photo.upload").await;
    let downloaded = objects("access_photo.download").await;
    assert_eq!(uploaded.len(), 1, "{uploaded:?}");
    assert!(
        downloaded
            .iter()
            .any(|o| o.starts_with(&format!("{} of record ", uploaded[0]))),
        "{uploaded:?} {downloaded:?}"
    );

    // Bad requests, in the platform's envelope.
    for (query, why) in [
        ("to=1".to_string(), "from is required"),
        ("from=1".to_string(), "to is required"),
        ("from=x&to=1".to_string(), "not Unix seconds"),
        ("from=5&to=1".to_string(), "is after"),
        ("from=1&to=5&page_size=501".to_string(), "page_size"),
        ("from=1&to=5&page_size=0".to_string(), "page_size"),
        ("from=1&to=5&page_token=zz".to_string(), "page_token"),
        ("from=1&to=5&device_id=42".to_string(), "device_id"),
        ("from=1&to=5&user_id_type=email".to_string(), "user_id_type"),
    ] {
        let r = app
            .get(&format!("/open-apis/acs/v1/access_records?{query}"), &token)
            .await;
        let v = expect_error(r, 400, 99992402).await;
        assert!(msg(&v).contains(why), "{query}: {v}");
    }
    // Another tenant's app sees none of them; an app without the scope is
    // refused.
    let other = app.core.create_tenant("Other").await.unwrap();
    let theirs = make_app(&app.core, &other, &["acs:access_record"]).await;
    let theirs = app.token_for(&theirs.app_id, &theirs.app_secret).await;
    assert!(all_pages(&app, &theirs, &base, 10).await.is_empty());
    let r = app
        .get(
            &format!("/open-apis/acs/v1/access_records/{id}/access_photo"),
            &theirs,
        )
        .await;
    expect_error(r, 400, 99992402).await;
    let plain = make_app(&app.core, &app.tenant, &["acs:users"]).await;
    let plain = app.token_for(&plain.app_id, &plain.app_secret).await;
    let r = app.get(&format!("{base}page_size=1"), &plain).await;
    expect_error(r, 400, 99991672).await;

    // Deleting the record as a user flow takes its capture photo along.
    let hr = make_app(&app.core, &app.tenant, &["attendance:task"]).await;
    let hr = app.token_for(&hr.app_id, &hr.app_secret).await;
    let v = app
        .post_json(
            "/open-apis/attendance/v1/user_flows/batch_del",
            &hr,
            &json!({"record_ids": [id]}),
        )
        .await;
    assert_eq!(v["data"]["success_record_ids"], json!([id]), "{v}");
    assert_eq!(app.blob_keys().await.len(), blobs_before);
    assert_eq!(
        actions(&app, "access_photo.delete").await,
        [("app".to_string(), "ok".to_string(), Some("ann".to_string()))]
    );
    let r = app
        .get(
            &format!("/open-apis/acs/v1/access_records/{id}/access_photo"),
            &token,
        )
        .await;
    expect_error(r, 400, 99992402).await;

    // Erasing ann takes her other records with her.
    app.core
        .erase_person(
            app.tenant.id,
            "ann",
            facehub::domain::audit::ActorKind::Admin,
            "test",
            None,
        )
        .await
        .unwrap();
    assert_eq!(app.blob_keys().await.len(), blobs_before);
    let left = all_pages(&app, &token, &base, 100).await;
    assert!(left.iter().all(|i| i["user_id"] == "bob"), "{left:?}");
    assert_eq!(left.len(), 3);
}

#[tokio::test]
async fn records_past_their_retention_go_with_their_photos_audited() {
    let app = spawn_with(|c| c.device.record_retention_days = 30).await;
    person(&app, "ann").await;
    let door = terminal(&app, "DOOR-9").await;
    let now = app.core.now();
    let photo = |seed| STANDARD.encode(jpeg(200, 200, seed));
    let blobs_before = app.blob_keys().await.len();
    door.call(
        "checkin",
        json!({"checkin_data": [
            {"userid": "ann", "user_type": 0, "timestamp": now - 31 * 86_400, "pass_type": 1,
             "pass_method": 1, "capture_photo": photo(1)},
            {"userid": "ann", "user_type": 0, "timestamp": now - 40 * 86_400},
            {"userid": "ann", "user_type": 0, "timestamp": now - 29 * 86_400, "pass_type": 1,
             "pass_method": 1, "capture_photo": photo(2)},
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(app.blob_keys().await.len(), blobs_before + 2);
    // A capture photo whose record never came (a crash between the two).
    let staged = app
        .core
        .receive_image(
            app.core.attendance_rules(),
            futures_util::stream::once(async { Ok(bytes::Bytes::from(jpeg(200, 200, 3))) }),
        )
        .await
        .unwrap();
    let filing = facehub::domain::files::Filing::new(
        app.tenant.id,
        facehub::domain::files::FileKind::AccessPhoto,
        "capture.jpg",
    );
    app.core.commit_image(staged, filing, ()).await.unwrap();
    assert_eq!(app.blob_keys().await.len(), blobs_before + 3);

    let pass = app.core.expire_records().await.unwrap();
    assert_eq!((pass.records, pass.photos, pass.unlinked_photos), (2, 1, 0));
    assert_eq!(app.blob_keys().await.len(), blobs_before + 2);
    // The leftover photo waits out its grace (its record may be on its way).
    app.core.advance_clock(3601);
    let pass = app.core.expire_records().await.unwrap();
    assert_eq!((pass.records, pass.photos, pass.unlinked_photos), (0, 0, 1));
    assert_eq!(app.blob_keys().await.len(), blobs_before + 1);
    let audited = actions(&app, "records.expire").await;
    assert_eq!(
        audited,
        [("admin".to_string(), "ok".to_string(), None)],
        "{audited:?}"
    );
    assert_eq!(
        actions(&app, "access_photo.delete").await,
        [("admin".to_string(), "ok".to_string(), None)]
    );

    let creds = make_app(&app.core, &app.tenant, &["acs:access_record"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let left = all_pages(
        &app,
        &token,
        &format!("/open-apis/acs/v1/access_records?from=0&to={now}&"),
        10,
    )
    .await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["access_time"], (now - 29 * 86_400).to_string());
}

/// The grouped insert on its own: frames of several terminals in one
/// transaction; a re-sent record and a record of a person erased since
/// the lookup are skipped (not failing the group), and each frame learns
/// which of its photos no record names.
#[tokio::test]
async fn a_group_of_frames_skips_what_it_must_and_names_unlinked_photos() {
    use facehub::model::CheckinRecord;
    use facehub::store::flows::{Punch, PunchFrame};
    let app = spawn_app().await;
    person(&app, "ann").await;
    let ann = app
        .core
        .store_for_tests()
        .db
        .people(app.tenant.id)
        .await
        .unwrap()
        .remove(0);
    let punch = |person_id: i64, t: i64, photo: Option<&str>| Punch {
        person_id,
        user_id: "ann".into(),
        record: CheckinRecord {
            timestamp: t,
            pass_type: Some(1),
            pass_method: Some(1),
        },
        photo_file_id: photo.map(str::to_string),
    };
    let frame = |sn: &str, punches| PunchFrame {
        tenant_id: app.tenant.id,
        sn: sn.into(),
        punches,
        now: T0,
    };
    let db = app.core.store_for_tests().db;
    let unlinked = db
        .insert_checkins(&[
            frame("A", vec![punch(ann.id, T0, None)]),
            frame(
                "B",
                vec![
                    punch(ann.id, T0, Some("p-b")),
                    punch(987_654, T0 + 2, Some("p-gone")),
                ],
            ),
            frame("A", vec![punch(ann.id, T0 + 1, Some("p-a"))]),
        ])
        .await
        .unwrap();
    // B's record of a person who vanished is not stored; the group is.
    assert_eq!(unlinked, [vec![], vec!["p-gone".to_string()], vec![]]);
    let creds = make_app(&app.core, &app.tenant, &["acs:access_record"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let items = all_pages(
        &app,
        &token,
        &format!("/open-apis/acs/v1/access_records?from={T0}&to={}&", T0 + 1),
        10,
    )
    .await;
    assert_eq!(items.len(), 3, "{items:?}");
    // Records sent again, one now with a photo: nothing stored, and no
    // record names that photo.
    let again = db
        .insert_checkins(&[
            frame("B", vec![punch(ann.id, T0, Some("p-b2"))]),
            frame("A", vec![punch(ann.id, T0, Some("p-a2"))]),
        ])
        .await
        .unwrap();
    assert_eq!(again, [vec!["p-b2".to_string()], vec!["p-a2".to_string()]]);
}

#[tokio::test]
async fn a_frame_stores_its_budget_of_photos_and_fails_the_rest_for_its_next_frame() {
    // One photo's worth a frame: the budget never falls below the photo
    // limit.
    let capture = jpeg(320, 240, 11);
    let limit = capture.len() as u64 + 16;
    let app = spawn_with(|c| {
        c.device.capture_mib_per_frame = 0;
        c.limits.photo_max_bytes = limit;
    })
    .await;
    person(&app, "ann").await;
    let door = terminal(&app, "DOOR-B").await;
    let item = |t: i64| {
        json!({"userid": "ann", "user_type": 0, "timestamp": T0 + t, "pass_type": 1,
               "pass_method": 1, "capture_photo": STANDARD.encode(&capture)})
    };
    let frame = json!({"checkin_data": [item(0), item(60), item(120),
        {"userid": "ann", "user_type": 0, "timestamp": T0 + 180, "pass_type": 1, "pass_method": 2}]});
    let reply = door.call("checkin", frame.clone()).await.unwrap();
    // The first photo fits; the two records after it wait for the next
    // frame; a record without a photo is stored.
    let named = |t: i64| json!({"userid": "ann", "user_type": 0, "timestamp": T0 + t});
    assert_eq!(
        reply["fail_list"],
        json!([named(60), named(120)]),
        "{reply}"
    );
    assert!(reply.get("photo_fail_list").is_none(), "{reply}");
    // The terminal sends the same frame again: one more each time.
    let reply = door.call("checkin", frame.clone()).await.unwrap();
    assert_eq!(reply["fail_list"], json!([named(120)]), "{reply}");
    let reply = door.call("checkin", frame).await.unwrap();
    assert_eq!(reply["fail_list"], json!([]), "{reply}");
    let creds = make_app(&app.core, &app.tenant, &["acs:access_record:readonly"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let query = format!(
        "/open-apis/acs/v1/access_records?from={T0}&to={}&",
        T0 + 600
    );
    let records = all_pages(&app, &token, &query, 100).await;
    assert_eq!(records.len(), 4);
    for r in records.iter().filter(|r| r["access_type"] == "FA") {
        let id = r["access_record_id"].as_str().unwrap();
        let path = format!("/open-apis/acs/v1/access_records/{id}/access_photo");
        let got = app.get(&path, &token).await;
        assert_eq!(got.status(), 200);
        assert_eq!(got.bytes().await.unwrap().as_ref(), capture.as_slice());
    }
}
