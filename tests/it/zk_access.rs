//! ZKTeco access terminals (PUSH 3.x, `DeviceType=acc`), driven by the
//! simulator in its access mode: registration (refused until bound, then
//! a stable `RegistryCode`), settings, `rtlog` events as punches (door
//! events read past, a malformed event refusing the upload),
//! `tabledata` answered with its count, the lower-case command tables,
//! and templates shared with an attendance terminal of the same version.

use crate::app::*;
use crate::zk_templates::{face_lines, unified, zk};
use facehub::domain::devices::CheckinRecord;
use facehub::domain::{PersonDraft, UserType};
use facehub::model::{ActorKind, ZkSettings};
use facehub_devsim::zk::ZkTerminal;

/// 2025-11-23 09:00 UTC.
const T0: i64 = 1_763_888_400;

#[tokio::test]
async fn an_access_terminal_registers_punches_and_shares_its_templates() {
    let app = spawn_app().await;
    let mut p = PersonDraft::new("1001", "Ann", None).unwrap();
    p.user_type = Some(UserType::Employee);
    app.core.upsert_person(&app.tenant, &p).await.unwrap();
    let mut a = ZkTerminal::new_access(&app.base, "ZK-ACC-1");
    a.algorithms = unified(&[(9, "39.3")]);

    // Unknown, its registration is refused (and it is pending).
    let (status, body) = a.register().await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.starts_with("FAIL: this terminal is not admitted"));
    assert!(a.registry_code.is_none());
    let pending = app.core.pending_devices().await.unwrap();
    assert_eq!(pending[0].sn, "ZK-ACC-1");

    let zk_settings = ZkSettings {
        utc_offset_min: 480,
        allow_from: vec![],
    };
    app.core
        .add_zk_device(&app.tenant, "ZK-ACC-1", &zk_settings)
        .await
        .unwrap();
    assert!(
        app.core
            .bind_device(app.tenant.id, "ZK-ACC-1")
            .await
            .unwrap()
    );

    // Bound: a code of 32 hex digits, the same at every registration and
    // in the init; its kind, firmware and algorithms are kept.
    let (status, body) = a.register().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let code = a.registry_code.clone().unwrap();
    assert_eq!(body, format!("RegistryCode={code}\n"));
    assert!(code.len() == 32 && code.bytes().all(|b| b.is_ascii_hexdigit()));
    a.register().await.unwrap();
    assert_eq!(a.registry_code.as_deref(), Some(code.as_str()));
    a.init().await.unwrap();
    assert_eq!(a.options["RegistryCode"], code);
    assert_eq!(a.options["PushProtVer"], "3.1.2");
    assert_eq!(a.options["TimeZone"], "8");
    a.fetch_settings().await.unwrap();
    assert_eq!(a.options["RequestDelay"], "10");
    assert_eq!(a.options["TransTables"], "User Transaction");
    let row = app
        .core
        .tenant_device(app.tenant.id, "ZK-ACC-1")
        .await
        .unwrap();
    let info = row.push_info.clone().unwrap();
    assert_eq!(info.device_type.as_deref(), Some("acc"));
    assert_eq!(info.firmware.as_deref(), Some("ZAM180-Ver1.1.17"));
    assert_eq!(info.push_version.as_deref(), Some("3.1.2"));
    assert!(info.multi_bio_version.is_some());

    // Its book comes in its own tables (it refuses `USERINFO` with -1004).
    a.sync_all().await.unwrap();
    assert_eq!(
        a.received,
        ["DATA UPDATE user Pin=1001\tName=Ann\tPrivilege=0"]
    );
    assert_eq!(a.users["1001"], "Ann");

    // Its events: the person's is a door record in its zone (out, then
    // in); the door events of no person between them are read past.
    a.punch("1001", T0, 1, 15);
    a.punch("1001", T0 + 60, 0, 15);
    a.punch("7777", T0 + 90, 0, 15); // nobody of the tenant: dropped
    assert_eq!(a.upload().await.unwrap(), (200, "OK".to_string()));
    let got = app
        .core
        .checkins_on(app.tenant.id, "1001", "2025-11-23")
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        (
            "ZK-ACC-1".to_string(),
            CheckinRecord {
                timestamp: T0,
                pass_type: Some(2),
                pass_method: Some(1)
            }
        )
    );
    assert_eq!(got[1].1.pass_type, Some(1));
    // A malformed event refuses the upload whole: nothing of it is kept.
    let (status, body) = a
        .post(
            "/iclock/cdata?SN=ZK-ACC-1&table=rtlog",
            b"time=2025-11-23 18:00:00\tpin=1001\tevent=0\ntime=2025-11-23 25:00:00\tpin=1001\n"
                .to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert!(body.starts_with("FAIL: line 2: time"), "{body}");
    assert_eq!(
        app.core
            .checkins_on(app.tenant.id, "1001", "2025-11-23")
            .await
            .unwrap()
            .len(),
        2
    );

    // Tables it posts are answered `<table>=<count>`; `user` is read past.
    let (status, body) = a
        .post(
            "/iclock/cdata?SN=ZK-ACC-1&table=tabledata&tablename=user&count=2",
            b"user uid=1\tcardno=\tpin=1001\tname=Ann\r\nuser uid=2\tpin=1002\tname=Bob\r\n"
                .to_vec(),
        )
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "user=2"));
    let (status, body) = a
        .post(
            "/iclock/querydata?SN=ZK-ACC-1&type=tabledata&cmdid=9&tablename=user&count=1&packcnt=1&packidx=1",
            b"user uid=1\tpin=1001\tname=Ann\n".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "user=1"));
    let (status, body) = a
        .post(
            "/iclock/querydata?SN=ZK-ACC-1&type=options&cmdid=10",
            b"~SerialNumber=ZK-ACC-1,FirmVer=ZAM180-Ver1.1.18,IPAddress=10.0.0.7".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "OK"));
    let row = app
        .core
        .tenant_device(app.tenant.id, "ZK-ACC-1")
        .await
        .unwrap();
    let firmware = row.push_info.unwrap().firmware;
    assert_eq!(firmware.as_deref(), Some("ZAM180-Ver1.1.18"));
    let (status, _) = a
        .post(
            "/iclock/cdata?SN=ZK-ACC-1&table=tabledata&tablename=us%0Der",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(status, 400);

    // A face enrolled on it (`tabledata` `biodata`) reaches an attendance
    // terminal of its version, and one enrolled there reaches it.
    assert_eq!(
        a.enrol("1001", 9, 0, b"acc-face").await.unwrap(),
        (200, "biodata=1".to_string())
    );
    let mut b = zk(&app, "ZK-ATT-1", unified(&[(9, "39.3")])).await;
    let lines = face_lines(&b, "1001");
    assert_eq!(lines.len(), 1, "{:?}", b.received);
    assert!(lines[0].starts_with("DATA UPDATE BIODATA Pin=1001\t"));
    assert_eq!(b.templates_of("1001")[0].3, b"acc-face");
    b.enrol("1001", 9, 1, b"att-face").await.unwrap();
    a.sync_all().await.unwrap();
    assert!(
        a.received
            .iter()
            .any(|l| l.starts_with("DATA UPDATE biodata Pin=1001\t") && l.contains("\tIndex=1\t")),
        "{:?}",
        a.received
    );
    assert!(a.templates_of("1001").iter().any(|t| t.3 == b"att-face"));

    // Erased, the person leaves it by its own table's delete.
    app.core
        .erase_person(app.tenant.id, "1001", ActorKind::Admin, "test", None)
        .await
        .unwrap();
    a.sync_all().await.unwrap();
    assert_eq!(a.received.last().unwrap(), "DATA DELETE user Pin=1001");
    assert!(a.users.is_empty() && a.templates_of("1001").is_empty());
}
