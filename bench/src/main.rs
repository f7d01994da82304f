//! facehub-bench: drives a running facehub (or a reference server) with N
//! concurrent clients for a fixed time and prints requests/s, latency
//! percentiles, errors and, given a pid, the server's peak RSS.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{Value, json};

mod devices;
mod records;
mod zk;

#[derive(Parser)]
#[command(name = "facehub-bench", about = "Load generator for facehub")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario
    Run(RunArgs),
    /// Time facehub's face detector on labelled images: one line of JSON per
    /// image (file, faces found with score >= 0.75, median ms over REPEAT)
    Detect {
        /// Image files
        files: Vec<std::path::PathBuf>,
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// The device protocol: a 200 x 12 template upload, one change reaching
    /// N connected devices, a new device's full pull (in-process server)
    Devices(devices::DeviceArgs),
    /// Reading punch records out of a large store: user_flows/query and
    /// access_records against SQLite answering the same statements
    /// (in-process server)
    Records(records::RecordArgs),
    /// ZKTeco terminals: N polling `getrequest` (CPU, p99, one change
    /// reaching all), a new terminal's download (in-process server)
    Zk(zk::ZkArgs),
    /// Write a noise JPEG of about SIZE bytes (incompressible, like a photo)
    GenPhoto {
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 200_000)]
        size: usize,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Scenario {
    /// POST /open-apis/attendance/v1/files/upload
    AttendanceUpload,
    /// GET /open-apis/attendance/v1/files/:id/download of one uploaded photo
    AttendanceDownload,
    /// POST /open-apis/lingo/v1/files/upload (the file must be a valid wiki image)
    LingoUpload,
    /// PUT /open-apis/acs/v1/users/:user_id/face with detection and crop (the
    /// file must show a face; --user-id must have door access)
    AcsFace,
    /// PUT the file to URL/<n> (e.g. nginx WebDAV), the reference for uploads
    RawPut,
    /// GET URL, the reference for downloads
    RawGet,
    /// PUT the file as an object to the s3:// URL (facehub's `blobs` form)
    /// with facehub's S3 client: the object store's own cost, the
    /// reference for uploads to it
    S3Put,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// facehub base URL, or the URL for raw-put / raw-get
    #[arg(long)]
    url: String,
    #[arg(long)]
    file: std::path::PathBuf,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    #[arg(long)]
    app_id: Option<String>,
    #[arg(long)]
    app_secret: Option<String>,
    /// The person (user_id) for acs-face
    #[arg(long)]
    user_id: Option<String>,
    /// Server pid whose peak RSS (VmHWM) is reported
    #[arg(long)]
    pid: Option<u32>,
    /// Label for the output
    #[arg(long, default_value = "")]
    label: String,
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::GenPhoto { out, size } => gen_photo(&out, size),
        Cmd::Detect { files, repeat } => detect(&files, repeat),
        Cmd::Run(args) => run(args).await,
        Cmd::Devices(args) => devices::run(args).await,
        Cmd::Records(args) => records::run(args).await,
        Cmd::Zk(args) => zk::run(args).await,
    }
}

fn gen_photo(out: &std::path::Path, size: usize) -> anyhow::Result<()> {
    // Grow the picture until its JPEG reaches the requested size.
    let mut side = 200u32;
    loop {
        let mut state = 0x2545F491u32;
        let img = image::RgbImage::from_fn(side, side, |_, _| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let b = state.to_le_bytes();
            image::Rgb([b[0], b[1], b[2]])
        });
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg)?;
        let bytes = buf.into_inner();
        if bytes.len() >= size || side > 4000 {
            std::fs::write(out, &bytes)?;
            println!("{} bytes, {side}x{side}", bytes.len());
            return Ok(());
        }
        side += 20;
    }
}

async fn token(client: &reqwest::Client, base: &str, args: &RunArgs) -> anyhow::Result<String> {
    let (Some(id), Some(secret)) = (&args.app_id, &args.app_secret) else {
        bail!("--app-id and --app-secret are needed for facehub scenarios");
    };
    let v: Value = client
        .post(format!(
            "{base}/open-apis/auth/v3/tenant_access_token/internal"
        ))
        .json(&json!({"app_id": id, "app_secret": secret}))
        .send()
        .await?
        .json()
        .await?;
    v["tenant_access_token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("token request failed: {v}"))
}

fn upload_form(photo: &Bytes) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::stream(reqwest::Body::from(photo.clone())),
    )
}

async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    photo: &Bytes,
) -> anyhow::Result<String> {
    let v: Value = client
        .post(format!(
            "{base}/open-apis/attendance/v1/files/upload?file_name=bench.jpg"
        ))
        .bearer_auth(token)
        .multipart(upload_form(photo))
        .send()
        .await?
        .json()
        .await?;
    v["data"]["file"]["file_id"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("upload failed: {v}"))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let photo = Bytes::from(std::fs::read(&args.file)?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let base = args.url.trim_end_matches('/').to_string();
    let (token, download_id) = match args.scenario {
        Scenario::AttendanceUpload | Scenario::LingoUpload => {
            (token(&client, &base, &args).await?, String::new())
        }
        Scenario::AcsFace => {
            let user = args
                .user_id
                .clone()
                .context("--user-id is needed for acs-face")?;
            (token(&client, &base, &args).await?, user)
        }
        Scenario::AttendanceDownload => {
            let t = token(&client, &base, &args).await?;
            let id = upload(&client, &base, &t, &photo).await?;
            (t, id)
        }
        Scenario::RawPut | Scenario::RawGet | Scenario::S3Put => (String::new(), String::new()),
    };
    let s3 = match args.scenario {
        Scenario::S3Put => Some(Arc::new(
            facehub::store::s3::S3Location::parse(&args.url)?.client()?,
        )),
        _ => None,
    };
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, base, token, id, photo) = (
            client.clone(),
            base.clone(),
            token.clone(),
            download_id.clone(),
            photo.clone(),
        );
        let (errors, bytes, counter) = (errors.clone(), bytes.clone(), counter.clone());
        let s3 = s3.clone();
        let scenario = args.scenario;
        workers.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = match scenario {
                    Scenario::AttendanceUpload => {
                        match upload(&client, &base, &token, &photo).await {
                            Ok(_) => {
                                bytes.fetch_add(photo.len() as u64, Ordering::Relaxed);
                                true
                            }
                            Err(_) => false,
                        }
                    }
                    Scenario::AttendanceDownload | Scenario::RawGet => {
                        let url = if scenario == Scenario::RawGet {
                            base.clone()
                        } else {
                            format!("{base}/open-apis/attendance/v1/files/{id}/download")
                        };
                        let mut req = client.get(url);
                        if !token.is_empty() {
                            req = req.bearer_auth(&token);
                        }
                        match req.send().await {
                            Ok(r) if r.status().is_success() => match r.bytes().await {
                                Ok(b) if b.len() == photo.len() => {
                                    bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                                    true
                                }
                                _ => false,
                            },
                            _ => false,
                        }
                    }
                    Scenario::LingoUpload | Scenario::AcsFace => {
                        let part = || {
                            reqwest::multipart::Part::stream(reqwest::Body::from(photo.clone()))
                                .file_name("bench.jpg")
                        };
                        let req = if scenario == Scenario::LingoUpload {
                            let form = reqwest::multipart::Form::new()
                                .text("name", "bench.jpg")
                                .part("file", part());
                            client
                                .post(format!("{base}/open-apis/lingo/v1/files/upload"))
                                .multipart(form)
                        } else {
                            let form = reqwest::multipart::Form::new()
                                .part("files", part())
                                .text("file_type", "jpg")
                                .text("file_name", "bench.jpg");
                            client
                                .put(format!(
                                    "{base}/open-apis/acs/v1/users/{id}/face?user_id_type=user_id"
                                ))
                                .multipart(form)
                        };
                        match req.bearer_auth(&token).send().await {
                            Ok(r) if r.status().is_success() => {
                                bytes.fetch_add(photo.len() as u64, Ordering::Relaxed);
                                r.bytes().await.is_ok()
                            }
                            _ => false,
                        }
                    }
                    Scenario::S3Put => {
                        use object_store::ObjectStore;
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        let path = object_store::path::Path::from(format!("bench-s3-put/{n}"));
                        let store = s3.as_ref().expect("an S3 client");
                        match store.put(&path, photo.clone().into()).await {
                            Ok(_) => {
                                bytes.fetch_add(photo.len() as u64, Ordering::Relaxed);
                                true
                            }
                            Err(_) => false,
                        }
                    }
                    Scenario::RawPut => {
                        let n = counter.fetch_add(1, Ordering::Relaxed);
                        match client
                            .put(format!("{base}/{n}.jpg"))
                            .body(photo.clone())
                            .send()
                            .await
                        {
                            Ok(r) if r.status().is_success() => {
                                bytes.fetch_add(photo.len() as u64, Ordering::Relaxed);
                                true
                            }
                            _ => false,
                        }
                    }
                };
                if ok {
                    hist.record(t0.elapsed().as_micros().max(1) as u64).ok();
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            hist
        }));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for w in workers {
        hist.add(w.await?).ok();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ok = hist.len();
    let report = json!({
        "label": args.label,
        "requests": ok,
        "errors": errors.load(Ordering::Relaxed),
        "seconds": elapsed,
        "rps": ok as f64 / elapsed,
        "mib_per_s": bytes.load(Ordering::Relaxed) as f64 / elapsed / 1048576.0,
        "p50_ms": hist.value_at_quantile(0.50) as f64 / 1000.0,
        "p95_ms": hist.value_at_quantile(0.95) as f64 / 1000.0,
        "p99_ms": hist.value_at_quantile(0.99) as f64 / 1000.0,
        "peak_rss_mib": args.pid.and_then(peak_rss_kib).map(|k| k as f64 / 1024.0),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{:<28} {:>8.0} req/s  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  errors {}  peak RSS {}",
            args.label,
            report["rps"].as_f64().unwrap(),
            report["p50_ms"].as_f64().unwrap(),
            report["p95_ms"].as_f64().unwrap(),
            report["p99_ms"].as_f64().unwrap(),
            report["errors"],
            report["peak_rss_mib"]
                .as_f64()
                .map(|m| format!("{m:.1} MiB"))
                .unwrap_or_else(|| "-".into()),
        );
    }
    Ok(())
}

/// Decoding is not timed; detection includes scaling to the model's input.
fn detect(files: &[std::path::PathBuf], repeat: usize) -> anyhow::Result<()> {
    use facehub::image::face;
    face::warm_up().map_err(anyhow::Error::msg)?;
    for path in files {
        let img = image::open(path)?.into_rgb8();
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..repeat.max(1) {
            let t = std::time::Instant::now();
            let faces = face::detect(&img).map_err(anyhow::Error::msg)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            found = faces.iter().filter(|f| f.score >= 0.75).count();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{}",
            json!({"file": path.display().to_string(), "faces": found, "ms": times[times.len() / 2],
                   "width": img.width(), "height": img.height()})
        );
    }
    Ok(())
}
