//! A real PostgreSQL server (Debian's `postgresql` package) on a free
//! loopback port, for the tests of the PostgreSQL metadata backend.
//!
//! [`Postgres::start`] runs a private server in a temporary directory:
//! `initdb`, then `pg_ctl start`, from the newest
//! `/usr/lib/postgresql/<version>/bin`. Its `Drop` stops it
//! (`pg_ctl stop -m immediate`) and removes the directory. `initdb` and
//! `postgres` refuse to run as root, so as root they run as the `postgres`
//! user (which the Debian package creates) through `runuser`.
//!
//! [`Postgres::from_env_or_start`] instead uses the server named by
//! `$TEST_POSTGRES_URL` when it is set, e.g.
//! `TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5433`: a server
//! started once for a whole test run, so that each test need not pay for
//! `initdb`. That server is not ours: it is never stopped, and the
//! databases created on it are left for whoever started it to throw away.
//! Tests that kill and restart the server must use `start`.
//!
//! [`start_detached`] starts such a run's server (`facehub-stores postgres
//! start DIR`, from scripts/test) in a directory the caller names, and
//! leaves it running: `pg_ctl` daemonises the postmaster. [`stop`] stops
//! it and removes the directory.
//!
//! Each test takes its own database with [`Postgres::create_database`], so
//! tests sharing a server do not see each other's data.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::os::{alive, children, free_port, is_root, random_hex, run};

/// A server URL (no database), e.g. `postgres://postgres@127.0.0.1:5433`.
pub const SHARED_ENV: &str = "TEST_POSTGRES_URL";

/// Connections a private server accepts: the nodes of one test.
const PRIVATE_MAX_CONNECTIONS: u32 = 200;
/// Connections a run's server accepts: the pools of every test running at
/// once.
const RUN_MAX_CONNECTIONS: u32 = 400;

pub struct Postgres {
    pub port: u16,
    /// `postgres://user[:password]@host:port`, without a database.
    base: String,
    /// `None` for a shared server (`$TEST_POSTGRES_URL`).
    owned: Option<Owned>,
}

struct Owned {
    /// Holds `data/`, the log and the server's Unix socket.
    dir: PathBuf,
    /// Removes `dir` once the server is stopped: `None` when the caller
    /// named the directory ([`start_detached`], [`stop`]).
    _temp: Option<tempfile::TempDir>,
    bin: PathBuf,
    max_connections: u32,
    running: bool,
}

impl Owned {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// A server binary: directly, or as `postgres` through `runuser` when
    /// we are root. It runs in the temporary directory, which `postgres`
    /// can enter whatever the tests' working directory is.
    fn server_cmd(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(&self.dir);
        c
    }

    /// The postmaster's pid, from `postmaster.pid`.
    fn postmaster_pid(&self) -> Option<u32> {
        lock_owner(&self.data().join("postmaster.pid"))
    }

    /// `pg_ctl start` on `port`, waiting until the server reports itself
    /// ready; on failure, what the server logged meanwhile.
    fn pg_ctl_start(&mut self, port: u16) -> Result<(), String> {
        let dir = self.dir.to_str().expect("server directory is UTF-8");
        assert!(!dir.contains('\''), "{dir}");
        // pg_ctl hands these to the postmaster through /bin/sh.
        // fsync=off and full_page_writes=off are for test speed only: the
        // data need not survive the machine crashing, and they lose
        // nothing to SIGKILL (`kill`), as the kernel keeps what postgres
        // wrote. Not synchronous_commit=off: that leaves a commit's WAL in
        // postgres's own memory for up to 0.6 s after the client is told
        // it committed, so `kill` would lose acknowledged commits (it
        // did, in tests/process/postgres_harness.rs); with fsync off it saves
        // nothing measurable anyway.
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k '{dir}' -c fsync=off \
             -c full_page_writes=off -c max_connections={}",
            self.max_connections
        );
        let log = self.log();
        let logged_before = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        // Drop stops the server from here on, whatever pg_ctl says.
        self.running = true;
        let out = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .unwrap();
        if out.status.success() {
            return Ok(());
        }
        let logged = std::fs::read(&log).unwrap_or_default();
        Err(format!(
            "pg_ctl start failed: {}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(logged.get(logged_before..).unwrap_or_default())
        ))
    }
}

impl Postgres {
    /// Starts a private server and waits until it accepts connections.
    pub fn start() -> Postgres {
        let temp = tempfile::Builder::new().prefix("pg").tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        Postgres::launch(dir, Some(temp), PRIVATE_MAX_CONNECTIONS)
    }

    /// `initdb` in `dir/data`, then the server on a free port, ready.
    fn launch(dir: PathBuf, temp: Option<tempfile::TempDir>, max_connections: u32) -> Postgres {
        let bin = bin_dir().expect(
            "PostgreSQL is needed: apt-get install postgresql (scripts/test does) \
             — no /usr/lib/postgresql/<version>/bin/initdb",
        );
        if is_root() {
            run(Command::new("chown").arg("postgres:").arg(&dir));
        }
        let mut owned = Owned {
            dir,
            _temp: temp,
            bin,
            max_connections,
            running: false,
        };
        run(owned
            .server_cmd("initdb")
            .arg("-D")
            .arg(owned.data())
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .args(["-E", "UTF8", "--locale=C"]));
        // Another test may take the free port between our choosing it and
        // the server binding it: then choose again.
        let mut attempt = 0;
        let port = loop {
            let port = free_port();
            match owned.pg_ctl_start(port) {
                Ok(()) => break port,
                Err(e) if attempt < 4 && e.contains("already in use") => attempt += 1,
                Err(e) => {
                    // Dropping `owned` alone would leave a server that
                    // failed to report ready running.
                    drop(Postgres::owning(port, owned));
                    panic!("{e}");
                }
            }
        };
        let pg = Postgres::owning(port, owned);
        pg.wait_ready();
        pg
    }

    /// The server named by `$TEST_POSTGRES_URL` if that is set (see
    /// the module's documentation), else a private one from `start`.
    pub fn from_env_or_start() -> Postgres {
        match std::env::var(SHARED_ENV) {
            Ok(url) if !url.trim().is_empty() => Postgres::shared(url.trim()),
            _ => Postgres::start(),
        }
    }

    /// A server somebody else runs, at `url`:
    /// `postgres://user[:password]@host[:port]` (any `/database` or
    /// `?options` are ignored).
    pub fn shared(url: &str) -> Postgres {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .unwrap_or_else(|| panic!("{SHARED_ENV}={url}: not a postgres:// URL"));
        let authority = rest.split(['/', '?']).next().unwrap();
        let host_port = authority.rsplit('@').next().unwrap();
        let port = match host_port.rsplit_once(':') {
            Some((_, p)) if !p.ends_with(']') => p
                .parse()
                .unwrap_or_else(|_| panic!("{SHARED_ENV}={url}: bad port")),
            _ => 5432,
        };
        Postgres {
            port,
            base: format!("postgres://{authority}"),
            owned: None,
        }
    }

    fn owning(port: u16, owned: Owned) -> Postgres {
        Postgres {
            port,
            base: format!("postgres://postgres@127.0.0.1:{port}"),
            owned: Some(owned),
        }
    }

    /// Whether this is a private server (from `start`), which `kill` and
    /// `restart` may be used on.
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.base)
    }

    /// Creates a database with a fresh name (`t_` and 16 hex digits) and
    /// returns its URL.
    pub fn create_database(&self) -> String {
        let name = format!("t_{}", random_hex(8));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` with `psql` in database `db`; panics unless it succeeds,
    /// returns what it printed (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        psql_at(&self.url(db), sql).unwrap_or_else(|e| panic!("{e}"))
    }

    fn owned_mut(&mut self, what: &str) -> &mut Owned {
        self.owned.as_mut().unwrap_or_else(|| {
            panic!("{what}: this PostgreSQL is shared ({SHARED_ENV}); use Postgres::start()")
        })
    }

    /// Node loss: SIGKILL to the postmaster and to all its children at
    /// once (as if the machine lost power, except that what the kernel
    /// has been given is kept), then waits until they are gone. The data
    /// directory stays, for `restart`.
    pub fn kill(&mut self) {
        let o = self.owned_mut("kill");
        if !o.running {
            return;
        }
        let Some(pid) = o.postmaster_pid().filter(|&p| alive(p)) else {
            o.running = false;
            return;
        };
        // The children are listed while they are still the postmaster's
        // (they are reparented once it dies); it is signalled first, so
        // that it forks no more.
        let mut pids = children(pid);
        pids.insert(0, pid);
        let _ = Command::new("sh")
            .args(["-c", "kill -KILL \"$@\"", "sh"])
            .args(pids.iter().map(|p| p.to_string()))
            .output()
            .expect("sh");
        let start = Instant::now();
        while pids.iter().any(|&p| alive(p)) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "postgres processes {pids:?} outlived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        o.running = false;
    }

    /// Starts it again on the same port and data directory (crash
    /// recovery runs if it was killed) and waits until it accepts
    /// connections.
    pub fn restart(&mut self) {
        let port = self.port;
        let o = self.owned_mut("restart");
        assert!(!o.running, "postgres is running");
        // A killed postmaster that nobody reaps (a container's init may
        // not) stays a zombie, which postgres takes for the live owner of
        // its stale lock files: they go once their owner is dead.
        let locks = [
            o.data().join("postmaster.pid"),
            o.dir.join(format!(".s.PGSQL.{port}.lock")),
        ];
        for lock in locks {
            if lock_owner(&lock).is_some_and(|p| !alive(p)) {
                let _ = std::fs::remove_file(lock);
            }
        }
        if let Err(e) = o.pg_ctl_start(port) {
            panic!("{e}");
        }
        self.wait_ready();
    }

    /// Waits until `pg_isready` says the server accepts connections.
    fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            let out = Command::new(tool("pg_isready"))
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres"])
                .args(["-t", "1", "-p", &self.port.to_string()])
                .output()
                .expect("pg_isready");
            if out.status.success() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "postgres did not accept connections: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let Some(o) = &mut self.owned else { return };
        if o.running {
            let stopped = o
                .server_cmd("pg_ctl")
                .arg("-D")
                .arg(o.data())
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .output()
                .is_ok_and(|out| out.status.success());
            if !stopped && o.postmaster_pid().is_some() {
                self.kill();
            }
        }
        // The TempDir, if any, dropped next, removes the directory.
    }
}

/// Starts a server for a whole test run in `dir` (created if missing; as
/// root, the `postgres` user must be able to enter its parents) and
/// leaves it running; returns its URL, `postgres://postgres@127.0.0.1:PORT`.
pub fn start_detached(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let dir = std::path::absolute(dir).unwrap();
    let mut pg = Postgres::launch(dir, None, RUN_MAX_CONNECTIONS);
    // Not ours to stop any more: `stop` does, from another process.
    pg.owned = None;
    pg.base.clone()
}

/// Stops the server [`start_detached`] started in `dir`, if it runs, and
/// removes `dir`.
pub fn stop(dir: &Path) -> std::io::Result<()> {
    // (The server's tools run in `dir`, so a relative path would miss.)
    let dir = &std::path::absolute(dir)?;
    if let Some(bin) = bin_dir()
        && dir.join("data").exists()
    {
        // Dropping it stops it, as for a private server.
        drop(Postgres {
            port: 0,
            base: String::new(),
            owned: Some(Owned {
                dir: dir.to_path_buf(),
                _temp: None,
                bin,
                max_connections: RUN_MAX_CONNECTIONS,
                running: true,
            }),
        });
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn bin_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let version =
            |name: &str| -> Option<Vec<u32>> { name.split('.').map(|n| n.parse().ok()).collect() };
        std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v = version(e.file_name().to_str()?)?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((v, bin))
            })
            .max()
            .map(|(_, bin)| bin)
    })
    .clone()
}

/// A client tool from the newest installed version, else from `PATH`
/// (enough for a shared server).
fn tool(name: &str) -> PathBuf {
    match bin_dir() {
        Some(bin) => bin.join(name),
        None => name.into(),
    }
}

/// Runs `sql` with `psql` against the database at `url`: what it printed
/// (unaligned, tuples only), or why it failed.
pub fn psql_at(url: &str, sql: &str) -> Result<String, String> {
    let mut c = Command::new(tool("psql"));
    // Nothing from the environment chooses another server or user.
    for v in ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGSERVICE"] {
        c.env_remove(v);
    }
    c.env_remove("PGOPTIONS");
    let out = c
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-d", url, "-c", sql])
        .output()
        .expect("psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(format!(
            "psql {url} -c {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Everything the database at `url` holds, as `pg_dump` writes it
/// (plain SQL; bytea in hex, text as stored).
pub fn dump_at(url: &str) -> Vec<u8> {
    let mut c = Command::new(tool("pg_dump"));
    for v in [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGSERVICE",
        "PGOPTIONS",
    ] {
        c.env_remove(v);
    }
    let out = c.args(["--no-owner", "-d", url]).output().expect("pg_dump");
    assert!(
        out.status.success(),
        "pg_dump {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The pid on the first line of a postgres lock file.
fn lock_owner(lock: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(lock).ok()?;
    text.lines().next()?.trim().parse().ok()
}
