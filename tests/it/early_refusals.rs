//! An upload refused from its first bytes reaches the client as its error,
//! not as a broken pipe (api::linger): the server answers, shuts its write
//! side, and reads and discards the rest of the body within bounds, so a
//! client that writes its whole body before reading (as most do) finishes
//! writing and then reads the envelope. A client that never stops sending
//! is cut off within the bounds.

use std::time::{Duration, Instant};

use crate::app::*;
use crate::common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A PNG whose header declares `width` × 64: refused on its header when
/// `width` is over a surface's limit, whatever follows it.
fn wide_png(width: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, 64);
    enc.set_color(png::ColorType::Grayscale);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(&vec![0; width as usize * 64]).unwrap();
    w.finish().unwrap();
    out
}

/// A request whose body is `prefix`, filler, then `suffix`, `len` bytes in
/// all.
struct Upload {
    head: String,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    len: usize,
}

impl Upload {
    fn multipart(method: &str, path: &str, auth: &str, parts: RawMultipart, len: usize) -> Upload {
        // The last part's data is padded: the body ends with its closing
        // CRLF and the final boundary.
        let tail = format!("\r\n--{}--\r\n", parts.boundary).into_bytes();
        let (ct, body) = parts.finish();
        let prefix = body[..body.len() - tail.len()].to_vec();
        Upload {
            head: format!(
                "{method} {path} HTTP/1.1\r\nHost: facehub\r\n{auth}Content-Type: {ct}\r\n\
                 Content-Length: {len}\r\n\r\n"
            ),
            prefix,
            suffix: tail,
            len,
        }
    }

    /// Sends it all, `rate` bytes a second (or as fast as the server
    /// takes), and only then reads: (status, envelope), or why not.
    async fn send_then_read(
        &self,
        addr: std::net::SocketAddr,
        rate: Option<usize>,
    ) -> Result<(u16, Value), String> {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(self.head.as_bytes())
            .await
            .map_err(|e| format!("head: {e}"))?;
        tcp.write_all(&self.prefix)
            .await
            .map_err(|e| format!("prefix: {e}"))?;
        let filler = self.len - self.prefix.len() - self.suffix.len();
        let chunk = vec![0u8; 64 * 1024];
        let started = Instant::now();
        let mut sent = 0;
        while sent < filler {
            let n = chunk.len().min(filler - sent);
            tcp.write_all(&chunk[..n])
                .await
                .map_err(|e| format!("after {sent} bytes of filler: {e}"))?;
            sent += n;
            if let Some(rate) = rate {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
            }
        }
        tcp.write_all(&self.suffix)
            .await
            .map_err(|e| format!("suffix: {e}"))?;
        read_answer(&mut tcp).await
    }
}

/// One HTTP answer: (status, JSON body).
async fn read_answer(
    tcp: &mut (impl tokio::io::AsyncRead + Unpin),
) -> Result<(u16, Value), String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .ok_or_else(|| format!("no Content-Length in {head}"))?;
            if got.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                let body = serde_json::from_slice(&got[end + 4..end + 4 + len])
                    .map_err(|e| format!("{e}: {head}"))?;
                assert!(
                    head.to_ascii_lowercase().contains("connection: close"),
                    "{head}"
                );
                return Ok((status, body));
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(30), tcp.read(&mut buf))
            .await
            .map_err(|_| "no answer within 30 s".to_string())?
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            return Err(format!(
                "closed before a whole answer: {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Each surface's early refusal: the upload and what its answer must say.
async fn surfaces(app: &TestApp) -> Vec<(&'static str, Upload, u16, i64, String)> {
    const MB10: usize = 10_000_000;
    let t = app.token().await;
    let bearer = format!("Authorization: Bearer {t}\r\n");
    let wiki = make_app(&app.core, &app.tenant, &["baike:entity"]).await;
    let wt = app.token_for(&wiki.app_id, &wiki.app_secret).await;
    let acs = make_app(&app.core, &app.tenant, &["acs:users"]).await;
    let at = app.token_for(&acs.app_id, &acs.app_secret).await;
    let d = facehub::domain::PersonDraft::new("u1", "U One", None).unwrap();
    app.core.upsert_person(&app.tenant, &d).await.unwrap();
    app.core
        .acs_grant(&app.tenant, &["u1".into()])
        .await
        .unwrap();
    facehub_admin_password(app).await;
    let (cookie, csrf) = admin_session(app).await;
    vec![
        (
            "attendance",
            Upload::multipart(
                "POST",
                "/open-apis/attendance/v1/files/upload?file_name=a.png",
                &bearer,
                RawMultipart::new().part("form-data; name=\"file\"", &[], &wide_png(8193)),
                MB10,
            ),
            400,
            1220001,
            "width 8193 exceeds 8192".into(),
        ),
        (
            "lingo",
            Upload::multipart(
                "POST",
                "/open-apis/lingo/v1/files/upload",
                &format!("Authorization: Bearer {wt}\r\n"),
                RawMultipart::new()
                    .part("form-data; name=\"name\"", &[], b"a.png")
                    .part("form-data; name=\"file\"", &[], &wide_png(4097)),
                MB10,
            ),
            400,
            2250001,
            "width 4097 exceeds 4096".into(),
        ),
        (
            "acs face",
            Upload::multipart(
                "PUT",
                "/open-apis/acs/v1/users/u1/face?user_id_type=user_id",
                &format!("Authorization: Bearer {at}\r\n"),
                RawMultipart::new()
                    .part("form-data; name=\"file_type\"", &[], b"png")
                    .part("form-data; name=\"file_name\"", &[], b"face.png")
                    .part("form-data; name=\"files\"", &[], &wide_png(8193)),
                MB10,
            ),
            400,
            99992402,
            "width 8193 exceeds 8192".into(),
        ),
        (
            "json",
            Upload {
                head: format!(
                    "POST /open-apis/attendance/v1/user_settings/modify?employee_type=employee_id \
                     HTTP/1.1\r\nHost: facehub\r\n{bearer}Content-Type: application/json\r\n\
                     Content-Length: {MB10}\r\n\r\n"
                ),
                prefix: b"{\"user_setting\": {\"user_id\": \"".to_vec(),
                suffix: b"\"}}".to_vec(),
                len: MB10,
            },
            400,
            1220001,
            "request body is larger than 1048576 bytes".into(),
        ),
        (
            "console import",
            Upload {
                head: format!(
                    "POST /admin/api/tenants/acme/people/import HTTP/1.1\r\nHost: facehub\r\n\
                     Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: text/csv\r\n\
                     Content-Length: {MB10}\r\n\r\n"
                ),
                prefix: b"user_id,name\n".to_vec(),
                suffix: b"\n".to_vec(),
                len: MB10,
            },
            400,
            1220001,
            "request body is larger than 8388608 bytes".into(),
        ),
    ]
}

const ADMIN_PASSWORD: &str = "early refusal admin password";

async fn facehub_admin_password(app: &TestApp) {
    app.core.set_admin_password(ADMIN_PASSWORD).await.unwrap();
}

/// (cookie, csrf) of a console session.
async fn admin_session(app: &TestApp) -> (String, String) {
    let r = app
        .client
        .post(app.url("/admin/api/login"))
        .json(&json!({"password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    let pair = cookie.split(';').next().unwrap().to_string();
    (pair, v["data"]["csrf"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_surface_s_early_refusal_reaches_a_client_that_sends_everything_first() {
    // Tenant "acme" is the test app's (the console import names it).
    let app = spawn_with(|c| c.rate_limit_per_second = 100_000).await;
    let surfaces = surfaces(&app).await;
    // One slow client (1 MB/s) alongside.
    let slow = {
        let (_, up, ..) = &surfaces[1];
        let up = Upload {
            head: up
                .head
                .replace("Content-Length: 10000000", "Content-Length: 4000000"),
            prefix: up.prefix.clone(),
            suffix: up.suffix.clone(),
            len: 4_000_000,
        };
        let addr = app.addr;
        tokio::spawn(async move { up.send_then_read(addr, Some(1_000_000)).await })
    };
    for (name, up, status, code, rule) in &surfaces {
        let runs = if *name == "lingo" { 100 } else { 20 };
        let mut failures = Vec::new();
        for _ in 0..runs {
            match up.send_then_read(app.addr, None).await {
                Ok((s, v)) => {
                    assert_eq!(
                        (s, v["code"].as_i64()),
                        (*status, Some(*code)),
                        "{name}: {v}"
                    );
                    let msg = v["msg"].as_str().unwrap();
                    assert!(msg.contains(rule.as_str()), "{name}: {msg}");
                }
                Err(e) => failures.push(e),
            }
        }
        assert!(
            failures.is_empty(),
            "{name}: {} of {runs} clients never read the answer: {:?}",
            failures.len(),
            &failures[..failures.len().min(3)]
        );
    }
    let (s, v) = slow
        .await
        .unwrap()
        .expect("the slow client reads its answer");
    assert_eq!((s, v["code"].as_i64()), (400, Some(2250001)), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_stops_sending_is_cut_off_within_the_bounds() {
    let app = spawn_with(|c| {
        c.limits.linger_secs = 2;
        c.limits.linger_max_bytes = 4 * 1024 * 1024;
    })
    .await;
    let t = app.token().await;
    let (ct, body) = RawMultipart::new()
        .part("form-data; name=\"file\"", &[], &wide_png(8193))
        .finish();
    let start = |rate: Option<u64>| {
        let (addr, t, ct, body) = (app.addr, t.clone(), ct.clone(), body.clone());
        tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            // This client reads while it sends: the answer is read as it
            // arrives, before the cut discards it.
            let (mut rd, mut tcp) = tcp.into_split();
            let answer = tokio::spawn(async move { read_answer(&mut rd).await });
            let head = format!(
                "POST /open-apis/attendance/v1/files/upload?file_name=a.png HTTP/1.1\r\n\
                 Host: facehub\r\nAuthorization: Bearer {t}\r\nContent-Type: {ct}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n"
            );
            tcp.write_all(head.as_bytes()).await.unwrap();
            let chunk = |data: &[u8]| {
                let mut c = format!("{:x}\r\n", data.len()).into_bytes();
                c.extend_from_slice(data);
                c.extend_from_slice(b"\r\n");
                c
            };
            tcp.write_all(&chunk(&body[..body.len() - 40]))
                .await
                .unwrap();
            let started = Instant::now();
            let filler = chunk(&[0u8; 16 * 1024]);
            let mut sent = 0u64;
            // Never ends its body; stops only when cut off (or after 20 s).
            while started.elapsed() < Duration::from_secs(20) {
                if tcp.write_all(&filler).await.is_err() {
                    break;
                }
                sent += filler.len() as u64;
                if let Some(rate) = rate {
                    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                    tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
                }
            }
            let took = started.elapsed();
            (took, sent, answer.await.unwrap())
        })
    };
    // As fast as it can: cut off by the byte bound.
    let (took, sent, answer) = start(None).await.unwrap();
    assert!(
        took < Duration::from_secs(3),
        "fast client cut off after {took:?}"
    );
    assert!(sent < 20 << 20, "{sent} bytes sent before the cut");
    let (status, v) = answer.expect("the answer arrived before the cut");
    assert_eq!((status, v["code"].as_i64()), (400, Some(1220001)), "{v}");
    // Slowly (200 KB/s): cut off by the time bound.
    let (took, _, answer) = start(Some(200_000)).await.unwrap();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "slow client cut off after {took:?}"
    );
    assert_eq!(answer.expect("answer").0, 400);
}
