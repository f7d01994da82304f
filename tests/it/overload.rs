//! Overload: four times the documented frequency limit, a thousand
//! connections at once, clients that send a byte a second, and strangers
//! flooding what can be tried without a credential (admin login, terminal
//! bring-up). The server keeps answering (frequency-limit errors, not
//! timeouts), its memory stays bounded, slow clients are cut off without
//! starving the others, guessers lock themselves out but not the real
//! user, and nothing stored is damaged.

use std::time::{Duration, Instant};

use crate::app::*;
use crate::common::process::{
    ATTENDANCE_SCOPES, Server, device_add, facehub, run_err, run_ok, tenant_with_app,
};
use crate::common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_times_the_frequency_limit_gets_fast_429s() {
    const LIMIT: u32 = 10;
    let app = spawn_with(|c| c.rate_limit_per_second = LIMIT).await;
    let t = app.token().await;
    let photo = png(200, 200, 3);
    let id = app.upload(&t, "a.png", &photo).await;
    // Let the upload's own bucket and the download bucket start full.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let secs = 3;
    let rate = 4 * LIMIT;
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
    for _ in 0..secs * rate {
        tick.tick().await;
        let (client, url, t) = (
            app.client.clone(),
            app.url(&format!("/open-apis/attendance/v1/files/{id}/download")),
            t.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = client.get(url).bearer_auth(&t).send().await.unwrap();
            let status = r.status().as_u16();
            let limit = r.headers().get("x-ogw-ratelimit-limit").cloned();
            let body = r.bytes().await.unwrap();
            (status, limit, body, sent.elapsed())
        }));
    }
    let (mut ok, mut limited, mut slowest) = (0u32, 0u32, Duration::ZERO);
    for task in tasks {
        let (status, limit, body, took) = task.await.unwrap();
        slowest = slowest.max(took);
        match status {
            200 => {
                assert!(body == photo, "a download under load was damaged");
                ok += 1;
            }
            429 => {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["code"], 99991400, "{v}");
                assert_eq!(limit.unwrap(), LIMIT.to_string().as_str());
                limited += 1;
            }
            other => panic!("status {other} under load"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "4x load: {} requests in {elapsed:.1} s, {ok} served, {limited} limited, slowest {slowest:?}",
        ok + limited
    );
    // The limit holds (one bucket of burst, plus the refill while sending)
    // and is not stricter than promised.
    let allowed = (f64::from(LIMIT) * (elapsed + 1.0)).ceil() as u32;
    assert!(ok <= allowed, "{ok} served, at most {allowed} allowed");
    assert!(ok >= LIMIT * secs / 2, "only {ok} served");
    assert!(limited >= 2 * LIMIT * secs, "only {limited} limited");
    assert!(
        slowest < Duration::from_secs(2),
        "an answer took {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_at_once_are_all_answered() {
    // The server in its own process, so its memory is measured alone.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let creds = tenant_with_app(|| facehub(&data), ATTENDANCE_SCOPES);
    let server = std::sync::Arc::new(Server::start(&data));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let t = tenant_token(&server.base, &creds).await;
    let photo = png(300, 300, 5);
    let (ct, body) = sdk_file_body(&photo);
    let upload = client
        .post(format!(
            "{}/open-apis/attendance/v1/files/upload?file_name=a.png",
            server.base
        ))
        .bearer_auth(&t)
        .header("content-type", ct)
        .body(body);
    let v = reply_json(upload).await;
    let id = v["data"]["file"]["file_id"].as_str().unwrap().to_string();
    let url = format!(
        "{}/open-apis/attendance/v1/files/{id}/download",
        server.base
    );
    // Warm up (first-use allocations are not per connection).
    for _ in 0..20 {
        client.get(&url).bearer_auth(&t).send().await.unwrap();
    }
    let before = rss_mib(&server);
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn({
        let (server, peak, sampling) = (server.clone(), peak.clone(), sampling.clone());
        async move {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_mib(&server), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let started = Instant::now();
    // All at once, so the client opens a connection for each.
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (url, t, client, gate) = (url.clone(), t.clone(), client.clone(), gate.clone());
            tokio::spawn(async move {
                gate.wait().await;
                let r = client.get(url).bearer_auth(&t).send().await?;
                let status = r.status().as_u16();
                Ok::<_, reqwest::Error>((status, r.bytes().await?))
            })
        })
        .collect();
    for task in tasks {
        let (status, body) = task.await.unwrap().expect("every connection is answered");
        assert_eq!(status, 200);
        assert!(body == photo, "a download under load was damaged");
    }
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.await.unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let grew = peak.saturating_sub(before);
    println!(
        "1000 connections: all answered in {:.1} s; server resident memory {before} MiB \
         before, {peak} MiB at peak",
        took.as_secs_f64()
    );
    // A download holds its connection's buffers and at most one read-ahead
    // the size of the photo (~270 KiB here); far less than a megabyte each.
    assert!(
        grew < 600,
        "server memory grew by {grew} MiB for 1000 connections"
    );
    let again = client.get(&url).bearer_auth(&t).send().await.unwrap();
    assert!(again.bytes().await.unwrap() == photo);
}

/// Writes `bytes` one at a time, one per `every`, until the peer closes
/// or answers; returns what it answered and when.
async fn trickle(
    addr: std::net::SocketAddr,
    head: Vec<u8>,
    body: Vec<u8>,
    every: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.split();
    let mut answer = Vec::new();
    let send = async {
        // The head of a body-carrying request goes at once; a head
        // without a body is itself trickled.
        let (fast, slow) = if body.is_empty() {
            (&[][..], &head[..])
        } else {
            (&head[..], &body[..])
        };
        wr.write_all(fast).await?;
        for b in slow {
            tokio::time::sleep(every).await;
            wr.write_all(std::slice::from_ref(b)).await?;
        }
        std::future::pending::<()>().await;
        std::io::Result::Ok(())
    };
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::select! {
        _ = send => {}
        () = read => {}
    }
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_a_second_does_not_hold_the_server() {
    let app = spawn_with(|c| {
        c.rate_limit_per_second = 1_000_000;
        c.limits.header_timeout_secs = 2;
        c.limits.json_deadline_secs = 2;
        c.limits.upload_deadline_secs = 3;
    })
    .await;
    let t = app.token().await;
    let photo = png(200, 200, 9);
    let id = app.upload(&t, "a.png", &photo).await;
    let every = Duration::from_millis(500);

    let mut slow = Vec::new();
    // Heads that never finish.
    for _ in 0..100 {
        let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".to_vec();
        slow.push((
            "head",
            tokio::spawn(trickle(app.addr, head, Vec::new(), every)),
        ));
    }
    // JSON bodies at a byte a second (a token request).
    for _ in 0..50 {
        let body =
            br#"{"app_id":"cli_x","app_secret":"0123456789012345678901234567890123"}"#.to_vec();
        let head = format!(
            "POST /open-apis/auth/v3/tenant_access_token/internal HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        slow.push(("json", tokio::spawn(trickle(app.addr, head, body, every))));
    }
    // Uploads at a byte a second.
    for _ in 0..50 {
        let (ct, body) = sdk_file_body(&photo);
        let head = format!(
            "POST /open-apis/attendance/v1/files/upload?file_name=a.png HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer {t}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        slow.push(("upload", tokio::spawn(trickle(app.addr, head, body, every))));
    }

    // Meanwhile everyone else is served at once.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(app.download_ok(&t, &id).await, photo);
        assert!(!app.token().await.is_empty());
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "a normal request took {slowest:?}"
    );

    // Every slow client is cut off within its limit (plus scheduling slack).
    for (kind, task) in slow {
        let (answer, took) = task.await.unwrap();
        let limit = match kind {
            "head" => 2,
            "json" => 2,
            _ => 3,
        };
        assert!(
            took < Duration::from_secs(limit + 3),
            "a slow {kind} was held for {took:?}"
        );
        match kind {
            // A head that never completes gets no answer, or a 408.
            "head" => assert!(
                answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
                "{answer}"
            ),
            // The token endpoint answers its errors with 200 and 10003, as
            // the platform does; uploads with 400 and 1220001.
            _ => {
                let (status, code) = if kind == "json" {
                    ("200", "10003")
                } else {
                    ("400", "1220001")
                };
                assert!(
                    answer.starts_with(&format!("HTTP/1.1 {status}")),
                    "slow {kind}: {answer}"
                );
                assert!(
                    answer.contains(&format!("\"code\":{code}")),
                    "slow {kind}: {answer}"
                );
                assert!(
                    answer.to_ascii_lowercase().contains("connection: close"),
                    "{answer}"
                );
            }
        }
    }
    // Nothing stored was touched; no upload was left half-written.
    assert_eq!(app.download_ok(&t, &id).await, photo);
    assert_eq!(app.tmp_files(), 0);
}

// ------------------------------------------------------------------------
// What a stranger who can reach the port but holds no credential can cost
// (docs/security.md): each test runs the real binary and attacks it from
// loopback addresses of its own (127.0.0.0/8), so that the throttles,
// which count per client address, see the attacker and the real user as
// the different clients they would be.

/// The server process's resident memory, in MiB.
fn rss_mib(server: &Server) -> u64 {
    status_mib(server, "VmRSS:")
}

/// The server process's peak resident memory so far, in MiB.
fn peak_rss_mib(server: &Server) -> u64 {
    status_mib(server, "VmHWM:")
}

/// A memory figure of `/proc/<pid>/status` of the server process, in MiB.
fn status_mib(server: &Server, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// A client whose connections come from `from`.
fn client_from(from: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(from))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A counter's value in the server's `/metrics` (0 when absent).
async fn metric(base: &str, series: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn set_admin_password(data: &std::path::Path, password: &str) {
    use std::io::Write as _;
    let mut child = facehub(data)
        .args(["admin", "passwd"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_costs_bounded_memory_and_the_admin_still_logs_in() {
    const PASSWORD: &str = "the administrator's own password";
    const STRANGERS: u8 = 64;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    set_admin_password(&data, PASSWORD);
    let server = Server::start(&data);
    let login = format!("{}/admin/api/login", server.base);
    let idle = rss_mib(&server);

    // 64 addresses, four connections each, guessing for four seconds.
    let until = Instant::now() + Duration::from_secs(4);
    let mut tasks = Vec::new();
    for i in 0..STRANGERS {
        for _ in 0..4 {
            let (client, login) = (client_from([127, 0, 1, i + 1]), login.clone());
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                while Instant::now() < until {
                    let r = client
                        .post(&login)
                        .json(&serde_json::json!({"password": "a guess"}))
                        .send()
                        .await
                        .unwrap();
                    statuses.push(r.status().as_u16());
                }
                statuses
            }));
        }
    }
    // Meanwhile the administrator logs in from an address that never
    // guessed, retrying when told to (as the console says).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let admin = client_from([127, 0, 0, 1]);
    let mut answered = Vec::new();
    for _ in 0..5 {
        let r = admin
            .post(&login)
            .json(&serde_json::json!({"password": PASSWORD}))
            .send()
            .await
            .unwrap();
        answered.push(r.status().as_u16());
        if r.status() != 429 {
            break;
        }
        let wait = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        tokio::time::sleep(Duration::from_secs(wait)).await;
    }
    assert_eq!(
        answered.last(),
        Some(&200),
        "the admin was refused: {answered:?}"
    );
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.extend(t.await.unwrap());
    }
    let wrong = statuses.iter().filter(|&&s| s == 401).count();
    let refused = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(wrong + refused, statuses.len(), "{statuses:?}");
    // Each address gets one guess once the account is locked out (after
    // the first five failures), and none once it has failed; the admin's
    // login resets the account's count, which lets five more through, and
    // two checks run at once: the password was checked some 64 + 2 × 5 + 2
    // times, not thousands.
    let checked = metric(
        &server.base,
        "facehub_auth_failures_total{attempt=\"admin_login\"}",
    )
    .await;
    assert!(
        checked <= u64::from(STRANGERS) + 16,
        "{checked} guesses checked of {}",
        statuses.len()
    );
    let peak = peak_rss_mib(&server);
    eprintln!(
        "login flood: {} attempts, {checked} checked, {refused} refused at once; \
         RSS idle {idle} MiB, peak {peak} MiB; admin answered {answered:?}",
        statuses.len()
    );
    // Idle, plus one 19 MiB argon2 block per password-check thread (2),
    // plus the connections: no more, however long the flood.
    assert!(peak < 100, "peak RSS {peak} MiB during a login flood");
}

/// A terminal's `register` request, signed with `secret_no`.
fn register_frame(sn: &str, secret_no: &str, nonce: u64) -> String {
    let ts = chrono::Utc::now().timestamp().to_string();
    let nonce = nonce.to_string();
    let sig = facehub_devsim::signature(&[sn, secret_no, &ts, &nonce, "register"]);
    serde_json::json!({"cmd": "register", "headers": {"req_id": format!("r{nonce}")},
        "body": {"sn": sn, "timestamp": ts, "nonce": nonce, "device_signature": sig}})
    .to_string()
}

/// A WebSocket upgrade by hand from `from`: the socket and the answer's
/// head (status line and headers).
async fn raw_upgrade(base: &str, from: [u8; 4], extra: &str) -> (tokio::net::TcpStream, String) {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(std::net::SocketAddr::from((from, 0))).unwrap();
    let mut tcp = socket.connect(addr).await.unwrap();
    let req = format!(
        "GET /websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    (tcp, String::from_utf8_lossy(&head).into_owned())
}

/// A masked client text frame.
fn text_frame(text: &str) -> Vec<u8> {
    let mut f = vec![0x81];
    let len = text.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 65535 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as is
    f.extend_from_slice(text.as_bytes());
    f
}

/// The next server text frame's JSON, or `None` once the server closed.
async fn read_reply(tcp: &mut tokio::net::TcpStream) -> Option<Value> {
    let mut h = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(10), tcp.read_exact(&mut h))
        .await
        .ok()?
        .ok()?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            tcp.read_exact(&mut l).await.ok()?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            tcp.read_exact(&mut l).await.ok()?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload).await.ok()?;
    match h[0] & 0x0f {
        0x1 => serde_json::from_slice(&payload).ok(),
        _ => None, // close (or anything else)
    }
}

/// `register` from `from` on a connection of its own: the reply.
async fn register_from(base: &str, from: [u8; 4], frame: &str) -> Value {
    let (mut tcp, head) = raw_upgrade(base, from, "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp.write_all(&text_frame(frame)).await.unwrap();
    read_reply(&mut tcp).await.expect("a reply")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_a_secret_no_locks_the_guesser_out_and_not_the_terminal() {
    const SECRET_NO: &str = "Wq3-Zt8-Lp5-Xv2-Nc7";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    // A weak SecretNo is refused, with the rule.
    let weak = run_err(device_add(&mut facehub(&data), "W-1", "1234"));
    assert!(weak.contains("secret_no must be 16 to 256"));
    run_ok(device_add(&mut facehub(&data), "T-1", SECRET_NO));
    let server = Server::start_with(&data, |c| {
        c.env("FACEHUB_SECURITY__LOCKOUT_SECS", "3");
    });
    let base = server.base.as_str();
    let guesser = [127, 0, 2, 1];

    // Unknown and known serial numbers get the same answer.
    let unknown = register_from(base, guesser, &register_frame("NOPE-9", "x", 1)).await;
    let wrong = register_from(base, guesser, &register_frame("T-1", "guess 1", 1)).await;
    assert_eq!(unknown["errcode"], 600014, "{unknown}");
    assert_eq!(
        (&unknown["errcode"], &unknown["errmsg"]),
        (&wrong["errcode"], &wrong["errmsg"])
    );
    // Guesses on one connection: it is closed after five refusals.
    let (mut tcp, _) = raw_upgrade(base, guesser, "").await;
    let mut answered = 0;
    for n in 2..10 {
        if tcp
            .write_all(&text_frame(&register_frame(
                "T-1",
                &format!("guess {n}"),
                n,
            )))
            .await
            .is_err()
        {
            break;
        }
        match read_reply(&mut tcp).await {
            Some(r) => {
                assert_eq!(r["errmsg"], wrong["errmsg"], "{r}");
                answered += 1;
            }
            None => break,
        }
    }
    assert_eq!(
        answered, 5,
        "refusals one connection got before it was closed"
    );
    // Six failures in all: the guessing address is locked out, so even the
    // right SecretNo is refused from it, with the same answer.
    let right = register_from(base, guesser, &register_frame("T-1", SECRET_NO, 20)).await;
    assert_eq!(right["errmsg"], wrong["errmsg"], "{right}");
    assert!(
        metric(
            base,
            "facehub_auth_lockouts_total{attempt=\"device_register\"}"
        )
        .await
            >= 1
    );
    let refused = "facehub_auth_refused_total{attempt=\"device_register\",reason=\"locked_out\"}";
    assert!(metric(base, refused).await >= 1);
    // The terminal itself, from its own address, registers meanwhile.
    let ok = register_from(base, [127, 0, 2, 2], &register_frame("T-1", SECRET_NO, 21)).await;
    assert_eq!(ok["errcode"], 0, "{ok}");
    // Once the lockout has passed, the guessing address may try again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = register_from(base, guesser, &register_frame("T-1", SECRET_NO, 22)).await;
    assert_eq!(later["errcode"], 0, "{later}");
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("failed attempts: locked out"), "{log}");
    assert!(!log.contains(SECRET_NO), "a SecretNo in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_device_connections_cost_little_and_not_for_long() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_with(&data, |c| {
        c.env("FACEHUB_SECURITY__PRELOGIN_DEADLINE_SECS", "5");
    });
    let base = server.base.clone();
    let idle = rss_mib(&server);

    // A browser page may not open the device protocol; a terminal (no
    // Origin) may.
    let (_, head) = raw_upgrade(&base, [127, 0, 3, 1], "Origin: https://evil.example\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (_, head) = raw_upgrade(&base, [127, 0, 3, 1], "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    // 200 connections, each from its own address, each starting a 60 MiB
    // frame and sending as fast as the server reads.
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let from = [127, 0, 4 + (i / 200) as u8, (i % 200) as u8 + 1];
            let (mut tcp, head) = raw_upgrade(&base, from, "").await;
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            let mut header = vec![0x81, 0x80 | 127];
            header.extend_from_slice(&(60u64 << 20).to_be_bytes());
            header.extend_from_slice(&[0, 0, 0, 0]);
            let chunk = vec![b'x'; 1 << 20];
            let mut sent = 0usize;
            let mut result = tcp.write_all(&header).await;
            while result.is_ok() && sent < 60 << 20 {
                result = tcp.write_all(&chunk).await;
                sent += chunk.len();
            }
            // Cut off: the write failed, or the server closed its side.
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut rest)).await;
            (result.is_err(), sent, started.elapsed())
        }));
    }
    let mut slowest = Duration::ZERO;
    let mut most = 0;
    for t in tasks {
        let (cut, sent, took) = t.await.unwrap();
        assert!(cut, "a 60 MiB frame was read to its end before login");
        most = most.max(sent);
        slowest = slowest.max(took);
    }
    // One that sends little but never registers is cut off at the deadline.
    let (mut tcp, _) = raw_upgrade(&base, [127, 0, 3, 2], "").await;
    let since = Instant::now();
    let ping = text_frame(r#"{"cmd":"ping","headers":{"req_id":"p"}}"#);
    let mut replies = 0;
    loop {
        if tcp.write_all(&ping).await.is_err() {
            break;
        }
        match read_reply(&mut tcp).await {
            Some(_) => replies += 1,
            None => break,
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let lasted = since.elapsed();
    assert!(replies > 3, "pings were answered before the deadline");
    assert!(
        lasted >= Duration::from_millis(4500) && lasted < Duration::from_secs(8),
        "a pinging anonymous connection lasted {lasted:?}"
    );
    // Per address, only so many connections may wait for their login.
    let mut held = Vec::new();
    for _ in 0..16 {
        let (tcp, head) = raw_upgrade(&base, [127, 0, 3, 3], "").await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        held.push(tcp);
    }
    let (_, head) = raw_upgrade(&base, [127, 0, 3, 3], "").await;
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    let peak = peak_rss_mib(&server);
    eprintln!(
        "200 unfinished 60 MiB frames: all cut off within {slowest:?} (at most {} MiB sent \
         into the socket); RSS idle {idle} MiB, peak {peak} MiB",
        most >> 20
    );
    // Each connection may hold at most its 64 KiB pre-login allowance.
    assert!(peak < 64, "peak RSS {peak} MiB");
    // Within the pre-login deadline (in practice at the frame's header).
    assert!(
        slowest < Duration::from_secs(5),
        "cut off only after {slowest:?}"
    );
}
