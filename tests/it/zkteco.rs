//! ZKTeco terminals on `/iclock/*`, driven by the PUSH-protocol simulator:
//! admission (pending until added, served once bound, refused when
//! unbound or calling from elsewhere), the init's options and clock,
//! punches stored as the tenant's punch records, in the terminal's zone,
//! idempotently, with a malformed upload refused whole, and the address
//! book kept by confirmed, resent-until-confirmed commands.

use crate::app::*;
use facehub::domain::devices::{Change, CheckinRecord, DeviceUser};
use facehub::domain::{PersonDraft, Tenant, UserType};
use facehub::model::ActorKind;
use facehub::model::ZkSettings;
use facehub_devsim::zk::ZkTerminal;
use serde_json::json;

/// 2025-11-23 09:00 UTC.
const T0: i64 = 1_763_888_400;

async fn person(app: &TestApp, tenant: &Tenant, user_id: &str) {
    named(app, tenant, user_id, user_id).await;
}

async fn named(app: &TestApp, tenant: &Tenant, user_id: &str, name: &str) {
    let mut p = PersonDraft::new(user_id, name, None).unwrap();
    p.user_type = Some(UserType::Employee);
    app.core.upsert_person(tenant, &p).await.unwrap();
}

/// Adds `sn` for the app's tenant (zone `offset_min`) and binds it.
async fn bound(app: &TestApp, sn: &str, offset_min: i64, allow: &[&str]) -> ZkTerminal {
    let zk = ZkSettings {
        utc_offset_min: offset_min,
        allow_from: allow.iter().map(|s| s.to_string()).collect(),
    };
    app.core.add_zk_device(&app.tenant, sn, &zk).await.unwrap();
    assert!(app.core.bind_device(app.tenant.id, sn).await.unwrap());
    ZkTerminal::new(&app.base, sn)
}

async fn punches(app: &TestApp, user_id: &str, day: &str) -> Vec<(String, CheckinRecord)> {
    app.core
        .checkins_on(app.tenant.id, user_id, day)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_terminal_is_pending_until_added_and_served_once_bound() {
    let app = spawn_app().await;
    let mut t = ZkTerminal::new(&app.base, "ZK-NEW-1");
    let e = t.init().await.unwrap_err().to_string();
    assert!(
        e.contains("403") && e.contains("FAIL: this terminal is not admitted"),
        "{e}"
    );
    assert_eq!(t.poll(None).await.unwrap().0, 403);
    let pending = app.core.pending_devices().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].sn.as_str(), pending[0].address.as_str()),
        ("ZK-NEW-1", "127.0.0.1")
    );

    // Added, it leaves the pending list; unbound, it still gets nothing.
    let zk = ZkSettings {
        utc_offset_min: 480,
        allow_from: vec![],
    };
    app.core
        .add_zk_device(&app.tenant, "ZK-NEW-1", &zk)
        .await
        .unwrap();
    assert!(app.core.pending_devices().await.unwrap().is_empty());
    let e = t.init().await.unwrap_err().to_string();
    assert!(
        e.contains("403") && e.contains("not admitted"),
        "unbound: the same answer: {e}"
    );

    assert!(
        app.core
            .bind_device(app.tenant.id, "ZK-NEW-1")
            .await
            .unwrap()
    );
    t.init().await.unwrap();
    assert_eq!(t.utc_offset_min, 480);
    assert_eq!(t.options["TimeZone"], "8");
    assert_eq!(t.options["Delay"], "10");
    assert_eq!(t.options["ATTLOGStamp"], "0");
    assert_eq!(
        t.options["TransFlag"],
        "TransData AttLog\tOpLog\tEnrollFP\tChgFP\tFACE\tEnrollFACE\tChgFACE"
    );
    assert_eq!(t.options["OPERLOGStamp"], "0");
    assert_eq!(t.options["MultiBioDataSupport"], "0:1:1:0:0:0:0:0:0:1:0");
    let (status, body) = t.get("/iclock/cdata?SN=ZK-NEW-1&type=time").await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.starts_with("Time=20") && body.ends_with("+08:00"),
        "{body}"
    );
    assert_eq!(
        t.poll(Some("Ver 6.8.0(build640),2,0,0,10.0.0.9,10,-1,0,101"))
            .await
            .unwrap(),
        (200, "OK".to_string())
    );
    let row = app
        .core
        .tenant_device(app.tenant.id, "ZK-NEW-1")
        .await
        .unwrap();
    let info = row.push_info.clone().unwrap();
    assert_eq!(info.firmware.as_deref(), Some("Ver 6.8.0(build640)"));
    assert_eq!(
        (info.users, info.fp_version.as_deref()),
        (Some(2), Some("10"))
    );
    assert_eq!(row.firmware_version.as_deref(), Some("Ver 6.8.0(build640)"));
    assert!(app.core.presence(&row).online);

    // Unbound, it is refused again; a WeCom terminal's SN is no way in.
    assert!(
        app.core
            .unbind_device(app.tenant.id, "ZK-NEW-1")
            .await
            .unwrap()
    );
    assert_eq!(t.poll(None).await.unwrap().0, 403);
    app.core
        .add_device(&app.tenant, "WECOM-1", "zk-test-factory-secret-77")
        .await
        .unwrap();
    app.core
        .bind_device(app.tenant.id, "WECOM-1")
        .await
        .unwrap();
    let w = ZkTerminal::new(&app.base, "WECOM-1");
    assert_eq!(w.poll(None).await.unwrap().0, 403);
    // And a ZKTeco SN is no way into WeCom bring-up: not in pending either.
    assert!(app.core.pending_devices().await.unwrap().is_empty());
}

#[tokio::test]
async fn punches_become_punch_records_in_the_terminal_s_zone() {
    let app = spawn_app().await;
    person(&app, &app.tenant, "1001").await;
    person(&app, &app.tenant, "1002").await;
    let mut t = bound(&app, "ZK-1", 480, &[]).await;
    t.init().await.unwrap();
    t.punch("1001", T0, 0, 15);
    t.punch("1002", T0 + 60, 1, 1);
    t.punch("1001", T0 + 120, 0, 0);
    t.punch("9999", T0 + 180, 0, 1); // no such person: acknowledged, dropped
    assert_eq!(t.upload().await.unwrap(), (200, "OK: 4".to_string()));
    assert!(t.unsent.is_empty());
    let got = punches(&app, "1001", "2025-11-23").await;
    assert_eq!(
        got,
        [
            (
                "ZK-1".to_string(),
                CheckinRecord {
                    timestamp: T0,
                    pass_type: None,
                    pass_method: Some(1)
                }
            ),
            (
                "ZK-1".to_string(),
                CheckinRecord {
                    timestamp: T0 + 120,
                    pass_type: None,
                    pass_method: None
                }
            ),
        ]
    );
    assert_eq!(
        punches(&app, "1002", "2025-11-23").await[0].1.pass_method,
        Some(4)
    );

    // The same punches again (a terminal that missed the OK) add nothing.
    t.punch("1001", T0, 0, 15);
    t.punch("1002", T0 + 60, 1, 1);
    assert_eq!(t.upload().await.unwrap().0, 200);
    assert_eq!(punches(&app, "1001", "2025-11-23").await.len(), 2);
    assert_eq!(punches(&app, "1002", "2025-11-23").await.len(), 1);

    // The next init resumes from the last upload's stamp.
    t.init().await.unwrap();
    assert_eq!(t.options["ATTLOGStamp"], "2");

    // The records are the tenant's user flows, read with the platform's API.
    let admin = make_app(&app.core, &app.tenant, &["attendance:task:readonly"]).await;
    let token = app.token_for(&admin.app_id, &admin.app_secret).await;
    let v = app
        .post_json(
            "/open-apis/attendance/v1/user_flows/query?employee_type=employee_id",
            &token,
            &json!({"user_ids": ["1001"], "check_time_from": (T0 - 10).to_string(),
                    "check_time_to": (T0 + 1000).to_string()}),
        )
        .await;
    let flows = v["data"]["user_flow_results"].as_array().unwrap();
    assert_eq!(flows.len(), 2, "{v}");
    assert_eq!(flows[0]["location_name"], "ZK-1");
}

#[tokio::test]
async fn bad_uploads_are_refused_whole_and_kept_by_the_terminal() {
    let app = spawn_with(|c| c.device.push_body_mib = 1).await;
    person(&app, &app.tenant, "1001").await;
    let mut t = bound(&app, "ZK-2", 0, &[]).await;
    t.init().await.unwrap();
    t.punch("1001", T0, 0, 1);
    t.unsent.push(facehub_devsim::zk::LogPunch {
        pin: "1001".into(),
        at: T0 + 60,
        state: 300,
        verify: 1,
    });
    let (status, body) = t.upload().await.unwrap();
    assert_eq!(status, 400);
    assert_eq!(body, "FAIL: line 2: state must be a number from 0 to 255");
    assert_eq!(t.unsent.len(), 2, "the terminal keeps them");
    assert!(
        punches(&app, "1001", "2025-11-23").await.is_empty(),
        "nothing half-stored"
    );

    let post = |body: &[u8]| t.post("/iclock/cdata?SN=ZK-2&table=ATTLOG", body.to_vec());
    for (body, says) in [
        (
            &b"1001\t23/11/2025 09:00\t0\t1"[..],
            "FAIL: line 1: time must be",
        ),
        (
            b"1001\t2025-11-23 09:00:00\t0",
            "FAIL: line 1: expected PIN",
        ),
        (
            b"1001\t2025-11-23 09:00:00\t0\t1\n\xc3\x28",
            "FAIL: line 2: not UTF-8",
        ),
    ] {
        let (status, answer) = post(body).await.unwrap();
        assert_eq!(status, 400, "{answer}");
        assert!(answer.starts_with(says), "{answer}");
    }
    let (status, answer) = post(&vec![b'x'; (1 << 20) + 1]).await.unwrap();
    assert_eq!(
        (status, answer.contains("push_body_mib")),
        (413, true),
        "{answer}"
    );
    assert!(punches(&app, "1001", "2025-11-23").await.is_empty());

    // Tables facehub does not take are acknowledged unread; so are the
    // lines of the operation log that are no templates.
    let (status, answer) = t
        .post(
            "/iclock/cdata?SN=ZK-2&table=OPERLOG",
            b"USER PIN=1\tName=x".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!((status, answer.as_str()), (200, "OK: 0"));
    let (status, answer) = t
        .post(
            "/iclock/cdata?SN=ZK-2&table=ERRORLOG",
            b"ERRORLOG x".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!((status, answer.as_str()), (200, "OK"));
    // Command results, batched, are read; a malformed batch is refused.
    assert_eq!(
        t.results(&[(1, 0, "DATA"), (2, -1004, "DATA")])
            .await
            .unwrap()
            .0,
        200
    );
    let (status, answer) = t
        .post("/iclock/devicecmd?SN=ZK-2", b"Return=0&CMD=DATA".to_vec())
        .await
        .unwrap();
    assert_eq!(status, 400, "{answer}");
    // Bad serial numbers and queries.
    assert_eq!(t.get("/iclock/getrequest?SN=").await.unwrap().0, 400);
    assert_eq!(t.get("/iclock/getrequest?SN=a%20b").await.unwrap().0, 400);
    assert_eq!(t.get("/iclock/getrequest").await.unwrap().0, 400);
    assert_eq!(
        t.get("/iclock/ping?SN=ZK-2").await.unwrap(),
        (200, "OK".into())
    );
    assert_eq!(
        t.get("/iclock/getrequest.aspx?SN=ZK-2").await.unwrap().0,
        200
    );

    // The good punch, sent alone, lands.
    t.unsent.pop();
    assert_eq!(t.upload().await.unwrap().0, 200);
    assert_eq!(punches(&app, "1001", "2025-11-23").await.len(), 1);
}

#[tokio::test]
async fn a_terminal_may_call_only_from_its_networks_and_for_its_tenant() {
    let app = spawn_app().await;
    let other = app.core.create_tenant("other-co").await.unwrap();
    person(&app, &other, "1001").await;
    person(&app, &app.tenant, "1001").await;
    let mut far = bound(&app, "ZK-FAR", 0, &["10.9.0.0/16"]).await;
    let e = far.init().await.unwrap_err().to_string();
    assert!(e.contains("403") && e.contains("not admitted"), "{e}");
    far.punch("1001", T0, 0, 1);
    assert_eq!(far.upload().await.unwrap().0, 403);

    let mut near = bound(&app, "ZK-NEAR", 0, &["127.0.0.0/8"]).await;
    near.init().await.unwrap();
    near.punch("1001", T0, 0, 1);
    assert_eq!(near.upload().await.unwrap().0, 200);
    // The punch is the terminal's tenant's, not the other's.
    assert_eq!(punches(&app, "1001", "2025-11-23").await.len(), 1);
    let theirs = app
        .core
        .checkins_on(other.id, "1001", "2025-11-23")
        .await
        .unwrap();
    assert!(theirs.is_empty());
    // Refused settings.
    let bad = |offset, allow: &[&str]| ZkSettings {
        utc_offset_min: offset,
        allow_from: allow.iter().map(|s| s.to_string()).collect(),
    };
    for s in [
        bad(900, &[]),
        bad(0, &["10.0.0.0/40"]),
        bad(0, &["nowhere"]),
    ] {
        assert!(
            app.core
                .add_zk_device(&app.tenant, "ZK-X", &s)
                .await
                .is_err()
        );
    }
}

fn book(t: &ZkTerminal) -> Vec<(&str, &str)> {
    t.users
        .iter()
        .map(|(pin, name)| (pin.as_str(), name.as_str()))
        .collect()
}

async fn seen(app: &TestApp, sn: &str) -> (i64, i64) {
    let row = app.core.tenant_device(app.tenant.id, sn).await.unwrap();
    let version = app.core.perm_version(app.tenant.id).await.unwrap();
    (row.seen_version, version)
}

#[tokio::test]
async fn the_address_book_reaches_a_terminal_and_follows_each_change() {
    let app = spawn_app().await;
    named(&app, &app.tenant, "1001", "Ann").await;
    named(&app, &app.tenant, "1002", "Bob").await;
    let mut t = bound(&app, "ZK-S", 0, &[]).await;
    t.init().await.unwrap();
    assert_eq!(t.sync_all().await.unwrap(), 2);
    assert_eq!(book(&t), [("1001", "Ann"), ("1002", "Bob")]);
    let (s, v) = seen(&app, "ZK-S").await;
    assert_eq!(s, v, "confirmed: the terminal holds the version");
    assert_eq!(t.poll(None).await.unwrap(), (200, "OK".to_string()));

    // A new person and an erased one: one batch. (A rename is not a
    // change of the address book: the change log names who, not names.)
    named(&app, &app.tenant, "1003", "Cy").await;
    app.core
        .erase_person(app.tenant.id, "1002", ActorKind::Admin, "test", None)
        .await
        .unwrap();
    let n = t.sync().await.unwrap();
    assert_eq!(n, 2, "{:?}", t.received);
    assert_eq!(book(&t), [("1001", "Ann"), ("1003", "Cy")]);
    assert_eq!(t.sync().await.unwrap(), 0);
    let (s, v) = seen(&app, "ZK-S").await;
    assert_eq!(s, v);
    // The device list says what it speaks and that it is in step.
    let admin = make_app(&app.core, &app.tenant, &["facehub:device"]).await;
    let token = app.token_for(&admin.app_id, &admin.app_secret).await;
    let (status, list) = app.get_json("/open-apis/facehub/v1/devices", &token).await;
    assert_eq!(status, 200, "{list}");
    let item = &list["data"]["items"][0];
    assert_eq!(item["sn"], "ZK-S");
    assert_eq!(item["protocol"], "zkteco");
    assert_eq!(
        (&item["backlog"], &item["online"]),
        (&json!(0), &json!(true)),
        "{item}"
    );

    // Unbound and bound again, it starts over with the whole book.
    app.core.unbind_device(app.tenant.id, "ZK-S").await.unwrap();
    assert_eq!(seen(&app, "ZK-S").await.0, 0);
    app.core.bind_device(app.tenant.id, "ZK-S").await.unwrap();
    t.users.clear();
    named(&app, &app.tenant, "1001", "Ann Lee").await;
    assert_eq!(t.sync_all().await.unwrap(), 2);
    assert_eq!(book(&t), [("1001", "Ann Lee"), ("1003", "Cy")]);
    // Enrolments from facehub are WeCom's: refused, not left to time out.
    let e = app
        .core
        .start_enrolment(app.tenant.id, "ZK-S", "1001", "fa")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ZKTeco terminal"), "{e}");
    // Another tenant's people never reach it.
    let other = app.core.create_tenant("other-co").await.unwrap();
    person(&app, &other, "2001").await;
    assert_eq!(t.sync().await.unwrap(), 0);
}

#[tokio::test]
async fn a_batch_is_sent_again_until_confirmed_and_a_lasting_failure_is_given_up() {
    let app = spawn_app().await;
    person(&app, &app.tenant, "1001").await;
    let mut t = bound(&app, "ZK-R", 0, &[]).await;
    t.init().await.unwrap();
    let (status, first) = t.poll(None).await.unwrap();
    assert_eq!(status, 200);
    assert!(
        first.starts_with("C:1:DATA UPDATE USERINFO PIN=1001\tName=1001"),
        "{first}"
    );
    // Unanswered, the batch waits for its results (device.push_resend_secs).
    assert_eq!(t.poll(None).await.unwrap().1, "OK");
    // A failure a retry may mend (no space): sent again at once.
    t.refuse.insert("1001".into(), -5);
    t.results(&[(1, -5, "DATA")]).await.unwrap();
    assert_eq!(seen(&app, "ZK-R").await.0, 0);
    assert_eq!(t.sync().await.unwrap(), 1, "sent again, refused again");
    t.refuse.clear();
    assert_eq!(t.sync().await.unwrap(), 1);
    assert_eq!(book(&t), [("1001", "1001")]);
    assert_eq!(t.sync().await.unwrap(), 0);
    let (s, v) = seen(&app, "ZK-R").await;
    assert_eq!(s, v);

    // A failure a retry cannot mend (PIN refused) is given up: the
    // terminal moves on. Results of an older batch change nothing.
    person(&app, &app.tenant, "1002").await;
    t.refuse.insert("1002".into(), -10);
    assert_eq!(t.sync().await.unwrap(), 1);
    assert_eq!(t.sync().await.unwrap(), 0);
    let (s, v) = seen(&app, "ZK-R").await;
    assert_eq!(s, v);
    assert_eq!(t.results(&[(1, 0, "DATA")]).await.unwrap().0, 200);
    assert_eq!(seen(&app, "ZK-R").await.0, v);
}

#[tokio::test]
async fn a_batch_unconfirmed_past_the_resend_time_is_sent_again() {
    let app = spawn_with(|c| c.device.push_resend_secs = 0).await;
    person(&app, &app.tenant, "1001").await;
    let t = bound(&app, "ZK-T", 0, &[]).await;
    let (_, first) = t.poll(None).await.unwrap();
    let (_, again) = t.poll(None).await.unwrap();
    assert!(
        first.starts_with("C:1:DATA UPDATE USERINFO PIN=1001"),
        "{first}"
    );
    assert!(
        again.starts_with("C:2:DATA UPDATE USERINFO PIN=1001"),
        "{again}"
    );
    // The first batch's result is no longer awaited; the second's is.
    t.results(&[(1, 0, "DATA")]).await.unwrap();
    assert_eq!(seen(&app, "ZK-T").await.0, 0);
    t.results(&[(2, 0, "DATA")]).await.unwrap();
    let (s, v) = seen(&app, "ZK-T").await;
    assert_eq!(s, v);
}

#[tokio::test]
async fn a_new_terminal_gets_its_whole_book_in_batches_of_200() {
    let app = spawn_app().await;
    for i in 0..450 {
        person(&app, &app.tenant, &format!("{}", 10_000 + i)).await;
    }
    let mut t = bound(&app, "ZK-F", 0, &[]).await;
    let mut batches = Vec::new();
    loop {
        match t.sync().await.unwrap() {
            0 => break,
            n => batches.push(n),
        }
    }
    assert_eq!(batches, [200, 200, 50]);
    assert_eq!(t.users.len(), 450);
    let (s, v) = seen(&app, "ZK-F").await;
    assert_eq!(s, v);
    // Then one change is one command.
    person(&app, &app.tenant, "99999").await;
    assert_eq!(t.sync().await.unwrap(), 1);
    assert_eq!(t.users.len(), 451);
}

#[tokio::test]
async fn a_zkteco_serial_number_is_no_way_into_wecom_bring_up() {
    let app = spawn_app().await;
    let _ = bound(&app, "ZK-W", 0, &[]).await;
    let url = format!("ws://{}/", app.addr);
    let d = facehub_devsim::Device::connect(&url, "ZK-W", (&[], &[]), None)
        .await
        .unwrap();
    // Neither the empty SecretNo nor a guess signs a register for it.
    for secret_no in ["", "zk-test-factory-secret-77"] {
        let e = d.register(secret_no, app.core.now()).await.unwrap_err();
        assert!(e.to_string().contains("600014"), "{e}");
    }
}

#[tokio::test]
async fn a_failed_page_of_a_full_sync_is_sent_again_before_the_next() {
    let app = spawn_app().await;
    for i in 0..250 {
        person(&app, &app.tenant, &format!("{}", 10_000 + i)).await;
    }
    let mut t = bound(&app, "ZK-P", 0, &[]).await;
    t.refuse.insert("10005".into(), -5);
    assert_eq!(t.sync().await.unwrap(), 200);
    t.refuse.clear();
    // The same page again (all of it), then the rest.
    assert_eq!(t.sync().await.unwrap(), 200);
    assert_eq!(t.sync().await.unwrap(), 50);
    assert_eq!(t.sync().await.unwrap(), 0);
    assert_eq!(t.users.len(), 250);
    let (s, v) = seen(&app, "ZK-P").await;
    assert_eq!(s, v);
}

#[tokio::test]
async fn a_terminal_far_behind_replays_every_change_and_a_large_one_in_parts() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..250 {
        let id = format!("{}", 10_000 + i);
        person(&app, &app.tenant, &id).await;
        ids.push(id);
    }
    let mut t = bound(&app, "ZK-B", 0, &[]).await;
    t.sync_all().await.unwrap();
    assert_eq!(t.users.len(), 250);

    // Twenty versions while it was away, one of them an erasure: replayed,
    // not replaced by a full sync that would leave the erased person on it.
    for i in 0..19 {
        person(&app, &app.tenant, &format!("{}", 20_000 + i)).await;
    }
    app.core
        .erase_person(app.tenant.id, "10007", ActorKind::Admin, "test", None)
        .await
        .unwrap();
    t.sync_all().await.unwrap();
    assert_eq!(t.users.len(), 250 + 19 - 1);
    assert!(!t.users.contains_key("10007"));
    let (s, v) = seen(&app, "ZK-B").await;
    assert_eq!(s, v);

    // One version naming more people than a batch holds: in parts, in PIN
    // order, and the terminal holds the version only after the last part.
    t.users.clear();
    let everyone: Vec<DeviceUser> = ids
        .iter()
        .filter(|id| *id != "10007")
        .map(|id| DeviceUser {
            userid: id.clone(),
            user_type: 0,
        })
        .collect();
    let change = Change {
        update_user: everyone,
        ..Change::default()
    };
    let version = app
        .core
        .record_change(app.tenant.id, &change)
        .await
        .unwrap();
    assert_eq!(t.sync().await.unwrap(), 200);
    assert!(seen(&app, "ZK-B").await.0 < version);
    // The second part fails in a way a retry mends: the same part again.
    t.refuse.insert("10240".into(), -3);
    assert_eq!(t.sync().await.unwrap(), 49);
    t.refuse.clear();
    assert!(!t.users.contains_key("10240"));
    assert!(seen(&app, "ZK-B").await.0 < version);
    assert_eq!(t.sync().await.unwrap(), 49);
    assert_eq!(t.sync().await.unwrap(), 0);
    assert_eq!(t.users.len(), 249);
    assert_eq!(seen(&app, "ZK-B").await.0, version);
}
