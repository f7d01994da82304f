//! `facehub-bench devices`: the device protocol under load, with simulated
//! terminals over real WebSockets against an in-process facehub on a fresh
//! data directory, each figure next to a reference measured in the same
//! run: a minimal tokio-tungstenite server that does no work (canned
//! replies, a plain broadcast) over the same frames.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use facehub::domain::{Core, PersonDraft, Tenant};
use facehub_devsim::Device;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct DeviceArgs {
    /// Connected devices for the fan-out measurement
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// People in the tenant (the full pull fetches them all)
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Bytes per template
    #[arg(long, default_value_t = 2048)]
    template_bytes: usize,
    /// Repetitions of the upload and fan-out measurements
    #[arg(long, default_value_t = 10)]
    repeat: usize,
    /// The measurements to make (all by default)
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Step::ALL)]
    steps: Vec<Step>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Step {
    /// A 200-user x 12-template upload
    Upload,
    /// One change reaching every connected device
    Fanout,
    /// A new device's full pull
    Pull,
    /// Every device sending a 200-record checkin frame at once
    Checkin,
    /// A change of an access rule reaching every terminal bound to it
    Rules,
}

impl Step {
    const ALL: [Step; 5] = [
        Step::Upload,
        Step::Fanout,
        Step::Pull,
        Step::Checkin,
        Step::Rules,
    ];
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        f.write_str(
            self.to_possible_value()
                .expect("no skipped variants")
                .get_name(),
        )
    }
}

pub(crate) const SECRET_NO: &str = "bench-factory-secret-no";

fn features(n: usize, seed: u64) -> String {
    STANDARD.encode(facehub::image::samples::features(n, seed))
}

fn upload_frame(users: usize, slots: usize, bytes: usize, round: u64) -> Value {
    let info: Vec<Value> = (0..users)
        .map(|u| {
            let list: Vec<Value> = (0..slots)
                .map(|s| json!({"id": s, "data": features(bytes, round * 100_000 + (u * slots + s) as u64)}))
                .collect();
            json!({"userid": format!("user{u:05}"), "fa_list": list, "fa_algorithm": "X"})
        })
        .collect();
    json!({"userinfo": info})
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(h: &Histogram<u64>) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    )
}

/// The reference: answers every text frame with `reply`, except frames
/// containing "broadcast", which it sends to every connection.
async fn reference_server(
    reply: Arc<str>,
    pages: Arc<HashMap<i64, Arc<str>>>,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/", listener.local_addr()?);
    let (tx, _) = broadcast::channel::<Arc<str>>(16);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (reply, pages, tx) = (reply.clone(), pages.clone(), tx.clone());
            tokio::spawn(async move {
                let mut config =
                    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
                config.max_message_size = Some(256 << 20);
                config.max_frame_size = Some(256 << 20);
                let Ok(ws) =
                    tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
                else {
                    return;
                };
                let (mut sink, mut stream) = ws.split();
                let mut rx = tx.subscribe();
                loop {
                    tokio::select! {
                        m = stream.next() => match m {
                            Some(Ok(Message::Text(t))) => {
                                let v: Value = serde_json::from_str(&t).unwrap_or_default();
                                let id = v["headers"]["req_id"].clone();
                                let text: &str = if t.contains("broadcast") {
                                    let _ = tx.send(Arc::from(r#"{"cmd":"push_change_contact","headers":{"req_id":"r"},"body":{"perm_version":1}}"#));
                                    &reply
                                } else if let Some(p) = v["body"]["offset"].as_i64().and_then(|o| pages.get(&o)) { p } else { &reply };
                                let out = text.replacen("__REQ_ID__", id.as_str().unwrap_or(""), 1);
                                if sink.send(Message::Text(out.into())).await.is_err() { break; }
                            }
                            Some(Ok(_)) => {}
                            _ => break,
                        },
                        p = rx.recv() => match p {
                            Ok(p) => { if sink.send(Message::Text(p.as_ref().into())).await.is_err() { break; } }
                            Err(_) => break,
                        },
                    }
                }
            });
        }
    });
    Ok(url)
}

async fn setup(core: &Core, args: &DeviceArgs) -> anyhow::Result<Tenant> {
    let t = core.create_tenant("bench").await?;
    let started = Instant::now();
    for u in 0..args.users {
        let d = PersonDraft::new(&format!("user{u:05}"), &format!("User {u}"), None)?;
        core.upsert_person(&t, &d).await?;
    }
    eprintln!("setup: {} people in {:.1?}", args.users, started.elapsed());
    for n in 0..=args.devices + 1 {
        let sn = format!("BENCH-{n:05}");
        core.add_device(&t, &sn, SECRET_NO).await?;
        core.bind_device(t.id, &sn).await?;
    }
    Ok(t)
}

/// facehub serving in the background on a fresh data directory `dir`, at
/// an address of its own: (that address, its core).
pub(crate) async fn start_facehub(
    dir: &std::path::Path,
) -> anyhow::Result<(std::net::SocketAddr, Arc<Core>)> {
    let mut config = facehub::Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse()?,
        ..facehub::Config::default()
    };
    // The whole simulated fleet comes from one address, which the limits
    // on what one address may try before login are not meant for; nor is
    // the per-app rate limit meant for a load generator.
    config.security.prelogin_connections = 1 << 20;
    config.security.prelogin_connections_per_address = 1 << 20;
    config.rate_limit_per_second = 1 << 30;
    config.device.commands_per_second = 1 << 30;
    let app = facehub::Application::build(config).await?;
    let (addr, core) = (app.local_addr(), app.core());
    tokio::spawn(app.run_until_stopped());
    Ok((addr, core))
}

pub async fn run(args: DeviceArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (addr, core) = start_facehub(dir.path()).await?;
    let url = format!("ws://{addr}/");
    let tenant = setup(&core, &args).await?;
    let now = core.now();
    let connect = |sn: String| {
        let url = url.clone();
        async move {
            let d = Device::connect(&url, &sn, (&["X"], &[]), None).await?;
            d.bring_up(SECRET_NO, now).await?;
            anyhow::Ok(d)
        }
    };

    let uploader = connect("BENCH-00000".into()).await?;
    let canned: Arc<str> = Arc::from(
        r#"{"headers":{"req_id":"__REQ_ID__"},"body":{"fail_list":[]},"errcode":0,"errmsg":"ok"}"#,
    );
    let reference = reference_server(canned, Arc::new(HashMap::new())).await?;
    let echo = Device::connect(&reference, "REF-1", (&["X"], &[]), None).await?;
    if args.steps.contains(&Step::Upload) {
        upload(&uploader, &echo, &args).await?;
    }
    if args.steps.contains(&Step::Fanout) {
        let devices = connect_all(1..=args.devices, |n| connect(format!("BENCH-{n:05}"))).await?;
        fanout(&devices, &uploader, &echo, &reference, &args).await?;
    }
    if args.steps.contains(&Step::Pull) {
        pull(
            &core,
            &tenant,
            connect(format!("BENCH-{:05}", args.devices + 1)).await?,
            &args,
        )
        .await?;
    }
    if args.steps.contains(&Step::Rules) {
        let devices = connect_all(1..=args.devices, |n| connect(format!("BENCH-{n:05}"))).await?;
        rules(&core, &tenant, &devices, (&echo, &reference), &args).await?;
    }
    if args.steps.contains(&Step::Checkin) {
        let devices = connect_all(1..=args.devices, |n| connect(format!("BENCH-{n:05}"))).await?;
        let ref_devices = connect_all(1..=args.devices, |n| {
            let (url, sn) = (reference.clone(), format!("REF-{n:05}"));
            async move { Device::connect(&url, &sn, (&[], &[]), None).await }
        })
        .await?;
        let frame = |n: usize| checkin_frame(n, args.users, now);
        let (took, acks) = checkins(&devices, &frame).await?;
        let (took_ref, acks_ref) = checkins(&ref_devices, &frame).await?;
        let records = (devices.len() * 200) as f64;
        println!(
            "checkin: {} devices x 200 records at once: {:.0} records/s, ack {}; reference {:.0} records/s, ack {}; throughput ratio {:.2}x",
            devices.len(),
            records / took.as_secs_f64(),
            summary(&acks),
            records / took_ref.as_secs_f64(),
            summary(&acks_ref),
            took_ref.as_secs_f64() / took.as_secs_f64()
        );
    }
    Ok(())
}

/// Devices `ns`, logged in 100 at a time.
pub(crate) async fn connect_all<F, Fut>(
    ns: std::ops::RangeInclusive<usize>,
    connect: F,
) -> anyhow::Result<Vec<Arc<Device>>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Arc<Device>>>,
{
    let started = Instant::now();
    let mut devices = Vec::new();
    for chunk in ns.collect::<Vec<_>>().chunks(100) {
        devices
            .extend(futures_util::future::try_join_all(chunk.iter().map(|n| connect(*n))).await?);
    }
    eprintln!(
        "{} devices logged in in {:.1?}",
        devices.len(),
        started.elapsed()
    );
    Ok(devices)
}

/// Device `n`'s 200 punches: people of the tenant in turn, a second apart
/// per device, yesterday.
fn checkin_frame(n: usize, users: usize, now: i64) -> Value {
    let items: Vec<Value> = (0..200)
        .map(|i| {
            json!({"userid": format!("user{:05}", (n * 200 + i) % users), "user_type": 0,
                   "timestamp": now - 86_400 + n as i64, "pass_type": 1, "pass_method": 1})
        })
        .collect();
    json!({"checkin_data": items})
}

/// Every device sends its frame at once: the time until the last is
/// acknowledged, and the acknowledgements' latencies.
async fn checkins(
    devices: &[Arc<Device>],
    frame: &dyn Fn(usize) -> Value,
) -> anyhow::Result<(Duration, Histogram<u64>)> {
    let frames: Vec<Value> = (0..devices.len()).map(frame).collect();
    let t0 = Instant::now();
    let sends: Vec<_> = devices
        .iter()
        .zip(frames)
        .map(|(d, f)| {
            let d = d.clone();
            tokio::spawn(async move {
                let b = d.call("checkin", f).await?;
                anyhow::ensure!(b["fail_list"] == json!([]), "punches refused: {b}");
                anyhow::Ok(t0.elapsed())
            })
        })
        .collect();
    let mut h = Histogram::<u64>::new(3)?;
    for s in sends {
        h.record(s.await??.as_micros() as u64)?;
    }
    Ok((t0.elapsed(), h))
}

/// Step 1: a 200-user x 12-template upload, acknowledged.
async fn upload(uploader: &Device, echo: &Device, args: &DeviceArgs) -> anyhow::Result<()> {
    let mut up = Histogram::<u64>::new(3)?;
    let frame_bytes = upload_frame(200, 12, args.template_bytes, 0)
        .to_string()
        .len();
    for round in 0..args.repeat as u64 {
        let frame = upload_frame(200, 12, args.template_bytes, round + 1);
        let t0 = Instant::now();
        let b = uploader.call("upload_userinfo", frame).await?;
        up.record(t0.elapsed().as_micros() as u64)?;
        anyhow::ensure!(
            b["fail_list"].as_array().is_some_and(Vec::is_empty),
            "upload failed: {b}"
        );
    }
    // Reference: the same frame to a server that only parses the req_id.
    let mut up_ref = Histogram::<u64>::new(3)?;
    for round in 0..args.repeat as u64 {
        let frame = upload_frame(200, 12, args.template_bytes, round + 1);
        let t0 = Instant::now();
        echo.call("upload_userinfo", frame).await?;
        up_ref.record(t0.elapsed().as_micros() as u64)?;
    }
    println!(
        "upload_userinfo 200 users x 12 templates ({:.1} MB frame): {}; reference {}; p50 ratio {:.1}x",
        frame_bytes as f64 / 1e6,
        summary(&up),
        summary(&up_ref),
        up.value_at_quantile(0.5) as f64 / up_ref.value_at_quantile(0.5).max(1) as f64
    );
    Ok(())
}

/// Step 2: one change reaching every connected device.
async fn fanout(
    devices: &[Arc<Device>],
    uploader: &Arc<Device>,
    echo: &Arc<Device>,
    reference: &str,
    args: &DeviceArgs,
) -> anyhow::Result<()> {
    // Let the login catch-up pushes settle, then drain them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for d in devices {
        while d.next_push(Duration::from_millis(1)).await.is_some() {}
    }
    let template_bytes = args.template_bytes;
    let fan = fan_out(devices, args.repeat, |round| {
        let up = uploader.clone();
        async move {
            let f = json!({"userinfo": [{"userid": "user00001", "fa": features(template_bytes, 9_000_000 + round), "fa_algorithm": "X"}]});
            up.call("upload_userinfo", f).await.map(|_| ())
        }
    })
    .await?;
    let fan_ref = broadcast_reference(echo, reference, args).await?;
    println!(
        "change reaching {} devices (last one): {}; reference broadcast {}; p50 ratio {:.1}x",
        devices.len(),
        summary(&fan),
        summary(&fan_ref),
        fan.value_at_quantile(0.5) as f64 / fan_ref.value_at_quantile(0.5).max(1) as f64
    );
    Ok(())
}

/// The reference of a fan-out: a do-nothing WebSocket server sending a
/// frame to as many connections.
async fn broadcast_reference(
    echo: &Arc<Device>,
    reference: &str,
    args: &DeviceArgs,
) -> anyhow::Result<Histogram<u64>> {
    let ref_devices = connect_all(1..=args.devices, |n| {
        let (url, sn) = (reference.to_string(), format!("REF-{n:05}"));
        async move { Device::connect(&url, &sn, (&[], &[]), None).await }
    })
    .await?;
    fan_out(&ref_devices, args.repeat, |_| {
        let e = echo.clone();
        async move { e.call("broadcast", json!({})).await.map(|_| ()) }
    })
    .await
}

/// Step 5: an access rule over every user bound to every terminal; each
/// round puts one person more into it, through the rules API's own code,
/// until every terminal is told.
async fn rules(
    core: &Arc<Core>,
    tenant: &Tenant,
    devices: &[Arc<Device>],
    (echo, reference): (&Arc<Device>, &str),
    args: &DeviceArgs,
) -> anyhow::Result<()> {
    use facehub::domain::access_rules::RuleDraft;
    use facehub::domain::acs::IdType;
    let caller = facehub::domain::auth::Caller {
        tenant_id: tenant.id,
        app_id: "facehub-bench".into(),
        scopes: Vec::new(),
        person_id: None,
        log_id: None,
    };
    let rounds = args.repeat.min(args.users);
    let users: Vec<String> = (0..args.users).map(|u| format!("user{u:05}")).collect();
    let draft = |first: usize| RuleDraft {
        name: Some("bench".into()),
        users: Some(users[first..].to_vec()),
        devices: Some(
            devices
                .iter()
                .map(|d| facehub::domain::devices::device_id(&d.sn))
                .collect(),
        ),
        ..RuleDraft::default()
    };
    // Bound once, outside the measurement: every user but the rounds'.
    let t0 = Instant::now();
    let rule_id = core
        .put_rule(&caller, IdType::UserId, None, draft(rounds))
        .await?;
    eprintln!(
        "rules: a rule of {} users bound to {} terminals in {:.1?}",
        args.users - rounds,
        devices.len(),
        t0.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for d in devices {
        while d.next_push(Duration::from_millis(1)).await.is_some() {}
    }
    let fan = fan_out(devices, rounds, |round| {
        let (core, caller, rule_id) = (core.clone(), caller.clone(), rule_id.clone());
        let next = draft(rounds - 1 - round as usize);
        async move {
            core.put_rule(&caller, IdType::UserId, Some(&rule_id), next)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }
    })
    .await?;
    let fan_ref = broadcast_reference(echo, reference, args).await?;
    println!(
        "rule change (one person more, rule of ~{} users) reaching {} terminals (last one): {}; reference broadcast {}; p50 ratio {:.1}x",
        args.users,
        devices.len(),
        summary(&fan),
        summary(&fan_ref),
        fan.value_at_quantile(0.5) as f64 / fan_ref.value_at_quantile(0.5).max(1) as f64
    );
    Ok(())
}

/// Step 3: a new device's full pull of every user (with one face template each
/// for 200 of them when step 1 ran).
async fn pull(
    core: &Core,
    tenant: &Tenant,
    fresh: Arc<Device>,
    args: &DeviceArgs,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    fresh.full_pull(200).await?;
    let pull = t0.elapsed();
    let n = fresh.book.lock().await.users.len();
    anyhow::ensure!(n == args.users, "pulled {n} of {} users", args.users);
    let pages = args.users.div_ceil(200);
    // Reference: the same pages, prepared in advance, sent by the do-nothing server.
    let mut texts = HashMap::new();
    for p in 0..pages as i64 {
        texts.insert(p * 200, core_page_text(core, tenant, p * 200, 200).await?);
    }
    let pages_ref = reference_server(Arc::from("{}"), Arc::new(texts)).await?;
    let puller = Device::connect(&pages_ref, "REF-PULL", (&[], &[]), None).await?;
    let t0 = Instant::now();
    for p in 0..pages as i64 {
        puller
            .call(
                "get_userinfo_by_page",
                json!({"offset": p * 200, "limit": 200}),
            )
            .await?;
    }
    let pull_ref = t0.elapsed();
    println!(
        "full pull of {n} users ({pages} pages): {:.0} ms; reference (the same pages, prepared) {:.0} ms; ratio {:.1}x",
        ms(pull),
        ms(pull_ref),
        ms(pull) / ms(pull_ref).max(0.001)
    );
    Ok(())
}

/// Text of one real page, so the reference sends the same bytes.
async fn core_page_text(
    core: &Core,
    t: &Tenant,
    offset: i64,
    limit: i64,
) -> anyhow::Result<Arc<str>> {
    let session = facehub::domain::devices::Session {
        sn: "ref".into(),
        tenant_id: t.id,
        fa_algorithms: vec!["X".into()],
        fp_algorithms: vec!["default".into()],
    };
    let page = facehub::domain::devices::sync::Page::new(offset, limit)?;
    let wanted = facehub::domain::devices::messages::Wanted {
        faces: true,
        fingerprints: true,
    };
    let page = core
        .users_page(&session, facehub::model::Stream::People, page, wanted)
        .await
        .context("page")?;
    let body = facehub::api::wecom::frames::page_reply(&page);
    Ok(Arc::from(facehub::api::wecom::frames::reply_frame(
        "__REQ_ID__",
        body,
    )))
}

/// Times `trigger` until every device has received a push: the histogram
/// of the slowest device's latency per round.
async fn fan_out<F, Fut>(
    devices: &[Arc<Device>],
    rounds: usize,
    trigger: F,
) -> anyhow::Result<Histogram<u64>>
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut h = Histogram::<u64>::new(3)?;
    for round in 0..rounds as u64 {
        let waits: Vec<_> = devices
            .iter()
            .map(|d| {
                let d = d.clone();
                tokio::spawn(async move {
                    d.push_of("push_change_contact", Duration::from_secs(30))
                        .await
                        .map(|_| Instant::now())
                })
            })
            .collect();
        let t0 = Instant::now();
        trigger(round).await?;
        let mut last = t0;
        for w in waits {
            let at = w.await?.context("a device got no push")?;
            last = last.max(at);
        }
        h.record(last.duration_since(t0).as_micros() as u64)?;
        // Reference pushes and duplicate pushes are drained.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for d in devices {
            while d.next_push(Duration::from_millis(1)).await.is_some() {}
        }
    }
    Ok(h)
}
