//! The real `facehub` binary as a separate process, for tests that kill
//! it or measure it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn facehub(data: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facehub"));
    c.arg("--data").arg(data);
    if let Some(db) = super::database_for(data) {
        c.arg("--database").arg(db);
    }
    if let Some(blobs) = super::blobs_for(data) {
        // One node on the bucket prefix (see config_for in tests/it/app.rs).
        c.arg("--blobs")
            .arg(blobs)
            .env("FACEHUB_ORPHAN_GRACE_SECS", "0");
        super::s3_credentials(&mut c);
    }
    c
}

pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(data: &std::path::Path) -> Server {
        Self::start_with(data, |_| {})
    }

    /// The same, with the command adjusted first (arguments, environment).
    pub fn start_with(data: &std::path::Path, tweak: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = facehub(data);
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            // Storage is under test here, not frequency limits.
            .env("FACEHUB_RATE_LIMIT_PER_SECOND", "100000")
            // (Lingo's per-minute quota too: the crash harness reads back
            // over a thousand lingo images within a minute.)
            .env("FACEHUB_RATE_LIMIT_PER_MINUTE", "1000000")
            .stderr(Stdio::piped());
        tweak(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("addr=") {
                    let a = line[i + 5..].split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(a.to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "server did not report its address within 30 s:\n{}",
                    log.lock().unwrap().join("\n")
                )
            });
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    #[allow(dead_code)] // The in-process binary's tests only drop their servers.
    pub fn kill(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd`, which must fail: its standard error.
pub fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{cmd:?} succeeded: {stdout}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `cmd` made `device add` of the terminal `sn` (factory SecretNo
/// `secret_no`) to tenant `acme`; add `--bind` to bind it at once.
pub fn device_add<'a>(cmd: &'a mut Command, sn: &str, secret_no: &str) -> &'a mut Command {
    cmd.args(["device", "add", "--tenant", "acme"])
        .args(["--sn", sn, "--secret-no", secret_no])
}

/// Tenant `acme` and an app of it with `scopes`, made through the
/// commands `cmd` builds (the CLI of a data directory, with whatever
/// options a deployment needs); the app's credentials
/// (`{"app_id", "app_secret"}`).
pub fn tenant_with_app(cmd: impl Fn() -> Command, scopes: &[&str]) -> serde_json::Value {
    run_ok(cmd().args(["tenant", "create", "acme"]));
    let mut c = cmd();
    c.args(["app", "create", "--tenant", "acme", "--json"]);
    for s in scopes {
        c.args(["--scope", s]);
    }
    serde_json::from_str(run_ok(&mut c).trim()).unwrap()
}

/// The attendance scopes most server-process tests need.
pub const ATTENDANCE_SCOPES: &[&str] = &["attendance:rule", "attendance:rule:readonly"];
