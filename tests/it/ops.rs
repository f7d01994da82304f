//! Liveness, readiness and Prometheus metrics.

use crate::app::*;
use crate::common::*;
use facehub::domain::{PersonDraft, UserType};
use serde_json::json;

async fn scrape(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    resp.text().await.unwrap()
}

/// The value of the sample whose line starts with `prefix`, or 0.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let v: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "ok");
    }
    // With the metadata store gone, not ready (and still alive), once the
    // last verdict (kept for a second) is stale.
    app.core.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// A store that answers reads but cannot commit (here: another connection
/// holds the write lock, as a leaked transaction did in a full-disk run) is
/// not ready, and says why; ready again once it can commit.
#[tokio::test]
async fn readiness_means_the_metadata_store_can_commit() {
    use sqlx::Connection as _;
    let app = spawn_app().await;
    let ready = || async {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(ready().await.0, 200);
    // Held the way each engine holds a writer off.
    let holder: Box<dyn std::any::Any> = match database_for(app.dir.path()) {
        Some(url) => {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("LOCK TABLE meta IN EXCLUSIVE MODE")
                .execute(&mut c)
                .await
                .unwrap();
            Box::new(c)
        }
        None => {
            let path = app.dir.path().join("facehub.db");
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            Box::new(c)
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let started = std::time::Instant::now();
    let (status, v) = ready().await;
    assert_eq!(
        (status, v["reason"].as_str()),
        (503, Some("metadata store cannot commit")),
        "{v}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Alive meanwhile (and nothing biometric is handed out: its audit
    // record could not be committed either).
    let alive = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200);
    drop(holder);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(ready().await.0, 200);
}

/// Below the free-space floor uploads are refused with "storage full"
/// (507, the surface's internal code) before their body is read; what is
/// stored stays readable.
#[tokio::test]
async fn uploads_stop_at_the_free_space_floor() {
    // A floor above any disk.
    let app = spawn_with(|c| c.limits.min_free_mib = u64::MAX >> 21).await;
    let token = app.token().await;
    let (ct, body) = sdk_file_body(&png(120, 120, 3));
    let r = app.upload_raw(&token, "?file_name=a.png", &ct, body).await;
    assert_eq!(r.status(), 507);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["code"], 1225000, "{v}");
    let msg = v["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("storage full: ") && msg.contains("limits.min_free_mib"),
        "{msg}"
    );
    // Reads go on.
    let query = "/open-apis/attendance/v1/user_settings/query?employee_type=employee_id";
    let nobody = json!({"user_ids": ["nobody"]});
    let r = app
        .send_json(reqwest::Method::POST, query, &token, &nobody)
        .await;
    assert_eq!(r.status(), 200);
    let text = scrape(&app).await;
    assert!(
        text.contains("facehub_uploads_refused_total{rule=\"storage_full\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn requests_move_their_counters() {
    let app = spawn_app().await;
    let token = app.token().await;
    let route = r#"facehub_http_requests_total{route="/open-apis/attendance/v1/files/{file_id}/download",status="400"}"#;
    let before = sample(&scrape(&app).await, route);
    // Two downloads of ids that are not ids: 400 each, counted under the
    // route pattern, not the raw path.
    for id in ["nope", "also-nope"] {
        let r = app.download(&token, id).await;
        assert_eq!(r.status(), 400);
    }
    let text = scrape(&app).await;
    assert_eq!(sample(&text, route), before + 2.0, "{text}");
    assert!(!text.contains("also-nope"));
    assert!(text.contains("facehub_http_request_duration_seconds_bucket"));
    let unmatched = r#"facehub_http_requests_total{route="unmatched",status="404"}"#;
    app.client
        .get(app.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    assert_eq!(sample(&scrape(&app).await, unmatched), 1.0);

    // Device commands and connected devices.
    let mut d = PersonDraft::new("u1", "Ann", None).unwrap();
    d.user_type = Some(UserType::Employee);
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    app.core
        .add_device(&app.tenant, "M-1", "ops-factory-secret")
        .await
        .unwrap();
    app.core.bind_device(app.tenant.id, "M-1").await.unwrap();
    let dev =
        facehub_devsim::Device::connect(&format!("ws://{}/", app.addr), "M-1", (&[], &[]), None)
            .await
            .unwrap();
    dev.bring_up("ops-factory-secret", app.core.now())
        .await
        .unwrap();
    dev.request("get_perm_version", json!({})).await.unwrap();
    dev.request("made_up", json!({})).await.unwrap();
    let text = scrape(&app).await;
    assert_eq!(sample(&text, "facehub_devices_connected "), 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"facehub_device_commands_total{cmd="get_perm_version",errcode="0"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"facehub_device_commands_total{cmd="other",errcode="40058"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn bytes_refusals_limits_detection_and_backlog_are_counted() {
    let app = spawn_with(|c| c.rate_limit_per_second = 3).await;
    let token = app.token().await;
    let photo = png(320, 320, 4);
    let id = app.upload(&token, "a.png", &photo).await;
    assert_eq!(app.download_ok(&token, &id).await, photo);
    let text = scrape(&app).await;
    let up =
        r#"facehub_http_request_body_bytes_total{route="/open-apis/attendance/v1/files/upload"}"#;
    let down = r#"facehub_http_response_body_bytes_total{route="/open-apis/attendance/v1/files/{file_id}/download"}"#;
    assert!(sample(&text, up) >= photo.len() as f64, "{text}");
    assert_eq!(sample(&text, down), photo.len() as f64, "{text}");

    // A photo below the minimum side is refused, and counted by its rule.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (ct, body) = sdk_file_body(&png(20, 20, 1));
    let r = app.upload_raw(&token, "?file_name=a.png", &ct, body).await;
    assert_eq!(r.status(), 400);
    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"facehub_uploads_refused_total{rule="side_too_small"}"#
        ),
        1.0,
        "{text}"
    );

    // Past the frequency limit: 429s, counted per endpoint.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut limited = 0;
    for _ in 0..6 {
        if app.download(&token, &id).await.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited > 0);
    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"facehub_rate_limited_total{endpoint="attendance.files.download"}"#
        ),
        f64::from(limited),
        "{text}"
    );

    // Face detection is timed.
    let mut d = PersonDraft::new("u1", "Ann", None).unwrap();
    d.user_type = Some(UserType::Employee);
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    let acs = app.acs_app(&["u1"]).await;
    let t = app.token_for(&acs.app_id, &acs.app_secret).await;
    let form = bare_face_form(&skimage_file("astronaut.png"), "png");
    let r = app.put_face_form(&t, "u1", form).await;
    assert_eq!(r.status(), 200);
    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, "facehub_face_detect_duration_seconds_count"),
        1.0,
        "{text}"
    );

    // A bound terminal that is away: the person added since is its backlog.
    app.core
        .add_device(&app.tenant, "B-1", "ops-factory-secret")
        .await
        .unwrap();
    app.core.bind_device(app.tenant.id, "B-1").await.unwrap();
    let text = scrape(&app).await;
    let before = sample(&text, "facehub_device_sync_backlog ");
    let d = PersonDraft::new("u2", "Bob", None).unwrap();
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, "facehub_device_sync_backlog "),
        before + 1.0,
        "{text}"
    );
    assert!(before >= 1.0, "{text}");
}
