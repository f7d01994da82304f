//! `/openapi.json` describes every route the server has, and schemathesis
//! (PyPI, installed into .venv by scripts/test) drives each operation with
//! generated requests: no 5xx, and every answer matches its schema.

use crate::app::*;
use facehub::domain::PersonDraft;
use serde_json::Value;

const SCOPES: &[&str] = &[
    "attendance:rule",
    "attendance:rule:readonly",
    "acs:users",
    "baike:entity",
    "facehub:device",
    "facehub:people",
    "facehub:audit",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_description_covers_every_route_and_holds_under_schemathesis() {
    let app = spawn_with(|c| c.rate_limit_per_second = 1_000_000).await;
    let creds = make_app(&app.core, &app.tenant, SCOPES).await;
    let t = app.token_for(&creds.app_id, &creds.app_secret).await;
    for u in ["u1", "u2"] {
        app.core
            .upsert_person(&app.tenant, &PersonDraft::new(u, u, None).unwrap())
            .await
            .unwrap();
    }
    app.core
        .acs_grant(&app.tenant, &["u1".to_string()])
        .await
        .unwrap();

    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Every operation the routers serve is described (the trailing-slash
    // token aliases, the WebSocket upgrade and the console's page and
    // assets aside).
    let described: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    for route in [
        "POST /open-apis/auth/v3/tenant_access_token/internal",
        "POST /open-apis/auth/v3/app_access_token/internal",
        "POST /open-apis/attendance/v1/files/upload",
        "GET /open-apis/attendance/v1/files/{file_id}/download",
        "POST /open-apis/attendance/v1/user_settings/modify",
        "POST /open-apis/attendance/v1/user_settings/query",
        "POST /open-apis/attendance/v1/user_flows/batch_create",
        "POST /open-apis/attendance/v1/user_flows/query",
        "GET /open-apis/attendance/v1/user_flows/{user_flow_id}",
        "POST /open-apis/attendance/v1/user_flows/batch_del",
        "POST /open-apis/lingo/v1/files/upload",
        "GET /open-apis/lingo/v1/files/{file_token}/download",
        "GET /open-apis/acs/v1/users",
        "GET /open-apis/acs/v1/users/{user_id}",
        "PATCH /open-apis/acs/v1/users/{user_id}",
        "GET /open-apis/acs/v1/users/{user_id}/face",
        "PUT /open-apis/acs/v1/users/{user_id}/face",
        "GET /open-apis/acs/v1/devices",
        "POST /open-apis/acs/v1/rule_external",
        "GET /open-apis/acs/v1/rule_external",
        "DELETE /open-apis/acs/v1/rule_external",
        "POST /open-apis/acs/v1/rule_external/device_bind",
        "POST /open-apis/acs/v1/visitors",
        "DELETE /open-apis/acs/v1/visitors/{visitor_id}",
        "GET /open-apis/facehub/v1/devices",
        "POST /open-apis/facehub/v1/devices/{sn}/bind",
        "POST /open-apis/facehub/v1/devices/{sn}/unbind",
        "POST /open-apis/facehub/v1/device_enrolments",
        "GET /open-apis/facehub/v1/device_enrolments/{oper_id}",
        "DELETE /open-apis/facehub/v1/device_enrolments/{oper_id}",
        "GET /open-apis/facehub/v1/checkins",
        "DELETE /open-apis/facehub/v1/people/{user_id}",
        "GET /open-apis/facehub/v1/audit_logs",
        "POST /admin/api/login",
        "POST /admin/api/logout",
        "GET /admin/api/session",
        "GET /admin/api/tenants",
        "POST /admin/api/tenants",
        "GET /admin/api/tenants/{tenant}/apps",
        "POST /admin/api/tenants/{tenant}/apps",
        "POST /admin/api/apps/{app_id}/secret",
        "PUT /admin/api/apps/{app_id}/scopes",
        "GET /admin/api/tenants/{tenant}/people",
        "POST /admin/api/tenants/{tenant}/people/import",
        "GET /admin/api/tenants/{tenant}/people/{user_id}",
        "GET /admin/api/tenants/{tenant}/devices",
        "GET /admin/api/tenants/{tenant}/audit",
        "GET /admin/api/files/{file_id}",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
    ] {
        assert!(
            described.contains(&route.to_string()),
            "{route} is not described"
        );
    }
    assert_eq!(described.len(), 53, "{described:?}");

    let examples = std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let python = std::env::var("LARK_OAPI_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python").into());
    let st = std::path::Path::new(&python).with_file_name("schemathesis");
    let url = app.url("/openapi.json");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(st)
            .args(["run", &url, "--max-examples", &examples, "--seed", "7"])
            .args(["--checks", "not_a_server_error,response_schema_conformance"])
            .args(["--header", &format!("Authorization: Bearer {t}")])
            .args(["--request-timeout", "20", "--no-color"])
            .output()
            .expect("schemathesis is installed by scripts/test (conformance/requirements.txt)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
