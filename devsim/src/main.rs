//! `facehub-devsim`: runs simulated terminals against a facehub server.
//!
//! The devices must have been added and bound by an admin first, e.g.
//! `facehub device add --tenant acme --sn SIM-0001 --secret-no <SecretNo, 16+ characters> --bind`.

use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use facehub_devsim::Device;
use serde_json::json;

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// WebSocket URL of the server.
    #[arg(long, default_value = "ws://127.0.0.1:8080/")]
    url: String,
    /// Serial numbers are `<prefix><n>` with n zero-padded to 4 digits, from 1.
    #[arg(long, default_value = "SIM-")]
    sn_prefix: String,
    /// How many devices.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// The SecretNo every simulated device was added with.
    #[arg(long)]
    secret_no: String,
    /// Face algorithms, in priority order.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    fa: Vec<String>,
    /// The first device uploads a face template for each of these userids.
    #[arg(long, value_delimiter = ',')]
    enrol: Vec<String>,
    /// Keep running (and syncing) for this many seconds.
    #[arg(long, default_value_t = 5)]
    secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fa: Vec<&str> = args.fa.iter().map(String::as_str).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let started = Instant::now();
    let mut devices = Vec::new();
    for n in 1..=args.count {
        let sn = format!("{}{n:04}", args.sn_prefix);
        // Like a terminal, retry a refused bring-up after a pause: many
        // simulated terminals from one address meet the server's limits on
        // what one address may try before login.
        let mut tries = 0;
        let d = loop {
            let d =
                Device::connect(&args.url, &sn, (&fa, &[]), Some(Duration::from_secs(30))).await;
            let up = match d {
                Ok(d) => d.bring_up(&args.secret_no, now).await.map(|_| d),
                Err(e) => Err(e),
            };
            match up {
                Ok(d) => break d,
                Err(e) if tries < 10 => {
                    tries += 1;
                    eprintln!("{sn}: {e:#}; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        d.catch_up().await?;
        devices.push(d);
    }
    println!("{} devices up in {:.2?}", devices.len(), started.elapsed());
    if let Some(first) = devices.first()
        && !args.enrol.is_empty()
    {
        let users: Vec<_> = args
            .enrol
            .iter()
            .map(|u| {
                let data = base64::engine::general_purpose::STANDARD
                    .encode(format!("devsim features of {u}"));
                json!({"userid": u, "fa_list": [{"id": 0, "data": data}], "fa_algorithm": fa[0]})
            })
            .collect();
        let reply = first
            .call("upload_userinfo", json!({"userinfo": users}))
            .await?;
        println!("upload_userinfo: fail_list {}", reply["fail_list"]);
    }
    let deadline = Instant::now() + Duration::from_secs(args.secs);
    while Instant::now() < deadline {
        for d in &devices {
            for p in d.drain_pushes(Duration::from_millis(50)).await? {
                let answered = d.answer_enrolment(&p).await?;
                println!(
                    "{}: {}{}",
                    d.sn,
                    p["cmd"],
                    if answered { " (answered)" } else { "" }
                );
            }
        }
    }
    for d in &devices {
        let b = d.book.lock().await;
        let templates: usize = b
            .users
            .values()
            .map(|u| u.fa.slots.len() + u.fp.slots.len())
            .sum();
        println!(
            "{}: perm_version {}, {} users, {} templates, {} full pulls, {} incremental",
            d.sn,
            b.perm_version,
            b.users.len(),
            templates,
            b.full_pulls,
            b.incremental
        );
    }
    Ok(())
}
