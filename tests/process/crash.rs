//! Crash consistency: `facehub serve` is killed with SIGKILL at random
//! moments while uploads of every kind run concurrently (attendance photos,
//! Lingo images, door-access faces, device templates), and restarted, many
//! times in a row. After every restart:
//!
//! - every acknowledged upload reads back byte-identical;
//! - an upload that was not acknowledged is either absent or whole (it may
//!   have committed just before the kill), never anything else, and no
//!   more files exist than were acknowledged plus attempted;
//! - a terminal's punches (checkin frames, half of them with a capture
//!   photo, unanswered ones sent again as terminals do) are each stored
//!   once: every acknowledged one is a user flow, none is there twice,
//!   none is there that was not sent, and their photos read back;
//! - the start-up sweep has left no temporary file and no orphan blob, and
//!   `facehub check` finds every blob sound against its digest.
//!
//! `CRASH_HARNESS_KILLS` sets the number of kills (30 by default: each
//! round carries some 700 uploads, and every restart's `check` reads all
//! that came before, so the cost grows with the square of the rounds). The
//! same harness runs with the blobs on a three-node Garage cluster
//! (`CRASH_HARNESS_KILLS_S3`, 12 by default): an object PUT whose row never
//! committed is then the leftover the sweep must remove.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::admin::person_add;
use crate::common::process::{Server, device_add, facehub, run_ok, tenant_with_app};
use crate::common::tenant_token;
use crate::garage::Garage;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub_devsim::Device;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

fn start(data: &std::path::Path) -> Server {
    Server::start(data)
}

const SECRET_NO: &str = "crash-factory-secret";
const SN: &str = "CRASH-1";
/// People per kind of upload that replaces (faces, templates).
const PEOPLE: usize = 4;

/// What the clients know: acknowledged uploads, and for each replaced
/// value the candidates sent without an answer since the last one known.
#[derive(Default)]
struct Model {
    attendance: Vec<(String, Vec<u8>)>,
    lingo: Vec<(String, Vec<u8>)>,
    /// Unanswered attendance / lingo uploads: each may have committed.
    attendance_unanswered: u64,
    lingo_unanswered: u64,
    faces: HashMap<String, Vec<u8>>,
    face_pending: HashMap<String, Vec<Vec<u8>>>,
    templates: HashMap<String, String>,
    template_pending: HashMap<String, Vec<String>>,
    /// Punches (user, time) the terminal had acknowledged, and those sent
    /// without an answer: each may be stored, and goes again.
    punches: HashSet<(String, i64)>,
    punch_pending: Vec<(String, i64)>,
    /// The capture photo a punch carries, if it has one.
    captures: HashMap<(String, i64), Vec<u8>>,
    /// The first punch's time, and the next new punch's.
    punch_from: i64,
    next_punch: i64,
    acknowledged: u64,
}

/// Punch times start here (within the 30 days one user_flows query spans).
fn punch_base() -> i64 {
    chrono::Utc::now().timestamp() - 20 * 86_400
}

type Shared = Arc<Mutex<Model>>;

/// Takes back [`sent`]: `value` was refused unrun, so it cannot have been
/// stored (a user with nothing pending has no entry).
fn unsent<T: PartialEq>(pending: &mut HashMap<String, Vec<T>>, user: &str, value: &T) {
    if let Some(p) = pending.get_mut(user) {
        p.retain(|x| x != value);
        if p.is_empty() {
            pending.remove(user);
        }
    }
}

/// Notes `value` as sent for `user` and not answered yet.
fn sent<T: Clone>(pending: &mut HashMap<String, Vec<T>>, user: &str, value: &T) {
    pending
        .entry(user.to_string())
        .or_default()
        .push(value.clone());
}

/// A PNG of `side`², unique per seed: `noisy` rows of noise (which keep
/// it from compressing: 200 rows at side 200 span two sealed chunks),
/// the rest flat.
fn noise_png(side: u32, noisy: u32, seed: u64) -> Vec<u8> {
    crate::common::noise_png(side, noisy, seed, [90, 120, 150])
}

/// The astronaut (a face the detector finds) with a corner of noise, so
/// every enrolment is a different file.
fn face_png(base: &image::RgbImage, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut img = base.clone();
    for y in 0..8 {
        for x in 0..8 {
            img.put_pixel(x, y, image::Rgb([rng.r#gen(), rng.r#gen(), rng.r#gen()]));
        }
    }
    crate::common::encode(&img, image::ImageFormat::Png)
}

fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "crashboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, data) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send(
    req: reqwest::RequestBuilder,
    token: &str,
    (ct, body): (String, Vec<u8>),
) -> Option<Value> {
    let r = req
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .ok()?;
    r.json::<Value>().await.ok()
}

/// What every worker under load shares: where to send, as whom, what the
/// model records, and when to stop.
#[derive(Clone)]
struct Traffic {
    base: String,
    token: String,
    model: Shared,
    stop: Stop,
}

impl Traffic {
    fn new(base: &str, token: &str, model: &Shared) -> Self {
        Traffic {
            base: base.to_string(),
            token: token.to_string(),
            model: model.clone(),
            stop: Stop::default(),
        }
    }
}

/// The two kinds of file upload under load.
#[derive(Clone, Copy)]
enum Files {
    Attendance,
    Lingo,
}

/// One kind of traffic until `stop`; each worker owns its people, so one
/// request per person is in flight at a time.
async fn upload_worker(files: Files, t: Traffic, seed: u64) {
    let client = reqwest::Client::new();
    let mut n = 0u64;
    while !t.stop.is_set() {
        n += 1;
        let (photo, path, names_file) = match files {
            Files::Attendance => {
                let side = if n.is_multiple_of(2) { 96 } else { 200 };
                let photo = noise_png(side, side, seed + n);
                (
                    photo,
                    "attendance/v1/files/upload?file_name=f.png",
                    "/data/file/file_id",
                )
            }
            Files::Lingo => {
                let photo = noise_png(320, 16, seed + n);
                (photo, "lingo/v1/files/upload", "/data/file_token")
            }
        };
        let body = match files {
            Files::Attendance => multipart(&[("file", &photo)]),
            Files::Lingo => multipart(&[("name", b"img.png"), ("file", &photo)]),
        };
        let url = format!("{}/open-apis/{path}", t.base);
        let reply = send(client.post(url), &t.token, body).await;
        let m = &mut *t.model.lock().unwrap();
        let (acked, unanswered) = match files {
            Files::Attendance => (&mut m.attendance, &mut m.attendance_unanswered),
            Files::Lingo => (&mut m.lingo, &mut m.lingo_unanswered),
        };
        match reply.as_ref().and_then(|v| v.pointer(names_file)?.as_str()) {
            Some(id) => {
                acked.push((id.to_string(), photo));
                m.acknowledged += 1;
            }
            None => {
                *unanswered += 1;
                break;
            }
        }
    }
}

async fn face_worker(t: Traffic, face: Arc<image::RgbImage>, seed: u64) {
    let client = reqwest::Client::new();
    let mut n = 0u64;
    while !t.stop.is_set() {
        n += 1;
        let user = format!("acs{}", (seed + n) as usize % PEOPLE);
        let photo = face_png(&face, seed + n);
        sent(&mut t.model.lock().unwrap().face_pending, &user, &photo);
        let url = format!(
            "{}/open-apis/acs/v1/users/{user}/face?user_id_type=user_id",
            t.base
        );
        let reply = send(
            client.put(url),
            &t.token,
            multipart(&[
                ("files", &photo),
                ("file_type", b"png"),
                ("file_name", b"face.png"),
            ]),
        )
        .await;
        let busy = {
            let mut m = t.model.lock().unwrap();
            match reply.as_ref().map(|v| v["code"].as_i64()) {
                Some(Some(0)) => {
                    m.face_pending.remove(&user);
                    m.faces.insert(user, photo);
                    m.acknowledged += 1;
                    false
                }
                // Refused for load (every decode slot busy past the wait,
                // as on a crowded CI machine): definitively not stored, so
                // no longer an acceptable outcome either. Try again.
                Some(Some(99991400)) => {
                    unsent(&mut m.face_pending, &user, &photo);
                    true
                }
                Some(Some(code)) => panic!("face enrolment refused with {code}: {reply:?}"),
                _ => break,
            }
        };
        if busy {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn template_worker(device: Arc<Device>, model: Shared, seed: u64, stop: Stop) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !stop.is_set() {
        n += 1;
        let user = format!("tpl{}", (seed + n) as usize % PEOPLE);
        // Features behind a fixed header, as a vendor's templates are.
        let mut data = b"\x01FHT".to_vec();
        data.extend((0..508).map(|_| rng.r#gen::<u8>()));
        let data = STANDARD.encode(data);
        sent(&mut model.lock().unwrap().template_pending, &user, &data);
        let item = json!({"userid": user, "user_type": 0, "fa_algorithm": "X",
                          "fa_list": [{"id": 0, "data": data}]});
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            device.request("upload_userinfo", json!({"userinfo": [item]})),
        )
        .await;
        let busy = {
            let mut m = model.lock().unwrap();
            match reply {
                Ok(Ok(b)) if b["errcode"] == 0 => {
                    assert_eq!(b["body"]["fail_list"], json!([]), "template refused: {b}");
                    m.template_pending.remove(&user);
                    m.templates.insert(user, data);
                    m.acknowledged += 1;
                    false
                }
                // Past the terminal's command quota: not run, so not an
                // acceptable outcome either. Try again, as a terminal does.
                Ok(Ok(b)) if b["errcode"] == 45009 => {
                    unsent(&mut m.template_pending, &user, &data);
                    true
                }
                Ok(Ok(b)) => panic!("template upload refused: {b}"),
                _ => break,
            }
        };
        if busy {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Checkin frames of up to five punches of the `tpl` people, unanswered
/// ones first; every second new punch carries a capture photo.
async fn punch_worker(device: Arc<Device>, model: Shared, seed: u64, stop: Stop) {
    let mut n = 0u64;
    while !stop.is_set() {
        let batch: Vec<(String, i64)> = {
            let m = &mut *model.lock().unwrap();
            let mut batch: Vec<_> = m.punch_pending.iter().take(5).cloned().collect();
            while batch.len() < 5 {
                n += 1;
                let punch = (format!("tpl{}", (seed + n) as usize % PEOPLE), m.next_punch);
                m.next_punch += 1;
                if n.is_multiple_of(2) {
                    let photo = noise_png(64, 8, seed + n);
                    m.captures.insert(punch.clone(), photo);
                }
                m.punch_pending.push(punch.clone());
                batch.push(punch);
            }
            batch
        };
        let frame = {
            let m = model.lock().unwrap();
            let items: Vec<Value> = batch
                .iter()
                .map(|p| {
                    let mut item = json!({"userid": p.0, "user_type": 0, "timestamp": p.1,
                                          "pass_type": 1, "pass_method": 1});
                    if let Some(photo) = m.captures.get(p) {
                        item["capture_photo"] = STANDARD.encode(photo).into();
                    }
                    item
                })
                .collect();
            json!({"checkin_data": items})
        };
        let reply =
            tokio::time::timeout(Duration::from_secs(5), device.request("checkin", frame)).await;
        let busy = {
            let m = &mut *model.lock().unwrap();
            match reply {
                Ok(Ok(b)) if b["errcode"] == 0 => {
                    assert_eq!(b["body"], json!({"fail_list": []}), "punches refused: {b}");
                    m.punch_pending.retain(|p| !batch.contains(p));
                    m.punches.extend(batch);
                    m.acknowledged += 1;
                    false
                }
                // Not run: the punches stay pending and go again.
                Ok(Ok(b)) if b["errcode"] == 45009 => true,
                Ok(Ok(b)) => panic!("punches refused: {b}"),
                _ => break,
            }
        };
        // A frame every 100 ms at most: every restart's `check` reads each
        // photo stored so far, so the rounds' cost grows with their count.
        let pause = if busy { 200 } else { 100 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

#[derive(Clone, Default)]
struct Stop(Arc<std::sync::atomic::AtomicBool>);

impl Stop {
    fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed)
    }
}

async fn get_bytes(base: &str, path: &str, token: &str) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// `path` reads back as `bytes`; `what` names them when it does not
/// (lost: not 200; changed: other bytes).
async fn reads_back(base: &str, path: &str, token: &str, bytes: &[u8], what: &str) {
    let (status, got) = get_bytes(base, path, token).await;
    assert_eq!(status, 200, "{what} lost");
    assert!(got == bytes, "{what} changed");
}

/// Judges what a restart shows of `user`'s face or template (`None`: none
/// stored): the last acknowledged, or one sent after it without an answer.
/// What it shows becomes the acknowledged value; returns 1 when it already
/// was.
fn settle<T: PartialEq>(
    acked: &mut HashMap<String, T>,
    pending: &mut HashMap<String, Vec<T>>,
    user: String,
    got: Option<T>,
    what: &str,
) -> u64 {
    let sent = pending.remove(&user).unwrap_or_default();
    let Some(got) = got else {
        assert!(!acked.contains_key(&user), "{what} was lost");
        return 0;
    };
    let was_acked = acked.get(&user) == Some(&got);
    assert!(
        was_acked || sent.contains(&got),
        "{what} is neither acknowledged nor one sent"
    );
    acked.insert(user, got);
    u64::from(was_acked)
}

async fn device_online(base: &str, secret: &mut Option<String>) -> Arc<Device> {
    let ws = format!("{}/", base.replacen("http", "ws", 1));
    let d = Device::connect(&ws, SN, (&["X"], &[]), None).await.unwrap();
    match secret {
        Some(s) => d.subscribe(s).await.unwrap(),
        None => {
            let now = chrono::Utc::now().timestamp();
            *secret = Some(d.bring_up(SECRET_NO, now).await.unwrap());
        }
    }
    d
}

/// The checks after a restart. `sample` limits how many older
/// attendance/lingo uploads are read back (all when `None`).
async fn verify(
    base: &str,
    token: &str,
    device: &Device,
    model: &Shared,
    data: &std::path::Path,
    round: usize,
    sample: Option<usize>,
) -> u64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(round as u64);
    let (attendance, lingo) = {
        let m = model.lock().unwrap();
        let pick = |all: &Vec<(String, Vec<u8>)>, rng: &mut rand::rngs::StdRng| {
            match sample {
                None => all.clone(),
                // The newest (written just before the kill) and a random few.
                Some(k) => {
                    let mut v: Vec<_> = all.iter().rev().take(k).cloned().collect();
                    for _ in 0..k.min(all.len()) {
                        v.push(all[rng.gen_range(0..all.len())].clone());
                    }
                    v
                }
            }
        };
        (pick(&m.attendance, &mut rng), pick(&m.lingo, &mut rng))
    };
    let mut checked = 0u64;
    for (id, bytes) in &attendance {
        let path = format!("/open-apis/attendance/v1/files/{id}/download");
        let what = format!("round {round}: attendance photo {id}");
        reads_back(base, &path, token, bytes, &what).await;
        checked += 1;
    }
    for (t, bytes) in &lingo {
        let path = format!("/open-apis/lingo/v1/files/{t}/download");
        reads_back(
            base,
            &path,
            token,
            bytes,
            &format!("round {round}: lingo image {t}"),
        )
        .await;
        checked += 1;
    }
    // Faces: the last acknowledged, or one sent after it without an answer.
    for u in 0..PEOPLE {
        let user = format!("acs{u}");
        let (status, got) = get_bytes(
            base,
            &format!("/open-apis/acs/v1/users/{user}/face?user_id_type=user_id&is_cropped=false"),
            token,
        )
        .await;
        let m = &mut *model.lock().unwrap();
        let got = (status == 200).then_some(got);
        let what = format!("round {round}: the face of {user}");
        checked += settle(&mut m.faces, &mut m.face_pending, user, got, &what);
    }
    // Templates, the same way, read by the device.
    let items: Vec<Value> = (0..PEOPLE)
        .map(|u| json!({"userid": format!("tpl{u}"), "user_type": 0}))
        .collect();
    let b = device
        .call(
            "get_userinfo_by_ids",
            json!({"user_item": items, "is_req_fp_info": false}),
        )
        .await
        .unwrap();
    for info in b["userinfo"].as_array().unwrap() {
        let user = info["userid"].as_str().unwrap().to_string();
        let got = info["fa_list"][0]["data"].as_str().map(str::to_string);
        let m = &mut *model.lock().unwrap();
        let what = format!("round {round}: the template of {user}");
        checked += settle(&mut m.templates, &mut m.template_pending, user, got, &what);
    }
    let (punches, with_photos) = verify_punches(base, token, model, round, sample).await;
    checked += punches;
    // The sweep left nothing behind, every blob is sound, and no more files
    // exist than were acknowledged or attempted.
    assert_eq!(
        crate::common::tmp_files(data),
        0,
        "round {round}: temporary files survived the restart"
    );
    let out = facehub(data).args(["check", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("check: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        out.status.success(),
        "round {round}: check found problems: {report}"
    );
    let files = |kind: &str| report["files"][kind].as_u64().unwrap_or(0);
    let m = model.lock().unwrap();
    let (att, lin) = (m.attendance.len() as u64, m.lingo.len() as u64);
    assert!(
        (att..=att + m.attendance_unanswered).contains(&files("attendance_photo")),
        "round {round}: {} attendance photos stored, {att} acknowledged, {} unanswered",
        files("attendance_photo"),
        m.attendance_unanswered
    );
    assert!(
        (lin..=lin + m.lingo_unanswered).contains(&files("lingo_image")),
        "round {round}: {} lingo images stored, {lin} acknowledged, {} unanswered",
        files("lingo_image"),
        m.lingo_unanswered
    );
    let faces = m.faces.len() as u64;
    assert_eq!(files("acs_face"), faces, "round {round}: {report}");
    assert_eq!(files("acs_face_crop"), faces, "round {round}: {report}");
    // A photo whose record a kill cut off stays (unreachable) until the
    // hourly pass: at least one per stored punch that carried one.
    assert!(
        files("access_photo") >= with_photos,
        "round {round}: {with_photos} punches with photos, {report}"
    );
    checked
}

/// Each stored punch is there once, every acknowledged one is, none that
/// was not sent is; a pending one that is there counts as acknowledged
/// from now on (the rest go again). Capture photos read back (`sample`
/// limits how many). Returns (checks made, stored punches with a photo).
async fn verify_punches(
    base: &str,
    token: &str,
    model: &Shared,
    round: usize,
    sample: Option<usize>,
) -> (u64, u64) {
    let from = model.lock().unwrap().punch_from;
    let users: Vec<String> = (0..PEOPLE).map(|u| format!("tpl{u}")).collect();
    let v: Value = reqwest::Client::new()
        .post(format!(
            "{base}/open-apis/attendance/v1/user_flows/query?employee_type=employee_id"
        ))
        .bearer_auth(token)
        .json(
            &json!({"user_ids": users, "check_time_from": from.to_string(),
                      "check_time_to": (from + 29 * 86_400).to_string()}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["code"], 0, "round {round}: {v}");
    let mut stored: HashMap<(String, i64), String> = HashMap::new();
    for f in v["data"]["user_flow_results"].as_array().unwrap() {
        let user = f["user_id"].as_str().unwrap().to_string();
        let time: i64 = f["check_time"].as_str().unwrap().parse().unwrap();
        let id = f["record_id"].as_str().unwrap().to_string();
        let twice = stored.insert((user, time), id).is_some();
        assert!(!twice, "round {round}: a punch at {time} is stored twice");
    }
    let mut checked = 0;
    let mut photos: Vec<(i64, String, Vec<u8>)> = {
        let m = &mut *model.lock().unwrap();
        for p in &m.punches {
            assert!(
                stored.contains_key(p),
                "round {round}: acknowledged punch {p:?} lost"
            );
            checked += 1;
        }
        for p in stored.keys() {
            assert!(
                m.punches.contains(p) || m.punch_pending.contains(p),
                "round {round}: punch {p:?} was never sent"
            );
        }
        let landed: Vec<_> = m
            .punch_pending
            .iter()
            .filter(|p| stored.contains_key(*p))
            .cloned()
            .collect();
        m.punch_pending.retain(|p| !stored.contains_key(p));
        m.punches.extend(landed);
        stored
            .iter()
            .filter_map(|(p, id)| m.captures.get(p).map(|b| (p.1, id.clone(), b.clone())))
            .collect()
    };
    let with_photos = photos.len() as u64;
    photos.sort_by_key(|p| p.0);
    if let Some(k) = sample {
        // The newest (sent just before the kill) and a spread of the rest.
        let step = (photos.len() / k.max(1)).max(1);
        let newest = photos.split_off(photos.len().saturating_sub(k));
        photos = photos.into_iter().step_by(step).chain(newest).collect();
    }
    for (_, id, bytes) in &photos {
        let path = format!("/open-apis/acs/v1/access_records/{id}/access_photo");
        let what = format!("round {round}: the capture photo of punch {id}");
        reads_back(base, &path, token, bytes, &what).await;
        checked += 1;
    }
    (checked, with_photos)
}

/// A tenant with an app holding every upload scope, people for faces and
/// templates, and a bound terminal; returns the app's credentials.
fn setup(data: &std::path::Path) -> Value {
    let scopes = [
        "attendance:rule",
        "attendance:rule:readonly",
        "baike:entity",
        "acs:users",
        "attendance:task:readonly",
        "acs:access_record:readonly",
    ];
    let creds = tenant_with_app(|| facehub(data), &scopes);
    for u in 0..PEOPLE {
        for prefix in ["acs", "tpl"] {
            let id = format!("{prefix}{u}");
            run_ok(person_add(&mut facehub(data), &id, &id));
        }
        run_ok(facehub(data).args(["acs", "grant", "--tenant", "acme", &format!("acs{u}")]));
    }
    run_ok(device_add(&mut facehub(data), SN, SECRET_NO).arg("--bind"));
    creds
}

fn kills(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    harness(&dir.path().join("data"), kills("CRASH_HARNESS_KILLS", 30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_with_blobs_on_garage_loses_nothing_acknowledged() {
    let garage = tokio::task::spawn_blocking(Garage::start).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::set_blobs(&data, Some(&garage.blobs_url("crash")));
    harness(&data, kills("CRASH_HARNESS_KILLS_S3", 12)).await;
}

async fn harness(data: &std::path::Path, kills: usize) {
    let data = data.to_path_buf();
    let creds = setup(&data);
    let astronaut = {
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/lib");
        let dir = std::fs::read_dir(lib)
            .expect("scikit-image is needed: run scripts/test")
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("site-packages/skimage/data/astronaut.png"))
            .find(|p| p.exists())
            .expect("skimage/data/astronaut.png in .venv");
        Arc::new(image::open(dir).unwrap().to_rgb8())
    };

    let model: Shared = Arc::default();
    {
        let m = &mut *model.lock().unwrap();
        m.punch_from = punch_base();
        m.next_punch = m.punch_from;
    }
    let mut secret = None;
    let mut checked = 0u64;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xc4a5);
    let started = std::time::Instant::now();
    for round in 0..kills {
        let server = start(&data);
        let token = tenant_token(&server.base, &creds).await;
        let device = device_online(&server.base, &mut secret).await;
        if round > 0 {
            assert!(
                server
                    .log
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|l| l.contains("start-up sweep")),
                "round {round}: the start-up sweep did not report"
            );
            checked += verify(&server.base, &token, &device, &model, &data, round, Some(3)).await;
        }
        let traffic = Traffic::new(&server.base, &token, &model);
        let stop = traffic.stop.clone();
        let seed = round as u64 * 1_000_000;
        let mut tasks = Vec::new();
        for w in 0..2 {
            let t = traffic.clone();
            tasks.push(tokio::spawn(upload_worker(
                Files::Attendance,
                t,
                seed + w * 1000,
            )));
        }
        let t = traffic.clone();
        tasks.push(tokio::spawn(upload_worker(Files::Lingo, t, seed + 5000)));
        let t = traffic.clone();
        tasks.push(tokio::spawn(face_worker(t, astronaut.clone(), seed + 7000)));
        tasks.push(tokio::spawn(template_worker(
            device.clone(),
            model.clone(),
            seed + 9000,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(punch_worker(
            device.clone(),
            model.clone(),
            seed + 11_000,
            stop.clone(),
        )));
        // Kill at a random moment of the traffic.
        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..2500))).await;
        server.kill();
        stop.set();
        for t in tasks {
            t.await.unwrap();
        }
        drop(device);
    }
    // A last restart reads back everything ever acknowledged.
    let server = start(&data);
    let token = tenant_token(&server.base, &creds).await;
    let device = device_online(&server.base, &mut secret).await;
    checked += verify(&server.base, &token, &device, &model, &data, kills, None).await;
    let m = model.lock().unwrap();
    // The figures CI prints (run with --nocapture, or read from the log).
    println!(
        "crash harness{}: {kills} kills survived, {} uploads acknowledged ({} attendance, {} lingo, \
         faces of {} people, templates of {} people, {} punches), {checked} read-backs checked, \
         {:.0} s",
        if crate::common::blobs_for(&data).is_some() {
            " (blobs on garage)"
        } else {
            ""
        },
        m.acknowledged,
        m.attendance.len(),
        m.lingo.len(),
        m.faces.len(),
        m.templates.len(),
        m.punches.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        m.acknowledged >= kills as u64 * 2,
        "only {} uploads were acknowledged in {kills} rounds: the test proves little",
        m.acknowledged
    );
    assert!(!m.faces.is_empty() && !m.templates.is_empty() && !m.lingo.is_empty());
    assert!(!m.punches.is_empty() && !m.captures.is_empty());
    server.kill();
}

/// `key rotate` while a server runs and uploads keep coming: no upload
/// fails, everything reads back, and once the server restarts the old key
/// is gone from the key file and nothing needs it. Then a rotation with no
/// server running retires the old key at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotation_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let creds = setup(&data);
    let key_ids = |data: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(data.join("master.key"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .collect()
    };
    let original = key_ids(&data);
    assert_eq!(original.len(), 1);

    let model: Shared = Arc::default();
    let mut secret = None;
    let server = start(&data);
    let token = tenant_token(&server.base, &creds).await;
    let device = device_online(&server.base, &mut secret).await;
    // Data under the first key: photos, templates.
    let traffic = Traffic::new(&server.base, &token, &model);
    let stop = traffic.stop.clone();
    let warmup = tokio::spawn(upload_worker(Files::Attendance, traffic, 1));
    let templates = tokio::spawn(template_worker(
        device.clone(),
        model.clone(),
        2,
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    let before = model.lock().unwrap().attendance.len();
    assert!(before > 0);

    // Rotate while the uploads go on.
    let out = tokio::task::spawn_blocking({
        let data = data.clone();
        move || run_ok(facehub(&data).args(["key", "rotate", "--json"]))
    })
    .await
    .unwrap();
    let r: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        r["blobs_resealed"].as_u64().unwrap() >= before as u64,
        "{r}"
    );
    assert!(r["values_resealed"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["retire_at_restart"], true, "{r}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.set();
    warmup.await.unwrap();
    templates.await.unwrap();
    {
        let m = model.lock().unwrap();
        assert_eq!(
            m.attendance_unanswered, 0,
            "an upload failed during the rotation"
        );
        assert!(
            m.attendance.len() > before,
            "no upload landed after the rotation"
        );
        assert!(m.template_pending.is_empty(), "a template upload failed");
    }
    let keys = key_ids(&data);
    assert_eq!(keys.len(), 2, "the old key stays until the server restarts");
    assert_eq!(keys[1], original[0]);
    // No downtime: everything reads back from the server that kept running.
    verify(&server.base, &token, &device, &model, &data, 0, None).await;
    server.kill();

    // The restart retires the old key: everything reads back without it.
    let server = start(&data);
    assert_eq!(
        key_ids(&data),
        keys[..1],
        "the old key was not retired at start"
    );
    let token = tenant_token(&server.base, &creds).await;
    let device = device_online(&server.base, &mut secret).await;
    verify(&server.base, &token, &device, &model, &data, 1, None).await;
    server.kill();

    // With no server running, a rotation retires the old key itself.
    let r: Value =
        serde_json::from_str(run_ok(facehub(&data).args(["key", "rotate", "--json"])).trim())
            .unwrap();
    assert_eq!(r["retired"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["remaining"], 0, "{r}");
    let now = key_ids(&data);
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], keys[0]);
    let server = start(&data);
    let token = tenant_token(&server.base, &creds).await;
    let device = device_online(&server.base, &mut secret).await;
    verify(&server.base, &token, &device, &model, &data, 2, None).await;
    server.kill();
}
