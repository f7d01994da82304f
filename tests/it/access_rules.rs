//! Access rules through `acs/v1/rule_external`: three terminals, two (then
//! three) rules; after every rule change, binding, valid-day turn, a
//! terminal away across changes and a server restart, each terminal's
//! address book is exactly the people its rules allow — as its pushes
//! built it and as a full pull reads it — with the rules' weekly windows
//! as each person's pass rules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::app::*;
use facehub::domain::{Core, PersonDraft, Tenant};
use facehub_devsim::Device;
use serde_json::{Value, json};

const SECRET_NO: &str = "rules-factory-secret-2207";
const WORKDAYS: &str = "8:30-18:00 * * 1,2,3,4,5 *";
const ALL_DAY: &str = "0:00-23:59 * * * *";

/// One server on a directory, reached over HTTP and the device protocol.
struct Site {
    core: Arc<Core>,
    ws: String,
    http: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    async fn start(dir: &std::path::Path) -> Site {
        let (core, ws, stop, task) = start_at(dir).await;
        let http = ws
            .replacen("ws://", "http://", 1)
            .trim_end_matches('/')
            .to_string();
        Site {
            core,
            ws,
            http,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }

    async fn token(&self, tenant: &Tenant) -> String {
        let scopes = ["acs:rule_external", "acs:device:readonly"];
        let creds = make_app(&self.core, tenant, &scopes).await;
        let body = json!({"app_id": creds.app_id, "app_secret": creds.app_secret});
        crate::common::tenant_token(&self.http, &body).await
    }

    /// A terminal of `tenant` logged in, its book caught up.
    async fn terminal(&self, tenant: &Tenant, sn: &str) -> Arc<Device> {
        let db = &self.core.store_for_tests().db;
        if db.device(sn).await.unwrap().is_none() {
            self.core.add_device(tenant, sn, SECRET_NO).await.unwrap();
            self.core.bind_device(tenant.id, sn).await.unwrap();
        }
        let d = Device::connect(&self.ws, sn, (&["A"], &[]), None)
            .await
            .unwrap();
        d.bring_up(SECRET_NO, self.core.now()).await.unwrap();
        d.catch_up().await.unwrap();
        d
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.http))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_eq!((status, &v["code"]), (200, &json!(0)), "{path}: {v}");
        v
    }

    /// Creates a rule (or replaces `rule_id`); its id.
    async fn put_rule(&self, token: &str, rule_id: Option<&str>, rule: Value) -> String {
        let query = rule_id.map_or(String::new(), |r| format!("&rule_id={r}"));
        let path = format!("/open-apis/acs/v1/rule_external?user_id_type=user_id{query}");
        let v = self
            .send(
                reqwest::Method::POST,
                &path,
                token,
                Some(json!({"rule": rule})),
            )
            .await;
        v["data"]["rule_id"].as_str().unwrap().to_string()
    }

    async fn bind(&self, token: &str, device_id: &str, rule_ids: &[&str]) {
        let body = json!({"device_id": device_id, "rule_ids": rule_ids});
        let path = "/open-apis/acs/v1/rule_external/device_bind";
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await;
    }

    /// The `device_id` of each terminal, by sn.
    async fn device_ids(&self, token: &str) -> BTreeMap<String, String> {
        let v = self
            .send(
                reqwest::Method::GET,
                "/open-apis/acs/v1/devices",
                token,
                None,
            )
            .await;
        v["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["device_sn"].as_str().unwrap().to_string(),
                    d["device_id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

async fn person(core: &Core, t: &Tenant, user_id: &str) {
    let d = PersonDraft::new(user_id, &format!("Name of {user_id}"), None).unwrap();
    core.upsert_person(t, &d).await.unwrap();
}

/// Who the terminal holds, with their pass rules.
async fn held(d: &Device) -> BTreeMap<String, Vec<String>> {
    let book = d.book.lock().await;
    book.users
        .iter()
        .map(|((u, _), user)| (u.clone(), user.pass_rules.clone()))
        .collect()
}

/// Each terminal's book, once its pushes are applied, is `want` (people
/// with their pass rules), at the tenant's version; a full pull reads the
/// same.
async fn expect(core: &Core, t: &Tenant, want: &[(&Device, Holds<'_>)]) {
    let version = core.perm_version(t.id).await.unwrap();
    for (d, people) in want {
        let want: BTreeMap<String, Vec<String>> = people
            .iter()
            .map(|(u, rules)| (u.to_string(), rules.iter().map(|r| r.to_string()).collect()))
            .collect();
        // Pushes for the latest versions may still be on their way.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            d.drain_pushes(Duration::from_millis(150)).await.unwrap();
            let at = d.book.lock().await.perm_version;
            if at >= version || tokio::time::Instant::now() > deadline {
                break;
            }
        }
        assert_eq!(d.book.lock().await.perm_version, version, "{}", d.sn);
        assert_eq!(held(d).await, want, "{} by its pushes", d.sn);
        d.full_pull(2).await.unwrap();
        assert_eq!(held(d).await, want, "{} by a full pull", d.sn);
    }
}

/// People a terminal holds, with their pass rules.
type Holds<'a> = &'a [(&'a str, &'a [&'a str])];

/// Everyone, at all hours (a terminal bound to no rule).
const EVERYONE: &[(&str, &[&str])] = &[("ann", &[]), ("bob", &[]), ("cy", &[]), ("dan", &[])];

#[tokio::test]
async fn each_terminal_holds_exactly_the_people_its_rules_allow() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(dir.path()).await;
    let t = site.core.create_tenant("rules").await.unwrap();
    for u in ["ann", "bob", "cy", "dan"] {
        person(&site.core, &t, u).await;
    }
    let token = site.token(&t).await;
    let (a, b, c) = (
        site.terminal(&t, "RULE-A").await,
        site.terminal(&t, "RULE-B").await,
        site.terminal(&t, "RULE-C").await,
    );
    let ids = site.device_ids(&token).await;
    let id = |sn: &str| ids[sn].clone();
    expect(
        &site.core,
        &t,
        &[(&a, EVERYONE), (&b, EVERYONE), (&c, EVERYONE)],
    )
    .await;

    // Workdays at the front door for ann and bob.
    let front = site
        .put_rule(
            &token,
            None,
            json!({
                "name": "front door",
                "users": [{"user_type": 1, "user_id": "ann"}, {"user_type": 1, "user_id": "bob"}],
                "devices": [{"id": id("RULE-A")}],
                "opening_time": {"weekdays": [1, 2, 3, 4, 5],
                                 "day_times": [{"start_hhmm": 830, "end_hhmm": 1800}]},
            }),
        )
        .await;
    expect(
        &site.core,
        &t,
        &[
            (&a, &[("ann", &[WORKDAYS]), ("bob", &[WORKDAYS])]),
            (&b, EVERYONE),
            (&c, EVERYONE),
        ],
    )
    .await;

    // cy at all hours on A and B.
    let lab = site
        .put_rule(
            &token,
            None,
            json!({"name": "lab", "users": [{"user_id": "cy"}],
                   "devices": [{"id": id("RULE-A")}, {"id": id("RULE-B")}]}),
        )
        .await;
    expect(
        &site.core,
        &t,
        &[
            (
                &a,
                &[
                    ("ann", &[WORKDAYS]),
                    ("bob", &[WORKDAYS]),
                    ("cy", &[ALL_DAY]),
                ],
            ),
            (&b, &[("cy", &[ALL_DAY])]),
            (&c, EVERYONE),
        ],
    )
    .await;

    // bob leaves the front door; its window moves: ann re-reads hers.
    site.put_rule(
        &token,
        Some(&front),
        json!({"name": "front door", "users": [{"user_id": "ann"}],
               "opening_time": {"weekdays": [6, 7],
                                "day_times": [{"start_hhmm": 900, "end_hhmm": 1200}]}}),
    )
    .await;
    let weekends = "9:00-12:00 * * 0,6 *";
    expect(
        &site.core,
        &t,
        &[
            (&a, &[("ann", &[weekends]), ("cy", &[ALL_DAY])]),
            (&b, &[("cy", &[ALL_DAY])]),
            (&c, EVERYONE),
        ],
    )
    .await;

    // C is bound to the lab rule alone.
    site.bind(&token, &id("RULE-C"), &[&lab]).await;
    expect(&site.core, &t, &[(&c, &[("cy", &[ALL_DAY])])]).await;

    // The rules as the API lists them: all, and those of one terminal.
    let v = site
        .send(
            reqwest::Method::GET,
            "/open-apis/acs/v1/rule_external?user_id_type=user_id",
            &token,
            None,
        )
        .await;
    let rules = v["data"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{v}");
    let listed = &rules[0];
    assert_eq!(listed["id"], json!(front));
    assert_eq!(listed["name"], "front door");
    assert_eq!(listed["user_count"], "1");
    assert_eq!(
        listed["users"],
        json!([{"user_id": "ann", "user_name": "Name of ann", "user_type": 1}])
    );
    assert_eq!(listed["visitor_count"], "0");
    assert_eq!(
        listed["devices"],
        json!([{"id": id("RULE-A"), "name": "RULE-A"}])
    );
    assert_eq!(
        listed["opening_time"],
        json!({"weekdays": [6, 7], "day_times": [{"start_hhmm": 900, "end_hhmm": 1200}]})
    );
    assert_eq!(listed["remind_face"], false);
    assert_eq!(listed["is_temp"], false);
    let of_c = site
        .send(
            reqwest::Method::GET,
            &format!("/open-apis/acs/v1/rule_external?device_id={}", id("RULE-C")),
            &token,
            None,
        )
        .await;
    let of_c = of_c["data"]["rules"].as_array().unwrap();
    assert_eq!(of_c.len(), 1);
    assert_eq!(of_c[0]["id"], json!(lab));
    // A terminal's scope check follows its book.
    let check = b
        .call("check_userid", json!({"userid_item": [{"userid": "cy", "user_type": 0}, {"userid": "ann", "user_type": 0}]}))
        .await
        .unwrap();
    assert_eq!(
        check["legal_userid_item"],
        json!([{"userid": "cy", "user_type": 0}])
    );
    assert_eq!(
        check["illegal_userid_item"],
        json!([{"userid": "ann", "user_type": 0}])
    );

    // B goes away; dan joins the lab, C goes back to the whole tenant,
    // and the server restarts before B returns.
    let b_book = b.book.lock().await.clone();
    drop(b);
    site.put_rule(
        &token,
        Some(&lab),
        json!({"users": [{"user_id": "cy"}, {"user_id": "dan"}]}),
    )
    .await;
    site.bind(&token, &id("RULE-C"), &[]).await;
    expect(
        &site.core,
        &t,
        &[
            (
                &a,
                &[
                    ("ann", &[weekends]),
                    ("cy", &[ALL_DAY]),
                    ("dan", &[ALL_DAY]),
                ],
            ),
            (&c, EVERYONE),
        ],
    )
    .await;
    drop((a, c));
    site.stop().await;
    let site = Site::start(dir.path()).await;
    let token = site.token(&t).await;
    let b = Device::connect(&site.ws, "RULE-B", (&["A"], &[]), None)
        .await
        .unwrap();
    *b.book.lock().await = b_book;
    b.bring_up(SECRET_NO, site.core.now()).await.unwrap();
    // As a terminal does after every login: its version against the
    // server's (pushes sent as its connection died are lost to it).
    b.catch_up().await.unwrap();
    expect(
        &site.core,
        &t,
        &[(&b, &[("cy", &[ALL_DAY]), ("dan", &[ALL_DAY])])],
    )
    .await;

    // A rule with valid days: bob at C only while it holds. C is bound to
    // it, so C holds nobody until it starts.
    let a = site.terminal(&t, "RULE-A").await;
    let c = site.terminal(&t, "RULE-C").await;
    let now = site.core.now();
    let visit = site
        .put_rule(
            &token,
            None,
            json!({"name": "visit", "users": [{"user_id": "bob"}], "is_temp": true,
                   "devices": [{"id": id("RULE-C")}],
                   "opening_time": {"valid_day": {"start_day": now + 100, "end_day": now + 200}}}),
        )
        .await;
    expect(&site.core, &t, &[(&c, &[])]).await;
    site.core.advance_clock(150);
    wait_for_version(&site.core, &t, &c).await;
    expect(&site.core, &t, &[(&c, &[("bob", &[ALL_DAY])])]).await;
    site.core.advance_clock(100);
    wait_for_version(&site.core, &t, &c).await;
    expect(&site.core, &t, &[(&c, &[])]).await;

    // Deleting a rule takes its people off its terminals; a terminal left
    // with no rule holds the whole tenant again.
    let delete = |rule: String| {
        let path = format!("/open-apis/acs/v1/rule_external?rule_id={rule}");
        let site = &site;
        let token = token.clone();
        async move {
            site.send(reqwest::Method::DELETE, &path, &token, None)
                .await
        }
    };
    delete(front).await;
    delete(visit).await;
    expect(
        &site.core,
        &t,
        &[
            (&a, &[("cy", &[ALL_DAY]), ("dan", &[ALL_DAY])]),
            (&b, &[("cy", &[ALL_DAY]), ("dan", &[ALL_DAY])]),
            (&c, EVERYONE),
        ],
    )
    .await;
    // Every write was audited.
    let puts = site
        .core
        .audit_page(
            t.id,
            &facehub::domain::audit::AuditFilter {
                action: Some("access_rule.put".into()),
                ..Default::default()
            },
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(puts.len(), 5);
    site.stop().await;
}

/// Waits until the clock's turn of a rule was logged as a version beyond
/// what `d` holds.
async fn wait_for_version(core: &Core, t: &Tenant, d: &Device) {
    let held = d.book.lock().await.perm_version;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while core.perm_version(t.id).await.unwrap() <= held {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rule's turn was never logged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn rule_writes_refuse_what_is_not_the_tenants_or_not_a_rule() {
    let app = spawn_app().await;
    app.add_person("ann", "Ann").await;
    let creds = make_app(&app.core, &app.tenant, &["acs:rule_external"]).await;
    let token = app.token_for(&creds.app_id, &creds.app_secret).await;
    let post = |path: &'static str, body: Value| {
        let req = app
            .client
            .post(app.url(path))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let rule = "/open-apis/acs/v1/rule_external?user_id_type=user_id";
    let refused = [
        (json!({}), 99992402, "rule is required"),
        (json!({"rule": {"users": []}}), 99992402, "name is required"),
        (
            json!({"rule": {"name": "x", "users": [{"user_id": "nobody"}]}}),
            1490101,
            "user not found",
        ),
        (
            json!({"rule": {"name": "x", "users": [{}]}}),
            99992402,
            "users[0].user_id",
        ),
        (
            json!({"rule": {"name": "x", "devices": [{"id": "1"}]}}),
            99992402,
            "device_id",
        ),
        (
            json!({"rule": {"name": "x", "visitors": [{"user_id": "ann"}]}}),
            99992402,
            "not a visitor",
        ),
        (
            json!({"rule": {"name": "x", "opening_time": {"weekdays": [9]}}}),
            99992402,
            "weekday",
        ),
        (
            json!({"rule": {"name": "x", "opening_time": {"day_times": [{"start_hhmm": 1800, "end_hhmm": 900}]}}}),
            99992402,
            "day_times",
        ),
        (
            json!({"rule": {"name": "x", "opening_time": {"weekdays": ["Monday"]}}}),
            99992402,
            "not an integer",
        ),
        (
            json!({"rule": {"name": "x", "opening_time": {"valid_day": {"start_day": 20, "end_day": 10}}}}),
            99992402,
            "after end_day",
        ),
    ];
    for (body, code, says) in refused {
        let (status, v) = post(rule, body.clone()).await;
        assert_eq!((status, &v["code"]), (400, &json!(code)), "{body}: {v}");
        assert!(v["msg"].as_str().unwrap().contains(says), "{body}: {v}");
    }
    let (status, v) = post(
        "/open-apis/acs/v1/rule_external?rule_id=123",
        json!({"rule": {"name": "x"}}),
    )
    .await;
    assert_eq!((status, &v["code"]), (400, &json!(99992402)), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("not a rule"), "{v}");
    let (status, v) = post(
        "/open-apis/acs/v1/rule_external/device_bind",
        json!({"device_id": "42", "rule_ids": []}),
    )
    .await;
    assert_eq!((status, &v["code"]), (400, &json!(99992402)), "{v}");
    // Reading needs a scope that may read.
    let (status, v) = app
        .get_json("/open-apis/acs/v1/rule_external", &app.token().await)
        .await;
    assert_eq!((status, &v["code"]), (400, &json!(99991672)), "{v}");
    // Nothing was stored by the refusals.
    assert!(
        app.core
            .store_for_tests()
            .db
            .rules(app.tenant.id)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The visitors a terminal holds, once its pushes are applied, at the
/// tenant's visitor version; a full pull of its visitor list reads the
/// same.
async fn expect_visitors(core: &Core, t: &Tenant, d: &Device, want: &[&str]) {
    let versions = core.store_for_tests().db.versions(t.id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        d.drain_pushes(Duration::from_millis(150)).await.unwrap();
        let book = d.book.lock().await;
        let at = (book.perm_version, book.visitor_version);
        drop(book);
        if at == (versions.people, versions.visitors) || tokio::time::Instant::now() > deadline {
            break;
        }
    }
    let held = |book: &facehub_devsim::Book| {
        let mut v: Vec<(String, i64)> = book.visitors.keys().cloned().collect();
        v.sort();
        v
    };
    let want: Vec<(String, i64)> = want.iter().map(|v| (v.to_string(), 1)).collect();
    {
        let book = d.book.lock().await;
        assert_eq!(book.visitor_version, versions.visitors, "{}", d.sn);
        assert_eq!(held(&book), want, "{} by its pushes", d.sn);
        // Visitors never travel in the staff list.
        assert!(book.users.keys().all(|(_, t)| *t != 1), "{}", d.sn);
    }
    d.pull(facehub_devsim::List::Visitors, 1).await.unwrap();
    assert_eq!(held(&*d.book.lock().await), want, "{} by a full pull", d.sn);
}

#[tokio::test]
async fn visitors_travel_in_their_own_list_and_go_when_their_visit_ends() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(dir.path()).await;
    let t = site.core.create_tenant("visits").await.unwrap();
    person(&site.core, &t, "ann").await;
    let creds = make_app(
        &site.core,
        &t,
        &["acs:rule_external", "acs:visitor", "acs:device:readonly"],
    )
    .await;
    let body = json!({"app_id": creds.app_id, "app_secret": creds.app_secret});
    let token = crate::common::tenant_token(&site.http, &body).await;
    let a = site.terminal(&t, "VISIT-A").await;
    let b = site.terminal(&t, "VISIT-B").await;
    let ids = site.device_ids(&token).await;

    let visitor = |name: &str| {
        let body = json!({"user": {"user_type": 2, "user_name": name, "phone_num": "13800000000"}});
        let (site, token) = (&site, token.clone());
        async move {
            let v = site
                .send(
                    reqwest::Method::POST,
                    "/open-apis/acs/v1/visitors",
                    &token,
                    Some(body),
                )
                .await;
            v["data"]["visitor_id"].as_str().unwrap().to_string()
        }
    };
    let vic = visitor("Vic").await;
    assert!(vic.bytes().all(|b| b.is_ascii_digit()), "{vic}");
    let now = site.core.now();
    let visit = site
        .put_rule(
            &token,
            None,
            json!({"name": "visit", "users": [{"user_id": "ann"}], "visitors": [{"user_id": vic}],
                   "devices": [{"id": ids["VISIT-A"]}],
                   "opening_time": {"valid_day": {"start_day": now - 10, "end_day": now + 100}}}),
        )
        .await;
    // A holds the visitor in its visitor list; B, bound to no rule, holds
    // the staff and no visitor.
    expect_visitors(&site.core, &t, &a, &[&vic]).await;
    expect_visitors(&site.core, &t, &b, &[]).await;
    expect(
        &site.core,
        &t,
        &[(&a, &[("ann", &[ALL_DAY])]), (&b, &[("ann", &[])])],
    )
    .await;
    let v = site
        .send(
            reqwest::Method::GET,
            "/open-apis/acs/v1/rule_external",
            &token,
            None,
        )
        .await;
    let listed = &v["data"]["rules"][0];
    assert_eq!(listed["visitor_count"], "1", "{v}");
    assert_eq!(
        listed["visitors"],
        json!([{"user_id": vic, "user_name": "Vic", "user_type": 2, "phone_num": "13800000000"}])
    );

    // A template of the visitor, enrolled at A, is an update of the
    // visitor list; B, which does not hold them, is refused it.
    let face = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"vic-face");
    let up = a.call(
        "upload_userinfo",
        json!({"userinfo": [{"userid": vic, "user_type": 1, "fa_list": [{"id": 0, "data": face}],
                            "fa_algorithm": "A"}]}),
    )
    .await
    .unwrap();
    assert_eq!(up["fail_list"], json!([]), "{up}");
    expect_visitors(&site.core, &t, &a, &[&vic]).await;
    let held = a.book.lock().await.visitors[&(vic.clone(), 1)]
        .fa
        .slots
        .len();
    assert_eq!(held, 1);
    let info = crate::common::userinfo(&b, &vic, 1).await;
    assert_eq!(info["userinfo"], json!([]), "{info}");

    // A second visitor; A is away while they are added, and comes back.
    let wes = visitor("Wes").await;
    let a_book = a.book.lock().await.clone();
    drop(a);
    site.put_rule(
        &token,
        Some(&visit),
        json!({"visitors": [{"user_id": vic}, {"user_id": wes}]}),
    )
    .await;
    let a = Device::connect(&site.ws, "VISIT-A", (&["A"], &[]), None)
        .await
        .unwrap();
    *a.book.lock().await = a_book;
    a.bring_up(SECRET_NO, site.core.now()).await.unwrap();
    a.catch_up().await.unwrap();
    let mut both = [vic.as_str(), wes.as_str()];
    both.sort();
    expect_visitors(&site.core, &t, &a, &both).await;

    // Deleting a visitor erases them and takes them off the terminals.
    site.send(
        reqwest::Method::DELETE,
        &format!("/open-apis/acs/v1/visitors/{vic}"),
        &token,
        None,
    )
    .await;
    expect_visitors(&site.core, &t, &a, &[&wes]).await;
    assert!(site.core.person(t.id, &vic).await.unwrap().is_none());
    // Staff cannot be deleted as visitors.
    let r = reqwest::Client::new()
        .delete(format!("{}/open-apis/acs/v1/visitors/ann", site.http))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(site.core.person(t.id, "ann").await.unwrap().is_some());

    // The visit ends: the terminal drops the visitor, and the retention
    // pass erases them.
    site.core.advance_clock(150);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !a.book.lock().await.visitors.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the visit never ended"
        );
        a.drain_pushes(Duration::from_millis(150)).await.unwrap();
    }
    expect_visitors(&site.core, &t, &a, &[]).await;
    assert!(site.core.person(t.id, &wes).await.unwrap().is_some());
    let pass = site.core.expire_records().await.unwrap();
    assert_eq!(pass.visitors, 1);
    assert!(site.core.person(t.id, &wes).await.unwrap().is_none());
    assert!(site.core.person(t.id, "ann").await.unwrap().is_some());
    drop((a, b));
    site.stop().await;
}

/// A ZKTeco terminal's address book follows its rules as a WeCom
/// terminal's does: the people its rules hold, gained and lost by
/// `DATA UPDATE|DELETE USERINFO` commands on its polls.
#[tokio::test]
async fn a_zkteco_terminal_holds_the_people_of_its_rules() {
    use facehub_devsim::zk::ZkTerminal;
    let dir = tempfile::tempdir().unwrap();
    let site = Site::start(dir.path()).await;
    let t = site.core.create_tenant("zk-rules").await.unwrap();
    for u in ["ann", "bob", "cy"] {
        person(&site.core, &t, u).await;
    }
    let zk = facehub::model::ZkSettings::default();
    site.core.add_zk_device(&t, "ZK-RULE", &zk).await.unwrap();
    site.core.bind_device(t.id, "ZK-RULE").await.unwrap();
    let mut z = ZkTerminal::new(&site.http, "ZK-RULE");
    z.sync_all().await.unwrap();
    let held = |z: &ZkTerminal| z.users.keys().cloned().collect::<Vec<_>>();
    assert_eq!(held(&z), ["ann", "bob", "cy"]);

    let token = site.token(&t).await;
    let rule = site
        .put_rule(
            &token,
            None,
            json!({"name": "front door", "users": [{"user_type": 1, "user_id": "ann"}]}),
        )
        .await;
    let ids = site.device_ids(&token).await;
    site.bind(&token, &ids["ZK-RULE"], &[&rule]).await;
    z.sync_all().await.unwrap();
    assert_eq!(held(&z), ["ann"]);

    site.put_rule(
        &token,
        Some(&rule),
        json!({"name": "front door", "users": [{"user_id": "ann"}, {"user_id": "cy"}]}),
    )
    .await;
    z.sync_all().await.unwrap();
    assert_eq!(held(&z), ["ann", "cy"]);
    // A person the rule does not hold never reaches it.
    person(&site.core, &t, "dan").await;
    assert_eq!(z.sync().await.unwrap(), 0);
    assert_eq!(held(&z), ["ann", "cy"]);
    site.stop().await;
}
