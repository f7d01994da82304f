//! `facehub-bench zk`: ZKTeco terminals (the PUSH protocol's
//! `/iclock/getrequest` polls) against an in-process facehub on a fresh
//! data directory, each figure next to a reference measured in the same
//! run with the same simulated terminals: a minimal axum server that does
//! no work (it answers every poll `OK`, and a new terminal's download with
//! the same command text, canned).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use facehub::domain::{Core, PersonDraft, Tenant};
use facehub::model::ZkSettings;
use facehub_devsim::zk::ZkTerminal;
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

#[derive(clap::Args)]
pub struct ZkArgs {
    /// Terminals polling at once
    #[arg(long, default_value_t = 1000)]
    terminals: usize,
    /// Seconds between a terminal's polls
    #[arg(long, default_value_t = 5)]
    poll_secs: u64,
    /// Seconds of steady polling measured
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// People in the polling terminals' tenant
    #[arg(long, default_value_t = 100)]
    book: usize,
    /// People a new terminal downloads
    #[arg(long, default_value_t = 10_000)]
    users: usize,
}

/// Process CPU time (user + system) so far, from /proc/self/stat.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), 1-based 14
    // and 15 of the whole line: utime, stime in clock ticks (100 a second).
    let rest = stat.rsplit_once(") ").map(|r| r.1).unwrap_or("");
    let f: Vec<u64> = rest
        .split(' ')
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

fn summary(h: &Histogram<u64>) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.1} ms ({} polls)",
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        h.len()
    )
}

/// The canned batches a new terminal downloads from the reference: the
/// same lines facehub sends (ids counting up), 200 a batch, then `OK`.
fn canned(users: usize) -> Vec<String> {
    let lines: Vec<String> = (0..users)
        .map(|u| {
            format!(
                "C:{}:DATA UPDATE USERINFO PIN={}\tName=User {u}\tPri=0\n",
                u + 1,
                100_000 + u
            )
        })
        .collect();
    lines.chunks(200).map(|c| c.concat()).collect()
}

#[derive(Clone)]
struct Reference {
    batches: Arc<Vec<String>>,
    /// The next batch a downloading terminal is sent (one terminal at a time).
    next: Arc<AtomicI64>,
}

#[derive(serde::Deserialize)]
struct Sn {
    #[serde(rename = "SN")]
    sn: String,
}

/// The reference server: `OK` to every poll except those of the
/// terminal named `NEW`, which gets the canned batches in turn.
async fn reference(users: usize) -> anyhow::Result<String> {
    let state = Reference {
        batches: Arc::new(canned(users)),
        next: Arc::new(AtomicI64::new(0)),
    };
    async fn poll(State(r): State<Reference>, Query(q): Query<Sn>) -> String {
        if q.sn != "NEW" {
            return "OK".into();
        }
        let i = r.next.fetch_add(1, Ordering::Relaxed) as usize;
        r.batches.get(i).cloned().unwrap_or_else(|| "OK".into())
    }
    let app = Router::new()
        .route(
            "/iclock/cdata",
            get(|| async { "GET OPTION FROM: x\nTimeZone=0\nDelay=5\n" }),
        )
        .route("/iclock/getrequest", get(poll))
        .route("/iclock/devicecmd", post(|| async { "OK" }))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// The fleet polling for `seconds` (after one round to settle), each
/// terminal at its own offset within the interval; `change`, if given, is
/// made halfway through. The poll latencies, the CPU time the process
/// used, and the time from the change until the last terminal had it.
async fn steady(
    terminals: Vec<ZkTerminal>,
    args: &ZkArgs,
    change: Option<(Arc<Core>, Tenant)>,
) -> anyhow::Result<(Histogram<u64>, Duration, Option<Duration>)> {
    let n = terminals.len();
    let interval = Duration::from_secs(args.poll_secs);
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let changed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let reached: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now() + interval;
    let end = start + Duration::from_secs(args.seconds);
    let cpu_before = Arc::new(Mutex::new(None));
    let mut tasks = Vec::new();
    for (i, mut t) in terminals.into_iter().enumerate() {
        let (hist, changed_at, reached, cpu_before) = (
            hist.clone(),
            changed_at.clone(),
            reached.clone(),
            cpu_before.clone(),
        );
        let offset = interval.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(async move {
            let mut next = Instant::now() + offset;
            let mut got_change = false;
            loop {
                tokio::time::sleep_until(next.into()).await;
                if Instant::now() >= end {
                    break;
                }
                let measured = Instant::now() >= start;
                if measured {
                    cpu_before.lock().await.get_or_insert_with(cpu);
                }
                let began = Instant::now();
                let commands = t.sync().await?;
                let took = began.elapsed();
                if measured && commands == 0 {
                    hist.lock().await.record(took.as_micros() as u64)?;
                }
                let at = *changed_at.lock().await;
                if let (true, false, Some(at)) = (commands > 0, got_change, at) {
                    got_change = true;
                    reached.lock().await.push(at.elapsed());
                }
                next += interval;
            }
            anyhow::Ok(())
        }));
    }
    if let Some((core, tenant)) = change {
        tokio::time::sleep_until((start + Duration::from_secs(args.seconds / 2)).into()).await;
        *changed_at.lock().await = Some(Instant::now());
        core.erase_person(
            tenant.id,
            "100001",
            facehub::model::ActorKind::Admin,
            "bench",
            None,
        )
        .await?;
    }
    for t in tasks {
        t.await??;
    }
    let used = cpu() - cpu_before.lock().await.unwrap_or_default();
    let hist = hist.lock().await.clone();
    let reached = reached.lock().await.clone();
    let all = (reached.len() == n).then(|| reached.into_iter().max().unwrap_or_default());
    Ok((hist, used, all))
}

async fn people(core: &Core, tenant: &Tenant, n: usize) -> anyhow::Result<()> {
    for u in 0..n {
        let d = PersonDraft::new(&format!("{}", 100_000 + u), &format!("User {u}"), None)?;
        core.upsert_person(tenant, &d).await?;
    }
    Ok(())
}

async fn fleet(
    core: &Core,
    tenant: &Tenant,
    base: &str,
    args: &ZkArgs,
) -> anyhow::Result<Vec<ZkTerminal>> {
    let zk = ZkSettings {
        utc_offset_min: 0,
        allow_from: vec![],
    };
    let mut out = Vec::with_capacity(args.terminals);
    for n in 0..args.terminals {
        let sn = format!("ZKB-{n:05}");
        core.add_zk_device(tenant, &sn, &zk).await?;
        core.bind_device(tenant.id, &sn).await?;
        let mut t = ZkTerminal::new(base, &sn);
        t.init().await?;
        t.sync_all().await?;
        out.push(t);
    }
    Ok(out)
}

pub async fn run(args: ZkArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (addr, core) = crate::devices::start_facehub(dir.path()).await?;
    let base = format!("http://{addr}");
    let tenant = core.create_tenant("zk-fleet").await?;
    people(&core, &tenant, args.book).await?;
    let started = Instant::now();
    let terminals = fleet(&core, &tenant, &base, &args).await?;
    eprintln!(
        "setup: {} terminals holding {} people in {:.1?}",
        args.terminals,
        args.book,
        started.elapsed()
    );
    let reference_base = reference(args.users).await?;
    let mut reference_fleet = Vec::with_capacity(args.terminals);
    for n in 0..args.terminals {
        reference_fleet.push(ZkTerminal::new(&reference_base, &format!("REF-{n:05}")));
    }

    println!(
        "== zk poll: {} terminals polling every {} s for {} s",
        args.terminals, args.poll_secs, args.seconds
    );
    let (h, used, reached) = steady(terminals, &args, Some((core.clone(), tenant))).await?;
    let (rh, rused, _) = steady(reference_fleet, &args, None).await?;
    let window = args.seconds as f64;
    println!(
        "facehub:   {}; CPU {:.1} % of a core",
        summary(&h),
        used.as_secs_f64() / window * 100.0
    );
    println!(
        "reference: {}; CPU {:.1} % of a core",
        summary(&rh),
        rused.as_secs_f64() / window * 100.0
    );
    println!(
        "ratio: p99 {:.2}x, CPU {:.2}x",
        h.value_at_quantile(0.99) as f64 / rh.value_at_quantile(0.99).max(1) as f64,
        used.as_secs_f64() / rused.as_secs_f64().max(0.001)
    );
    match reached {
        Some(d) => println!(
            "one change fetched and confirmed by all {} terminals in {:.2} s (the poll interval, {} s, is the floor)",
            args.terminals,
            d.as_secs_f64(),
            args.poll_secs
        ),
        None => println!("the change did not reach every terminal within the run"),
    }

    println!(
        "== zk download: a new terminal's book of {} people",
        args.users
    );
    let big = core.create_tenant("zk-big").await?;
    let started = Instant::now();
    people(&core, &big, args.users).await?;
    eprintln!("setup: {} people in {:.1?}", args.users, started.elapsed());
    let zk = ZkSettings {
        utc_offset_min: 0,
        allow_from: vec![],
    };
    core.add_zk_device(&big, "NEW", &zk).await?;
    core.bind_device(big.id, "NEW").await?;
    let mut t = ZkTerminal::new(&base, "NEW");
    t.init().await?;
    let began = Instant::now();
    let commands = t.sync_all().await?;
    let took = began.elapsed();
    anyhow::ensure!(t.users.len() == args.users, "got {} people", t.users.len());
    let mut r = ZkTerminal::new(&reference_base, "NEW");
    let began = Instant::now();
    let reference_commands = r.sync_all().await?;
    let reference_took = began.elapsed();
    anyhow::ensure!(r.users.len() == args.users);
    println!(
        "facehub:   {commands} commands in {:.2} s",
        took.as_secs_f64()
    );
    println!(
        "reference: {reference_commands} commands in {:.2} s",
        reference_took.as_secs_f64()
    );
    println!(
        "ratio: {:.2}x",
        took.as_secs_f64() / reference_took.as_secs_f64().max(0.000_001)
    );
    Ok(())
}
