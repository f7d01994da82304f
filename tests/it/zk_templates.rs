//! Templates across a mixed fleet: ZKTeco terminals of different template
//! versions and forms (`FP`/`FACE` lines, the unified `BIODATA` table) and
//! a WeCom terminal, in one tenant. A template enrolled on one terminal
//! reaches exactly the terminals that read its algorithm, in the form
//! each takes; an erasure takes the person off all of them.

use crate::app::*;
use facehub::domain::devices::{Change, DeviceUser};
use facehub::model::{ActorKind, ZkSettings};
use facehub_devsim::zk::{Algorithms, ZkTerminal};
use serde_json::json;

pub(crate) async fn zk(app: &TestApp, sn: &str, algorithms: Algorithms) -> ZkTerminal {
    let zk = ZkSettings {
        utc_offset_min: 0,
        allow_from: vec![],
    };
    app.core.add_zk_device(&app.tenant, sn, &zk).await.unwrap();
    assert!(app.core.bind_device(app.tenant.id, sn).await.unwrap());
    let mut t = ZkTerminal::new(&app.base, sn);
    t.algorithms = algorithms;
    t.init().await.unwrap();
    if !t.algorithms.multi.is_empty() {
        let (status, body) = t.report_options().await.unwrap();
        assert_eq!((status, body.as_str()), (200, "OK"));
    }
    t.sync_all().await.unwrap();
    t
}

pub(crate) fn face_lines(t: &ZkTerminal, pin: &str) -> Vec<String> {
    t.received
        .iter()
        .filter(|l| l.contains(&format!("PIN={pin}\t")) || l.contains(&format!("Pin={pin}\t")))
        .filter(|l| {
            l.starts_with("DATA UPDATE FACE")
                || (l.starts_with("DATA UPDATE BIODATA") && !l.contains("\tType=1\t"))
        })
        .cloned()
        .collect()
}

/// A terminal of the old tables: `FPVersion`, `FaceVersion`.
pub(crate) fn legacy(fp: Option<&str>, face: Option<&str>) -> Algorithms {
    Algorithms {
        fp: fp.map(String::from),
        face: face.map(String::from),
        ..Algorithms::default()
    }
}

/// A terminal of the unified table: (type, version) it reports.
pub(crate) fn unified(multi: &[(i64, &str)]) -> Algorithms {
    Algorithms {
        multi: multi.iter().map(|(t, v)| (*t, v.to_string())).collect(),
        ..Algorithms::default()
    }
}

/// One version naming all of `ids` as updated; the version.
async fn touch_all(app: &TestApp, ids: &[String]) -> i64 {
    let change = Change {
        update_user: ids
            .iter()
            .map(|id| DeviceUser {
                userid: id.clone(),
                user_type: 0,
            })
            .collect(),
        ..Change::default()
    };
    app.core
        .record_change(app.tenant.id, &change)
        .await
        .unwrap()
}

async fn seen_version(app: &TestApp, sn: &str) -> i64 {
    let db = &app.core.store_for_tests().db;
    db.device(sn).await.unwrap().unwrap().seen_version
}

#[tokio::test]
async fn templates_reach_exactly_the_terminals_that_read_them() {
    let app = spawn_app().await;
    app.add_person("1001", "Ann").await;
    app.add_person("1002", "Bob").await;
    // A: infrared face 7 and fingerprint 10, in the old tables. C: the
    // same versions, in the unified table. B: visible-light face 39.3 and
    // fingerprint 12.0. W: a WeCom terminal subscribed with face 7.
    let mut a = zk(&app, "ZK-A", legacy(Some("10"), Some("7"))).await;
    let mut b = zk(
        &app,
        "ZK-B",
        Algorithms {
            face: Some("39".into()),
            multi: vec![(1, "12.0".into()), (9, "39.3".into())],
            ..Algorithms::default()
        },
    )
    .await;
    let mut c = zk(&app, "ZK-C", unified(&[(1, "10.0"), (2, "7.0")])).await;
    let w = app
        .terminal(
            &app.tenant,
            "WECOM-W",
            "Secret-Number-0001",
            (&["zkteco-face-7.0"], &[]),
        )
        .await;
    w.full_pull(100).await.unwrap();
    for t in [&a, &b, &c] {
        assert_eq!(t.users.len(), 2, "{}: {:?}", t.sn, t.users);
    }

    // Ann's face (three templates) and a finger, enrolled on A.
    for slot in 0..3 {
        let (status, answer) = a
            .enrol("1001", 2, slot, format!("ann-face-{slot}").as_bytes())
            .await
            .unwrap();
        assert_eq!((status, answer.as_str()), (200, "OK: 1"));
    }
    assert_eq!(a.enrol("1001", 1, 6, b"ann-finger-6").await.unwrap().0, 200);
    for t in [&mut a, &mut b, &mut c] {
        t.sync_all().await.unwrap();
    }
    // C takes them as BIODATA of the same versions; B, of other versions,
    // gets none of them (only its own types cleared before).
    let held = |t: &ZkTerminal| {
        t.templates_of("1001")
            .into_iter()
            .map(|(ty, slot, v, d)| (ty, slot, v, String::from_utf8(d).unwrap()))
            .collect::<Vec<_>>()
    };
    let expected = vec![
        (1, 6, "10.0".to_string(), "ann-finger-6".to_string()),
        (2, 0, "7.0".to_string(), "ann-face-0".to_string()),
        (2, 1, "7.0".to_string(), "ann-face-1".to_string()),
        (2, 2, "7.0".to_string(), "ann-face-2".to_string()),
    ];
    assert_eq!(held(&c), expected);
    assert_eq!(held(&a), expected, "A holds what it enrolled");
    assert_eq!(held(&b), vec![]);
    assert!(face_lines(&b, "1001").is_empty(), "{:?}", b.received);
    assert_eq!(face_lines(&c, "1001").len(), 3);
    assert!(
        face_lines(&c, "1001")
            .iter()
            .all(|l| l.contains("\tType=2\tMajorVer=7\tMinorVer=0\t")),
        "{:?}",
        c.received
    );
    // The WeCom terminal of that algorithm has Ann's face.
    w.catch_up().await.unwrap();
    let book = w.book.lock().await.clone();
    let ann = &book.users[&("1001".to_string(), 0)];
    assert_eq!(ann.fa.algorithm.as_deref(), Some("zkteco-face-7.0"));
    assert_eq!(ann.fa.slots.len(), 3);

    // Bob's visible-light face, enrolled on B, stays on B's kind alone.
    assert_eq!(b.enrol("1002", 9, 0, b"bob-vl").await.unwrap().0, 200);
    // A face the WeCom terminal enrols for Bob in face 7 reaches A and C.
    let face = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"bob-face-0");
    let up = w
        .call(
            "upload_userinfo",
            json!({"userinfo": [{"userid": "1002", "user_type": 0, "fa_algorithm": "zkteco-face-7.0",
                                  "fa_list": [{"id": 0, "data": face}]}]}),
        )
        .await
        .unwrap();
    assert_eq!(up["fail_list"], json!([]), "{up}");
    for t in [&mut a, &mut b, &mut c] {
        t.sync_all().await.unwrap();
    }
    let bob = |t: &ZkTerminal| {
        t.templates_of("1002")
            .into_iter()
            .map(|(ty, _, v, _)| (ty, v))
            .collect::<Vec<_>>()
    };
    assert_eq!(bob(&a), vec![(2, "7.0".to_string())]);
    assert_eq!(bob(&c), vec![(2, "7.0".to_string())]);
    assert_eq!(bob(&b), vec![(9, "39.3".to_string())]);
    assert!(
        face_lines(&a, "1002")
            .iter()
            .all(|l| l.starts_with("DATA UPDATE FACE PIN=1002\tFID=0\t"))
    );

    // A finger removed in facehub goes from the terminals too: A re-sends
    // Ann's finger as invalid, and C loses it.
    assert_eq!(a.withdraw_finger("1001", 6).await.unwrap().0, 200);
    c.sync_all().await.unwrap();
    assert!(
        c.templates_of("1001").iter().all(|t| t.0 != 1),
        "{:?}",
        c.templates_of("1001")
    );
    assert_eq!(c.templates_of("1001").len(), 3);

    // Erasure takes Ann off every terminal, templates and all.
    app.core
        .erase_person(app.tenant.id, "1001", ActorKind::Admin, "test", None)
        .await
        .unwrap();
    for t in [&mut a, &mut b, &mut c] {
        t.sync_all().await.unwrap();
        assert!(!t.users.contains_key("1001"), "{}", t.sn);
        assert!(t.templates_of("1001").is_empty(), "{}", t.sn);
    }
    w.catch_up().await.unwrap();
    assert!(
        !w.book
            .lock()
            .await
            .users
            .contains_key(&("1001".to_string(), 0))
    );
}

#[tokio::test]
async fn template_uploads_are_refused_whole_and_bounded() {
    let app = spawn_app().await;
    app.add_person("1001", "Ann").await;
    let a = zk(&app, "ZK-A", legacy(Some("10"), None)).await;
    let post = |body: &[u8], stamp: u32| {
        let (path, body, a) = (
            format!("/iclock/cdata?SN=ZK-A&table=OPERLOG&Stamp={stamp}"),
            body.to_vec(),
            &a,
        );
        async move { a.post(&path, body).await }
    };
    // One bad line refuses the upload: the good line before it is not stored.
    let (status, answer) = post(
        b"FP PIN=1001\tFID=1\tTMP=AAEC\nFP PIN=1001\tFID=12\tTMP=AAEC\n",
        1,
    )
    .await
    .unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.starts_with("FAIL: line 2: template number 12"),
        "{answer}"
    );
    // A picture is no template.
    let jpeg = format!(
        "FP PIN=1001\tFID=1\tTMP={}\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, jpeg(64, 64, 1))
    );
    let (status, answer) = post(jpeg.as_bytes(), 2).await.unwrap();
    assert!(answer.contains("holds a file"), "{answer}");
    assert_eq!(status, 400, "{answer}");
    // A face before the terminal has said its face version: taken later.
    let (status, answer) = post(b"FACE PIN=1001\tFID=0\tTMP=AAEC\n", 3).await.unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("version"), "{answer}");
    // Unknown PINs and unknown kinds of line are acknowledged, dropped.
    let (status, answer) = post(
        b"FP PIN=9999\tFID=1\tTMP=AAEC\nUSER PIN=1\tName=X\nFVEIN Pin=1\tFID=1\n",
        5,
    )
    .await
    .unwrap();
    assert_eq!((status, answer.as_str()), (200, "OK: 1"));
    // Nothing of the refused uploads was stored: a terminal of the same
    // version gets no template.
    let d = zk(&app, "ZK-D", a.algorithms.clone()).await;
    assert!(d.users.contains_key("1001"));
    assert_eq!(d.templates_of("1001"), vec![]);
    // The init resumes the operation log where it was.
    let (_, options) = a
        .get("/iclock/cdata?SN=ZK-A&options=all&pushver=2.4.1")
        .await
        .unwrap();
    assert!(options.contains("\nOPERLOGStamp=5\n"), "{options}");
}

#[tokio::test]
async fn a_terminal_away_across_changes_and_a_restart_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let (core, url, stop, task) = start_at(dir.path()).await;
    let base = |url: &str| url.replacen("ws://", "http://", 1);
    let tenant = core.create_tenant("acme").await.unwrap();
    for (id, name) in [("1001", "Ann"), ("1002", "Bob")] {
        let d = facehub::domain::PersonDraft::new(id, name, None).unwrap();
        core.upsert_person(&tenant, &d).await.unwrap();
    }
    let zk = ZkSettings {
        utc_offset_min: 0,
        allow_from: vec![],
    };
    let up = |sn: &str, algorithms: Algorithms| {
        let mut t = ZkTerminal::new(&base(&url), sn);
        t.algorithms = algorithms;
        t
    };
    let mut a = up("ZK-A", legacy(Some("10"), None));
    let mut c = up("ZK-C", unified(&[(1, "10.0")]));
    for t in [&mut a, &mut c] {
        core.add_zk_device(&tenant, &t.sn, &zk).await.unwrap();
        core.bind_device(tenant.id, &t.sn).await.unwrap();
        t.init().await.unwrap();
        t.sync_all().await.unwrap();
    }
    c.report_options().await.unwrap();
    c.sync_all().await.unwrap();
    assert_eq!(c.users.len(), 2);

    // C is away: Ann enrols two fingers on A, Bob one, and Ann's second
    // finger is then removed on A; then the server restarts.
    for (pin, slot) in [("1001", 1), ("1001", 2), ("1002", 3)] {
        let data = format!("{pin}-finger-{slot}");
        assert_eq!(a.enrol(pin, 1, slot, data.as_bytes()).await.unwrap().0, 200);
    }
    assert_eq!(a.withdraw_finger("1001", 2).await.unwrap().0, 200);
    let _ = stop.send(());
    task.await.unwrap();
    let (_core, url, stop, task) = start_at(dir.path()).await;
    c.point_at(&base(&url));
    c.init().await.unwrap();
    c.sync_all().await.unwrap();
    let held: Vec<(String, i64, i64, String)> = c
        .templates
        .iter()
        .map(|(k, (v, _))| (k.0.clone(), k.1, k.2, v.clone()))
        .collect();
    assert_eq!(
        held,
        [
            ("1001".to_string(), 1, 1, "10.0".to_string()),
            ("1002".to_string(), 1, 3, "10.0".to_string())
        ]
    );
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test]
async fn batches_stay_within_the_reply_size_and_parts_never_skip() {
    // Replies of at most 4 KiB: a batch holds a few people with templates.
    let app = spawn_with(|c| {
        c.device.push_reply_kib = 4;
        // Its polls come back to back, not every few seconds.
        c.device.commands_per_second = 100_000;
    })
    .await;
    let fp10 = legacy(Some("10"), None);
    let mut ids = Vec::new();
    for i in 0..30 {
        let id = format!("{}", 5000 + i);
        app.add_person(&id, &format!("Person {i}")).await;
        ids.push(id);
    }
    let mut a = zk(&app, "ZK-A", fp10.clone()).await;
    for id in &ids {
        let data = vec![id.as_bytes()[3]; 1000];
        assert_eq!(a.enrol(id, 1, 0, &data).await.unwrap().0, 200);
    }
    a.sync_all().await.unwrap();

    // A new terminal's full sync: pages cut at the reply size.
    let b = zk(&app, "ZK-B", fp10.clone()).await;
    assert_eq!(b.users.len(), 30);
    for id in &ids {
        assert_eq!(b.templates_of(id).len(), 1, "{id}");
    }
    let limit = 4 << 10;
    assert!(b.replies.len() > 10, "{:?}", b.replies);
    assert!(b.replies.iter().all(|r| *r <= limit), "{:?}", b.replies);

    // One version naming them all: sent in parts within the reply size,
    // each person's clear and template in the same part, and the terminal
    // holds the version only after the last part.
    let mut b = b;
    b.replies.clear();
    let version = touch_all(&app, &ids).await;
    b.sync_all().await.unwrap();
    assert!(b.replies.len() > 5 && b.replies.iter().all(|r| *r <= limit));
    for id in &ids {
        assert_eq!(b.templates_of(id).len(), 1, "{id}: cleared and put again");
    }
    assert_eq!(seen_version(&app, "ZK-B").await, version);
}

#[tokio::test]
async fn a_part_of_people_no_pin_can_carry_moves_on() {
    let app = spawn_app().await;
    let mut everyone = Vec::new();
    for i in 0..150 {
        let id = format!("{}", 1000 + i);
        app.add_person(&id, &id).await;
        everyone.push(id);
    }
    for i in 0..250 {
        // After every digit in PIN order, and no PIN can carry them.
        let id = format!("张{i:03}");
        app.add_person(&id, &id).await;
        everyone.push(id);
    }
    let mut t = zk(&app, "ZK-A", Algorithms::default()).await;
    assert_eq!(t.users.len(), 150);
    let version = touch_all(&app, &everyone).await;
    // The first part sends 150, the second none: it ends, and the
    // terminal holds the version.
    assert_eq!(t.sync_all().await.unwrap(), 150);
    assert_eq!(seen_version(&app, "ZK-A").await, version);
    app.add_person("2000", "New").await;
    assert_eq!(t.sync_all().await.unwrap(), 1);
    assert!(t.users.contains_key("2000"));
}

#[tokio::test]
async fn a_terminal_that_reads_anew_gets_its_book_again_and_misses_no_removal() {
    let app = spawn_app().await;
    app.add_person("1001", "Ann").await;
    app.add_person("1002", "Bob").await;
    let mut a = zk(&app, "ZK-A", legacy(None, Some("7"))).await;
    let mut c = zk(&app, "ZK-C", unified(&[(1, "10.0")])).await;
    assert_eq!(a.enrol("1001", 2, 0, b"ann-face").await.unwrap().0, 200);
    a.sync_all().await.unwrap();
    c.sync_all().await.unwrap();
    assert_eq!(c.templates_of("1001"), vec![], "C reads no faces yet");

    // While C is away, Bob is erased; C comes back upgraded: it now reads
    // infrared faces 7.0 too.
    app.core
        .erase_person(app.tenant.id, "1002", ActorKind::Admin, "test", None)
        .await
        .unwrap();
    c.algorithms.multi.push((2, "7.0".into()));
    c.init().await.unwrap();
    assert_eq!(c.report_options().await.unwrap().0, 200);
    c.sync_all().await.unwrap();
    assert!(
        !c.users.contains_key("1002"),
        "the removal still reached it"
    );
    assert_eq!(
        c.templates_of("1001"),
        vec![(2, 0, "7.0".to_string(), b"ann-face".to_vec())]
    );
    // Once: its next polls bring nothing.
    assert_eq!(c.sync_all().await.unwrap(), 0);
}
