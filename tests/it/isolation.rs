//! Tenant isolation matrix: tenant A's credentials (tenant token, user token,
//! a logged-in terminal) against every kind of id tenant B has, on every
//! HTTP endpoint and on the device protocol's user lookups.
//!
//! Every case is sent twice: once naming B's id and once naming a fresh id
//! of the same shape that never existed. Both must get exactly the
//! platform's not-found answer (same status, same code, same message once
//! the id is blanked out): another tenant's id must look like no id at all.
//! Afterwards B reads all of its data back byte-identical.
//!
//! The matrix is data: an endpoint is one row of `endpoints()` (or
//! `device_cases()`), and it is tried with every id of B of the row's kind.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::app::*;
use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub::domain::{Core, Person, PersonDraft, Tenant, UserType};
use facehub::image::samples;
use facehub_devsim::{Device, Reply};
use reqwest::Method;
use serde_json::{Value, json};

const SECRET_NO: &str = "factory-secret-no";
const WAIT: Duration = Duration::from_secs(5);
/// Every scope the endpoints check, so only the tenant boundary refuses.
const ALL_SCOPES: &[&str] = &[
    "attendance:rule",
    "attendance:rule:readonly",
    "baike:entity",
    "acs:users",
    "acs:rule_external",
    "acs:visitor",
    "facehub:device",
];
/// Placeholders in the templates of the matrix.
const ID: &str = "@ID@";
const TYPE: &str = "@TYPE@";
const DAY: &str = "2025-11-23";
const DAY_START: i64 = 1_763_856_000; // 2025-11-23 00:00 UTC

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn hex32() -> String {
    hex::encode(facehub::domain::ids::random_bytes::<16>())
}

// ------------------------------------------------------------------ ids

/// The kinds of id a request can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A stored file's id (attendance `file_id`, `face_key`).
    FileId,
    /// A wiki `file_token`.
    LingoToken,
    /// A person's tenant-wide `user_id` (`employee_id`).
    UserId,
    EmployeeNo,
    /// `open_id` under the caller's app.
    OpenId,
    UnionId,
    /// A terminal's serial number.
    Sn,
    /// A device enrolment.
    OperId,
    /// `(userid, user_type)` on the device protocol.
    DeviceUser,
    /// A terminal's `device_id` on the ACS API.
    DeviceId,
    /// An access rule's `rule_id`.
    RuleId,
}

impl Kind {
    /// A fresh id of this kind's shape that names nothing.
    fn fresh(self) -> String {
        let h = hex32();
        match self {
            Kind::FileId | Kind::OperId => h,
            Kind::LingoToken => format!("box{h}"),
            Kind::UserId | Kind::DeviceUser => format!("b-{}", &h[..8]),
            Kind::EmployeeNo => format!("EB{}", u32::from_str_radix(&h[..6], 16).unwrap()),
            Kind::OpenId => format!("ou_{h}"),
            Kind::UnionId => format!("on_{h}"),
            Kind::Sn => format!("B-DEV-{}", h[..6].to_ascii_uppercase()),
            Kind::DeviceId | Kind::RuleId => {
                (u64::from_str_radix(&h[..16], 16).unwrap() >> 1).to_string()
            }
        }
    }
}

/// One of B's ids.
struct BId {
    kind: Kind,
    what: String,
    id: String,
    /// For [`Kind::DeviceUser`].
    user_type: i64,
}

fn bid(kind: Kind, what: &str, id: &str) -> BId {
    BId {
        kind,
        what: what.to_string(),
        id: id.to_string(),
        user_type: 0,
    }
}

// ------------------------------------------------------------- HTTP rows

#[derive(Debug, Clone, Copy)]
enum Tok {
    /// A's tenant access token.
    Tenant,
    /// A's user access token (acting for a-ann).
    User,
}

enum Body {
    None,
    /// JSON text with [`ID`] placeholders.
    Json(String),
    /// An ACS face upload of a photo with a detectable face.
    Face,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// This HTTP status and `code`, `data` `{}`.
    Error(u16, i64),
    /// 200/0 with the array at this JSON pointer empty: the platform's
    /// answer for ids unknown to the tenant is to leave them out.
    Omitted(&'static str),
}

struct Endpoint {
    name: &'static str,
    kind: Kind,
    method: Method,
    /// With [`ID`] placeholders.
    path: String,
    body: Body,
    tok: Tok,
    expect: Expect,
}

fn row(
    name: &'static str,
    kind: Kind,
    method: Method,
    path: &str,
    body: Body,
    tok: Tok,
    expect: Expect,
) -> Endpoint {
    Endpoint {
        name,
        kind,
        method,
        path: path.to_string(),
        body,
        tok,
        expect,
    }
}

fn json_body(v: Value) -> Body {
    Body::Json(v.to_string())
}

/// Every HTTP endpoint that takes an id, with A's answer for ids that are
/// not A's: one row per endpoint (and variant), tried with each of B's ids
/// of the row's kind. `a_face_key` is an attendance photo of A.
#[rustfmt::skip]
fn endpoints(a_face_key: &str) -> Vec<Endpoint> {
    use Expect::*;
    use Kind::*;
    use Tok::*;
    const ATT_PARAM: Expect = Error(400, 1220001);
    const ATT_USER: Expect = Error(400, 1220004);
    const LINGO: Expect = Error(400, 2250001);
    const ACS: Expect = Error(400, 1490101);
    const OMITTED: Expect = Omitted("/data/user_settings");
    const DOWNLOAD: &str = "/open-apis/attendance/v1/files/@ID@/download";
    const MODIFY_ID: &str = "/open-apis/attendance/v1/user_settings/modify?employee_type=employee_id";
    const MODIFY_NO: &str = "/open-apis/attendance/v1/user_settings/modify?employee_type=employee_no";
    const QUERY_ID: &str = "/open-apis/attendance/v1/user_settings/query?employee_type=employee_id";
    const QUERY_NO: &str = "/open-apis/attendance/v1/user_settings/query?employee_type=employee_no";
    const LINGO_DL: &str = "/open-apis/lingo/v1/files/@ID@/download";
    const ENROL: &str = "/open-apis/facehub/v1/device_enrolments";
    const ENROLMENT: &str = "/open-apis/facehub/v1/device_enrolments/@ID@";
    const ACS_PARAM: Expect = Error(400, 99992402);
    const RULE: &str = "/open-apis/acs/v1/rule_external";
    const BIND: &str = "/open-apis/acs/v1/rule_external/device_bind";
    let setting = |user: &str, key: &str| json_body(json!({"user_setting": {"user_id": user, "face_key": key, "face_key_update_time": "1700000000"}}));
    let ids = || json_body(json!({"user_ids": [ID]}));
    let card = || json_body(json!({"feature": {"card": 1}}));
    let enrol = |sn: &str, user: &str| json_body(json!({"sn": sn, "user_id": user, "kind": "fa"}));
    let checkins = format!("/open-apis/facehub/v1/checkins?user_id=@ID@&day={DAY}");
    let mut rows = vec![
        row("GET attendance/v1/files/:file_id/download", FileId, Method::GET, DOWNLOAD, Body::None, Tenant, ATT_PARAM),
        row("POST attendance/v1/user_settings/modify (A's person, B's face_key)", FileId, Method::POST, MODIFY_ID, setting("a-bob", ID), Tenant, ATT_PARAM),
        row("POST attendance/v1/user_settings/modify (B's user_id, A's face_key)", UserId, Method::POST, MODIFY_ID, setting(ID, a_face_key), Tenant, ATT_USER),
        row("POST attendance/v1/user_settings/modify (B's employee_no, A's face_key)", EmployeeNo, Method::POST, MODIFY_NO, setting(ID, a_face_key), Tenant, ATT_USER),
        row("GET attendance/v1/user_settings/query (employee_id)", UserId, Method::GET, QUERY_ID, ids(), Tenant, OMITTED),
        row("POST attendance/v1/user_settings/query (employee_id)", UserId, Method::POST, QUERY_ID, ids(), Tenant, OMITTED),
        row("GET attendance/v1/user_settings/query (employee_no)", EmployeeNo, Method::GET, QUERY_NO, ids(), Tenant, OMITTED),
        row("GET lingo/v1/files/:file_token/download (tenant token)", LingoToken, Method::GET, LINGO_DL, Body::None, Tenant, LINGO),
        row("GET lingo/v1/files/:file_token/download (user token)", LingoToken, Method::GET, LINGO_DL, Body::None, User, LINGO),
        row("POST facehub/v1/devices/:sn/bind", Sn, Method::POST, "/open-apis/facehub/v1/devices/@ID@/bind", Body::None, Tenant, ATT_PARAM),
        row("POST facehub/v1/devices/:sn/unbind", Sn, Method::POST, "/open-apis/facehub/v1/devices/@ID@/unbind", Body::None, Tenant, ATT_PARAM),
        row("POST facehub/v1/device_enrolments (B's sn, A's user)", Sn, Method::POST, ENROL, enrol(ID, "a-ann"), Tenant, ATT_PARAM),
        row("POST facehub/v1/device_enrolments (A's sn, B's user)", UserId, Method::POST, ENROL, enrol("A-DEV-1", ID), Tenant, ATT_USER),
        row("POST facehub/v1/device_enrolments (B's sn, B's user)", UserId, Method::POST, ENROL, enrol("B-DEV-1", ID), Tenant, ATT_USER),
        row("GET facehub/v1/device_enrolments/:oper_id", OperId, Method::GET, ENROLMENT, Body::None, Tenant, ATT_PARAM),
        row("DELETE facehub/v1/device_enrolments/:oper_id", OperId, Method::DELETE, ENROLMENT, Body::None, Tenant, ATT_PARAM),
        row("GET facehub/v1/checkins?user_id=", UserId, Method::GET, &checkins, Body::None, Tenant, ATT_USER),
        row("GET acs/v1/rule_external?device_id=", DeviceId, Method::GET, "/open-apis/acs/v1/rule_external?device_id=@ID@", Body::None, Tenant, ACS_PARAM),
        row("POST acs/v1/rule_external/device_bind (B's device_id)", DeviceId, Method::POST, BIND, json_body(json!({"device_id": ID, "rule_ids": []})), Tenant, ACS_PARAM),
        row("POST acs/v1/rule_external (B's device_id in devices)", DeviceId, Method::POST, RULE, json_body(json!({"rule": {"name": "x", "devices": [{"id": ID}]}})), Tenant, ACS_PARAM),
        row("POST acs/v1/rule_external?rule_id=", RuleId, Method::POST, "/open-apis/acs/v1/rule_external?rule_id=@ID@", json_body(json!({"rule": {"name": "x"}})), Tenant, ACS_PARAM),
        row("DELETE acs/v1/rule_external?rule_id=", RuleId, Method::DELETE, "/open-apis/acs/v1/rule_external?rule_id=@ID@", Body::None, Tenant, ACS_PARAM),
        row("POST acs/v1/rule_external/device_bind (A's device, B's rule)", RuleId, Method::POST, BIND, json_body(json!({"device_id": facehub::domain::devices::device_id("A-DEV-1"), "rule_ids": [ID]})), Tenant, ACS_PARAM),
        row("POST acs/v1/rule_external (B's visitor in visitors)", UserId, Method::POST, RULE, json_body(json!({"rule": {"name": "x", "visitors": [{"user_id": ID}]}})), Tenant, ACS_PARAM),
        row("DELETE acs/v1/visitors/:visitor_id", UserId, Method::DELETE, "/open-apis/acs/v1/visitors/@ID@", Body::None, Tenant, ACS_PARAM),
    ];
    // ACS: every route in every id type (no user_id_type means open_id).
    for (kind, q) in [(UserId, "?user_id_type=user_id"), (OpenId, "?user_id_type=open_id"), (OpenId, ""), (UnionId, "?user_id_type=union_id")] {
        let and = if q.is_empty() { "?" } else { "&" };
        let user = format!("/open-apis/acs/v1/users/@ID@{q}");
        let face = format!("/open-apis/acs/v1/users/@ID@/face{q}");
        rows.extend([
            row("GET acs/v1/users/:user_id", kind, Method::GET, &user, Body::None, Tenant, ACS),
            row("PATCH acs/v1/users/:user_id", kind, Method::PATCH, &user, card(), Tenant, ACS),
            row("PUT acs/v1/users/:user_id/face", kind, Method::PUT, &face, Body::Face, Tenant, ACS),
            row("GET acs/v1/users/:user_id/face?is_cropped=true", kind, Method::GET, &format!("{face}{and}is_cropped=true"), Body::None, Tenant, ACS),
            row("GET acs/v1/users/:user_id/face?is_cropped=false", kind, Method::GET, &format!("{face}{and}is_cropped=false"), Body::None, Tenant, ACS),
            row("POST acs/v1/rule_external (B's user in users)", kind, Method::POST, &format!("{RULE}{q}"), json_body(json!({"rule": {"name": "x", "users": [{"user_id": ID}]}})), Tenant, ACS),
        ]);
    }
    rows
}

/// What one request got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The body, if it was JSON.
    json: Option<Value>,
    len: usize,
}

impl Answer {
    fn code(&self) -> Option<i64> {
        self.json.as_ref().and_then(|v| v["code"].as_i64())
    }

    /// The message with the id it names blanked out.
    fn msg_shape(&self, id: &str) -> String {
        self.json
            .as_ref()
            .and_then(|v| v["msg"].as_str())
            .unwrap_or("<no msg>")
            .replace(id, "<ID>")
    }

    fn describe(&self) -> String {
        match &self.json {
            Some(v) => format!("{} {v}", self.status),
            None => format!("{} <{} non-JSON bytes>", self.status, self.len),
        }
    }
}

struct Tokens {
    tenant: String,
    user: String,
}

/// The astronaut as a JPEG: a detectable face in a few dozen KB, so a
/// refused upload is mostly in the socket buffers when the answer comes.
fn small_face(png: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory(png).unwrap().to_rgb8();
    encode(&img, image::ImageFormat::Jpeg)
}

async fn send(app: &TestApp, ep: &Endpoint, tokens: &Tokens, id: &str, face: &[u8]) -> Answer {
    let token = match ep.tok {
        Tok::Tenant => &tokens.tenant,
        Tok::User => &tokens.user,
    };
    // The server answers a face upload for an unknown user before reading
    // the photo, and then closes the connection without saying so (no
    // `Connection: close`): a pooled connection would be reused dead, and
    // a client still writing may see a reset instead of the answer. Face
    // uploads go on a connection of their own and are retried on a
    // transport error (the same for every id; the answer is what counts).
    let client = match ep.body {
        Body::Face => reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap(),
        _ => app.client.clone(),
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        let mut req = client
            .request(ep.method.clone(), app.url(&ep.path.replace(ID, id)))
            .bearer_auth(token);
        match &ep.body {
            Body::None => {}
            Body::Json(t) => {
                req = req
                    .header("content-type", "application/json")
                    .body(t.replace(ID, id));
            }
            Body::Face => {
                let (ct, body) = face_form(face, face_file_type(face));
                req = req.header("content-type", ct).body(body);
            }
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) if matches!(ep.body, Body::Face) && attempts < 5 => {
                println!("retrying {} after a transport error: {e:?}", ep.name);
                continue;
            }
            Err(e) => panic!("{} naming {id}: {e:?}", ep.name),
        };
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        return Answer {
            status,
            json: serde_json::from_slice(&bytes).ok(),
            len: bytes.len(),
        };
    }
}

/// Checks one answer against the expectation.
fn judge(expect: Expect, a: &Answer) -> Result<(), String> {
    let v = a.json.as_ref().ok_or("the answer is not JSON")?;
    match expect {
        Expect::Error(status, code) => {
            if (a.status, a.code()) != (status, Some(code)) {
                return Err(format!("expected {status}/{code}"));
            }
            if v["data"] != json!({}) {
                return Err("an error must carry data {}".into());
            }
            if v["msg"].as_str().is_none_or(str::is_empty) {
                return Err("an error must carry a msg".into());
            }
        }
        Expect::Omitted(pointer) => {
            if (a.status, a.code()) != (200, Some(0)) {
                return Err("expected 200/0".into());
            }
            if v.pointer(pointer) != Some(&json!([])) {
                return Err(format!("expected {pointer} to be []"));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------- device protocol rows

struct DeviceCase {
    name: &'static str,
    kind: Kind,
    cmd: &'static str,
    /// Request body, JSON text with [`ID`] / [`TYPE`] placeholders.
    body: String,
    errcode: i64,
    /// The exact reply body, with the same placeholders.
    reply: String,
}

fn dev(
    name: &'static str,
    kind: Kind,
    cmd: &'static str,
    body: Value,
    errcode: i64,
    reply: Value,
) -> DeviceCase {
    // Placeholders for numbers are written as strings, then unquoted.
    let text = |v: Value| v.to_string().replace("\"@TYPE@\"", TYPE);
    DeviceCase {
        name,
        kind,
        cmd,
        body: text(body),
        errcode,
        reply: text(reply),
    }
}

/// Commands of A's logged-in terminal that name a user or an enrolment:
/// one row each, tried with each of B's ids of the row's kind.
#[rustfmt::skip]
fn device_cases() -> Vec<DeviceCase> {
    use Kind::*;
    let who = json!({"userid": ID, "user_type": TYPE});
    let who0 = json!({"userid": ID, "user_type": 0});
    let punch = json!({"userid": ID, "user_type": TYPE, "timestamp": DAY_START + 60});
    let forged = json!({"userid": ID, "user_type": TYPE, "fa_list": [{"id": 0, "data": b64("forged")}], "fa_algorithm": "X"});
    let answer = json!({"oper_id": ID, "errcode": 101, "errmsg": "camera is using", "userinfo": []});
    vec![
        dev("get_userinfo_by_ids (user_item)", DeviceUser, "get_userinfo_by_ids", json!({"user_item": [who]}), 0, json!({"userinfo": []})),
        dev("get_userinfo_by_ids (userids, old form)", DeviceUser, "get_userinfo_by_ids", json!({"userids": [ID]}), 0, json!({"userinfo": []})),
        dev("check_userid (userid_item)", DeviceUser, "check_userid", json!({"userid_item": [who]}), 0, json!({"legal_userid_item": [], "illegal_userid_item": [who]})),
        dev("check_userid (userid, old form)", DeviceUser, "check_userid", json!({"userid": [ID]}), 0, json!({"legal_userid_item": [], "illegal_userid_item": [who0], "legal_userid": [], "illegal_userid": [ID]})),
        dev("checkin", DeviceUser, "checkin", json!({"checkin_data": [punch]}), 0, json!({"fail_list": [punch]})),
        dev("upload_userinfo", DeviceUser, "upload_userinfo", json!({"userinfo": [forged]}), 0, json!({"fail_list": [who]})),
        dev("download_photo (media 0)", OperId, "download_photo", json!({"media_id": format!("{ID}_0")}), 40007, json!({})),
        dev("download_photo (media 1)", OperId, "download_photo", json!({"media_id": format!("{ID}_1")}), 40007, json!({})),
        dev("upload_userinfo answering the enrolment", OperId, "upload_userinfo", answer, 0, json!({"fail_list": []})),
    ]
}

/// A device reply reduced to what must not depend on the id.
fn device_shape(reply: &Reply, id: &str) -> Result<(i64, String, Value), String> {
    let Reply::Json(v) = reply else {
        return Err("a binary reply: the photo was sent".into());
    };
    let errcode = v["errcode"].as_i64().ok_or("no errcode")?;
    let errmsg = v["errmsg"].as_str().unwrap_or_default().replace(id, "<ID>");
    let body: Value = serde_json::from_str(&v["body"].to_string().replace(id, "<ID>")).unwrap();
    Ok((errcode, errmsg, body))
}

// ----------------------------------------------------------------- setup

async fn person(core: &Core, t: &Tenant, uid: &str, no: Option<&str>, ty: UserType) -> Person {
    let mut d = PersonDraft::new(uid, &format!("Name of {uid}"), no).unwrap();
    d.user_type = Some(ty);
    core.upsert_person(t, &d).await.unwrap().0
}

async fn open_id(core: &Core, p: &Person, app_id: &str) -> String {
    core.store_for_tests()
        .db
        .open_ids_of(p.id)
        .await
        .unwrap()
        .into_iter()
        .find(|(a, _)| a == app_id)
        .unwrap()
        .1
}

/// Adds and binds `sn` to `t`, connects it and logs it in.
async fn online(app: &TestApp, t: &Tenant, sn: &str) -> Arc<Device> {
    app.core.add_device(t, sn, SECRET_NO).await.unwrap();
    app.core.bind_device(t.id, sn).await.unwrap();
    let d = Device::connect(&format!("ws://{}/", app.addr), sn, (&["X"], &[]), None)
        .await
        .unwrap();
    d.bring_up(SECRET_NO, app.core.now()).await.unwrap();
    d
}

async fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

/// A request that must succeed with a JSON envelope: its `data`.
async fn ok(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let r = request(app, method.clone(), path, token, body).await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (status.as_u16(), v["code"].as_i64()),
        (200, Some(0)),
        "{method} {path}: {v}"
    );
    v["data"].clone()
}

/// `user_settings/query` by employee id, which must succeed: its data.
async fn settings_by_id(app: &TestApp, token: &str, user_ids: Value) -> Value {
    let path = "/open-apis/attendance/v1/user_settings/query?employee_type=employee_id";
    ok(app, Method::POST, path, token, Some(user_ids)).await
}

/// The string `field` of each item of the array `items`.
fn strings<'a>(items: &'a Value, field: &str) -> Vec<&'a str> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].as_str().unwrap())
        .collect()
}

/// A GET that must succeed: its `data`.
async fn get_ok(app: &TestApp, path: &str, token: &str) -> Value {
    ok(app, Method::GET, path, token, None).await
}

/// A download that must succeed: its bytes.
async fn bytes(app: &TestApp, path: &str, token: &str) -> Vec<u8> {
    let r = request(app, Method::GET, path, token, None).await;
    assert_eq!(r.status(), 200, "GET {path}");
    r.bytes().await.unwrap().to_vec()
}

async fn lingo_upload(app: &TestApp, token: &str, name: &str, image: &[u8]) -> String {
    let form = RawMultipart::new()
        .part("form-data; name=\"name\"", &[], name.as_bytes())
        .part("form-data; name=\"file\"", &[], image)
        .finish();
    let path = "/open-apis/lingo/v1/files/upload";
    let r = app.send_form(Method::POST, path, token, form).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 0, "{v}");
    v["data"]["file_token"].as_str().unwrap().to_string()
}

/// `user_settings/modify`: binds the attendance photo `key` to `user`.
async fn bind_photo(app: &TestApp, token: &str, user: &str, key: &str) {
    let body = json!({"user_setting": {"user_id": user, "face_key": key,
                                       "face_key_update_time": "1625681917"}});
    let path = "/open-apis/attendance/v1/user_settings/modify?employee_type=employee_id";
    ok(app, Method::POST, path, token, Some(body)).await;
}

/// Everything B can read of its own data; compared before and after.
#[derive(Debug, PartialEq)]
struct BView {
    photo: Vec<u8>,
    lingo: Vec<u8>,
    face: Vec<u8>,
    crop: Vec<u8>,
    acs_users: Value,
    settings: Value,
    settings_by_no: Value,
    /// (sn, bound, online) of each device, and perm_version.
    devices: (Vec<(String, bool, bool)>, i64),
    enrolments: Vec<Value>,
    checkins: Vec<Value>,
    /// What B's own terminal pulls for B's people.
    templates: Value,
}

struct B {
    tok: String,
    photo: String,
    lingo: String,
    oper_ids: Vec<String>,
    device: Arc<Device>,
}

async fn b_view(app: &TestApp, b: &B) -> BView {
    let t = &b.tok;
    let photo = bytes(
        app,
        &format!("/open-apis/attendance/v1/files/{}/download", b.photo),
        t,
    )
    .await;
    let lingo = bytes(
        app,
        &format!("/open-apis/lingo/v1/files/{}/download", b.lingo),
        t,
    )
    .await;
    let face = bytes(
        app,
        "/open-apis/acs/v1/users/b-cat/face?user_id_type=user_id&is_cropped=false",
        t,
    )
    .await;
    let crop = bytes(
        app,
        "/open-apis/acs/v1/users/b-cat/face?user_id_type=user_id&is_cropped=true",
        t,
    )
    .await;
    let acs_users = get_ok(
        app,
        "/open-apis/acs/v1/users?user_id_type=user_id&page_size=100",
        t,
    )
    .await;
    let all = json!({"user_ids": ["b-cat", "b-dan", "b-eve", "shared"]});
    let settings = settings_by_id(app, t, all).await;
    let nos = json!({"user_ids": ["EB1", "EB3", "EB9"]});
    let settings_by_no = ok(
        app,
        Method::POST,
        "/open-apis/attendance/v1/user_settings/query?employee_type=employee_no",
        t,
        Some(nos),
    )
    .await;
    let d = get_ok(app, "/open-apis/facehub/v1/devices", t).await;
    let devices = (
        d["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["sn"].as_str().unwrap().to_string(),
                    i["bound"] == true,
                    i["online"] == true,
                )
            })
            .collect(),
        d["perm_version"].as_i64().unwrap(),
    );
    let mut enrolments = Vec::new();
    for o in &b.oper_ids {
        let v = get_ok(
            app,
            &format!("/open-apis/facehub/v1/device_enrolments/{o}"),
            t,
        )
        .await;
        enrolments.push(v["enrolment"].clone());
    }
    let mut checkins = Vec::new();
    for u in ["b-cat", "shared"] {
        let v = get_ok(
            app,
            &format!("/open-apis/facehub/v1/checkins?user_id={u}&day={DAY}"),
            t,
        )
        .await;
        checkins.push(v["items"].clone());
    }
    let users = json!({"user_item": [
        {"userid": "b-cat", "user_type": 0},
        {"userid": "b-dan", "user_type": 1},
        {"userid": "shared", "user_type": 0},
    ]});
    let templates = b.device.call("get_userinfo_by_ids", users).await.unwrap();
    BView {
        photo,
        lingo,
        face,
        crop,
        acs_users,
        settings,
        settings_by_no,
        devices,
        enrolments,
        checkins,
        templates,
    }
}

// ------------------------------------------------------------------ test

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_a_cannot_reach_tenant_b() {
    // The matrix sends hundreds of requests per endpoint; the frequency
    // limit must not be what answers.
    let app = spawn_with(|c| {
        c.rate_limit_per_second = 1_000_000;
        c.rate_limit_per_minute = 1_000_000;
    })
    .await;
    let core = app.core.clone();
    let ta = app.tenant.clone();
    let tb = core.create_tenant("globex").await.unwrap();
    let a_app = make_app(&core, &ta, ALL_SCOPES).await;
    let b_app = make_app(&core, &tb, ALL_SCOPES).await;
    let a_tok = app.token_for(&a_app.app_id, &a_app.app_secret).await;
    let b_tok = app.token_for(&b_app.app_id, &b_app.app_secret).await;
    let astronaut = skimage_file("astronaut.png");
    let face_jpg = small_face(&astronaut);

    // ---- tenant A: people, a photo bound to a-ann, door access, a terminal.
    person(&core, &ta, "a-ann", Some("EA1"), UserType::Employee).await;
    person(&core, &ta, "a-bob", None, UserType::Employee).await;
    // `shared` is a user_id both tenants have: each must see only its own.
    person(&core, &ta, "shared", Some("EA2"), UserType::Employee).await;
    let a_user_tok = core
        .issue_user_token(&a_app.app_id, "a-ann")
        .await
        .unwrap()
        .token;
    let a_photo = app.upload(&a_tok, "a-face.jpg", &jpeg(300, 300, 3)).await;
    bind_photo(&app, &a_tok, "a-ann", &a_photo).await;
    core.acs_grant(&ta, &["a-ann".into(), "shared".into()])
        .await
        .unwrap();
    // The photo the matrix uploads is a face A itself can enrol, so only
    // the tenant boundary can refuse it.
    app.put_face_ok(&a_tok, "a-ann", &face_jpg).await;
    let a_dev = online(&app, &ta, "A-DEV-1").await;
    let a_faces = json!([{"id": 0, "data": b64("a-ann-face")}]);
    let a_upload = json!({"userid": "a-ann", "fa_list": a_faces, "fa_algorithm": "X"});
    a_dev
        .call("upload_userinfo", json!({"userinfo": [a_upload]}))
        .await
        .unwrap();
    a_dev.catch_up().await.unwrap();
    a_dev
        .drain_pushes(Duration::from_millis(300))
        .await
        .unwrap();
    let a_version = a_dev.call("get_perm_version", json!({})).await.unwrap()["perm_version"]
        .as_i64()
        .unwrap();

    // ---- tenant B: every kind of data, with every kind of id.
    let cat = person(&core, &tb, "b-cat", Some("EB1"), UserType::Employee).await;
    let dan = person(&core, &tb, "b-dan", None, UserType::Visitor).await;
    let eve = person(&core, &tb, "b-eve", Some("EB3"), UserType::Employee).await;
    let b_shared = person(&core, &tb, "shared", Some("EB9"), UserType::Employee).await;
    let b_photo_bytes = jpeg(320, 320, 7);
    let b_photo = app.upload(&b_tok, "b-face.jpg", &b_photo_bytes).await;
    for u in ["b-cat", "shared"] {
        bind_photo(&app, &b_tok, u, &b_photo).await;
    }
    let b_image = samples::at_least(samples::png(400, 400), 3072);
    let b_lingo = lingo_upload(&app, &b_tok, "b.png", &b_image).await;
    core.acs_grant(&tb, &["b-cat".into(), "b-dan".into(), "shared".into()])
        .await
        .unwrap();
    app.put_face_ok(&b_tok, "b-cat", &astronaut).await;
    for (u, card) in [("b-cat", 4242), ("shared", 777)] {
        ok(
            &app,
            Method::PATCH,
            &format!("/open-apis/acs/v1/users/{u}?user_id_type=user_id"),
            &b_tok,
            Some(json!({"feature": {"card": card}})),
        )
        .await;
    }
    let b_acs = core
        .store_for_tests()
        .db
        .acs_user(cat.id)
        .await
        .unwrap()
        .unwrap();
    let (b_face_id, b_crop_id) = (b_acs.face_file_id.unwrap(), b_acs.crop_file_id.unwrap());
    let b_dev = online(&app, &tb, "B-DEV-1").await;
    // B's terminal holds its staff and, through a rule, its visitor.
    let b_rule = {
        let rule = json!({"rule": {"name": "B's door",
            "users": [{"user_id": "b-cat"}, {"user_id": "b-eve"}, {"user_id": "shared"}],
            "visitors": [{"user_id": "b-dan"}],
            "devices": [{"id": facehub::domain::devices::device_id("B-DEV-1")}]}});
        let r = app
            .client
            .post(app.url("/open-apis/acs/v1/rule_external?user_id_type=user_id"))
            .bearer_auth(&b_tok)
            .json(&rule)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], 0, "{v}");
        v["data"]["rule_id"].as_str().unwrap().to_string()
    };
    b_dev
        .call("upload_userinfo", json!({"userinfo": [
            {"userid": "b-cat", "fa_list": [{"id": 0, "data": b64("b-cat-face")}], "fa_algorithm": "X",
             "fp": [{"id": 3, "data": b64("b-cat-finger")}]},
            {"userid": "b-dan", "user_type": 1, "fa_list": [{"id": 2, "data": b64("b-dan-face")}], "fa_algorithm": "X"},
            {"userid": "shared", "fa_list": [{"id": 0, "data": b64("b-shared-face")}], "fa_algorithm": "X"},
        ]}))
        .await
        .unwrap();
    let punched = b_dev
        .call("checkin", json!({"checkin_data": [
            {"userid": "b-cat", "user_type": 0, "timestamp": DAY_START + 3600, "pass_type": 1, "pass_method": 1},
            {"userid": "shared", "user_type": 0, "timestamp": DAY_START + 7200},
        ]}))
        .await
        .unwrap();
    assert_eq!(punched["fail_list"], json!([]));
    // A second terminal of B, added but never bound.
    core.add_device(&tb, "B-DEV-2", SECRET_NO).await.unwrap();
    // Two open enrolments on B's terminal: a photo push and a capture page.
    let mut oper_ids = Vec::new();
    for (user, kind, push) in [
        ("b-cat", "photo", "push_user_face"),
        ("b-dan", "fa", "push_enter_page"),
    ] {
        let v = ok(
            &app,
            Method::POST,
            "/open-apis/facehub/v1/device_enrolments",
            &b_tok,
            Some(json!({"sn": "B-DEV-1", "user_id": user, "kind": kind})),
        )
        .await;
        oper_ids.push(v["enrolment"]["oper_id"].as_str().unwrap().to_string());
        b_dev
            .push_of(push, WAIT)
            .await
            .unwrap_or_else(|| panic!("{push}"));
    }
    let b = B {
        tok: b_tok.clone(),
        photo: b_photo.clone(),
        lingo: b_lingo.clone(),
        oper_ids: oper_ids.clone(),
        device: b_dev.clone(),
    };
    let before = b_view(&app, &b).await;
    // Sanity: B really has what the matrix aims at.
    assert_eq!(before.photo, b_photo_bytes);
    assert_eq!(before.lingo, b_image);
    assert_eq!(before.face, astronaut);
    assert!(!before.crop.is_empty());
    assert_eq!(
        before
            .enrolments
            .iter()
            .map(|e| e["status"].clone())
            .collect::<Vec<_>>(),
        [json!("sent"), json!("sent")]
    );
    assert_eq!(before.checkins[0].as_array().unwrap().len(), 1);
    assert_eq!(
        before.templates["userinfo"].as_array().unwrap().len(),
        3,
        "{}",
        before.templates
    );
    assert_eq!(
        before.devices.0,
        [
            ("B-DEV-1".to_string(), true, true),
            ("B-DEV-2".to_string(), false, false)
        ]
    );

    // B's ids, of every kind.
    #[rustfmt::skip]
    let mut b_ids = vec![
        bid(Kind::FileId, "B's attendance photo", &b_photo),
        bid(Kind::FileId, "B's ACS face (original)", &b_face_id),
        bid(Kind::FileId, "B's ACS face (crop)", &b_crop_id),
        bid(Kind::FileId, "B's wiki image id", b_lingo.strip_prefix("box").unwrap()),
        bid(Kind::LingoToken, "B's wiki image", &b_lingo),
        bid(Kind::LingoToken, "box + B's attendance photo", &format!("box{b_photo}")),
        bid(Kind::LingoToken, "box + B's ACS face", &format!("box{b_face_id}")),
        bid(Kind::UserId, "b-cat (photo, door access, face, templates)", "b-cat"),
        bid(Kind::UserId, "b-dan (visitor, door access)", "b-dan"),
        bid(Kind::UserId, "b-eve (no data)", "b-eve"),
        bid(Kind::EmployeeNo, "b-cat's employee_no", "EB1"),
        bid(Kind::EmployeeNo, "b-eve's employee_no", "EB3"),
        bid(Kind::EmployeeNo, "B's shared's employee_no", "EB9"),
        bid(Kind::Sn, "B's bound terminal", "B-DEV-1"),
        bid(Kind::Sn, "B's unbound terminal", "B-DEV-2"),
        bid(Kind::OperId, "B's photo enrolment", &oper_ids[0]),
        bid(Kind::OperId, "B's capture enrolment", &oper_ids[1]),
        bid(Kind::DeviceId, "B's bound terminal's device_id", &facehub::domain::devices::device_id("B-DEV-1")),
        bid(Kind::DeviceId, "B's unbound terminal's device_id", &facehub::domain::devices::device_id("B-DEV-2")),
        bid(Kind::RuleId, "B's access rule", &b_rule),
    ];
    for (p, name) in [
        (&cat, "b-cat"),
        (&dan, "b-dan"),
        (&eve, "b-eve"),
        (&b_shared, "B's shared"),
    ] {
        b_ids.push(bid(
            Kind::OpenId,
            &format!("{name}'s open_id (B's app)"),
            &open_id(&core, p, &b_app.app_id).await,
        ));
        b_ids.push(bid(
            Kind::UnionId,
            &format!("{name}'s union_id"),
            &p.union_id,
        ));
    }
    for (u, t) in [("b-cat", 0), ("b-dan", 1), ("b-eve", 0)] {
        b_ids.push(BId {
            user_type: t,
            ..bid(Kind::DeviceUser, u, u)
        });
    }

    // ---- the HTTP matrix
    let tokens = Tokens {
        tenant: a_tok.clone(),
        user: a_user_tok.clone(),
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for ep in endpoints(&a_photo) {
        for b_id in b_ids.iter().filter(|i| i.kind == ep.kind) {
            let fresh = ep.kind.fresh();
            let theirs = send(&app, &ep, &tokens, &b_id.id, &face_jpg).await;
            let none = send(&app, &ep, &tokens, &fresh, &face_jpg).await;
            let label = format!("{} naming {} ({})", ep.name, b_id.what, b_id.id);
            let mut why = Vec::new();
            if let Err(e) = judge(ep.expect, &theirs) {
                why.push(format!("B's id: {e}; got {}", theirs.describe()));
            }
            if let Err(e) = judge(ep.expect, &none) {
                why.push(format!("fresh id {fresh}: {e}; got {}", none.describe()));
            }
            if (theirs.status, theirs.code()) != (none.status, none.code())
                || theirs.msg_shape(&b_id.id) != none.msg_shape(&fresh)
            {
                why.push(format!(
                    "B's id and a fresh id get different answers: {} vs {}",
                    theirs.describe(),
                    none.describe()
                ));
            }
            if theirs.status >= 500 || none.status >= 500 {
                why.push("a 5xx".into());
            }
            if !why.is_empty() {
                failures.push(format!("{label}: {}", why.join("; ")));
            }
            *counts.entry(ep.name).or_default() += 1;
        }
    }

    // ---- listings: B's items never appear among A's.
    let b_open: BTreeSet<String> = b_ids
        .iter()
        .filter(|i| i.kind == Kind::OpenId)
        .map(|i| i.id.clone())
        .collect();
    let b_union: BTreeSet<String> = b_ids
        .iter()
        .filter(|i| i.kind == Kind::UnionId)
        .map(|i| i.id.clone())
        .collect();
    let a_people = ["a-ann", "shared"];
    for (q, b_set, expect_len) in [
        (
            "user_id",
            BTreeSet::from(["b-cat".to_string(), "b-dan".into(), "b-eve".into()]),
            a_people.len(),
        ),
        ("open_id", b_open.clone(), a_people.len()),
        ("union_id", b_union.clone(), a_people.len()),
    ] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/open-apis/acs/v1/users?user_id_type={q}&page_size=1");
            if let Some(t) = &token {
                path.push_str(&format!("&page_token={t}"));
            }
            let v = get_ok(&app, &path, &a_tok).await;
            seen.extend(
                v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["user_id"].as_str().unwrap().to_string()),
            );
            match v["page_token"].as_str() {
                Some(t) if v["has_more"] == true => token = Some(t.to_string()),
                _ => break,
            }
        }
        if seen.len() != expect_len || seen.iter().any(|s| b_set.contains(s)) {
            failures.push(format!(
                "GET acs/v1/users?user_id_type={q}: A lists {seen:?}, B's ids are {b_set:?}"
            ));
        }
        if q == "user_id" && seen != a_people {
            failures.push(format!(
                "GET acs/v1/users?user_id_type=user_id: A lists {seen:?}"
            ));
        }
        *counts.entry("GET acs/v1/users (list)").or_default() += 1;
    }
    // A page_token forged to start just before one of B's people (tokens
    // are `acs` + the last person id, hex) still lists only A's.
    for p in [&cat, &dan, &b_shared] {
        let forged = format!("acs{:x}", p.id - 1);
        let fresh = format!("acs{:x}", p.id + 1_000_000);
        let mut pages = Vec::new();
        for t in [&forged, &fresh] {
            let path = format!("/open-apis/acs/v1/users?user_id_type=user_id&page_token={t}");
            pages.push(get_ok(&app, &path, &a_tok).await);
        }
        if pages[0] != pages[1] || pages[0].to_string().contains("b-") {
            failures.push(format!(
                "GET acs/v1/users?page_token={forged} (just before {}): {} (a token past the end: {})",
                p.user_id, pages[0], pages[1]
            ));
        }
        *counts
            .entry("GET acs/v1/users (list, forged page_token)")
            .or_default() += 1;
    }
    let v = get_ok(&app, "/open-apis/facehub/v1/devices", &a_tok).await;
    let sns = strings(&v["items"], "sn");
    if sns != ["A-DEV-1"] || v["perm_version"] != a_version {
        failures.push(format!("GET facehub/v1/devices: A sees {v}"));
    }
    *counts.entry("GET facehub/v1/devices (list)").or_default() += 1;
    // A query mixing A's and B's ids answers A's only.
    let v = settings_by_id(
        &app,
        &a_tok,
        json!({"user_ids": ["a-ann", "b-cat", "b-dan"]}),
    )
    .await;
    let listed = strings(&v["user_settings"], "user_id");
    if listed != ["a-ann"] || v["user_settings"][0]["face_key"] != a_photo.as_str() {
        failures.push(format!("user_settings/query mixing A's and B's ids: {v}"));
    }
    *counts
        .entry("POST attendance/v1/user_settings/query (mixed)")
        .or_default() += 1;

    // An operator cannot issue A's app a user token acting for B's people.
    for u in ["b-cat", "b-dan", "b-eve"] {
        if core.issue_user_token(&a_app.app_id, u).await.is_ok() {
            failures.push(format!("issue_user_token(A's app, {u}) succeeded"));
        }
    }
    *counts
        .entry("user token for B's person via A's app (core)")
        .or_default() += 3;

    // ---- the shared user_id resolves to A's own person everywhere.
    let v = get_ok(
        &app,
        "/open-apis/acs/v1/users/shared?user_id_type=user_id",
        &a_tok,
    )
    .await;
    if v["user"] != json!({"user_id": "shared", "feature": {"face_uploaded": false}}) {
        failures.push(format!(
            "GET acs/v1/users/shared: A sees {v} (B's shared has card 777)"
        ));
    }
    let v = settings_by_id(&app, &a_tok, json!({"user_ids": ["shared"]})).await;
    if v["user_settings"] != json!([{"user_id": "shared", "face_key_open": false}]) {
        failures.push(format!(
            "user_settings/query shared: A sees {v} (B's shared has B's photo)"
        ));
    }
    let v = get_ok(
        &app,
        &format!("/open-apis/facehub/v1/checkins?user_id=shared&day={DAY}"),
        &a_tok,
    )
    .await;
    if v["items"] != json!([]) {
        failures.push(format!(
            "checkins of shared: A sees {v} (B's shared punched on B-DEV-1)"
        ));
    }
    let v = userinfo(&a_dev, "shared", 0).await;
    if v["userinfo"].to_string().contains(&b64("b-shared-face"))
        || v["userinfo"].as_array().map(Vec::len) != Some(1)
    {
        failures.push(format!("get_userinfo_by_ids shared on A's terminal: {v}"));
    }
    *counts
        .entry("shared user_id resolves to A's person")
        .or_default() += 4;

    // ---- the device protocol, from A's logged-in terminal.
    let mut dev_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for case in device_cases() {
        for b_id in b_ids.iter().filter(|i| i.kind == case.kind) {
            let fresh = case.kind.fresh();
            let fill = |text: &str, id: &str| -> Value {
                serde_json::from_str(
                    &text
                        .replace(ID, id)
                        .replace(TYPE, &b_id.user_type.to_string()),
                )
                .unwrap()
            };
            let theirs = a_dev
                .request_reply(case.cmd, fill(&case.body, &b_id.id))
                .await
                .unwrap();
            let none = a_dev
                .request_reply(case.cmd, fill(&case.body, &fresh))
                .await
                .unwrap();
            let label = format!("{} naming {} ({})", case.name, b_id.what, b_id.id);
            let mut why = Vec::new();
            for (reply, id) in [(&theirs, &b_id.id), (&none, &fresh)] {
                match device_shape(reply, id) {
                    Ok((errcode, _, body)) => {
                        let want = fill(&case.reply, "<ID>");
                        if errcode != case.errcode || body != want {
                            why.push(format!(
                                "id {id}: expected {} {want}, got {reply:?}",
                                case.errcode
                            ));
                        }
                    }
                    Err(e) => why.push(format!("id {id}: {e}")),
                }
            }
            if let (Ok(t), Ok(n)) = (device_shape(&theirs, &b_id.id), device_shape(&none, &fresh))
                && t != n
            {
                why.push(format!(
                    "B's id and a fresh id get different answers: {theirs:?} vs {none:?}"
                ));
            }
            if !why.is_empty() {
                failures.push(format!("device {label}: {}", why.join("; ")));
            }
            *dev_counts.entry(case.name).or_default() += 1;
        }
    }
    // get_userinfo_by_page never lists B's people (a page of one, to walk
    // every page boundary).
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let v = a_dev
            .call(
                "get_userinfo_by_page",
                json!({"offset": offset, "limit": 1}),
            )
            .await
            .unwrap();
        let items = v["userinfo"].as_array().unwrap();
        paged.extend(
            items
                .iter()
                .map(|u| u["userid"].as_str().unwrap().to_string()),
        );
        offset += items.len();
        if v["is_last"] == true || items.is_empty() {
            if v["perm_version"] != a_version {
                failures.push(format!(
                    "get_userinfo_by_page: perm_version {} is not A's {a_version}",
                    v["perm_version"]
                ));
            }
            break;
        }
    }
    paged.sort();
    if paged != ["a-ann", "a-bob", "shared"] {
        failures.push(format!(
            "get_userinfo_by_page on A's terminal lists {paged:?}"
        ));
    }
    *dev_counts.entry("get_userinfo_by_page (walk)").or_default() += 1;
    // B's changes were never pushed to A's terminal, and A's version did
    // not move (the sync pass runs every second).
    let mut pushes = Vec::new();
    while let Some(p) = a_dev.next_push(Duration::from_millis(1500)).await {
        pushes.push(p);
    }
    let now = a_dev.call("get_perm_version", json!({})).await.unwrap()["perm_version"]
        .as_i64()
        .unwrap();
    if now != a_version
        || pushes
            .iter()
            .any(|p| p.to_string().contains("b-") || p["cmd"] == "push_change_contact")
    {
        failures.push(format!(
            "A's terminal: perm_version {a_version} -> {now}, pushes {pushes:?}"
        ));
    }
    *dev_counts.entry("no push of B's changes").or_default() += 1;

    // ---- report
    let http_total: usize = counts.values().sum();
    let dev_total: usize = dev_counts.values().sum();
    println!(
        "HTTP cases (each also sent with a fresh id of the same shape; one row is a core call):"
    );
    for (name, n) in &counts {
        println!("  {n:4}  {name}");
    }
    println!("device protocol cases:");
    for (name, n) in &dev_counts {
        println!("  {n:4}  {name}");
    }
    println!(
        "isolation: {} cases checked ({http_total} HTTP, {dev_total} device protocol)",
        http_total + dev_total
    );

    // ---- B's data is untouched, and B's terminal still works.
    let after = b_view(&app, &b).await;
    if after != before {
        failures.push(format!(
            "B's data changed:\nbefore {:?}\nafter  {:?}",
            summary(&before),
            summary(&after)
        ));
    }
    b_dev.call("ping", json!({})).await.unwrap();
    let got = b_dev
        .download_photo(&format!("{}_0", oper_ids[0]))
        .await
        .unwrap();
    assert_eq!(
        got, b_photo_bytes,
        "B's terminal still downloads its enrolment photo"
    );
    // A's own data is what A wrote (the matrix wrote nothing for A either).
    let v = settings_by_id(&app, &a_tok, json!({"user_ids": ["a-bob"]})).await;
    if v["user_settings"] != json!([{"user_id": "a-bob", "face_key_open": false}]) {
        failures.push(format!("a-bob got a face setting from the matrix: {v}"));
    }

    assert!(
        failures.is_empty(),
        "{} isolation failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// B's view without the image bytes, for a readable diff.
fn summary(v: &BView) -> Value {
    json!({
        "photo_len": v.photo.len(), "lingo_len": v.lingo.len(), "face_len": v.face.len(), "crop_len": v.crop.len(),
        "acs_users": v.acs_users, "settings": v.settings, "settings_by_no": v.settings_by_no,
        "devices": format!("{:?}", v.devices), "enrolments": v.enrolments, "checkins": v.checkins,
        "templates": v.templates,
    })
}
