//! Erasure, the audit log, and encryption at rest, shown on the bytes of
//! the data directory itself.

use std::path::Path;
use std::time::Duration;

use crate::app::*;
use crate::common::userinfo;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub::domain::PersonDraft;
use facehub_devsim::Device;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const SECRET_NO: &str = "privacy-secret-no";
const SCOPES: &[&str] = &[
    "attendance:rule",
    "attendance:rule:readonly",
    "acs:users",
    "facehub:people",
    "facehub:audit",
];

/// Pieces of `bytes` to search for: a few 32-byte windows spread over it.
fn probes(bytes: &[u8]) -> Vec<Vec<u8>> {
    let n = bytes.len();
    assert!(n >= 64, "too short to probe");
    [n / 5, n / 2, n - 40]
        .into_iter()
        .map(|i| bytes[i..i + 32].to_vec())
        .collect()
}

/// Where any of `needles` occurs in what the server at `dir` stores (its
/// data directory, its bucket prefix in the scale-out pass, a dump of its
/// PostgreSQL database, where bytea is hex), and the total bytes searched.
/// The scale-out pass sees the stores as their clients do: PostgreSQL's
/// dead tuples and WAL, and Garage's blocks awaiting collection, are the
/// engines' own to reclaim (README, Scale-out); the SQLite pass searches
/// the database file itself.
async fn search(dir: &Path, needles: &[Vec<u8>]) -> (Vec<String>, u64) {
    let mut stored: Vec<(String, Vec<u8>)> = crate::app::files_under(dir)
        .into_iter()
        .map(|(p, b)| (p.display().to_string(), b))
        .collect();
    if crate::common::blobs_for(dir).is_some() {
        stored.extend(crate::app::stored_blobs(dir).await);
    }
    let mut needles = needles.to_vec();
    if let Some(url) = crate::common::database_for(dir) {
        stored.push((
            format!("pg_dump of {url}"),
            crate::common::postgres::dump_at(&url),
        ));
        needles.extend(needles.clone().iter().map(|n| hex::encode(n).into_bytes()));
    }
    let mut hits = Vec::new();
    let mut searched = 0;
    for (name, bytes) in stored {
        searched += bytes.len() as u64;
        for n in &needles {
            if bytes.windows(n.len()).any(|w| w == &n[..]) {
                hits.push(name.clone());
            }
        }
    }
    (hits, searched)
}

/// A photo unlike any other: noise in its top rows.
fn noisy_png(seed: u64) -> Vec<u8> {
    crate::common::noise_png(240, 120, seed, [200, 180, 160])
}

async fn upload_photo(app: &TestApp, t: &str, bytes: &[u8]) -> String {
    app.upload(t, "face.png", bytes).await
}

async fn bind(app: &TestApp, t: &str, user: &str, face_key: &str) {
    let v = app
        .post_json(
            "/open-apis/attendance/v1/user_settings/modify?employee_type=employee_id",
            t,
            &json!({"user_setting": {"user_id": user, "face_key": face_key}}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
}

async fn get(app: &TestApp, t: &str, path: &str) -> (u16, Vec<u8>) {
    let r = app.get(path, t).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn raw_db_values(dir: &Path, sql: &str) -> Vec<Vec<u8>> {
    if let Some(url) = crate::common::database_for(dir) {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let v: Vec<Vec<u8>> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        pool.close().await;
        return v;
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("facehub.db"))
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    let v: Vec<Vec<u8>> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
    pool.close().await;
    v
}

struct Person {
    photos: Vec<Vec<u8>>,
    face: Vec<u8>,
    template: Vec<u8>,
}

#[tokio::test]
async fn erasure_leaves_no_byte_of_the_person_and_touches_no_one_else() {
    let app = spawn_app().await;
    let creds = make_app(&app.core, &app.tenant, SCOPES).await;
    let t = app.token_for(&creds.app_id, &creds.app_secret).await;
    let astronaut = image::load_from_memory(&skimage_file("astronaut.png"))
        .unwrap()
        .to_rgb8();
    let device = {
        app.core
            .add_device(&app.tenant, "PRIV-1", SECRET_NO)
            .await
            .unwrap();
        app.core.bind_device(app.tenant.id, "PRIV-1").await.unwrap();
        let d = Device::connect(
            &format!("ws://{}/", app.addr),
            "PRIV-1",
            (&["X"], &[]),
            None,
        )
        .await
        .unwrap();
        d.bring_up(SECRET_NO, app.core.now()).await.unwrap();
        d
    };
    let mut people = Vec::new();
    for (i, user) in ["victim", "bystander"].iter().enumerate() {
        app.core
            .upsert_person(
                &app.tenant,
                &PersonDraft::new(user, &format!("Name {user}"), None).unwrap(),
            )
            .await
            .unwrap();
        app.core
            .acs_grant(&app.tenant, &[user.to_string()])
            .await
            .unwrap();
        // Two attendance photos, bound one after the other: the first is
        // no longer referenced, but is still theirs.
        let photos = vec![noisy_png(i as u64 * 10), noisy_png(i as u64 * 10 + 1)];
        for p in &photos {
            let id = upload_photo(&app, &t, p).await;
            bind(&app, &t, user, &id).await;
        }
        let mut face = astronaut.clone();
        face.put_pixel(0, 0, image::Rgb([i as u8, 1, 2]));
        let mut buf = std::io::Cursor::new(Vec::new());
        face.write_to(&mut buf, image::ImageFormat::Png).unwrap();
        let face = buf.into_inner();
        app.put_face_ok(&t, user, &face).await;
        let mut rng = rand::rngs::StdRng::seed_from_u64(99 + i as u64);
        let template: Vec<u8> = (0..600).map(|_| rng.r#gen()).collect();
        let b = device
            .call(
                "upload_userinfo",
                json!({"userinfo": [{"userid": user, "user_type": 0, "fa_algorithm": "X",
                        "fa_list": [{"id": 0, "data": STANDARD.encode(&template)}]}]}),
            )
            .await
            .unwrap();
        assert_eq!(b["fail_list"], json!([]));
        people.push(Person {
            photos,
            face,
            template,
        });
    }
    let data = app.dir.path();
    let sealed_templates = raw_db_values(data, "SELECT data FROM templates").await;
    assert_eq!(sealed_templates.len(), 2);
    let blobs_before = crate::app::stored_blobs(data).await;
    device
        .drain_pushes(Duration::from_millis(300))
        .await
        .unwrap();

    // Encryption at rest: no photo or template, raw or base64, anywhere.
    let mut clear: Vec<Vec<u8>> = Vec::new();
    for p in &people {
        for photo in p.photos.iter().chain([&p.face]) {
            clear.extend(probes(photo));
            clear.extend(probes(STANDARD.encode(photo).as_bytes()));
        }
        clear.extend(probes(&p.template));
        clear.extend(probes(STANDARD.encode(&p.template).as_bytes()));
    }
    let (hits, searched) = search(data, &clear).await;
    assert!(hits.is_empty(), "plaintext found in {hits:?}");
    println!(
        "encryption at rest: {searched} bytes searched for {} probes",
        clear.len()
    );

    // Another tenant cannot erase them; an unknown user is not found.
    let other = app.core.create_tenant("other").await.unwrap();
    let oc = make_app(&app.core, &other, SCOPES).await;
    let ot = app.token_for(&oc.app_id, &oc.app_secret).await;
    for (token, user) in [(&ot, "victim"), (&t, "nobody")] {
        let r = app
            .delete(&format!("/open-apis/facehub/v1/people/{user}"), token)
            .await;
        expect_error(r, 400, 1220004).await;
    }
    // A token without the scope is refused.
    let plain = app.token().await;
    let r = app
        .delete("/open-apis/facehub/v1/people/victim", &plain)
        .await;
    expect_error(r, 400, 99991672).await;

    let r = app.delete("/open-apis/facehub/v1/people/victim", &t).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 0, "{v}");
    // Two attendance photos, the door-access face and its crop.
    assert_eq!(v["data"]["erasure"]["files"], 4, "{v}");
    assert_eq!(v["data"]["erasure"]["templates"], 1, "{v}");

    // The terminal is told to delete them.
    let push = device
        .push_of("push_change_contact", Duration::from_secs(5))
        .await
        .expect("a change push after the erasure");
    assert!(push.to_string().contains("victim"), "{push}");

    // Nothing of the victim remains: not the photos or template in clear,
    // not their sealed bytes (blob files and database rows).
    let victim = &people[0];
    let mut gone: Vec<Vec<u8>> = Vec::new();
    for photo in victim.photos.iter().chain([&victim.face]) {
        gone.extend(probes(photo));
        gone.extend(probes(STANDARD.encode(photo).as_bytes()));
    }
    gone.extend(probes(&victim.template));
    let surviving = raw_db_values(data, "SELECT data FROM templates").await;
    assert_eq!(surviving.len(), 1, "the bystander's template remains");
    for s in &sealed_templates {
        if !surviving.contains(s) {
            gone.push(s[s.len() - 48..].to_vec());
        }
    }
    let blobs_after: Vec<String> = crate::app::stored_blobs(data)
        .await
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let erased_blobs: Vec<&(String, Vec<u8>)> = blobs_before
        .iter()
        .filter(|(p, _)| !blobs_after.contains(p))
        .collect();
    assert_eq!(erased_blobs.len(), 4, "four blobs were erased");
    for (_, sealed) in &erased_blobs {
        gone.extend(probes(sealed));
    }
    let (hits, searched) = search(data, &gone).await;
    assert!(hits.is_empty(), "erased bytes still found in {hits:?}");
    println!(
        "erasure: {searched} bytes searched for {} probes of the erased person",
        gone.len()
    );

    // The bystander is untouched.
    let by = &people[1];
    let (status, got) = get(
        &app,
        &t,
        "/open-apis/acs/v1/users/bystander/face?user_id_type=user_id&is_cropped=false",
    )
    .await;
    assert_eq!((status, got == by.face), (200, true));
    let b = userinfo(&device, "bystander", 0).await;
    assert_eq!(
        b["userinfo"][0]["fa_list"][0]["data"],
        json!(STANDARD.encode(&by.template))
    );
    let b = device
        .call(
            "check_userid",
            json!({"userid_item": [{"userid": "victim", "user_type": 0}]}),
        )
        .await
        .unwrap();
    assert_eq!(b["legal_userid_item"], json!([]), "{b}");

    // The audit log tells the story, without a byte of biometric data.
    let mut actions = Vec::new();
    let mut page_token = String::new();
    loop {
        let (status, body) = get(
            &app,
            &t,
            &format!("/open-apis/facehub/v1/audit_logs?page_size=7&page_token={page_token}"),
        )
        .await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], 0, "{v}");
        for item in v["data"]["items"].as_array().unwrap() {
            actions.push((
                item["action"].as_str().unwrap().to_string(),
                item["subject"].as_str().unwrap_or("").to_string(),
                item["actor_kind"].as_str().unwrap().to_string(),
            ));
            let text = item.to_string();
            assert!(!text.contains(&STANDARD.encode(&victim.template)[..40]));
        }
        if v["data"]["has_more"] != true {
            break;
        }
        page_token = v["data"]["page_token"].as_str().unwrap().to_string();
    }
    for (action, subject, actor) in [
        ("photo.upload", "", "app"),
        ("photo.bind", "victim", "app"),
        ("face.enrol", "victim", "app"),
        ("template.upload", "victim", "device"),
        ("face.download", "bystander", "app"),
        ("template.sync", "bystander", "device"),
        ("person.erase", "victim", "app"),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, s, k)| a == action && s == subject && k == actor),
            "no {action} of {subject:?} by a {actor} in {actions:?}"
        );
    }
    // Filtered by person, and by another tenant: nothing of ours.
    let (_, body) = get(
        &app,
        &t,
        "/open-apis/facehub/v1/audit_logs?user_id=bystander&action=face.download",
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"]["items"].as_array().unwrap().len(), 1, "{v}");
    let (_, body) = get(&app, &ot, "/open-apis/facehub/v1/audit_logs").await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"]["items"], json!([]), "{v}");
}
