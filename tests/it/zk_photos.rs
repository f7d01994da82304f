//! Photos to templates: a ZKTeco terminal that makes templates from
//! photos is sent the face photo of a person it holds no template of that
//! type for; the template it posts back reaches the rest of that
//! version's fleet (ZKTeco and WeCom), never a terminal of another
//! version, and the terminal is not sent the photo again.

use crate::app::*;
use crate::zk_templates::{face_lines, legacy, unified, zk};
use facehub::domain::audit::AuditFilter;
use facehub_devsim::zk::{Algorithms, ZkTerminal, extracted};
use serde_json::json;

fn photo_lines(t: &ZkTerminal) -> Vec<&String> {
    t.received
        .iter()
        .filter(|l| l.starts_with("DATA UPDATE BIOPHOTO"))
        .collect()
}

/// Uploads `photo` and binds it as the attendance photo of `user_id`.
async fn bind_photo(app: &TestApp, token: &str, user_id: &str, photo: &[u8]) {
    let key = app.upload(token, "face.jpg", photo).await;
    let v = app
        .post_json(
            "/open-apis/attendance/v1/user_settings/modify?employee_type=employee_id",
            token,
            &json!({"user_setting": {"user_id": user_id, "face_key": key}}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
}

async fn sync(ts: &mut [&mut ZkTerminal]) {
    for t in ts.iter_mut() {
        t.sync_all().await.unwrap();
    }
}

#[tokio::test]
async fn a_photo_becomes_templates_for_its_version_alone() {
    let app = spawn_app().await;
    app.add_person("1001", "Ann").await;
    app.add_person("1002", "Bob").await;
    // P: visible-light face 39.3, and makes templates from photos. Q: the
    // same version, no photos. L: infrared face 7 in the old tables.
    let photos = Algorithms {
        multi: vec![(9, "39.3".into())],
        photos: vec![9],
        ..Algorithms::default()
    };
    let mut p = zk(&app, "ZK-P", photos).await;
    let mut q = zk(&app, "ZK-Q", unified(&[(9, "39.3")])).await;
    let mut l = zk(&app, "ZK-L", legacy(None, Some("7"))).await;
    let w = app
        .terminal(
            &app.tenant,
            "WECOM-W",
            "Secret-Number-0001",
            (&["zkteco-visible-face-39.3"], &[]),
        )
        .await;
    w.full_pull(100).await.unwrap();
    assert!(photo_lines(&p).is_empty(), "nobody has a photo yet");

    // Ann's attendance photo, through the Feishu API.
    let token = app.token().await;
    bind_photo(&app, &token, "1001", &jpeg(900, 1200, 3)).await;
    sync(&mut [&mut p, &mut q, &mut l]).await;

    // P alone was sent it: once, a JPEG of at most 640 px within the
    // budget, asking for the template back.
    assert_eq!(photo_lines(&p).len(), 1, "{:?}", p.received);
    assert!(photo_lines(&p)[0].contains("PIN=1001\tType=9\t"));
    assert!(photo_lines(&p)[0].contains("\tPostBackTmpFlag=1\t"));
    assert!(photo_lines(&q).is_empty() && photo_lines(&l).is_empty());
    let (pin, bio_type, sent) = p.photos[0].clone();
    assert_eq!((pin.as_str(), bio_type), ("1001", 9));
    assert!(sent.len() >= 8 << 10, "{}", sent.len());
    assert!(p.replies.iter().all(|n| *n <= 40 << 10), "{:?}", p.replies);
    let img = image::load_from_memory_with_format(&sent, image::ImageFormat::Jpeg).unwrap();
    // The photo's proportions, its long side within 640 px and 120 px
    // above the smallest a terminal reads.
    assert!((320..=640).contains(&img.height()), "{}", img.height());
    assert_eq!(img.width() * 4, img.height() * 3);

    // The template P made of it came back and reached Q and the WeCom
    // terminal of its version; L, of no visible-light face, got nothing.
    let made = extracted(&sent);
    let vl = vec![(9, 0, "39.3".to_string(), made.clone())];
    assert_eq!(q.templates_of("1001"), vl);
    assert_eq!(p.templates_of("1001"), vl);
    assert!(l.templates_of("1001").is_empty());
    assert!(face_lines(&l, "1001").is_empty(), "{:?}", l.received);
    w.catch_up().await.unwrap();
    let book = w.book.lock().await.clone();
    let ann = &book.users[&("1001".to_string(), 0)];
    assert_eq!(
        ann.fa.algorithm.as_deref(),
        Some("zkteco-visible-face-39.3")
    );
    assert_eq!(ann.fa.slots.len(), 1);

    // Ann now has a template of P's version: a new photo is not sent.
    bind_photo(&app, &token, "1001", &jpeg(600, 800, 4)).await;
    let puts = |t: &ZkTerminal| {
        t.received
            .iter()
            .filter(|l| l.starts_with("DATA UPDATE USERINFO PIN=1001\t"))
            .count()
    };
    let before = puts(&p);
    sync(&mut [&mut p, &mut q]).await;
    // It heard of the change (Ann put again), without the photo.
    assert_eq!(puts(&p), before + 1, "{:?}", p.received);
    assert_eq!(photo_lines(&p).len(), 1, "{:?}", p.received);
    assert_eq!(p.templates_of("1001"), vl);

    // Bob's door-access face: P is sent the crop (a square around it).
    let acs = app.acs_app(&["1002"]).await;
    let acs_token = app.token_for(&acs.app_id, &acs.app_secret).await;
    app.put_face_ok(&acs_token, "1002", &skimage_file("astronaut.png"))
        .await;
    sync(&mut [&mut p, &mut q, &mut l]).await;
    assert_eq!(photo_lines(&p).len(), 2, "{:?}", p.received);
    let (pin, _, sent) = p.photos[1].clone();
    assert_eq!(pin, "1002");
    let img = image::load_from_memory_with_format(&sent, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(img.width(), img.height(), "the crop is square");
    assert_eq!(
        q.templates_of("1002"),
        vec![(9, 0, "39.3".to_string(), extracted(&sent))]
    );
    assert!(l.templates_of("1002").is_empty());

    // Each photo read for a terminal is audited, naming its person.
    let sent = photos_sent(&app).await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.contains(&Some("1001".into())) && sent.contains(&Some("1002".into())));

    // A terminal of another version joins: its full sync sends both
    // photos, one a reply (a photo fills most of one), each read only
    // for the reply it goes in; what it makes of them stays with it.
    let other = Algorithms {
        multi: vec![(9, "40.1".into())],
        photos: vec![9],
        ..Algorithms::default()
    };
    let r = zk(&app, "ZK-R", other).await;
    assert_eq!(r.photos.len(), 2, "{:?}", r.received);
    assert!(r.replies.iter().all(|n| *n <= 40 << 10), "{:?}", r.replies);
    assert_eq!(photos_sent(&app).await.len(), 4);
    sync(&mut [&mut p, &mut q, &mut l]).await;
    for t in [&p, &q, &l] {
        assert!(
            t.templates_of("1002").iter().all(|k| k.2 != "40.1"),
            "{}",
            t.sn
        );
    }
}

async fn photos_sent(app: &TestApp) -> Vec<Option<String>> {
    let filter = AuditFilter {
        action: Some("photo.send".into()),
        ..Default::default()
    };
    app.core
        .audit_page(app.tenant.id, &filter, 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.subject)
        .collect()
}
