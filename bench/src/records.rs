//! `facehub-bench records`: reading punch records out of a large store.
//!
//! An in-process facehub on a fresh data directory is given `--records`
//! punches through its own write path (terminals' `checkin` frames of 200,
//! each punch a door pass too), then answers two reads over HTTP with
//! `--concurrency` clients: `attendance/v1/user_flows/query` (a random
//! person over `--flow-days`) and `acs/v1/access_records` (a random day,
//! following `page_token` for `--pages` pages). Each is measured next to
//! a reference in the same run: the same SQL statements facehub's store
//! runs, answered by SQLite itself (rusqlite, a connection per client
//! thread) on facehub's own database file, read-only. Both sides draw the
//! same queries from the same seeds, so the ratio is what the HTTP client
//! and server, auth, the envelope and facehub's query code add to the
//! database's own work. The two sides take `--turns` turns each, so a
//! neighbour's load on a shared machine falls on both alike.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use facehub::domain::{Core, PersonDraft, Tenant};
use facehub::model::Scope;
use facehub_devsim::Device;
use hdrhistogram::Histogram;
use rusqlite::OptionalExtension;
use serde_json::{Value, json};

use crate::devices::{SECRET_NO, connect_all, start_facehub};

#[derive(clap::Args)]
pub struct RecordArgs {
    /// Punch records to store before measuring
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// People in the tenant; each punches twice a day, so the records
    /// span records / (2 x users) days
    #[arg(long, default_value_t = 5_000)]
    users: usize,
    /// Requests in flight (facehub) and threads querying (reference)
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds each side answers each read, in all
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Turns each side takes within those seconds, alternating
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
    turns: u64,
    /// Days one user_flows/query spans (the platform allows 30)
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(1..=30))]
    flow_days: i64,
    /// access_records: records per page
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=500))]
    page_size: i64,
    /// access_records: pages followed per listing of a day
    #[arg(long, default_value_t = 3)]
    pages: usize,
}

/// Seconds between a person's punches: two a day.
const ROUND_SECS: i64 = 43_200;
/// Records in one `checkin` frame (the protocol's most).
const FRAME: usize = 200;
/// Terminals sending frames at once while loading: enough that the
/// server's group commit writes many frames per transaction.
const LOADERS: usize = 50;
/// Queries drawn and answered by both sides before measuring, to prove
/// the reference answers the same question.
const CROSS_CHECKS: u64 = 20;

/// The statements facehub's store runs (src/store/people.rs `person_by`,
/// src/store/flows.rs `flows_of` and `door_records`), for one person.
const PERSON_SQL: &str = "SELECT * FROM people WHERE tenant_id = ?1 AND user_id = ?2";
const FLOWS_SQL: &str = "SELECT * FROM user_flows
     WHERE check_time >= ?1 AND check_time <= ?2 AND person_id IN (?3)
     ORDER BY check_time, record_id";
const DOOR_SQL: &str = "SELECT f.*, p.user_id AS p_user_id, p.union_id AS p_union_id
     FROM user_flows f JOIN people p ON p.id = f.person_id
     WHERE f.tenant_id = ?1 AND f.sn IS NOT NULL AND f.pass_type IS NOT NULL
       AND f.check_time >= ?2 AND f.check_time <= ?3
       AND (?4 = '' OR f.sn = ?4)
       AND (?5 = 1 OR f.check_time < ?6 OR (f.check_time = ?6 AND f.record_id < ?7))
     ORDER BY f.check_time DESC, f.record_id DESC
     LIMIT ?8";

/// splitmix64's finaliser: a well-spread hash of a counter.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded generator: the same seed draws the same queries on both sides.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed << 32)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 += 1;
        mix(self.0) % n.max(1)
    }
}

fn user_id(n: usize) -> String {
    format!("user{n:05}")
}

/// Where the records lie: record `i` is person `i % users`'s punch of
/// round `i / users` (two rounds a day), at a time within the round drawn
/// from `i`, the last round ending an hour ago. No two records share a
/// person and a second, so none is taken for a re-sent one.
struct Layout {
    start: i64,
    users: usize,
    records: usize,
    rounds: i64,
}

impl Layout {
    fn new(records: usize, users: usize, now: i64) -> Layout {
        let rounds = records.div_ceil(users) as i64;
        Layout {
            start: now - 3600 - rounds * ROUND_SECS,
            users,
            records,
            rounds,
        }
    }

    fn punch(&self, i: usize) -> (String, i64) {
        let round = (i / self.users) as i64;
        let at = self.start + round * ROUND_SECS + (mix(i as u64) % ROUND_SECS as u64) as i64;
        (user_id(i % self.users), at)
    }

    fn end(&self) -> i64 {
        self.start + self.rounds * ROUND_SECS
    }

    /// A `secs` long window (both ends inclusive) at a random place.
    fn window(&self, rng: &mut Rng, secs: i64) -> (i64, i64) {
        let room = (self.end() - self.start - secs).max(0);
        let from = self.start + rng.below(room as u64 + 1) as i64;
        (from, from + secs - 1)
    }

    /// `checkin` frame `k`: records `k * FRAME` onwards, door passes by
    /// face.
    fn frame(&self, k: usize) -> Value {
        let items: Vec<Value> = (k * FRAME..self.records.min((k + 1) * FRAME))
            .map(|i| {
                let (userid, at) = self.punch(i);
                json!({"userid": userid, "user_type": 0, "timestamp": at,
                       "pass_type": 1, "pass_method": 1})
            })
            .collect();
        json!({"checkin_data": items})
    }
}

/// The two reads.
#[derive(Clone, Copy)]
enum Read {
    /// One person's records over `flow_days`.
    Flows,
    /// A day's door records, `pages` pages of `page_size`.
    Access,
}

struct Workload {
    layout: Layout,
    flow_secs: i64,
    page_size: i64,
    pages: usize,
}

impl Workload {
    fn flow_query(&self, rng: &mut Rng) -> (String, (i64, i64)) {
        let user = user_id(rng.below(self.layout.users as u64) as usize);
        (user, self.layout.window(rng, self.flow_secs))
    }

    fn listing(&self, rng: &mut Rng) -> (i64, i64) {
        self.layout.window(rng, 86_400)
    }
}

/// One page of door records: their ids and the token of the next page.
#[derive(PartialEq, Debug)]
struct Page {
    ids: Vec<String>,
    next: Option<String>,
}

/// What answers the reads: facehub over HTTP, or SQLite itself.
trait Source {
    /// The record ids of `user_flows/query` for one person.
    async fn flows(&self, user: &str, window: (i64, i64)) -> anyhow::Result<Vec<String>>;
    /// One page of `acs/v1/access_records`.
    async fn access_page(
        &self,
        window: (i64, i64),
        page_size: i64,
        token: Option<&str>,
    ) -> anyhow::Result<Page>;
}

/// One client: `read`s drawn from `seed` one after another until
/// `deadline`, each request timed (a listing's pages one by one).
async fn client(
    source: &impl Source,
    work: &Workload,
    read: Read,
    seed: u64,
    deadline: Instant,
) -> Tally {
    let (mut rng, mut tally) = (Rng::new(seed), Tally::new());
    while Instant::now() < deadline {
        match read {
            Read::Flows => {
                let (user, window) = work.flow_query(&mut rng);
                let t0 = Instant::now();
                match source.flows(&user, window).await {
                    Ok(ids) => tally.ok(t0, ids.len()),
                    Err(e) => tally.failed(e),
                }
            }
            Read::Access => {
                let window = work.listing(&mut rng);
                let mut token = None;
                for _ in 0..work.pages {
                    let t0 = Instant::now();
                    match source
                        .access_page(window, work.page_size, token.as_deref())
                        .await
                    {
                        Ok(page) => {
                            tally.ok(t0, page.ids.len());
                            token = page.next;
                        }
                        Err(e) => {
                            tally.failed(e);
                            break;
                        }
                    }
                    if token.is_none() {
                        break;
                    }
                }
            }
        }
    }
    tally
}

/// facehub over HTTP, with a tenant access token.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

/// The `key` of each object of `list`.
fn ids(list: &Value, key: &str) -> anyhow::Result<Vec<String>> {
    list.as_array()
        .context("no list in the answer")?
        .iter()
        .map(|o| {
            o[key]
                .as_str()
                .map(str::to_string)
                .context("an item without id")
        })
        .collect()
}

impl Api {
    async fn connect(
        base: String,
        app_id: &str,
        secret: &str,
        clients: usize,
    ) -> anyhow::Result<Api> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(clients)
            .build()?;
        let v: Value = client
            .post(format!(
                "{base}/open-apis/auth/v3/tenant_access_token/internal"
            ))
            .json(&json!({"app_id": app_id, "app_secret": secret}))
            .send()
            .await?
            .json()
            .await?;
        let token = v["tenant_access_token"]
            .as_str()
            .with_context(|| format!("token request failed: {v}"))?
            .to_string();
        Ok(Api {
            client,
            base,
            token,
        })
    }

    async fn envelope(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let v: Value = req.send().await?.json().await?;
        anyhow::ensure!(v["code"] == 0, "refused: {v}");
        Ok(v)
    }
}

impl Source for Api {
    async fn flows(&self, user: &str, (from, to): (i64, i64)) -> anyhow::Result<Vec<String>> {
        let url = format!(
            "{}/open-apis/attendance/v1/user_flows/query?employee_type=employee_id",
            self.base
        );
        let body = json!({"user_ids": [user], "check_time_from": from.to_string(),
                          "check_time_to": to.to_string()});
        let req = self.client.post(url).bearer_auth(&self.token).json(&body);
        let v = Self::envelope(req).await?;
        ids(&v["data"]["user_flow_results"], "record_id")
    }

    async fn access_page(
        &self,
        (from, to): (i64, i64),
        page_size: i64,
        token: Option<&str>,
    ) -> anyhow::Result<Page> {
        // Tokens are digits and an underscore: nothing to escape.
        let url = format!(
            "{}/open-apis/acs/v1/access_records?from={from}&to={to}&page_size={page_size}&page_token={}",
            self.base,
            token.unwrap_or("")
        );
        let v = Self::envelope(self.client.get(url).bearer_auth(&self.token)).await?;
        Ok(Page {
            ids: ids(&v["data"]["items"], "access_record_id")?,
            next: v["data"]["page_token"].as_str().map(str::to_string),
        })
    }
}

/// SQLite itself on facehub's database file, read-only.
struct Reference {
    conn: rusqlite::Connection,
    tenant_id: i64,
}

/// Every column of a row, owned, as any client of SQLite hands rows on.
fn row_values(row: &rusqlite::Row) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
    (0..row.as_ref().column_count())
        .map(|i| row.get(i))
        .collect()
}

impl Reference {
    fn open(path: &Path, tenant_id: i64) -> anyhow::Result<Reference> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {}", path.display()))?;
        Ok(Reference { conn, tenant_id })
    }

    fn flows_now(&self, user: &str, (from, to): (i64, i64)) -> rusqlite::Result<Vec<String>> {
        let person = self
            .conn
            .prepare_cached(PERSON_SQL)?
            .query_row((self.tenant_id, user), |r| {
                row_values(r)?;
                r.get::<_, i64>("id")
            })
            .optional()?;
        let Some(person) = person else {
            return Ok(Vec::new());
        };
        let mut stmt = self.conn.prepare_cached(FLOWS_SQL)?;
        let mut rows = stmt.query((from, to, person))?;
        let mut ids = Vec::new();
        while let Some(r) = rows.next()? {
            row_values(r)?;
            ids.push(r.get("record_id")?);
        }
        Ok(ids)
    }

    /// As `Db::door_records` and `Core::access_records` page: one row
    /// more than the page says whether another follows.
    fn access_page_now(
        &self,
        (from, to): (i64, i64),
        page_size: i64,
        token: Option<&str>,
    ) -> anyhow::Result<Page> {
        let after = match token {
            Some(t) => {
                let (time, id) = t.split_once('_').context("a bad page token")?;
                Some((time.parse::<i64>()?, id))
            }
            None => None,
        };
        let (after_time, after_id) = after.unwrap_or((i64::MAX, ""));
        let mut stmt = self.conn.prepare_cached(DOOR_SQL)?;
        let mut rows = stmt.query(rusqlite::params![
            self.tenant_id,
            from,
            to.min(after_time),
            "",
            i64::from(after.is_none()),
            after_time,
            after_id,
            page_size + 1
        ])?;
        let mut page = Vec::new();
        while let Some(r) = rows.next()? {
            row_values(r)?;
            page.push((
                r.get::<_, i64>("check_time")?,
                r.get::<_, String>("record_id")?,
            ));
        }
        let more = page.len() as i64 > page_size;
        page.truncate(page_size as usize);
        let next = match page.last() {
            Some((t, id)) if more => Some(format!("{t}_{id}")),
            _ => None,
        };
        Ok(Page {
            ids: page.into_iter().map(|(_, id)| id).collect(),
            next,
        })
    }

    /// SQLite's plan for `sql`, one step a line.
    fn plan(&self, sql: &str, params: impl rusqlite::Params) -> anyhow::Result<String> {
        let mut stmt = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let steps: Vec<String> = stmt
            .query_map(params, |r| r.get::<_, String>(3))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(steps.join("; "))
    }
}

/// SQLite calls are blocking: a client of the reference has a thread of
/// its own, and these futures are ready at their first poll.
impl Source for Reference {
    async fn flows(&self, user: &str, window: (i64, i64)) -> anyhow::Result<Vec<String>> {
        Ok(self.flows_now(user, window)?)
    }

    async fn access_page(
        &self,
        window: (i64, i64),
        page_size: i64,
        token: Option<&str>,
    ) -> anyhow::Result<Page> {
        self.access_page_now(window, page_size, token)
    }
}

/// One side's requests: latencies, records answered, failures.
struct Tally {
    hist: Histogram<u64>,
    rows: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            rows: 0,
            errors: 0,
            first_error: None,
        }
    }

    /// A request begun at `t0` that answered `rows` records.
    fn ok(&mut self, t0: Instant, rows: usize) {
        self.hist
            .saturating_record(t0.elapsed().as_micros().max(1) as u64);
        self.rows += rows as u64;
    }

    fn failed(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }

    fn add(&mut self, other: Tally) {
        self.hist.add(other.hist).expect("same bounds");
        self.rows += other.rows;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    rows_per_answer: f64,
    requests: u64,
    errors: u64,
}

impl Figures {
    fn of(t: Tally, took: Duration) -> Figures {
        if let Some(e) = &t.first_error {
            eprintln!("{} requests failed, the first: {e}", t.errors);
        }
        let n = t.hist.len();
        Figures {
            rps: n as f64 / took.as_secs_f64(),
            p50_ms: t.hist.value_at_quantile(0.50) as f64 / 1000.0,
            p99_ms: t.hist.value_at_quantile(0.99) as f64 / 1000.0,
            rows_per_answer: t.rows as f64 / n.max(1) as f64,
            requests: n,
            errors: t.errors,
        }
    }

    fn line(&self, side: &str) -> String {
        format!(
            "  {side:<10} {:>8.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  {:>5.1} records/answer  {} requests, {} errors",
            self.rps, self.p50_ms, self.p99_ms, self.rows_per_answer, self.requests, self.errors
        )
    }
}

/// Both sides answering `read`, taking `turns` turns each: in turn `t`,
/// client `n` of either side draws from the same seed. The reference's
/// connections are opened before and kept across turns.
async fn measure(
    api: &Arc<Api>,
    refs: &mut Vec<Reference>,
    work: &Arc<Workload>,
    read: Read,
    args: &RecordArgs,
) -> anyhow::Result<(Figures, Figures)> {
    let slice = Duration::from_secs_f64(args.seconds / args.turns as f64);
    let (mut facehub, mut reference) = (Tally::new(), Tally::new());
    let (mut facehub_took, mut reference_took) = (Duration::ZERO, Duration::ZERO);
    for turn in 0..args.turns {
        let seed = move |n: usize| (turn << 16) | n as u64;
        let started = Instant::now();
        let clients: Vec<_> = (0..args.concurrency)
            .map(|n| {
                let (api, work, seed) = (api.clone(), work.clone(), seed(n));
                tokio::spawn(async move { client(&*api, &work, read, seed, started + slice).await })
            })
            .collect();
        for c in clients {
            facehub.add(c.await?);
        }
        facehub_took += started.elapsed();

        let (conns, work) = (std::mem::take(refs), work.clone());
        let started = Instant::now();
        let (conns, tally) = tokio::task::spawn_blocking(move || {
            reference_turn(conns, &work, read, seed, started + slice)
        })
        .await??;
        reference_took += started.elapsed();
        reference.add(tally);
        *refs = conns;
    }
    Ok((
        Figures::of(facehub, facehub_took),
        Figures::of(reference, reference_took),
    ))
}

/// One turn of the reference: each connection serves one client on a
/// thread of its own (SQLite calls block) until `deadline`; the
/// connections come back for the next turn.
fn reference_turn(
    conns: Vec<Reference>,
    work: &Workload,
    read: Read,
    seed: impl Fn(usize) -> u64 + Sync,
    deadline: Instant,
) -> anyhow::Result<(Vec<Reference>, Tally)> {
    let done = std::thread::scope(|s| {
        let threads: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(n, r)| {
                let seed = seed(n);
                s.spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread().build()?;
                    let tally = rt.block_on(client(&r, work, read, seed, deadline));
                    anyhow::Ok((r, tally))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a reference client panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let mut all = Tally::new();
    let conns = done
        .into_iter()
        .map(|(r, t)| {
            all.add(t);
            r
        })
        .collect();
    Ok((conns, all))
}

/// The tenant, its people, the loading terminals and an app that reads
/// records: (tenant, app_id, app_secret).
async fn setup(core: &Core, args: &RecordArgs) -> anyhow::Result<(Tenant, String, String)> {
    let t = core.create_tenant("bench-records").await?;
    let started = Instant::now();
    for u in 0..args.users {
        let d = PersonDraft::new(&user_id(u), &format!("User {u}"), None)?;
        core.upsert_person(&t, &d).await?;
    }
    eprintln!("setup: {} people in {:.1?}", args.users, started.elapsed());
    for n in 1..=LOADERS {
        let sn = format!("LOAD-{n:03}");
        core.add_device(&t, &sn, SECRET_NO).await?;
        core.bind_device(t.id, &sn).await?;
    }
    let scopes = ["attendance:task:readonly", "acs:access_record:readonly"]
        .map(|s| Scope::parse(s).map_err(anyhow::Error::msg))
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let app = core.create_app(&t, &scopes).await?;
    Ok((t, app.app.app_id, app.app_secret))
}

/// Stores every record through `LOADERS` terminals, each sending its
/// share of the frames one after another.
async fn load(url: &str, now: i64, layout: &Arc<Layout>) -> anyhow::Result<Duration> {
    let devices = connect_all(1..=LOADERS, |n| {
        let (url, sn) = (url.to_string(), format!("LOAD-{n:03}"));
        async move {
            let d = Device::connect(&url, &sn, (&["X"], &[]), None).await?;
            d.bring_up(SECRET_NO, now).await?;
            anyhow::Ok(d)
        }
    })
    .await?;
    let frames = layout.records.div_ceil(FRAME);
    let stored = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let senders: Vec<_> = devices
        .into_iter()
        .enumerate()
        .map(|(d, device)| {
            let (layout, stored) = (layout.clone(), stored.clone());
            tokio::spawn(async move {
                for k in (d..frames).step_by(LOADERS) {
                    let frame = layout.frame(k);
                    let n = frame["checkin_data"].as_array().map_or(0, Vec::len);
                    let b = device.call("checkin", frame).await?;
                    anyhow::ensure!(b["fail_list"] == json!([]), "punches refused: {b}");
                    let before = stored.fetch_add(n, Ordering::Relaxed);
                    let tenth = |x: usize| x * 10 / layout.records;
                    if tenth(before + n) > tenth(before) {
                        eprintln!(
                            "stored {} of {} records in {:.1?}",
                            before + n,
                            layout.records,
                            started.elapsed()
                        );
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for s in senders {
        s.await??;
    }
    Ok(started.elapsed())
}

/// Draws `CROSS_CHECKS` queries of each read and fails unless facehub and
/// the reference answer them with the same records.
async fn cross_check(api: &Api, r: &Reference, work: &Workload) -> anyhow::Result<()> {
    // A seed no measured client draws from.
    let mut rng = Rng::new(u32::MAX.into());
    for _ in 0..CROSS_CHECKS {
        let (user, window) = work.flow_query(&mut rng);
        let (fh, rf) = (api.flows(&user, window).await?, r.flows_now(&user, window)?);
        anyhow::ensure!(
            fh == rf,
            "user_flows/query of {user} over {window:?}: facehub {fh:?}, reference {rf:?}"
        );
        let window = work.listing(&mut rng);
        let mut token = None;
        for _ in 0..work.pages {
            let fh = api
                .access_page(window, work.page_size, token.as_deref())
                .await?;
            let rf = r.access_page_now(window, work.page_size, token.as_deref())?;
            anyhow::ensure!(
                fh == rf,
                "access_records over {window:?}: facehub {fh:?}, reference {rf:?}"
            );
            token = fh.next;
            if token.is_none() {
                break;
            }
        }
    }
    Ok(())
}

/// Both sides' figures and facehub's over the reference's, as the
/// `devices` steps give them (throughput below 1 and latencies above 1
/// mean facehub is slower).
fn report(name: &str, what: &str, facehub: &Figures, reference: &Figures) {
    println!("{name} ({what}):");
    println!("{}", facehub.line("facehub"));
    println!("{}", reference.line("reference"));
    println!(
        "  {name} ratio: throughput {:.2}x, p50 {:.1}x, p99 {:.1}x",
        facehub.rps / reference.rps.max(f64::MIN_POSITIVE),
        facehub.p50_ms / reference.p50_ms.max(0.001),
        facehub.p99_ms / reference.p99_ms.max(0.001)
    );
}

pub async fn run(args: RecordArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.users > 0 && args.records > 0,
        "--users and --records must be above 0"
    );
    let dir = tempfile::tempdir()?;
    let (addr, core) = start_facehub(dir.path()).await?;
    let (tenant, app_id, app_secret) = setup(&core, &args).await?;
    let now = core.now();
    let layout = Arc::new(Layout::new(args.records, args.users, now));
    let took = load(&format!("ws://{addr}/"), now, &layout).await?;
    let db = dir.path().join("facehub.db");
    let bytes = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let stored = bytes(&db) + bytes(&dir.path().join("facehub.db-wal"));
    println!(
        "records: {} stored by {LOADERS} terminals in {} checkin frames in {:.1} s ({:.0} records/s), {} people over {} days, database {:.0} MB",
        args.records,
        args.records.div_ceil(FRAME),
        took.as_secs_f64(),
        args.records as f64 / took.as_secs_f64(),
        args.users,
        (layout.end() - layout.start) / 86_400,
        stored as f64 / 1e6
    );

    let probe = Reference::open(&db, tenant.id)?;
    let count: i64 = probe.conn.query_row(
        "SELECT count(*) FROM user_flows WHERE tenant_id = ?1 AND pass_type IS NOT NULL",
        [tenant.id],
        |r| r.get(0),
    )?;
    anyhow::ensure!(
        count as usize == args.records,
        "{count} door records stored, not {}",
        args.records
    );
    let layout = Arc::into_inner(layout).context("the loaders are done")?;
    let work = Arc::new(Workload {
        layout,
        flow_secs: args.flow_days * 86_400,
        page_size: args.page_size,
        pages: args.pages,
    });
    // Which index each read takes is what its cost turns on.
    let (from, to) = (work.layout.start, work.layout.end());
    eprintln!(
        "plan of user_flows/query: {}",
        probe.plan(FLOWS_SQL, (from, to, 1))?
    );
    eprintln!(
        "plan of access_records: {}",
        probe.plan(
            DOOR_SQL,
            rusqlite::params![tenant.id, from, to, "", 1, i64::MAX, "", 101]
        )?
    );

    let api = Arc::new(
        Api::connect(
            format!("http://{addr}"),
            &app_id,
            &app_secret,
            args.concurrency,
        )
        .await?,
    );
    cross_check(&api, &probe, &work).await?;
    drop(probe);
    let mut refs = (0..args.concurrency)
        .map(|_| Reference::open(&db, tenant.id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let reads = [
        (
            Read::Flows,
            "user_flows/query",
            format!("one person over {} days", args.flow_days),
        ),
        (
            Read::Access,
            "access_records",
            format!("a day, up to {} pages of {}", args.pages, args.page_size),
        ),
    ];
    for (read, name, what) in reads {
        let (facehub, reference) = measure(&api, &mut refs, &work, read, &args).await?;
        let what = format!("{what}, {} clients", args.concurrency);
        report(name, &what, &facehub, &reference);
    }
    Ok(())
}
