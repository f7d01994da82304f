//! Conformance: the official Python SDK (lark-oapi from PyPI), unchanged,
//! against a facehub on localhost. `scripts/test` installs it into `.venv`
//! and sets LARK_OAPI_PYTHON; without it this test fails and says so.

mod common;

use common::*;

#[tokio::test]
async fn lark_oapi_python_sdk_drives_attendance_endpoints() {
    let python = std::env::var("LARK_OAPI_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        if std::path::Path::new(venv).exists() {
            venv.to_string()
        } else {
            panic!("lark-oapi is needed: run scripts/test (it creates .venv with conformance/requirements.txt) or set LARK_OAPI_PYTHON")
        }
    });
    let app = spawn_app().await;
    let d = facehub::domain::PersonDraft::new("abd754f7", "Ann", Some("E-42")).unwrap();
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    let photo = app.dir.path().join("face.png");
    std::fs::write(&photo, png(160, 120, 11)).unwrap();
    let jpg = app.dir.path().join("face.jpg");
    std::fs::write(&jpg, jpeg(160, 120, 12)).unwrap();

    let out = tokio::process::Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/conformance/lark_sdk_check.py"
        ))
        .env("FACEHUB_BASE_URL", &app.base)
        .env("FACEHUB_APP_ID", &app.app_id)
        .env("FACEHUB_APP_SECRET", &app.app_secret)
        .env("FACEHUB_USER_ID", "abd754f7")
        .env("FACEHUB_EMPLOYEE_NO", "E-42")
        .env("FACEHUB_PHOTO", &photo)
        .env("FACEHUB_JPEG", &jpg)
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "lark-oapi check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"));
}
