//! Punch records through the platform's `attendance/v1/user_flows` calls:
//! a terminal's punches come out as records, other systems' records go in
//! idempotently, and the limits, scopes and tenants hold.

use crate::app::*;
use facehub::domain::{PersonDraft, UserType};
use facehub_devsim::Device;
use serde_json::{Value, json};

const SECRET_NO: &str = "flows-factory-secret-0815";
const T0: i64 = 1_763_900_000;

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A terminal of the app's tenant, logged in.
async fn terminal(app: &TestApp, sn: &str) -> std::sync::Arc<Device> {
    app.terminal(&app.tenant, sn, SECRET_NO, (&["A"], &[]))
        .await
}

#[tokio::test]
async fn terminal_punches_are_user_flows() {
    let app = spawn_app().await;
    let mut ann = PersonDraft::new("ann", "Ann", Some("E-1")).unwrap();
    ann.user_type = Some(UserType::Employee);
    app.core.upsert_person(&app.tenant, &ann).await.unwrap();
    let creds = make_app(&app.core, &app.tenant, &["attendance:task:readonly"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let d = terminal(&app, "FLOW-1").await;
    let punch = json!({"checkin_data": [
        {"userid": "ann", "user_type": 0, "timestamp": T0, "pass_type": 1, "pass_method": 1},
        {"userid": "ann", "user_type": 0, "timestamp": T0 + 3600, "pass_type": 2, "pass_method": 4},
    ]});
    d.call("checkin", punch.clone()).await.unwrap();
    // The frame again (a terminal that did not see the reply): nothing new.
    d.call("checkin", punch).await.unwrap();

    let query = |ids: Value| {
        json!({"user_ids": ids, "check_time_from": (T0 - 10).to_string(),
               "check_time_to": (T0 + 86_400).to_string()})
    };
    let (status, v) = post(
        &app,
        "/open-apis/attendance/v1/user_flows/query?employee_type=employee_id",
        &token,
        query(json!(["ann", "nobody"])),
    )
    .await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    let rows = v["data"]["user_flow_results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    let first = &rows[0];
    assert_eq!(first["user_id"], "ann");
    assert_eq!(first["creator_id"], "ann");
    assert_eq!(first["check_time"], T0.to_string());
    assert_eq!(first["location_name"], "FLOW-1");
    assert_eq!(
        first["device_id"],
        facehub::domain::devices::device_id("FLOW-1")
    );
    assert_eq!(first["type"], 5);
    assert!(
        first["record_id"].as_str().unwrap().parse::<u64>().is_ok(),
        "{first}"
    );
    assert_eq!(rows[1]["check_time"], (T0 + 3600).to_string());

    // By employee number, and one record by its id.
    let (_, v) = post(
        &app,
        "/open-apis/attendance/v1/user_flows/query?employee_type=employee_no",
        &token,
        query(json!(["E-1"])),
    )
    .await;
    assert_eq!(v["data"]["user_flow_results"][0]["user_id"], "E-1", "{v}");
    let id = first["record_id"].as_str().unwrap();
    let (status, one) = app
        .get_json(
            &format!("/open-apis/attendance/v1/user_flows/{id}?employee_type=employee_id"),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["data"], *first);

    // The facehub listing reads the same records.
    let fh = make_app(&app.core, &app.tenant, &["facehub:device"]).await;
    let fh = app.token_for(&fh.app_id, &fh.app_secret).await;
    let (_, v) = app
        .get_json(
            "/open-apis/facehub/v1/checkins?user_id=ann&day=2025-11-23",
            &fh,
        )
        .await;
    assert_eq!(v["data"]["items"].as_array().unwrap().len(), 2, "{v}");

    // Read-only: creating and deleting are refused.
    let (status, v) = post(
        &app,
        "/open-apis/attendance/v1/user_flows/batch_del",
        &token,
        json!({"record_ids": [id]}),
    )
    .await;
    assert_eq!((status, &v["code"]), (400, &json!(99991672)), "{v}");
    drop(d);
}

#[tokio::test]
async fn records_from_other_systems_are_created_once_read_and_deleted() {
    let app = spawn_app().await;
    for (u, no) in [("ann", "E-1"), ("bob", "E-2")] {
        let d = PersonDraft::new(u, u, Some(no)).unwrap();
        app.core.upsert_person(&app.tenant, &d).await.unwrap();
    }
    let creds = make_app(&app.core, &app.tenant, &["attendance:task"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let create = "/open-apis/attendance/v1/user_flows/batch_create?employee_type=employee_no";
    let record = |no: &str, t: i64, key: &str| {
        json!({"user_id": no, "creator_id": "hr-system", "location_name": "Gate 3",
               "check_time": t.to_string(), "comment": "imported", "idempotent_id": key,
               "type": 7, "is_wifi": true, "ssid": "office", "longitude": 116.4, "latitude": 39.9,
               "photo_urls": ["https://example.com/p.jpg"], "check_result": "Normal",
               "external_id": "x-1", "record_id": "ignored"})
    };
    let (status, v) = post(
        &app,
        create,
        &token,
        json!({"flow_records": [record("E-1", T0, "k1"), record("E-2", T0 + 60, "k2")]}),
    )
    .await;
    assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
    let made = v["data"]["flow_records"].as_array().unwrap().clone();
    assert_eq!(made.len(), 2);
    let a = &made[0];
    assert_eq!(a["user_id"], "E-1");
    assert_eq!(a["creator_id"], "hr-system");
    assert_eq!(a["location_name"], "Gate 3");
    assert_eq!(a["comment"], "imported");
    assert_eq!(a["idempotent_id"], "k1");
    assert_eq!(a["type"], 7);
    assert_eq!(a["is_wifi"], true);
    assert_eq!(a["longitude"], 116.4);
    assert_eq!(a["photo_urls"], json!(["https://example.com/p.jpg"]));
    assert_eq!(a["check_result"], "Normal");
    assert_ne!(a["record_id"], "ignored");

    // The same idempotent_id again: the stored record, nothing new.
    let (_, again) = post(
        &app,
        create,
        &token,
        json!({"flow_records": [record("E-1", T0 + 999, "k1")]}),
    )
    .await;
    assert_eq!(again["data"]["flow_records"][0], *a, "{again}");
    let (_, q) = post(
        &app,
        "/open-apis/attendance/v1/user_flows/query?employee_type=employee_id",
        &token,
        json!({"user_ids": ["ann", "bob"], "check_time_from": T0.to_string(),
               "check_time_to": (T0 + 86_400).to_string()}),
    )
    .await;
    let rows = q["data"]["user_flow_results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{q}");
    assert_eq!(rows[0]["user_id"], "ann");

    // Deleted once; a second time, and an unknown id, fail.
    let ida = a["record_id"].as_str().unwrap();
    let (_, del) = post(
        &app,
        "/open-apis/attendance/v1/user_flows/batch_del",
        &token,
        json!({"record_ids": [ida, "123"]}),
    )
    .await;
    assert_eq!(del["data"]["success_record_ids"], json!([ida]), "{del}");
    assert_eq!(del["data"]["fail_record_ids"], json!(["123"]), "{del}");
    assert_eq!(
        del["msg"], r#"{"123":"no such record of this tenant"}"#,
        "{del}"
    );
    let (status, gone) = app
        .get_json(
            &format!("/open-apis/attendance/v1/user_flows/{ida}?employee_type=employee_id"),
            &token,
        )
        .await;
    assert_eq!((status, &gone["code"]), (400, &json!(1220001)), "{gone}");

    // Another tenant sees none of it.
    let other = app.core.create_tenant("other").await.unwrap();
    let oc = make_app(&app.core, &other, &["attendance:task"]).await;
    let ot = app.token_for(&oc.app_id, &oc.app_secret).await;
    let idb = made[1]["record_id"].as_str().unwrap();
    let (status, v) = app
        .get_json(
            &format!("/open-apis/attendance/v1/user_flows/{idb}?employee_type=employee_id"),
            &ot,
        )
        .await;
    assert_eq!((status, &v["code"]), (400, &json!(1220001)), "{v}");
    let (_, del) = post(
        &app,
        "/open-apis/attendance/v1/user_flows/batch_del",
        &ot,
        json!({"record_ids": [idb]}),
    )
    .await;
    assert_eq!(del["data"]["fail_record_ids"], json!([idb]), "{del}");
}

#[tokio::test]
async fn bad_requests_are_refused_whole() {
    let app = spawn_app().await;
    let d = PersonDraft::new("ann", "Ann", None).unwrap();
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    let creds = make_app(&app.core, &app.tenant, &["attendance:task"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let create = "/open-apis/attendance/v1/user_flows/batch_create?employee_type=employee_id";
    let ok = json!({"user_id": "ann", "creator_id": "c", "location_name": "L",
                    "check_time": T0.to_string(), "comment": ""});
    let mut missing = ok.clone();
    missing.as_object_mut().unwrap().remove("location_name");
    let mut bad_time = ok.clone();
    bad_time["check_time"] = json!("yesterday");
    let mut bad_result = ok.clone();
    bad_result["check_result"] = json!("Great");
    let mut stranger = ok.clone();
    stranger["user_id"] = json!("nobody");
    let fifty_one: Vec<Value> = (0..51).map(|_| ok.clone()).collect();
    for (what, body, status, code) in [
        (
            "a missing field",
            json!({"flow_records": [ok.clone(), missing]}),
            400,
            1220001,
        ),
        (
            "a time that is not a number",
            json!({"flow_records": [bad_time]}),
            400,
            1220001,
        ),
        (
            "an unknown check_result",
            json!({"flow_records": [bad_result]}),
            400,
            1220001,
        ),
        (
            "more than 50 records",
            json!({"flow_records": fifty_one}),
            400,
            1220001,
        ),
        ("no records", json!({"flow_records": []}), 400, 1220001),
        (
            "a person not of the tenant",
            json!({"flow_records": [ok.clone(), stranger]}),
            400,
            1220004,
        ),
    ] {
        let (s, v) = post(&app, create, &token, body).await;
        assert_eq!(
            (s, v["code"].as_i64().unwrap()),
            (status, code),
            "{what}: {v}"
        );
    }
    let (s, v) = post(
        &app,
        "/open-apis/attendance/v1/user_flows/batch_create",
        &token,
        json!({"flow_records": [ok]}),
    )
    .await;
    assert_eq!(
        (s, &v["code"]),
        (400, &json!(1220001)),
        "no employee_type: {v}"
    );
    // Nothing of the refused requests was stored.
    let query = "/open-apis/attendance/v1/user_flows/query?employee_type=employee_id";
    let (_, v) = post(
        &app,
        query,
        &token,
        json!({"user_ids": ["ann"], "check_time_from": "0", "check_time_to": (T0 + 1).to_string()}),
    )
    .await;
    assert_eq!(v["code"], 1220001, "a 56-year span: {v}");
    let (_, v) = post(
        &app,
        query,
        &token,
        json!({"user_ids": ["ann"], "check_time_from": (T0 - 60).to_string(),
               "check_time_to": (T0 + 60).to_string()}),
    )
    .await;
    assert_eq!(v["data"]["user_flow_results"], json!([]), "{v}");
    let many: Vec<String> = (0..51).map(|i| format!("u{i}")).collect();
    let (s, v) = post(
        &app,
        query,
        &token,
        json!({"user_ids": many, "check_time_from": "1", "check_time_to": "2"}),
    )
    .await;
    assert_eq!((s, &v["code"]), (400, &json!(1220001)), "{v}");
    let (s, v) = post(
        &app,
        query,
        &token,
        json!({"user_ids": ["ann"], "check_time_from": "9", "check_time_to": "2"}),
    )
    .await;
    assert_eq!((s, &v["code"]), (400, &json!(1220001)), "{v}");
}
