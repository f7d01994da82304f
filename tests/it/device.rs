//! The WeCom device protocol against the real server, driven by the
//! simulated terminals of `facehub-devsim`.

use std::sync::Arc;
use std::time::Duration;

use crate::app::*;
use crate::common::{activate, userinfo};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub::domain::{Core, PersonDraft, Tenant, UserType};
use facehub::{Application, Config};
use facehub_devsim::{Device, signature};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET_NO: &str = "factory-secret-no";
const WAIT: Duration = Duration::from_secs(5);

fn ws(app: &TestApp) -> String {
    format!("ws://{}/", app.addr)
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

async fn person(core: &Core, t: &Tenant, user_id: &str, user_type: UserType) {
    let mut d = PersonDraft::new(user_id, &format!("Name of {user_id}"), None).unwrap();
    d.user_type = Some(user_type);
    core.upsert_person(t, &d).await.unwrap();
}

/// People `p000`, `p001`, … (`n` of them), employees.
async fn employees(app: &TestApp, n: usize) {
    for i in 0..n {
        let user_id = format!("p{i:03}");
        person(&app.core, &app.tenant, &user_id, UserType::Employee).await;
    }
}

/// A token of an app with `facehub:device`, the device endpoints' scope.
async fn device_admin_token(app: &TestApp) -> String {
    let admin = make_app(&app.core, &app.tenant, &["facehub:device"]).await;
    app.token_for(&admin.app_id, &admin.app_secret).await
}

/// Adds and binds `sn`, connects it and logs it in.
async fn online(app: &TestApp, sn: &str, fa: &[&str]) -> Arc<Device> {
    online_at(&app.core, &ws(app), &app.tenant, sn, fa).await
}

async fn online_at(core: &Core, url: &str, t: &Tenant, sn: &str, fa: &[&str]) -> Arc<Device> {
    if core
        .store_for_tests()
        .db
        .device(sn)
        .await
        .unwrap()
        .is_none()
    {
        core.add_device(t, sn, SECRET_NO).await.unwrap();
        core.bind_device(t.id, sn).await.unwrap();
    }
    let d = Device::connect(url, sn, (fa, &[]), None).await.unwrap();
    d.bring_up(SECRET_NO, core.now()).await.unwrap();
    d
}

/// GET with a bearer token, as JSON.
async fn get_json(app: &TestApp, path: &str, token: &str) -> Value {
    app.get(path, token).await.json().await.unwrap()
}

/// The status of the enrolment `oper_id` of the app's tenant.
async fn enrolment_status(app: &TestApp, oper_id: &str) -> String {
    let e = app.core.enrolment(app.tenant.id, oper_id).await.unwrap();
    e.status
}

/// `users` people `p000…` with `slots` face templates of `bytes` each,
/// algorithm X, uploaded through `d`.
async fn fill_templates(app: &TestApp, d: &Device, users: usize, slots: usize, bytes: usize) {
    employees(app, users).await;
    let items: Vec<Value> = (0..users)
        .map(|i| {
            let list: Vec<Value> = (0..slots)
                .map(|s| json!({"id": s, "data": STANDARD.encode(vec![(i * slots + s) as u8; bytes])}))
                .collect();
            json!({"userid": format!("p{i:03}"), "fa_list": list, "fa_algorithm": "X"})
        })
        .collect();
    let b = d
        .call("upload_userinfo", json!({"userinfo": items}))
        .await
        .unwrap();
    assert_eq!(b["fail_list"], json!([]));
}

fn err_of(frame: &Value) -> i64 {
    frame["errcode"].as_i64().unwrap()
}

/// The errcode of the device's answer to `cmd` with `body`.
async fn errcode(d: &Device, cmd: &str, body: Value) -> i64 {
    err_of(&d.request(cmd, body).await.unwrap())
}

#[tokio::test]
async fn seed_example_frame_and_reply() {
    let app = spawn_app().await;
    // The page's example: x2 is a visitor of the company, x1 and x3 are not
    // members, so they fail.
    person(&app.core, &app.tenant, "x2", UserType::Visitor).await;
    let d = online(&app, "SEED-1", &["xxxx1"]).await;
    let frame = json!({
        "cmd":"upload_userinfo",
        "headers":{"req_id":"xxxxx"},
        "body":{
            "oper_id":"xxxx","errcode":0,"errmsg":"ok",
            "userinfo":[
                {"userid":"x1","user_type":0,
                 "fp":[{"id":0,"data":"xxxx"},{"id":1,"data":"xxxx"}],"fp_algorithm":"xxx1",
                 "fa_list":[{"id":0,"data":"xxxx"},{"id":1,"data":"xxxx"}],"fa_algorithm":"xxxx1"},
                {"userid":"x2","fa_list":[{"id":0,"data":"xxxx"},{"id":1,"data":"xxxx"}],
                 "fa_algorithm":"xxxx1","user_type":1},
                {"userid":"x3","fa":"xxxx"}
            ]
        }
    });
    let reply = d.request_frame(&frame).await.unwrap();
    assert_eq!(
        reply,
        json!({
            "headers": {"req_id": "xxxxx"},
            "body": {"fail_list": [{"userid":"x1","user_type":0},{"userid":"x3","user_type":0}]},
            "errcode": 0,
            "errmsg": "ok"
        })
    );
    // x2's two face slots are stored under its algorithm and served back
    // to a terminal holding the visitor: through a rule.
    let creds = make_app(&app.core, &app.tenant, &["acs:rule_external"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let rule = json!({"rule": {"name": "seed", "visitors": [{"user_id": "x2"}],
                               "devices": [{"id": facehub::domain::devices::device_id("SEED-1")}]}});
    let r = app
        .client
        .post(app.url("/open-apis/acs/v1/rule_external"))
        .bearer_auth(&token)
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let b = userinfo(&d, "x2", 1).await;
    let u = &b["userinfo"][0];
    assert_eq!(u["userid"], "x2");
    assert_eq!(u["user_type"], 1);
    assert_eq!(u["fa_algorithm"], "xxxx1");
    assert_eq!(
        u["fa_list"],
        json!([{"id":0,"data":"xxxx"},{"id":1,"data":"xxxx"}])
    );
    assert_eq!(u["fa_ver"], 1);
    // Re-sending the same frame changes nothing: same reply, same version.
    let v1 = d.call("get_perm_version", json!({})).await.unwrap()["perm_version"].clone();
    let again = d.request_frame(&frame).await.unwrap();
    assert_eq!(again, reply);
    let v2 = d.call("get_perm_version", json!({})).await.unwrap()["perm_version"].clone();
    assert_eq!(v1, v2);
}

#[tokio::test]
async fn each_user_is_judged_on_its_own() {
    let app = spawn_app().await;
    for u in ["good", "also-good", "long"] {
        person(&app.core, &app.tenant, u, UserType::Employee).await;
    }
    let d = online(&app, "RULES-1", &["A"]).await;
    let jpeg = STANDARD.encode(jpeg(64, 64, 1));
    let big = STANDARD.encode(vec![5u8; 8 * 1024 + 1]);
    let users = json!([
        {"userid": "good", "fa_list": [{"id": 11, "data": b64("face")}], "fa_algorithm": "A",
         "fp": [{"id": 9, "data": b64("finger")}]},
        {"userid": "x".repeat(129), "fa": b64("f")},
        {"userid": "", "fa": b64("f")},
        {"userid": "good", "user_type": 3, "fa": b64("f")},
        {"userid": "good", "user_type": 1, "fa": b64("f")},
        {"userid": "also-good", "fa_list": [{"id": 12, "data": b64("f")}]},
        {"userid": "also-good", "fp": [{"id": 10, "data": b64("f")}]},
        {"userid": "also-good", "fa_list": [{"id": 0, "data": "not base64!"}]},
        {"userid": "also-good", "fa_list": [{"id": 0, "data": jpeg}]},
        {"userid": "also-good", "fa_list": [{"id": 0, "data": big}]},
        {"userid": "stranger", "fa": b64("f")},
        {"userid": "also-good", "fa": b64("f"), "fa_algorithm": "B"},
        {"userid": "also-good", "fp": [{"id": 0, "data": b64("f")}], "fp_algorithm": "F"},
        "not an object",
        {"userid": "also-good", "fa": b64("legacy"), "fa_list": [{"id": 4, "data": b64("listed")}], "fa_algorithm": "A"},
    ]);
    let b = d
        .call("upload_userinfo", json!({"userinfo": users}))
        .await
        .unwrap();
    let fails: Vec<(String, i64)> = b["fail_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["userid"].as_str().unwrap().to_string(),
                f["user_type"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(fails.len(), 13, "{fails:?}");
    // An over-long userid is named by its first 128 bytes.
    assert_eq!(fails[0], ("x".repeat(128), 0));
    assert!(fails.contains(&("good".into(), 1)));
    assert!(fails.contains(&("stranger".into(), 0)));
    assert!(!fails.iter().any(|f| f.0 == "good" && f.1 == 0));

    let info = d
        .call(
            "get_userinfo_by_ids",
            json!({"userids": ["good", "also-good"]}),
        )
        .await
        .unwrap();
    let good = &info["userinfo"][0];
    assert_eq!(good["fa_list"], json!([{"id": 11, "data": b64("face")}]));
    // The device listed no fingerprint algorithm: its fingerprints are the
    // default algorithm's.
    assert_eq!(good["fp"], json!([{"id": 9, "data": b64("finger")}]));
    assert_eq!(good["fp_algorithm"], "default");
    let also = &info["userinfo"][1];
    // fa_list present: the legacy fa is ignored.
    assert_eq!(also["fa_list"], json!([{"id": 4, "data": b64("listed")}]));

    // data:"" deletes that slot only.
    d.call(
        "upload_userinfo",
        json!({"userinfo": [{"userid": "also-good", "fa_list": [{"id": 4, "data": ""}], "fa_algorithm": "A"}]}),
    )
    .await
    .unwrap();
    let info = userinfo(&d, "also-good", 0).await;
    assert_eq!(info["userinfo"][0]["fa_list"], json!([]));

    // 201 users: the whole frame is refused, nothing stored.
    let before = app.core.perm_version(app.tenant.id).await.unwrap();
    let many: Vec<Value> = (0..201)
        .map(|_| json!({"userid": "good", "fa": b64("z")}))
        .collect();
    let r = d
        .request("upload_userinfo", json!({"userinfo": many}))
        .await
        .unwrap();
    assert_eq!(err_of(&r), 40058, "{r}");
    assert!(r["errmsg"].as_str().unwrap().contains("201"));
    assert_eq!(app.core.perm_version(app.tenant.id).await.unwrap(), before);
    let r = d
        .request("upload_userinfo", json!({"userinfo": {"userid": "good"}}))
        .await
        .unwrap();
    assert_eq!(err_of(&r), 40058);
}

/// The fleet as it is now: an online, synced terminal shows no backlog
/// and a fresh last_seen (not the whole address book and its last
/// disconnect); a terminal held by another node (its presence lease in the
/// store) is online until the lease runs out; one that left is offline at
/// the version it reached.
#[tokio::test]
async fn device_state_is_as_it_is_now() {
    let app = spawn_app().await;
    let creds = make_app(&app.core, &app.tenant, &["facehub:device"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let d = online(&app, "NOW-1", &["A"]).await;
    for u in ["a1", "a2", "a3"] {
        person(&app.core, &app.tenant, u, UserType::Employee).await;
        d.push_of("push_change_contact", WAIT)
            .await
            .expect("change pushed");
    }
    let version = app.core.perm_version(app.tenant.id).await.unwrap();
    let item = |v: &Value, sn: &str| {
        v["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["sn"] == sn)
            .cloned()
            .unwrap()
    };
    let v = get_json(&app, "/open-apis/facehub/v1/devices", &token).await;
    let now = item(&v, "NOW-1");
    assert_eq!(now["online"], true, "{v}");
    assert_eq!(now["backlog"], 0, "{v}");
    assert_eq!(now["seen_version"], version, "{v}");
    assert!(
        now["last_seen"].as_i64().unwrap() >= app.core.now() - 2,
        "{v}"
    );

    // Held by another node: its lease decides.
    app.core
        .add_device(&app.tenant, "NOW-2", SECRET_NO)
        .await
        .unwrap();
    app.core.bind_device(app.tenant.id, "NOW-2").await.unwrap();
    let db = &app.core.store_for_tests().db;
    let t = app.core.now();
    let seen = facehub::model::Seen {
        people: version,
        visitors: 0,
    };
    let lease =
        |until: i64, owner: &str| (vec![("NOW-2".to_string(), seen, owner.to_string())], until);
    let (l, until) = lease(t + 45, "other-node.7");
    db.renew_presence(&l, t, until).await.unwrap();
    let v = get_json(&app, "/open-apis/facehub/v1/devices", &token).await;
    assert_eq!(item(&v, "NOW-2")["online"], true, "{v}");
    assert_eq!(item(&v, "NOW-2")["backlog"], 0, "{v}");
    // An older connection that ends late leaves the newer one's lease.
    db.set_seen("NOW-2", seen, t, "old-node.3").await.unwrap();
    let v = get_json(&app, "/open-apis/facehub/v1/devices", &token).await;
    assert_eq!(item(&v, "NOW-2")["online"], true, "{v}");
    // Its own end clears it.
    db.set_seen("NOW-2", seen, t, "other-node.7").await.unwrap();
    let v = get_json(&app, "/open-apis/facehub/v1/devices", &token).await;
    assert_eq!(item(&v, "NOW-2")["online"], false, "{v}");
    // A lease that ran out (its node died) is offline.
    let (l, until) = lease(t - 1, "dead-node.1");
    db.renew_presence(&l, t - 60, until).await.unwrap();
    let v = get_json(&app, "/open-apis/facehub/v1/devices", &token).await;
    assert_eq!(item(&v, "NOW-2")["online"], false, "{v}");

    // Gone: offline, at the version it reached.
    d.send_raw(Message::Close(None)).unwrap();
    assert!(d.closed(WAIT).await.is_some());
    let mut v = Value::Null;
    for _ in 0..50 {
        v = get_json(&app, "/open-apis/facehub/v1/devices", &token).await;
        if item(&v, "NOW-1")["online"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone = item(&v, "NOW-1");
    assert_eq!(gone["online"], false, "{v}");
    assert_eq!(gone["seen_version"], version, "{v}");
    assert_eq!(gone["backlog"], 0, "{v}");
}

/// `GET /open-apis/acs/v1/devices`: the tenant's terminals as the
/// platform lists them — a stable numeric device_id, online status, the
/// faces each receives (people with a face template in one of its
/// algorithms), firmware version — and not another tenant's; the scope
/// is enforced.
#[tokio::test]
async fn acs_device_list_shows_the_fleet() {
    let app = spawn_app().await;
    for u in ["ann", "bob", "cy"] {
        person(&app.core, &app.tenant, u, UserType::Employee).await;
    }
    let a = online(&app, "LIST-A", &["A"]).await;
    let _b = online(&app, "LIST-B", &["B", "A"]).await;
    let c = online(&app, "LIST-C", &["C"]).await;
    c.send_raw(Message::Close(None)).unwrap();
    assert!(c.closed(WAIT).await.is_some());
    let upload = |u: &str, alg: &str, data: &str| json!({"userid": u, "fa_algorithm": alg, "fa_list": [{"id": 0, "data": b64(data)}]});
    let b = a
        .call(
            "upload_userinfo",
            json!({"userinfo": [upload("ann", "A", "ann-face"), upload("bob", "A", "bob-face")]}),
        )
        .await
        .unwrap();
    assert_eq!(b["fail_list"], json!([]));
    let creds = make_app(&app.core, &app.tenant, &["acs:device:readonly"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    // C's connection is gone once the server has seen it close.
    let mut v = Value::Null;
    for _ in 0..50 {
        v = app
            .get("/open-apis/acs/v1/devices", &token)
            .await
            .json()
            .await
            .unwrap();
        if v["data"]["items"][2]["property"]["online_status"] == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(v["code"], 0, "{v}");
    let items = v["data"]["items"].as_array().unwrap();
    let sns: Vec<&str> = items
        .iter()
        .map(|d| d["device_sn"].as_str().unwrap())
        .collect();
    assert_eq!(sns, ["LIST-A", "LIST-B", "LIST-C"]);
    for d in items {
        let sn = d["device_sn"].as_str().unwrap();
        assert_eq!(d["device_id"], facehub::domain::devices::device_id(sn));
        assert_eq!(d["device_name"], sn);
        assert_eq!(d["property"]["device_name"], sn);
        assert_eq!(d["property"]["is_clock_in"], true);
        assert!(d["property"]["version"].is_string(), "{d}");
    }
    let face_counts: Vec<&Value> = items
        .iter()
        .map(|d| &d["property"]["current_device_face_count"])
        .collect();
    assert_eq!(face_counts, [&json!(2), &json!(2), &json!(0)]);
    let online: Vec<&Value> = items
        .iter()
        .map(|d| &d["property"]["online_status"])
        .collect();
    assert_eq!(online, [&json!(1), &json!(1), &json!(0)]);

    // Without the scope: the platform's 99991672.
    let other = make_app(&app.core, &app.tenant, &["acs:users"]).await;
    let token = app.token_for(&other.app_id, &other.app_secret).await;
    let r = app.get("/open-apis/acs/v1/devices", &token).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 99991672, "{v}");
}

/// A template slot never stores a file: a photo behind a byte of padding,
/// a TIFF, a HEIC, an AVIF, a PNG deep inside, a ZIP. Each user fails with
/// the reason, and nothing of theirs is stored.
#[tokio::test]
async fn pictures_and_containers_are_never_templates() {
    use facehub::image::samples;
    let app = spawn_app().await;
    let features: Vec<u8> = (0..900u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "jpeg-padded",
            [&[0x01][..], &samples::jpeg(48, 48)].concat(),
        ),
        ("tiff", samples::tiff_header(64, 64)),
        ("heic", samples::bmff_picture(b"heic", &features)),
        ("avif", samples::bmff_picture(b"avif", &features)),
        (
            "png-inside",
            [&features[..300], &samples::png(32, 32), &features[..50]].concat(),
        ),
        ("zip", [&b"PK\x03\x04"[..], &features].concat()),
    ];
    for (u, _) in &cases {
        person(&app.core, &app.tenant, u, UserType::Employee).await;
    }
    person(&app.core, &app.tenant, "features", UserType::Employee).await;
    let d = online(&app, "FILES-1", &["A"]).await;
    let mut users: Vec<Value> = cases
        .iter()
        .map(|(u, bytes)| {
            json!({"userid": u, "fa_algorithm": "A",
                                 "fa_list": [{"id": 0, "data": STANDARD.encode(bytes)}]})
        })
        .collect();
    users.push(json!({"userid": "features", "fa_algorithm": "A",
                      "fa_list": [{"id": 0, "data": STANDARD.encode(&features)}]}));
    let b = d
        .call("upload_userinfo", json!({"userinfo": users}))
        .await
        .unwrap();
    let failed: Vec<&str> = b["fail_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["userid"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = cases.iter().map(|(u, _)| *u).collect();
    assert_eq!(failed, expected, "{b}");
    for (u, _) in &cases {
        let info = userinfo(&d, u, 0).await;
        assert_eq!(info["userinfo"][0]["fa_list"], json!([]), "{u}: {info}");
    }
    let info = userinfo(&d, "features", 0).await;
    assert_eq!(
        info["userinfo"][0]["fa_list"],
        json!([{"id": 0, "data": STANDARD.encode(&features)}])
    );
}

/// RFC 6455: a terminal's Close is answered with a Close (its own code
/// echoed) before the server lets go; a text frame that is not UTF-8 fails
/// the connection with 1007. Both before and after login.
#[tokio::test]
async fn closes_are_answered_and_bad_utf8_is_1007() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = spawn_app().await;
    let bye = || {
        Message::Close(Some(CloseFrame {
            code: 4100.into(),
            reason: "going to sleep".into(),
        }))
    };
    let not_utf8 = || {
        Message::Frame(Frame::message(
            vec![b'{', 0xff, 0xfe, b'}'],
            OpCode::Data(Data::Text),
            true,
        ))
    };
    let anonymous = Device::connect(&ws(&app), "CLOSE-0", (&[], &[]), None)
        .await
        .unwrap();
    anonymous.send_raw(bye()).unwrap();
    assert_eq!(
        anonymous.closed(WAIT).await,
        Some(Some((4100, "going to sleep".to_string())))
    );
    let d = online(&app, "CLOSE-1", &["A"]).await;
    d.send_raw(bye()).unwrap();
    assert_eq!(
        d.closed(WAIT).await,
        Some(Some((4100, "going to sleep".to_string())))
    );

    // With replies still queued: the Close is answered all the same.
    let d = online(&app, "CLOSE-5", &["A"]).await;
    for i in 0..50 {
        let ping = format!(r#"{{"cmd":"ping","headers":{{"req_id":"p{i}"}},"body":{{}}}}"#);
        d.send_raw(Message::Text(ping.into())).unwrap();
    }
    d.send_raw(bye()).unwrap();
    assert_eq!(
        d.closed(WAIT).await,
        Some(Some((4100, "going to sleep".to_string())))
    );

    let anonymous = Device::connect(&ws(&app), "CLOSE-2", (&[], &[]), None)
        .await
        .unwrap();
    anonymous.send_raw(not_utf8()).unwrap();
    assert_eq!(
        anonymous.closed(WAIT).await.flatten().map(|c| c.0),
        Some(1007)
    );
    let d = online(&app, "CLOSE-3", &["A"]).await;
    d.send_raw(not_utf8()).unwrap();
    assert_eq!(d.closed(WAIT).await.flatten().map(|c| c.0), Some(1007));
    // The server goes on serving.
    let d = online(&app, "CLOSE-4", &["A"]).await;
    assert!(d.call("get_perm_version", json!({})).await.is_ok());
}

/// Each terminal has its own command quota: past it, commands are answered
/// 45009 without running; another terminal is unaffected, and the quota
/// refills.
#[tokio::test]
async fn a_terminal_past_its_command_quota_gets_45009() {
    let app = spawn_with(|c| c.device.commands_per_second = 10).await;
    let busy = online(&app, "QUOTA-1", &["A"]).await;
    let calm = online(&app, "QUOTA-2", &["A"]).await;
    let replies = futures_util::future::join_all(
        (0..40).map(|_| busy.request("get_perm_version", json!({}))),
    )
    .await;
    let refused: Vec<&Value> = replies
        .iter()
        .map(|r| r.as_ref().unwrap())
        .filter(|r| r["errcode"] != 0)
        .collect();
    assert!(refused.len() >= 25, "{} refused", refused.len());
    for r in &refused {
        assert_eq!(err_of(r), 45009, "{r}");
        let msg = r["errmsg"].as_str().unwrap();
        assert!(
            msg.starts_with("api freq out of limit: 10 a second; retry in"),
            "{msg}"
        );
        assert!(r.get("perm_version").is_none(), "{r}");
    }
    assert!(calm.call("get_perm_version", json!({})).await.is_ok());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(busy.call("get_perm_version", json!({})).await.is_ok());
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_server_keeps_serving() {
    let app = spawn_with(|c| {
        c.device.max_frame_mib = 1;
        c.device.idle_timeout_secs = 2;
    })
    .await;
    person(&app.core, &app.tenant, "u1", UserType::Employee).await;
    let d = Device::connect(&ws(&app), "RAW-1", (&[], &[]), None)
        .await
        .unwrap();
    d.send_raw(Message::Text("{not json".into())).unwrap();
    assert_eq!(err_of(&d.next_error(WAIT).await.unwrap()), 47001);
    d.send_raw(Message::Text("[1,2]".into())).unwrap();
    assert_eq!(err_of(&d.next_error(WAIT).await.unwrap()), 47001);
    d.send_raw(Message::Text(r#"{"cmd":"ping","body":{}}"#.into()))
        .unwrap();
    let e = d.next_error(WAIT).await.unwrap();
    assert_eq!(err_of(&e), 40058);
    assert!(e["errmsg"].as_str().unwrap().contains("req_id"));
    d.send_raw(Message::Binary(vec![1, 2, 3].into())).unwrap();
    assert_eq!(err_of(&d.next_error(WAIT).await.unwrap()), 40058);
    let r = d.request("no_such_cmd", json!({})).await.unwrap();
    assert_eq!(err_of(&r), 40058);
    assert!(r["errmsg"].as_str().unwrap().contains("no_such_cmd"));
    assert!(r.get("cmd").is_none());
    // Before login, only bring-up and ping are answered.
    for cmd in [
        "get_perm_version",
        "upload_userinfo",
        "get_userinfo_by_page",
        "checkin",
        "download_photo",
    ] {
        let r = d.request(cmd, json!({})).await.unwrap();
        assert_eq!(err_of(&r), 600020, "{cmd}: {r}");
    }
    assert_eq!(err_of(&d.request("ping", json!({})).await.unwrap()), 0);
    // An absurd cmd is not echoed in full.
    let r = d.request(&"c".repeat(10_000), json!({})).await.unwrap();
    assert!(r["errmsg"].as_str().unwrap().len() < 200, "{r}");
    // Before login a connection may send only a little (64 KiB in all):
    // a larger frame is cut off as it arrives, never parsed.
    let big =
        json!({"cmd": "ping", "headers": {"req_id": "p"}, "body": {"pad": "x".repeat(70_000)}});
    d.send_raw(Message::Text(big.to_string().into())).unwrap();
    let closed = d.closed(WAIT).await.expect("closed");
    assert_eq!(closed.map(|c| c.0), Some(1009));

    // Another device logs in meanwhile and is served.
    let other = online(&app, "OK-1", &[]).await;
    // An oversize frame after login closes only that connection (1009).
    let big = online(&app, "BIG-1", &[]).await;
    let huge = json!({"cmd": "upload_userinfo", "headers": {"req_id": "big"},
                      "body": {"userinfo": [{"userid": "u1", "fa": "A".repeat(2 << 20)}]}});
    big.send_raw(Message::Text(huge.to_string().into()))
        .unwrap();
    let closed = big.closed(WAIT).await.expect("closed");
    assert_eq!(closed.map(|c| c.0), Some(1009));
    assert_eq!(
        other.call("get_perm_version", json!({})).await.unwrap()["perm_version"],
        1
    );

    // A silent connection is closed after the idle timeout; one that
    // pings is not.
    let pinger = Device::connect(
        &ws(&app),
        "PING-1",
        (&[], &[]),
        Some(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    let silent = Device::connect(&ws(&app), "SILENT-1", (&[], &[]), None)
        .await
        .unwrap();
    let closed = silent
        .closed(Duration::from_secs(6))
        .await
        .expect("silent closed");
    assert_eq!(closed.map(|c| c.0), Some(1001));
    assert_eq!(err_of(&pinger.request("ping", json!({})).await.unwrap()), 0);
}

#[tokio::test]
async fn bring_up_refusals_and_binding() {
    let app = spawn_app().await;
    let core = &app.core;
    core.add_device(&app.tenant, "B-1", SECRET_NO)
        .await
        .unwrap();
    let d = Device::connect(&ws(&app), "B-1", (&["X"], &[]), None)
        .await
        .unwrap();
    let now = core.now();
    let reg = |sn: &str, secret: &str, ts: i64| {
        let nonce = "12345".to_string();
        let sig = signature(&[sn, secret, &ts.to_string(), &nonce, "register"]);
        json!({"sn": sn, "timestamp": ts, "nonce": nonce, "device_signature": sig})
    };
    let code = |r: Value| err_of(&r);
    assert_eq!(
        code(
            d.request("register", reg("B-1", "wrong", now))
                .await
                .unwrap()
        ),
        600014
    );
    assert_eq!(
        code(
            d.request("register", reg("B-1", SECRET_NO, now - 400))
                .await
                .unwrap()
        ),
        600014
    );
    // An unknown serial number gets the answer a wrong SecretNo gets.
    let unknown = d
        .request("register", reg("NOPE", SECRET_NO, now))
        .await
        .unwrap();
    let wrong = d
        .request("register", reg("B-1", "wrong", now))
        .await
        .unwrap();
    assert_eq!(code(unknown.clone()), 600014);
    assert_eq!(unknown["errmsg"], wrong["errmsg"], "{unknown} {wrong}");
    assert_eq!(
        code(d.request("register", json!({"sn": "B-1"})).await.unwrap()),
        40058
    );
    // Timestamps and nonces as strings are signed as sent.
    let mut as_strings = reg("B-1", SECRET_NO, now);
    as_strings["timestamp"] = json!(now.to_string());
    let r = d.request("register", as_strings).await.unwrap();
    assert_eq!(code(r.clone()), 0, "{r}");
    let active_code = r["body"]["active_code"].as_str().unwrap().to_string();
    assert_eq!(
        errcode(&d, "active", json!({"active_code": "bogus"})).await,
        600003
    );
    // Not bound yet: refused until an admin binds it, which is pushed.
    assert_eq!(
        errcode(&d, "active", json!({"active_code": active_code})).await,
        600004
    );
    core.bind_device(app.tenant.id, "B-1").await.unwrap();
    assert!(d.push_of("push_bind_corp", WAIT).await.is_some());
    let secret = activate(&d, &active_code).await;
    assert_eq!(
        errcode(&d, "subscribe_corp", json!({"secret": "bad"})).await,
        600004
    );
    let six = json!({"secret": secret, "ext_args": {"fa_algorithm": ["a","b","c","d","e","f"]}});
    assert_eq!(code(d.request("subscribe_corp", six).await.unwrap()), 40058);
    d.subscribe(&secret).await.unwrap();
    let listed = core
        .store_for_tests()
        .db
        .device("B-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.fa_algorithms, ["X"]);
    assert_eq!(listed.firmware_version.as_deref(), Some("devsim-1.0"));

    // A second connection of the same device replaces the first.
    let d2 = Device::connect(&ws(&app), "B-1", (&["X"], &[]), None)
        .await
        .unwrap();
    d2.subscribe(&secret).await.unwrap();
    assert_eq!(
        d.closed(WAIT).await.expect("replaced").map(|c| c.0),
        Some(4000)
    );
    assert_eq!(
        code(d2.request("get_perm_version", json!({})).await.unwrap()),
        0
    );

    // Unbinding tells the device, closes it, and kills the secret.
    core.unbind_device(app.tenant.id, "B-1").await.unwrap();
    assert!(d2.push_of("push_unbind_corp", WAIT).await.is_some());
    assert!(d2.closed(WAIT).await.is_some());
    let d3 = Device::connect(&ws(&app), "B-1", (&["X"], &[]), None)
        .await
        .unwrap();
    assert_eq!(
        errcode(&d3, "subscribe_corp", json!({"secret": secret})).await,
        600004
    );
}

fn face_of(book: &facehub_devsim::Book, user: &str) -> (Option<String>, Vec<String>) {
    let u = &book.users[&(user.to_string(), 0)];
    (
        u.fa.algorithm.clone(),
        u.fa.slots.values().cloned().collect(),
    )
}

#[tokio::test]
async fn templates_reach_devices_of_the_same_algorithm_also_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (core, url, stop, task) = start_at(dir.path()).await;
    let t = core.create_tenant("acme").await.unwrap();
    for u in ["u1", "u2"] {
        person(&core, &t, u, UserType::Employee).await;
    }
    let x1 = online_at(&core, &url, &t, "X-1", &["X", "default"]).await;
    let x2 = online_at(&core, &url, &t, "X-2", &["X"]).await;
    let x3 = online_at(&core, &url, &t, "X-3", &["X"]).await;
    let y = online_at(&core, &url, &t, "Y-1", &["Y"]).await;
    for d in [&x1, &x2, &x3, &y] {
        d.catch_up().await.unwrap();
        d.drain_pushes(Duration::from_millis(200)).await.unwrap();
    }
    // Y has a template of its own for u1.
    y.call(
        "upload_userinfo",
        json!({"userinfo": [{"userid": "u1", "fa": b64("y-face"), "fa_algorithm": "Y"}]}),
    )
    .await
    .unwrap();
    for d in [&x1, &x2, &x3, &y] {
        d.drain_pushes(Duration::from_millis(300)).await.unwrap();
    }
    let v0 = core.perm_version(t.id).await.unwrap();
    x1.call(
        "upload_userinfo",
        json!({"userinfo": [{"userid": "u1", "fa_list": [{"id": 0, "data": b64("x-face-0")}, {"id": 1, "data": b64("x-face-1")}], "fa_algorithm": "X"}]}),
    )
    .await
    .unwrap();
    assert_eq!(core.perm_version(t.id).await.unwrap(), v0 + 1);
    for d in [&x2, &x3, &y] {
        let p = d.push_of("push_change_contact", WAIT).await.expect("push");
        assert_eq!(p["body"]["perm_version"], v0 + 1, "{}", d.sn);
        assert_eq!(
            p["body"]["update_user"],
            json!([{"userid": "u1", "user_type": 0}])
        );
        d.apply_change(&p).await.unwrap();
        d.drain_pushes(Duration::from_millis(200)).await.unwrap();
    }
    for d in [&x2, &x3] {
        let book = d.book.lock().await;
        assert_eq!(
            face_of(&book, "u1"),
            (Some("X".into()), vec![b64("x-face-0"), b64("x-face-1")]),
            "{}",
            d.sn
        );
    }
    {
        // Y gets the person with its own algorithm's template, never X's.
        let book = y.book.lock().await;
        assert_eq!(
            face_of(&book, "u1"),
            (Some("Y".into()), vec![b64("y-face")])
        );
        assert_eq!(book.users[&("u2".to_string(), 0)].fa.slots.len(), 0);
    }

    // X-3 goes away; two changes happen, one of them after a restart.
    let x3_book = x3.book.lock().await.clone();
    drop(x3);
    x1.call(
        "upload_userinfo",
        json!({"userinfo": [{"userid": "u2", "fa": b64("u2-a"), "fa_algorithm": "X"}]}),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop.send(());
    task.await.unwrap();
    drop(core);
    let (core, url, stop, task) = start_at(dir.path()).await;
    let x1 = online_at(&core, &url, &t, "X-1", &["X", "default"]).await;
    x1.call(
        "upload_userinfo",
        json!({"userinfo": [{"userid": "u2", "fa": b64("u2-b"), "fa_algorithm": "X"}]}),
    )
    .await
    .unwrap();
    let x3 = online_at(&core, &url, &t, "X-3", &["X"]).await;
    *x3.book.lock().await = x3_book;
    // The device hears of the versions it missed on login, and its own
    // version check says the same.
    let p = x3
        .push_of("push_change_contact", WAIT)
        .await
        .expect("catch-up push");
    x3.apply_change(&p).await.unwrap();
    x3.drain_pushes(Duration::from_millis(300)).await.unwrap();
    x3.catch_up().await.unwrap();
    let book = x3.book.lock().await;
    assert_eq!(book.perm_version, core.perm_version(t.id).await.unwrap());
    assert_eq!(face_of(&book, "u2"), (Some("X".into()), vec![b64("u2-b")]));
    assert_eq!(
        face_of(&book, "u1").1,
        vec![b64("x-face-0"), b64("x-face-1")]
    );
    drop(book);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn full_pull_pages_carry_the_version() {
    let app = spawn_app().await;
    employees(&app, 250).await;
    let d = online(&app, "PAGE-1", &[]).await;
    let first = d
        .call("get_userinfo_by_page", json!({"offset": 0, "limit": 200}))
        .await
        .unwrap();
    assert_eq!(first["userinfo"].as_array().unwrap().len(), 200);
    assert_eq!(first["is_last"], false);
    assert_eq!(first["perm_version"], 250);
    let last = d
        .call(
            "get_userinfo_by_page",
            json!({"offset": 200, "limit": 200, "is_req_fa_info": 0}),
        )
        .await
        .unwrap();
    assert_eq!(last["userinfo"].as_array().unwrap().len(), 50);
    assert_eq!(last["is_last"], true);
    assert!(last["userinfo"][0].get("fa_list").is_none());
    for bad in [
        json!({"limit": 201}),
        json!({"limit": 0}),
        json!({"offset": -1}),
        json!({"limit": "x"}),
    ] {
        assert_eq!(
            err_of(
                &d.request("get_userinfo_by_page", bad.clone())
                    .await
                    .unwrap()
            ),
            40058,
            "{bad}"
        );
    }
    let r = d
        .call("check_userid", json!({"userid_item": [{"userid": "p001", "user_type": 0}, {"userid": "zz", "user_type": 0}, {"userid": "p001", "user_type": 1}]}))
        .await
        .unwrap();
    assert_eq!(
        r["legal_userid_item"],
        json!([{"userid": "p001", "user_type": 0}])
    );
    assert_eq!(
        r["illegal_userid_item"],
        json!([{"userid": "zz", "user_type": 0}, {"userid": "p001", "user_type": 1}])
    );
    d.full_pull(100).await.unwrap();
    assert_eq!(d.book.lock().await.users.len(), 250);
}

#[tokio::test]
async fn photo_uploaded_through_feishu_becomes_templates_on_every_terminal() {
    let app = spawn_app().await;
    let admin_token = device_admin_token(&app).await;
    person(&app.core, &app.tenant, "abd754f7", UserType::Employee).await;
    let token = app.token().await;
    let photo = jpeg(300, 300, 9);
    let face = app.upload(&token, "face.jpg", &photo).await;
    let v = app
        .post_json(
            "/open-apis/attendance/v1/user_settings/modify?employee_type=employee_id",
            &token,
            &json!({"user_setting": {"user_id": "abd754f7", "face_key": face, "face_key_update_time": "1625681917"}}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let enroller = online(&app, "E-1", &["X"]).await;
    let other = online(&app, "E-2", &["X"]).await;
    for d in [&enroller, &other] {
        d.catch_up().await.unwrap();
        d.drain_pushes(Duration::from_millis(200)).await.unwrap();
    }
    // Without the scope: refused in the platform's envelope.
    let r = app
        .send_json(
            reqwest::Method::POST,
            "/open-apis/facehub/v1/device_enrolments",
            &token,
            &json!({"sn": "E-1", "user_id": "abd754f7", "kind": "photo"}),
        )
        .await;
    expect_error(r, 400, 99991672).await;
    let v = app
        .post_json(
            "/open-apis/facehub/v1/device_enrolments",
            &admin_token,
            &json!({"sn": "E-1", "user_id": "abd754f7", "kind": "photo"}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let oper_id = v["data"]["enrolment"]["oper_id"]
        .as_str()
        .unwrap()
        .to_string();

    let push = enroller
        .push_of("push_user_face", WAIT)
        .await
        .expect("push_user_face");
    let body = &push["body"];
    assert_eq!(body["oper_id"], oper_id.as_str());
    assert_eq!(body["userid"], "abd754f7");
    let info = &body["face_info"][0];
    assert_eq!(info["photo_size"], photo.len());
    assert_eq!(info["media_type"], "image/jpeg");
    let media_id = info["media_id"].as_str().unwrap();
    let got = enroller.download_photo(media_id).await.unwrap();
    assert_eq!(got, photo, "the device receives the uploaded bytes");
    // Another device cannot fetch it, nor can a forged id.
    let r = other
        .request_reply("download_photo", json!({"media_id": media_id}))
        .await
        .unwrap();
    assert!(
        matches!(r, facehub_devsim::Reply::Json(ref v) if v["errcode"] == 40007),
        "{r:?}"
    );
    let r = enroller
        .request(
            "download_photo",
            json!({"media_id": format!("{oper_id}_7")}),
        )
        .await
        .unwrap();
    assert_eq!(err_of(&r), 40007);

    // The device extracts features and answers with the oper_id.
    enroller
        .call("upload_userinfo", json!({"oper_id": oper_id, "errcode": 0, "errmsg": "ok",
            "userinfo": [{"userid": "abd754f7", "fa_list": [{"id": 0, "data": b64("features")}], "fa_algorithm": "X"}]}))
        .await
        .unwrap();
    let v = get_json(
        &app,
        &format!("/open-apis/facehub/v1/device_enrolments/{oper_id}"),
        &admin_token,
    )
    .await;
    assert_eq!(v["data"]["enrolment"]["status"], "succeeded", "{v}");
    // Finished: the photo is no longer downloadable.
    assert_eq!(
        err_of(
            &enroller
                .request("download_photo", json!({"media_id": media_id}))
                .await
                .unwrap()
        ),
        40007
    );
    let p = other
        .push_of("push_change_contact", WAIT)
        .await
        .expect("change");
    other.apply_change(&p).await.unwrap();
    let book = other.book.lock().await;
    assert_eq!(
        book.users[&("abd754f7".to_string(), 0)].fa.slots[&0],
        b64("features")
    );
}

#[tokio::test]
async fn enter_page_enrolment_reports_the_device_result() {
    let app = spawn_with(|c| c.device.enrol_timeout_secs = 1).await;
    person(&app.core, &app.tenant, "u1", UserType::Employee).await;
    let d = online(&app, "P-1", &[]).await;
    let start = |kind| app.core.start_enrolment(app.tenant.id, "P-1", "u1", kind);
    let e = start("fa").await.unwrap();
    let p = d
        .push_of("push_enter_page", WAIT)
        .await
        .expect("push_enter_page");
    assert_eq!(
        p["body"],
        json!({"page_type": "fa", "oper_id": e.oper_id, "userid": "u1", "user_type": 0})
    );
    d.call(
        "upload_userinfo",
        json!({"oper_id": e.oper_id, "errcode": 101, "errmsg": "camera is using", "userinfo": []}),
    )
    .await
    .unwrap();
    let done = app.core.enrolment(app.tenant.id, &e.oper_id).await.unwrap();
    assert_eq!(
        (done.status.as_str(), done.errcode, done.errmsg.as_deref()),
        ("failed", Some(101), Some("camera is using"))
    );
    // An answer without templates of the enrolled kind, or with an errcode
    // that is not a number, is a failure.
    for (extra, want) in [
        (
            json!({"userinfo": [{"userid": "u1", "fp": [{"id": 0, "data": b64("fp")}]}]}),
            40058,
        ),
        (
            json!({"errcode": "fail", "userinfo": [{"userid": "u1", "fa": b64("f")}]}),
            -1,
        ),
    ] {
        let e = start("fa").await.unwrap();
        d.push_of("push_enter_page", WAIT).await.unwrap();
        let mut body = extra.clone();
        body["oper_id"] = json!(e.oper_id);
        d.call("upload_userinfo", body).await.unwrap();
        let done = app.core.enrolment(app.tenant.id, &e.oper_id).await.unwrap();
        assert_eq!(
            (done.status.as_str(), done.errcode),
            ("failed", Some(want)),
            "{extra}"
        );
    }
    // Cancel sends push_exit_page; an unanswered one times out.
    let e2 = start("fp").await.unwrap();
    d.push_of("push_enter_page", WAIT).await.unwrap();
    app.core
        .cancel_enrolment(app.tenant.id, &e2.oper_id)
        .await
        .unwrap();
    let exit = d.push_of("push_exit_page", WAIT).await.unwrap();
    assert_eq!(exit["body"]["oper_id"], e2.oper_id.as_str());
    let e3 = start("fa").await.unwrap();
    let p3 = d.push_of("push_enter_page", WAIT).await.unwrap();
    assert_eq!(p3["body"]["oper_id"], e3.oper_id.as_str());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(enrolment_status(&app, &e3.oper_id).await, "timed_out");
    // The simulator answers like a terminal: capture, upload with the oper_id.
    let e4 = start("fp").await.unwrap();
    let p = d.push_of("push_enter_page", WAIT).await.unwrap();
    assert!(d.answer_enrolment(&p).await.unwrap());
    assert_eq!(enrolment_status(&app, &e4.oper_id).await, "succeeded");
    let slots = app
        .core
        .store_for_tests()
        .db
        .template_slots(
            app.core
                .person(app.tenant.id, "u1")
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    let slots: Vec<_> = slots.into_iter().map(|(m, a, s, _)| (m, a, s)).collect();
    assert_eq!(slots, vec![("fp".to_string(), "default".to_string(), 0)]);
    // Another tenant's enrolment looks unknown.
    let other = app.core.create_tenant("other").await.unwrap();
    assert!(app.core.enrolment(other.id, &e3.oper_id).await.is_err());
    assert!(
        app.core
            .start_enrolment(other.id, "P-1", "u1", "fa")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn checkins_are_stored_and_listed_per_day() {
    let app = spawn_app().await;
    let admin_token = device_admin_token(&app).await;
    person(&app.core, &app.tenant, "u1", UserType::Employee).await;
    let d = online(&app, "C-1", &[]).await;
    let day = 1_763_856_000; // 2025-11-23 00:00 UTC
    let b = d
        .call("checkin", json!({"checkin_data": [
            {"userid": "u1", "user_type": 0, "timestamp": day + 3600, "pass_type": 1, "pass_method": 1},
            {"userid": "u1", "user_type": 0, "timestamp": day + 7200},
            {"userid": "u1", "user_type": 0, "timestamp": 1_400_000_000},
            {"userid": "ghost", "user_type": 0, "timestamp": day + 1},
            {"userid": "u1", "user_type": 0, "timestamp": day + 60, "pass_type": 9},
        ]}))
        .await
        .unwrap();
    assert_eq!(
        b["fail_list"],
        json!([
            {"userid": "ghost", "user_type": 0, "timestamp": day + 1},
            {"userid": "u1", "user_type": 0, "timestamp": day + 60},
        ])
    );
    let many: Vec<Value> = (0..201)
        .map(|i| json!({"userid": "u1", "timestamp": day + i}))
        .collect();
    assert_eq!(
        err_of(
            &d.request("checkin", json!({"checkin_data": many}))
                .await
                .unwrap()
        ),
        40058
    );
    let v = get_json(
        &app,
        "/open-apis/facehub/v1/checkins?user_id=u1&day=2025-11-23",
        &admin_token,
    )
    .await;
    assert_eq!(
        v["data"]["items"],
        json!([
            {"sn": "C-1", "timestamp": day + 3600, "pass_type": 1, "pass_method": 1},
            {"sn": "C-1", "timestamp": day + 7200, "pass_type": null, "pass_method": null},
        ]),
        "{v}"
    );
    let v = get_json(
        &app,
        "/open-apis/facehub/v1/checkins?user_id=u1&day=23-11-2025",
        &admin_token,
    )
    .await;
    assert_eq!(v["code"], 1220001);
}

#[tokio::test]
async fn large_pages_arrive() {
    let app = spawn_app().await;
    let d = online(&app, "BIG-1", &["X"]).await;
    fill_templates(&app, &d, 200, 12, 2048).await;
    let page = d
        .call("get_userinfo_by_page", json!({"offset": 0, "limit": 200}))
        .await
        .unwrap();
    assert_eq!(page["userinfo"].as_array().unwrap().len(), 200);
}

#[tokio::test]
async fn terminals_connect_over_wss() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let app = spawn_with(|c| {
        c.tls = Some(facehub::config::TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        })
    })
    .await;
    person(&app.core, &app.tenant, "u1", UserType::Employee).await;
    app.core
        .add_device(&app.tenant, "TLS-1", SECRET_NO)
        .await
        .unwrap();
    app.core.bind_device(app.tenant.id, "TLS-1").await.unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (socket, _) = tokio_tungstenite::client_async_with_config(
        format!("wss://localhost:{}/", app.addr.port()),
        tls,
        Some(facehub_devsim::ws_config()),
    )
    .await
    .unwrap();
    let d = Device::over(socket, "TLS-1", (&["X"], &[]), None);
    d.bring_up(SECRET_NO, app.core.now()).await.unwrap();
    d.call(
        "upload_userinfo",
        json!({"userinfo": [{"userid": "u1", "fa": b64("over tls"), "fa_algorithm": "X"}]}),
    )
    .await
    .unwrap();
    let info = d
        .call("get_userinfo_by_ids", json!({"userids": ["u1"]}))
        .await
        .unwrap();
    assert_eq!(info["userinfo"][0]["fa_list"][0]["data"], b64("over tls"));

    // Plain HTTP on the TLS port gets no answer; a bad key file stops start-up.
    let plain = Device::connect(&ws(&app), "TLS-2", (&[], &[]), None).await;
    assert!(plain.is_err());
    std::fs::write(&key_file, "not a key").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = Application::build(Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: Some(facehub::config::TlsConfig {
            cert_file,
            key_file,
        }),
        ..Config::default()
    })
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn a_device_that_stops_reading_is_cut_off() {
    let app = spawn_with(|c| {
        c.device.idle_timeout_secs = 2;
        c.device.min_send_rate_kib = 1 << 20;
    })
    .await;
    let d = online(&app, "READER", &["X"]).await;
    fill_templates(&app, &d, 200, 12, 4096).await;
    drop(d);
    // A raw client that asks for 13 MB pages and never reads a byte.
    app.core
        .add_device(&app.tenant, "STALLED", SECRET_NO)
        .await
        .unwrap();
    app.core
        .bind_device(app.tenant.id, "STALLED")
        .await
        .unwrap();
    let secret = app
        .core
        .activate_device(&{
            let now = app.core.now().to_string();
            let sig = signature(&["STALLED", SECRET_NO, &now, "1", "register"]);
            app.core
                .register_device("STALLED", &now, "1", &sig, [127, 0, 0, 1].into())
                .await
                .unwrap()
        })
        .await
        .unwrap()
        .1;
    let (mut ws, _) = tokio_tungstenite::connect_async(ws(&app)).await.unwrap();
    use futures_util::SinkExt;
    let sub = json!({"cmd": "subscribe_corp", "headers": {"req_id": "s"}, "body": {"secret": secret, "ext_args": {"fa_algorithm": ["X"]}}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    for i in 0..40 {
        let req = json!({"cmd": "get_userinfo_by_page", "headers": {"req_id": format!("r{i}")}, "body": {"offset": 0, "limit": 200}});
        if ws
            .send(Message::Text(req.to_string().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    // The server stops writing to it and drops the connection.
    let mut gone = false;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !app.core.is_online("STALLED") {
            gone = true;
            break;
        }
    }
    assert!(gone, "a device that never reads stays connected");
    // Others are served meanwhile.
    let other = online(&app, "FINE", &["X"]).await;
    assert_eq!(
        other.call("get_perm_version", json!({})).await.unwrap()["perm_version"],
        201
    );
}
