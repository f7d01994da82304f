//! Token endpoints and the checks every protected endpoint makes.

use crate::app::*;
use crate::common::*;
use serde_json::{Value, json};

const TOKEN: &str = "/open-apis/auth/v3/tenant_access_token/internal";
const QUERY: &str = "/open-apis/attendance/v1/user_settings/query?employee_type=employee_id";

/// A tenant token request with `body` as it is, no Content-Type.
async fn post_token(app: &TestApp, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .post(app.url(TOKEN))
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn tenant_token_as_the_python_sdk_sends_it() {
    let app = spawn_app().await;
    // No Content-Type at all, like lark-oapi 1.7.5.
    let body = format!(
        "{{\"app_id\": \"{}\", \"app_secret\": \"{}\"}}",
        app.app_id, app.app_secret
    );
    let resp = post_token(&app, body.clone()).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-tt-logid"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["code"], 0);
    assert_eq!(v["msg"], "ok");
    assert_eq!(v["expire"], 7200);
    let t = v["tenant_access_token"].as_str().unwrap();
    assert!(t.starts_with("t-") && t.len() == 42, "{t}");
    assert!(v.get("data").is_none(), "token fields are top-level");

    // Within the first 90 minutes the same token comes back.
    let again = reply_json(app.client.post(app.url(TOKEN)).body(body.clone())).await;
    assert_eq!(again["tenant_access_token"], t);
    // Trailing slash works the same.
    let slash = reply_json(app.client.post(app.url(&format!("{TOKEN}/"))).body(body)).await;
    assert_eq!(slash["tenant_access_token"], t);
}

#[tokio::test]
async fn app_access_token_carries_both_tokens() {
    let app = spawn_app().await;
    let creds = json!({"app_id": app.app_id, "app_secret": app.app_secret});
    let url = app.url("/open-apis/auth/v3/app_access_token/internal");
    let v = reply_json(app.client.post(url).json(&creds)).await;
    assert_eq!(v["code"], 0, "{v}");
    let a = v["app_access_token"].as_str().unwrap();
    let t = v["tenant_access_token"].as_str().unwrap();
    assert_ne!(a, t);
    assert_eq!(v["expire"], 7200);
    // The tenant token works on tenant endpoints; the app token does not.
    let ok = app
        .send_json(reqwest::Method::GET, QUERY, t, &json!({"user_ids": ["x"]}))
        .await;
    assert_eq!(ok.status(), 200);
    let no = app
        .send_json(reqwest::Method::GET, QUERY, a, &json!({"user_ids": ["x"]}))
        .await;
    expect_error(no, 400, 99991663).await;
}

#[tokio::test]
async fn bad_credentials_get_200_and_platform_codes() {
    let app = spawn_app().await;
    let cases: Vec<(Vec<u8>, i64)> = vec![
        (
            json!({"app_id": app.app_id, "app_secret": "wrong"})
                .to_string()
                .into(),
            10015,
        ),
        (
            json!({"app_id": "cli_0000000000000000", "app_secret": "x"})
                .to_string()
                .into(),
            10003,
        ),
        (json!({"app_id": app.app_id}).to_string().into(), 10003),
        (
            json!({"app_id": 5, "app_secret": []}).to_string().into(),
            10003,
        ),
        (b"{not json".to_vec(), 10003),
        (Vec::new(), 10003),
    ];
    for (body, code) in cases {
        let resp = post_token(&app, body.clone()).await;
        assert_eq!(resp.status(), 200, "{}", String::from_utf8_lossy(&body));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["code"], code, "{} -> {v}", String::from_utf8_lossy(&body));
        assert!(v.get("tenant_access_token").is_none());
    }
    // Wrong method and unknown routes: JSON envelopes, not text.
    expect_error(
        app.client.get(app.url(TOKEN)).send().await.unwrap(),
        405,
        99991301,
    )
    .await;
    expect_error(
        app.client
            .get(app.url("/open-apis/nope/v1/x"))
            .send()
            .await
            .unwrap(),
        404,
        99991201,
    )
    .await;
}

#[tokio::test]
async fn token_errors_on_protected_endpoints() {
    let app = spawn_app().await;
    let send = |auth: Option<&str>| {
        let mut r = app
            .client
            .get(app.url(QUERY))
            .json(&json!({"user_ids": ["u"]}));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    expect_error(send(None).await.unwrap(), 400, 99991661).await;
    let t = app.token().await;
    // The token without the Bearer prefix counts as missing.
    expect_error(send(Some(&t)).await.unwrap(), 400, 99991661).await;
    expect_error(send(Some("Bearer ")).await.unwrap(), 400, 99991661).await;
    expect_error(send(Some("Bearer abc")).await.unwrap(), 400, 99991671).await;
    expect_error(
        send(Some("Bearer t-0123456789abcdef0123456789abcdef01234567"))
            .await
            .unwrap(),
        400,
        99991663,
    )
    .await;
    expect_error(
        send(Some("Bearer u-someuser")).await.unwrap(),
        400,
        99991668,
    )
    .await;
    // Forged: a valid token with one character changed.
    let mut forged = t.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged = format!("Bearer {}", String::from_utf8(forged).unwrap());
    expect_error(send(Some(&forged)).await.unwrap(), 400, 99991663).await;
    // The real one works ...
    assert_eq!(
        send(Some(&format!("Bearer {t}"))).await.unwrap().status(),
        200
    );
    // ... until it expires.
    app.core.advance_clock(7200);
    expect_error(
        send(Some(&format!("Bearer {t}"))).await.unwrap(),
        400,
        99991663,
    )
    .await;
    // A fresh token is issued after expiry.
    let t2 = app.token().await;
    assert_ne!(t2, t);
    assert_eq!(
        send(Some(&format!("Bearer {t2}"))).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn missing_scope_is_refused_with_99991672() {
    let app = spawn_app().await;
    let write_only = make_app(&app.core, &app.tenant, &["attendance:rule"]).await;
    let read_only = make_app(&app.core, &app.tenant, &["attendance:rule:readonly"]).await;
    let none = make_app(&app.core, &app.tenant, &[]).await;
    let w = app
        .token_for(&write_only.app_id, &write_only.app_secret)
        .await;
    let r = app
        .token_for(&read_only.app_id, &read_only.app_secret)
        .await;
    let n = app.token_for(&none.app_id, &none.app_secret).await;

    let id = app.upload(&w, "a.png", &png(80, 80, 1)).await;
    let v = expect_error(app.download(&w, &id).await, 400, 99991672).await;
    assert!(
        v["msg"]
            .as_str()
            .unwrap()
            .contains("attendance:rule:readonly"),
        "{v}"
    );
    assert_eq!(app.download(&r, &id).await.status(), 200);

    let (ct, body) = sdk_file_body(&png(80, 80, 1));
    let v = expect_error(
        app.upload_raw(&r, "?file_name=a.png", &ct, body.clone())
            .await,
        400,
        99991672,
    )
    .await;
    assert!(
        v["msg"].as_str().unwrap().contains("[attendance:rule]"),
        "{v}"
    );
    expect_error(
        app.upload_raw(&n, "?file_name=a.png", &ct, body).await,
        400,
        99991672,
    )
    .await;
    let q = app
        .send_json(reqwest::Method::GET, QUERY, &n, &json!({"user_ids": ["u"]}))
        .await;
    expect_error(q, 400, 99991672).await;
}

#[tokio::test]
async fn burst_over_the_rate_limit_gets_429() {
    let app = spawn_app().await;
    let other = make_app(&app.core, &app.tenant, ALL_ATTENDANCE).await;
    let t = app.token().await;
    let t_other = app.token_for(&other.app_id, &other.app_secret).await;
    let reqs = (0..120).map(|_| {
        app.client
            .post(app.url(QUERY))
            .bearer_auth(&t)
            .json(&json!({"user_ids": ["u"]}))
            .send()
    });
    let resps = futures_util::future::join_all(reqs).await;
    let mut limited = 0;
    let mut ok = 0;
    for r in resps {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                assert_eq!(r.headers()["x-ogw-ratelimit-limit"], "50");
                let reset = header_u64(&r, "x-ogw-ratelimit-reset");
                assert!((1..=2).contains(&reset));
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["code"], 99991400);
                assert_eq!(v["msg"], "request trigger frequency limit");
                limited += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(ok >= 50, "ok {ok}");
    assert!(limited >= 1, "limited {limited}");
    // Limits are per app and per endpoint.
    let r = app
        .send_json(
            reqwest::Method::POST,
            QUERY,
            &t_other,
            &json!({"user_ids": ["u"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let id = app.upload(&t, "a.png", &png(70, 70, 3)).await;
    assert_eq!(app.download(&t, &id).await.status(), 200);
}

#[tokio::test]
async fn header_names_are_title_case_on_the_wire() {
    // lark-oapi copies headers into a dict and looks up `X-Tt-Logid`
    // case-sensitively, so the exact spelling on the wire matters.
    let app = spawn_app().await;
    let mut s = app
        .raw(b"GET /open-apis/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    let text = read_reply(&mut s).await;
    assert!(text.contains("\r\nX-Tt-Logid: "), "{text}");
    assert!(
        text.contains("\r\nContent-Type: application/json"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stalled_token_request_is_answered_not_held() {
    let app = spawn_with(|c| c.limits.body_idle_timeout_secs = 1).await;
    let mut s = app
        .raw(b"POST /open-apis/auth/v3/tenant_access_token/internal HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"app_id\":")
        .await;
    let text = read_reply(&mut s).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"code\":10003"), "{text}");
}

#[tokio::test]
async fn an_oversize_json_body_is_refused_as_such() {
    let app = spawn_with(|c| c.limits.json_max_bytes = 1000).await;
    let t = app.token().await;
    let ids: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let r = app
        .send_json(
            reqwest::Method::POST,
            QUERY,
            &t,
            &json!({ "user_ids": ids }),
        )
        .await;
    let v = expect_error(r, 400, 1220001).await;
    assert!(msg(&v).contains("larger than 1000 bytes"), "{v}");
}

/// A stranger's token requests are bounded per client address before any
/// app is looked up; another address is not held up by them.
#[tokio::test]
async fn token_requests_are_rate_limited_per_address() {
    let app = spawn_with(|c| c.rate_limit_per_second = 5).await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let stranger = from([127, 0, 5, 1]);
    let mut codes = Vec::new();
    for i in 0..20 {
        let body = json!({"app_id": format!("cli_guess{i}"), "app_secret": "x"});
        let r = stranger
            .post(app.url(TOKEN))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        codes.push((status, v["code"].as_i64().unwrap()));
    }
    assert!(codes[..5].iter().all(|&(s, _)| s == 200), "{codes:?}");
    assert!(codes.contains(&(429, 99991400)), "{codes:?}");
    let creds = json!({"app_id": app.app_id, "app_secret": app.app_secret});
    let v = reply_json(from([127, 0, 5, 2]).post(app.url(TOKEN)).json(&creds)).await;
    assert_eq!(v["code"], 0, "{v}");
}
