//! The admin console: its login, session cookie and CSRF rule over HTTP,
//! and the whole page in Chromium (playwright-core, tests/console/check.js).

use crate::app::*;
use crate::common::*;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn login(app: &TestApp, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/admin/api/login"))
        .json(&json!({"password": password}))
        .send()
        .await
        .unwrap()
}

/// (cookie header value, csrf token) of a fresh session.
async fn session(app: &TestApp) -> (String, String) {
    let r = login(app, PASSWORD).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    let pair = cookie.split(';').next().unwrap().to_string();
    (pair, v["data"]["csrf"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn console_login_session_and_csrf() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(page.text().await.unwrap().contains("Administrator login"));

    // No password set yet: nobody gets in.
    assert_eq!(login(&app, PASSWORD).await.status(), 401);
    assert!(app.core.set_admin_password("too short").await.is_err());
    app.core.set_admin_password(PASSWORD).await.unwrap();
    let wrong = login(&app, "correct horse battery stapler").await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let r = login(&app, PASSWORD).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    let (cookie, csrf) = session(&app).await;
    let get = |path: &str, with_cookie: bool| {
        let mut req = app.client.get(app.url(path));
        if with_cookie {
            req = req.header("cookie", &cookie);
        }
        req
    };
    assert_eq!(
        get("/admin/api/tenants", false)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let v = reply_json(get("/admin/api/tenants", true)).await;
    assert_eq!(v["data"]["items"][0]["name"], "acme", "{v}");

    // A change needs the CSRF token: a cross-site form cannot send it.
    let post = |path: &str, body: Value, token: Option<&str>| {
        let mut req = app
            .client
            .post(app.url(path))
            .header("cookie", &cookie)
            .json(&body);
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req
    };
    let r = post("/admin/api/tenants", json!({"name": "globex"}), None)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(
        "/admin/api/tenants",
        json!({"name": "globex"}),
        Some("0000"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = post("/admin/api/tenants", json!({"name": "globex"}), Some(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Apps: create, rotate the secret (the old one stops working), scopes.
    let v = reply_json(post(
        "/admin/api/tenants/globex/apps",
        json!({"scopes": ["attendance:rule"]}),
        Some(&csrf),
    ))
    .await;
    let app_id = v["data"]["app"]["app_id"].as_str().unwrap().to_string();
    let old = v["data"]["app_secret"].as_str().unwrap().to_string();
    let old_token = app.token_for(&app_id, &old).await;
    let rotate = post(
        &format!("/admin/api/apps/{app_id}/secret"),
        json!({}),
        Some(&csrf),
    );
    let v = reply_json(rotate).await;
    let new = v["data"]["app_secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let refused = reply_json(
        app.client
            .post(app.url("/open-apis/auth/v3/tenant_access_token/internal"))
            .json(&json!({"app_id": app_id, "app_secret": old})),
    )
    .await;
    assert_ne!(refused["code"], 0, "{refused}");
    let download = "/open-apis/attendance/v1/files/0123456789abcdef0123456789abcdef/download";
    let r = app.get(download, &old_token).await;
    assert_eq!(r.status(), 400, "the old secret's tokens died with it");
    assert!(!app.token_for(&app_id, &new).await.is_empty());
    let r = app
        .client
        .put(app.url(&format!("/admin/api/apps/{app_id}/scopes")))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"scopes": ["acs:users", "nonsense:scope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an unknown scope is refused");

    // Photos only to a session.
    let r = get("/admin/api/files/0123456789abcdef0123456789abcdef", false)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Logging out ends the session.
    let r = post("/admin/api/logout", json!({}), Some(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        get("/admin/api/tenants", true)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser_imports_people_and_shows_the_detected_face() {
    let dir = npm_installed(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/console"),
        "playwright-core",
        "run scripts/test (npm ci in tests/console) first",
    );
    let app = spawn_with(|c| c.rate_limit_per_second = 100_000).await;
    app.core.set_admin_password(PASSWORD).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("people.csv");
    std::fs::write(
        &csv,
        "user_id,name,employee_no\nu1,Ann Lee,E001\nu2,Bob Roe,E002\nu3,Cy Poe,E003\n",
    )
    .unwrap();
    let node = move |args: Vec<String>| {
        let out = std::process::Command::new("node")
            .arg("check.js")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("node runs");
        assert!(
            out.status.success(),
            "the browser script failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        v
    };
    let base = app.base.clone();
    let v = tokio::task::spawn_blocking({
        let (base, csv) = (base.clone(), csv.display().to_string());
        move || {
            node(vec![
                "import".into(),
                base,
                PASSWORD.into(),
                "acme".into(),
                csv,
            ])
        }
    })
    .await
    .unwrap();
    assert!(
        v["refused"].as_str().unwrap().contains("Login failed"),
        "{v}"
    );
    assert!(!v["visible"].as_str().unwrap().contains("facehub_admin"));
    assert!(
        v["status"]
            .as_str()
            .unwrap()
            .starts_with("imported 3 of 3 rows: 3 created"),
        "{v}"
    );
    assert_eq!(v["rows"], json!(["u1", "u2", "u3"]));
    assert_eq!(v["errors"], json!([]));
    assert_eq!(
        app.core
            .people(app.tenant.id)
            .await
            .unwrap()
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["Ann Lee", "Bob Roe", "Cy Poe"]
    );

    // A face through the API, as a door-access app uploads it.
    let creds = app.acs_app(&["u1"]).await;
    let t = app.token_for(&creds.app_id, &creds.app_secret).await;
    let form = bare_face_form(&skimage_file("astronaut.png"), "png");
    let r: Value = app
        .put_face_form(&t, "u1", form)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["code"], 0, "{r}");

    let artifacts = concat!(env!("CARGO_MANIFEST_DIR"), "/target/artifacts");
    std::fs::create_dir_all(artifacts).unwrap();
    let shot = format!("{artifacts}/console-people.png");
    let _ = std::fs::remove_file(&shot);
    let v = tokio::task::spawn_blocking({
        let shot = shot.clone();
        move || {
            node(vec![
                "face".into(),
                base,
                PASSWORD.into(),
                "acme".into(),
                "u1".into(),
                shot,
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(v["errors"], json!([]), "{v}");
    let b: Vec<f64> = serde_json::from_value(v["box"].clone()).unwrap();
    assert_eq!(b.len(), 4);
    assert!(b[2] > 48.0 && b[3] > 48.0, "{v}");
    // The stroke is pure green where the box's top edge is.
    let edge: Vec<u8> = serde_json::from_value(v["edge"].clone()).unwrap();
    assert!(edge[0] < 40 && edge[1] > 200 && edge[2] < 40, "{v}");
    let crop: Vec<u32> = serde_json::from_value(v["crop"].clone()).unwrap();
    assert!(crop[0] > 0 && crop[0] == crop[1], "a square crop: {v}");
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
    println!("console screenshot: {shot} ({} bytes)", png.len());
}
