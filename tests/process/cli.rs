//! The real `facehub` binary: admin commands and `serve` on one data
//! directory, driven as a script would.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::admin::person_add;
use crate::common::process::{device_add, facehub, run_err, run_ok};
use crate::common::{activate, tenant_token};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve` on a free port and returns it once it listens.
fn serve(data: &std::path::Path) -> (Server, String) {
    let (server, base, _) = serve_logged(data, "text");
    (server, base)
}

type Log = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// The same, with logs in `format` (`text` or `json`) collected.
fn serve_logged(data: &std::path::Path, format: &str) -> (Server, String, Log) {
    spawn_serving(&mut serve_command(data, format))
}

/// The `serve` command of [`serve_logged`], not yet started.
fn serve_command(data: &std::path::Path, format: &str) -> Command {
    let mut cmd = facehub(data);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("FACEHUB_LOG__FORMAT", format)
        // These tests are about storage, not frequency limits.
        .env("FACEHUB_RATE_LIMIT_PER_SECOND", "100000");
    cmd
}

/// Starts a `serve` command and returns it once it listens.
fn spawn_serving(cmd: &mut Command) -> (Server, String, Log) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Log::default();
    let lines = log.clone();
    // Read the log on a thread (and keep draining it so the server never
    // blocks on a full pipe); the test waits at most 30 s for the address.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let addr = if let Some(i) = line.find("addr=") {
                line[i + 5..].split_whitespace().next().map(str::to_string)
            } else if let Some(i) = line.find("\"addr\":\"") {
                line[i + 8..].split('"').next().map(str::to_string)
            } else {
                None
            };
            if let Some(a) = addr {
                let _ = tx.send(a);
            }
            lines.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("server did not report its address within 30 s");
    (Server(child), format!("http://{addr}"), log)
}

/// Every response carries the platform's `X-Tt-Logid`, and the server's
/// structured log lines of that request carry the same id.
#[test]
fn log_ids_reach_the_json_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_server, base, log) = serve_logged(&data, "json");
    let resp = reqwest::blocking::Client::new()
        .post(format!(
            "{base}/open-apis/auth/v3/tenant_access_token/internal"
        ))
        .json(&serde_json::json!({"app_id": "cli_nope", "app_secret": "x"}))
        .send()
        .unwrap();
    let log_id = resp.headers()["x-tt-logid"].to_str().unwrap().to_string();
    assert_eq!(log_id.len(), 32);
    let mut found = None;
    for _ in 0..50 {
        found = log
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(&log_id))
            .cloned();
        if found.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let line = found.expect("no log line carries the response's log id");
    let v: Value = serde_json::from_str(&line).expect("log lines are JSON");
    let spans = v["spans"]
        .as_array()
        .map(|a| a.to_vec())
        .unwrap_or_default();
    let span = v.get("span").into_iter().chain(spans.iter());
    assert!(
        span.into_iter().any(|s| s["log_id"] == log_id.as_str()),
        "{line}"
    );
}

/// Writes `csv` to `file` and imports it into tenant acme with
/// `facehub <what> import`; the command's output.
fn import(data: &std::path::Path, what: &str, file: &std::path::Path, csv: &str) -> String {
    std::fs::write(file, csv).unwrap();
    run_ok(
        facehub(data)
            .args([what, "import", "--tenant", "acme"])
            .arg(file),
    )
}

#[test]
fn admin_commands_and_serve_share_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    assert!(out.contains("acme"));
    // Duplicate tenant: a clear error and a non-zero exit.
    let dup = run_err(facehub(&data).args(["tenant", "create", "acme"]));
    assert!(dup.contains("already exists"));

    let out = run_ok(facehub(&data).args([
        "app",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "attendance:rule",
        "--scope",
        "attendance:rule:readonly",
        "--json",
    ]));
    let creds: Value = serde_json::from_str(out.trim()).unwrap();
    let app_id = creds["app_id"].as_str().unwrap().to_string();
    let secret = creds["app_secret"].as_str().unwrap().to_string();
    assert!(app_id.starts_with("cli_") && app_id.len() == 20);
    assert_eq!(app_id[4..].len(), 16);
    assert!(app_id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(creds.as_object().unwrap().len(), 2);
    // The secret is stored only as a hash.
    let db = match crate::common::database_for(&data) {
        Some(url) => crate::common::postgres::dump_at(&url),
        None => std::fs::read(data.join("facehub.db")).unwrap(),
    };
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));

    run_err(
        facehub(&data)
            .args(["app", "create", "--tenant", "acme"])
            .args(["--scope", "attendance:rules"]),
    );
    assert!(run_ok(facehub(&data).args(["app", "list"])).contains(&app_id));

    run_ok(person_add(&mut facehub(&data), "u1", "Ann").args(["--employee-no", "E1"]));
    let people = "user_id,name,employee_no,department\nu2,Bob,E2,Ops\nu3,,E3,\nu1,Ann Lee,E1,\nu2,Robert,E2,Ops\n";
    let out = import(&data, "person", &dir.path().join("people.csv"), people);
    assert!(
        out.contains("created 1, updated 1, unchanged 0, rejected 2"),
        "{out}"
    );
    assert!(out.contains("line 3: name"), "{out}");
    assert!(
        out.contains("line 5: user_id u2 is already on line 2 of this file; not applied"),
        "{out}"
    );
    let list = run_ok(facehub(&data).args(["person", "list", "--tenant", "acme"]));
    assert_eq!(list.lines().count(), 2, "{list}");
    let show: Value = serde_json::from_str(&run_ok(
        facehub(&data).args(["person", "show", "--tenant", "acme", "u2"]),
    ))
    .unwrap();
    assert_eq!(show["extra"]["department"], "Ops");
    assert!(show["union_id"].as_str().unwrap().starts_with("on_"));
    assert!(
        show["open_ids"][&app_id]
            .as_str()
            .unwrap()
            .starts_with("ou_")
    );

    // The server and the admin commands on the same directory at once.
    let (_server, base) = serve(&data);
    let client = reqwest::blocking::Client::new();
    // (The suite's token helper is async; this test is not.)
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let t = &runtime.block_on(tenant_token(&base, &creds));
    run_ok(person_add(&mut facehub(&data), "u9", "Late"));
    let q: Value = client
        .post(format!(
            "{base}/open-apis/attendance/v1/user_settings/query?employee_type=employee_id"
        ))
        .bearer_auth(t)
        .body(r#"{"user_ids":["u9","u2"]}"#)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        q["data"]["user_settings"].as_array().unwrap().len(),
        2,
        "{q}"
    );
    // `token tenant` issues the same live token the API handed out.
    let issued: Value = serde_json::from_str(&run_ok(
        facehub(&data).args(["token", "tenant", "--app-id", &app_id]),
    ))
    .unwrap();
    assert_eq!(issued["tenant_access_token"], t.as_str());

    // `token user` issues a user access token that the API accepts.
    let wiki: Value = serde_json::from_str(&run_ok(facehub(&data).args([
        "app",
        "create",
        "--tenant",
        "acme",
        "--scope",
        "baike:entity",
        "--json",
    ])))
    .unwrap();
    let wiki_id = wiki["app_id"].as_str().unwrap();
    let user: Value = serde_json::from_str(&run_ok(facehub(&data).args([
        "token",
        "user",
        "--app-id",
        wiki_id,
        "--user-id",
        "u2",
    ])))
    .unwrap();
    let u = user["access_token"].as_str().unwrap();
    assert!(u.starts_with("u-") && u.len() == 42, "{user}");
    assert_eq!(user["expires_in"], 7200);
    let missing = format!(
        "{base}/open-apis/lingo/v1/files/box{}/download",
        "0".repeat(32)
    );
    let r = client.get(&missing).bearer_auth(u).send().unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().unwrap();
    assert_eq!(v["code"], 2250001, "the user token authenticates: {v}");
    let r = client.get(&missing).bearer_auth("u-0000").send().unwrap();
    assert_eq!(r.json::<Value>().unwrap()["code"], 99991668);
    // Door access: grant, import from CSV, revoke.
    let out = run_ok(facehub(&data).args(["acs", "grant", "--tenant", "acme", "u1", "u2"]));
    assert!(
        out.contains("granted door access for 2 of 2 people"),
        "{out}"
    );
    let acs = "name,user_id\nAnn,u1\nLate,u9\n";
    let out = import(&data, "acs", &dir.path().join("acs.csv"), acs);
    assert!(
        out.contains("granted door access for 1 of 2 people"),
        "{out}"
    );
    let out = run_ok(facehub(&data).args(["acs", "revoke", "--tenant", "acme", "u2"]));
    assert!(
        out.contains("revoked door access for 1 of 1 people"),
        "{out}"
    );
    run_err(facehub(&data).args(["acs", "grant", "--tenant", "acme", "ghost"]));
    let nobody =
        run_err(facehub(&data).args(["token", "user", "--app-id", wiki_id, "--user-id", "ghost"]));
    assert!(nobody.contains("ghost"));
}

#[test]
fn config_file_and_environment_are_layered() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("facehub.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = {:?}\n", dir.path().join("from-file")),
    )
    .unwrap();
    // The binary itself, not `facehub()`: that names a data directory.
    let with_config = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_facehub"));
        c.arg("--config").arg(&cfg);
        c
    };
    run_ok(with_config().args(["tenant", "create", "t1"]));
    assert!(dir.path().join("from-file/facehub.db").exists());
    // The environment beats the file, the flag beats both.
    let from_env = dir.path().join("from-env");
    run_ok(
        with_config()
            .env("FACEHUB_DATA_DIR", &from_env)
            .args(["tenant", "create", "t2"]),
    );
    assert!(dir.path().join("from-env/facehub.db").exists());
    run_ok(
        with_config()
            .env("FACEHUB_DATA_DIR", &from_env)
            .arg("--data")
            .arg(dir.path().join("from-flag"))
            .args(["tenant", "create", "t3"]),
    );
    assert!(dir.path().join("from-flag/facehub.db").exists());
    let bad = Command::new(env!("CARGO_BIN_EXE_facehub"))
        .env("FACEHUB_NO_SUCH_SETTING", "1")
        .arg("--data")
        .arg(dir.path().join("x"))
        .args(["tenant", "list"])
        .output()
        .unwrap();
    assert!(
        !bad.status.success(),
        "unknown settings are refused, not ignored"
    );
}

#[test]
fn key_file_is_private_and_data_dir_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    run_ok(facehub(&data).args(["tenant", "list"]));
    let key = data.join("master.key");
    assert!(key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

/// `cmd` run under the file-creation mask `umask`: the shell sets it, then
/// becomes the command.
#[cfg(unix)]
fn under_umask(umask: &str, cmd: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The data directory's SQLite files exist (a server holds the database
/// open, so its write-ahead log and shared memory are there).
#[cfg(unix)]
fn wait_for_wal(data: &std::path::Path) {
    for _ in 0..100 {
        if data.join("facehub.db-wal").exists() && data.join("facehub.db-shm").exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("no facehub.db-wal and facehub.db-shm in {}", data.display());
}

/// The data directory is its owner's alone, and so are the database, its
/// write-ahead log and shared memory and the key file, whatever the umask
/// (022 is the usual one outside systemd, 000 the loosest).
#[cfg(unix)]
#[test]
fn the_data_directory_is_owner_only_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    for umask in ["022", "000"] {
        let data = dir.path().join(format!("data-{umask}"));
        // The embedded stores are under test here.
        crate::common::set_database(&data, None);
        crate::common::set_blobs(&data, None);
        let (server, _base, _log) =
            spawn_serving(&mut under_umask(umask, &serve_command(&data, "text")));
        wait_for_wal(&data);
        assert_eq!(mode(&data), 0o700, "data dir, umask {umask}");
        for file in [
            "facehub.db",
            "facehub.db-wal",
            "facehub.db-shm",
            "master.key",
        ] {
            assert_eq!(mode(&data.join(file)), 0o600, "{file}, umask {umask}");
        }
        drop(server);
    }
}

/// A key file group or others may read is refused by `serve` and by admin
/// commands, with the fix; owner-only again, it is accepted.
#[cfg(unix)]
#[test]
fn a_key_file_others_may_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    let key = data.join("master.key");
    set_mode(&key, 0o644);
    let expect_refusal = |out: std::process::Output| {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("key file {} has mode 0644", key.display()))
                && err.contains(&format!("chmod 600 {}", key.display())),
            "{err}"
        );
    };
    // A server that started anyway would never exit: stop it and fail.
    let mut child = serve_command(&data, "text")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve started with a key file others may read");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    expect_refusal(child.wait_with_output().unwrap());
    expect_refusal(facehub(&data).args(["tenant", "list"]).output().unwrap());
    set_mode(&key, 0o600);
    assert!(run_ok(facehub(&data).args(["tenant", "list"])).contains("acme"));
}

/// A data directory from before owner-only modes (0755, its database
/// files 0644) is tightened at start, and the log says so.
#[cfg(unix)]
#[test]
fn loose_modes_are_tightened_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::common::set_database(&data, None);
    crate::common::set_blobs(&data, None);
    // A server killed outright leaves its write-ahead log and shared memory.
    let (server, _base) = serve(&data);
    wait_for_wal(&data);
    drop(server);
    let files = ["facehub.db", "facehub.db-wal", "facehub.db-shm"];
    set_mode(&data, 0o755);
    for file in files {
        set_mode(&data.join(file), 0o644);
    }
    let (_server, _base, log) = serve_logged(&data, "text");
    assert_eq!(mode(&data), 0o700);
    for file in files {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    let log = log.lock().unwrap().join("\n");
    for path in [data.clone(), data.join("facehub.db")] {
        let said = log.lines().any(|l| {
            l.contains("made owner-only") && l.contains(&format!("path={} ", path.display()))
        });
        assert!(said, "nothing logged for {}:\n{log}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_remembers_its_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // This test names its blob store itself.
    crate::common::set_blobs(&data, None);
    // Admin commands before the first start record nothing: the store
    // may still be chosen (nothing is contacted for these).
    run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    run_ok(facehub(&data).args([
        "--blobs",
        "s3://photos?endpoint=http://127.0.0.1:9",
        "tenant",
        "list",
    ]));
    // The first start records it: here the embedded one.
    drop(serve(&data));
    // Another store named later is refused, not used for new uploads
    // while the existing ones stay behind (nothing is contacted).
    let err = run_err(facehub(&data).args([
        "--blobs",
        "s3://photos?endpoint=http://127.0.0.1:9",
        "tenant",
        "list",
    ]));
    assert!(
        err.contains("blobs are in local") && err.contains("migrate-store"),
        "{err}"
    );
    // The same store however spelt is fine.
    run_ok(facehub(&data).args(["--blobs", "local", "tenant", "list"]));

    // While migrate-store copies (its marker set, the lock held) other
    // commands wait; a marker left by a killed copy (no lock) is ignored.
    let db = facehub::store::Db::open(
        crate::common::database_for(&data).as_deref(),
        &data.join("facehub.db"),
    )
    .await
    .unwrap();
    db.meta_set(facehub::server::MAINTENANCE, "migrate-store")
        .await
        .unwrap();
    let lock = facehub::store::lock_data_dir(&data).unwrap();
    let err = run_err(facehub(&data).args(["tenant", "list"]));
    assert!(err.contains("migrate-store is copying"), "{err}");
    drop(lock);
    let listed = run_ok(facehub(&data).args(["tenant", "list"]));
    assert!(listed.contains("acme"), "{listed}");
    // Nor does a killed copy's marker block commands while a server runs.
    let (_server, _base) = serve(&data);
    let listed = run_ok(facehub(&data).args(["tenant", "list"]));
    assert!(listed.contains("acme"), "{listed}");
}

#[test]
fn one_server_per_data_directory_and_crash_leftovers_are_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // This test names its blob store itself.
    crate::common::set_blobs(&data, None);
    run_ok(facehub(&data).args(["tenant", "list"]));
    // What a crash can leave: a temporary upload and a blob never committed.
    let orphan = data.join("blobs/ef/0123456789abcdef0123456789abcdef");
    std::fs::write(&orphan, b"sealed bytes of an unacknowledged upload").unwrap();
    std::fs::write(data.join("tmp/0123.abcd.part"), b"half an upload").unwrap();
    let (server, _base) = serve(&data);
    assert!(!orphan.exists(), "orphan blob survived start-up");
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);

    // A second server on the same directory refuses to start, and touches nothing.
    std::fs::write(data.join("tmp/live.part"), b"an upload in progress").unwrap();
    let second = run_err(facehub(&data).args(["serve", "--listen", "127.0.0.1:0"]));
    assert!(second.contains("another facehub server"));
    assert!(data.join("tmp/live.part").exists());
    drop(server);
}

#[test]
fn a_lost_key_file_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    std::fs::rename(data.join("master.key"), dir.path().join("saved.key")).unwrap();
    let err = run_err(facehub(&data).args(["tenant", "list"]));
    assert!(
        err.contains("key file") && err.contains("is missing"),
        "{err}"
    );
    assert!(
        !data.join("master.key").exists(),
        "no replacement key was generated"
    );
    // Another key is refused too.
    std::fs::write(
        data.join("master.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(data.join("master.key"), private).unwrap();
    }
    let err = run_err(facehub(&data).args(["tenant", "list"]));
    assert!(
        err.contains("not the key this data directory was written with"),
        "{err}"
    );
    std::fs::remove_file(data.join("master.key")).unwrap();
    // Putting the key back makes everything work again.
    std::fs::rename(dir.path().join("saved.key"), data.join("master.key")).unwrap();
    assert!(run_ok(facehub(&data).args(["tenant", "list"])).contains("acme"));
}

/// Terminals on a running server, managed from the CLI in other processes:
/// the server notices binds, new people, enrolments and unbinds made
/// there within its sync pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_managed_from_the_cli_while_the_server_runs() {
    use facehub_devsim::Device;
    use serde_json::json;
    use std::time::Duration;
    let wait = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    let out = run_ok(device_add(
        &mut facehub(&data),
        "CLI-1",
        "cli-factory-secret",
    ));
    assert!(out.contains("added device CLI-1"), "{out}");
    let (_server, base) = serve(&data);
    let url = base.replace("http://", "ws://") + "/websocket";
    let d = Device::connect(&url, "CLI-1", (&["X", "Y"], &[]), None)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let code = d.register("cli-factory-secret", now).await.unwrap();
    let r = d
        .request("active", json!({"active_code": code}))
        .await
        .unwrap();
    assert_eq!(r["errcode"], 600004, "{r}");
    // Bound from another process: the waiting device is told.
    run_ok(facehub(&data).args(["device", "bind", "--tenant", "acme", "--sn", "CLI-1"]));
    assert!(d.push_of("push_bind_corp", wait).await.is_some());
    let secret = activate(&d, &code).await;
    d.subscribe(&secret).await.unwrap();

    run_ok(person_add(&mut facehub(&data), "u1", "Ann"));
    let p = d
        .push_of("push_change_contact", wait)
        .await
        .expect("change pushed");
    assert_eq!(
        p["body"]["create_user"],
        json!([{"userid": "u1", "user_type": 0}])
    );

    // An enrolment of u1 on CLI-1 from the CLI: the capture page opens.
    let enrol = async |kind: &str| {
        let out = run_ok(facehub(&data).args([
            "device",
            "enrol",
            "--tenant",
            "acme",
            "--sn",
            "CLI-1",
            "--user-id",
            "u1",
            "--kind",
            kind,
        ]));
        let oper_id = serde_json::from_str::<Value>(&out).unwrap()["oper_id"]
            .as_str()
            .unwrap()
            .to_string();
        let page = d
            .push_of("push_enter_page", wait)
            .await
            .expect("enter page");
        assert_eq!(page["body"]["oper_id"], oper_id.as_str());
        oper_id
    };
    let oper_id = enrol("fa").await;
    d.call(
        "upload_userinfo",
        json!({"oper_id": oper_id, "errcode": 0, "errmsg": "ok",
        "userinfo": [{"userid": "u1", "fa": "AAECAwQ=", "fa_algorithm": "Y"}]}),
    )
    .await
    .unwrap();
    let out = run_ok(facehub(&data).args(["device", "enrolment", "--tenant", "acme", &oper_id]));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["status"],
        "succeeded",
        "{out}"
    );
    // Cancelled from another process: the server holding the connection
    // closes the capture page.
    let oper_id = enrol("fp").await;
    let out = run_ok(facehub(&data).args([
        "device",
        "enrolment",
        "--tenant",
        "acme",
        &oper_id,
        "--cancel",
    ]));
    assert!(out.contains("cancelled"), "{out}");
    let exit = d.push_of("push_exit_page", wait).await.expect("exit page");
    assert_eq!(exit["body"]["oper_id"], oper_id.as_str());

    d.call("checkin", json!({"checkin_data": [{"userid": "u1", "user_type": 0, "timestamp": 1_763_900_000, "pass_type": 1, "pass_method": 1}]}))
        .await
        .unwrap();
    let out = run_ok(facehub(&data).args([
        "checkin",
        "list",
        "--tenant",
        "acme",
        "--user-id",
        "u1",
        "--day",
        "2025-11-23",
    ]));
    assert!(
        out.contains("2025-11-23T12:13:20+00:00\tCLI-1\tpass_type 1\tpass_method 1"),
        "{out}"
    );

    let out = run_ok(facehub(&data).args(["device", "list", "--tenant", "acme", "--json"]));
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["sn"], "CLI-1");
    assert_eq!(list[0]["fa_algorithms"], json!(["X", "Y"]));
    assert_eq!(list[0]["bound"], true);
    // Connected to the server, seen from another process: online.
    assert_eq!(list[0]["online"], true, "{list}");

    // Unbound from another process: told, disconnected, secret dead.
    run_ok(facehub(&data).args(["device", "unbind", "--tenant", "acme", "--sn", "CLI-1"]));
    assert!(d.push_of("push_unbind_corp", wait).await.is_some());
    assert!(d.closed(wait).await.is_some());
    let again = Device::connect(&url, "CLI-1", (&[], &[]), None)
        .await
        .unwrap();
    let r = again
        .request("subscribe_corp", json!({"secret": secret}))
        .await
        .unwrap();
    assert_eq!(r["errcode"], 600004);
    // Errors are clear and exit non-zero.
    let bad = run_err(facehub(&data).args(["device", "bind", "--tenant", "acme", "--sn", "NOPE"]));
    assert!(bad.contains("not a device of this tenant"));
}

/// A ZKTeco terminal admitted from the CLI while the server runs: pending
/// until added, then served in the zone it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zkteco_terminal_added_from_the_cli() {
    use facehub_devsim::zk::ZkTerminal;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    run_ok(person_add(&mut facehub(&data), "1001", "Ann"));
    let (_server, base) = serve(&data);
    let mut t = ZkTerminal::new(&base, "CQZ7224460123");
    assert!(t.init().await.is_err());
    let out = run_ok(facehub(&data).args(["device", "pending", "--json"]));
    let pending: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pending[0]["sn"], "CQZ7224460123", "{pending}");
    assert_eq!(pending[0]["protocol"], "zkteco");

    let add = |extra: &[&str]| {
        let mut cmd = facehub(&data);
        cmd.args(["device", "add", "--tenant", "acme", "--sn", "CQZ7224460123"])
            .args(extra);
        cmd
    };
    let e = run_err(&mut add(&["--protocol", "zkteco", "--secret-no", "x"]));
    assert!(e.contains("no SecretNo"), "{e}");
    let e = run_err(&mut add(&[
        "--protocol",
        "zkteco",
        "--utc-offset",
        "+25:00",
        "--allow-any",
    ]));
    assert!(e.contains("expected ±hh:mm"), "{e}");
    let e = run_err(&mut add(&["--protocol", "zkteco"]));
    assert!(e.contains("--allow-from CIDR"), "{e}");
    let e = run_err(&mut add(&["--utc-offset", "+08:00"]));
    assert!(e.contains("--secret-no"), "{e}");
    let out = run_ok(&mut add(&[
        "--protocol",
        "zkteco",
        "--utc-offset",
        "-03:30",
        "--allow-from",
        "127.0.0.0/8",
        "--bind",
    ]));
    assert!(out.contains("added device CQZ7224460123 (bound)"), "{out}");
    let out = run_ok(facehub(&data).args(["device", "pending"]));
    assert!(!out.contains("CQZ"), "{out}");

    t.init().await.unwrap();
    assert_eq!(t.options["TimeZone"], "-210");
    t.punch("1001", 1_763_900_000, 0, 15);
    assert_eq!(t.upload().await.unwrap(), (200, "OK: 1".to_string()));
    let out = run_ok(facehub(&data).args([
        "checkin",
        "list",
        "--tenant",
        "acme",
        "--user-id",
        "1001",
        "--day",
        "2025-11-23",
    ]));
    assert!(
        out.contains("2025-11-23T12:13:20+00:00\tCQZ7224460123"),
        "{out}"
    );
    let out = run_ok(facehub(&data).args(["device", "list", "--tenant", "acme", "--json"]));
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["protocol"], "zkteco", "{list}");
    assert_eq!(list[0]["online"], true, "{list}");
}

/// `person erase` and `audit list|export`, as an operator runs them.
#[test]
fn erase_and_audit_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(facehub(&data).args(["tenant", "create", "acme"]));
    for u in ["gone", "kept"] {
        run_ok(person_add(&mut facehub(&data), u, u));
    }
    run_ok(facehub(&data).args(["acs", "grant", "--tenant", "acme", "gone", "kept"]));
    let out =
        run_ok(facehub(&data).args(["person", "erase", "--tenant", "acme", "gone", "--json"]));
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["user_id"], "gone");
    // Erased means gone: a second erase, or any use, does not find them.
    run_err(facehub(&data).args(["person", "erase", "--tenant", "acme", "gone"]));
    assert!(run_ok(facehub(&data).args(["person", "list", "--tenant", "acme"])).contains("kept"));
    assert!(!run_ok(facehub(&data).args(["person", "list", "--tenant", "acme"])).contains("gone"));

    let listed = run_ok(facehub(&data).args(["audit", "list", "--tenant", "acme", "--json"]));
    let records: Value = serde_json::from_str(&listed).unwrap();
    let erase = &records.as_array().unwrap()[0];
    assert_eq!(
        (&erase["action"], &erase["subject"], &erase["actor_kind"]),
        (&json!("person.erase"), &json!("gone"), &json!("admin"))
    );
    let csv_path = dir.path().join("audit.csv");
    run_ok(
        facehub(&data)
            .args(["audit", "export", "--tenant", "acme", "--output"])
            .arg(&csv_path),
    );
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("id,time,actor_kind,actor,action,subject,object,result,log_id")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .contains(",admin,cli,person.erase,gone,"),
        "{csv}"
    );
    let jsonl = run_ok(facehub(&data).args([
        "audit",
        "export",
        "--tenant",
        "acme",
        "--format",
        "jsonl",
        "--action",
        "person.erase",
    ]));
    assert_eq!(jsonl.lines().count(), 1, "{jsonl}");
    let bad =
        run_err(facehub(&data).args(["audit", "list", "--tenant", "acme", "--since", "yesterday"]));
    assert!(bad.contains("--since"));
}

/// `admin passwd` reads the console password from standard input.
#[test]
fn admin_password_from_standard_input() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let set = |pw: &str| {
        let mut child = facehub(&data)
            .args(["admin", "passwd"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{pw}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = set("short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12"));
    let ok = set("a long enough console password");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("password set"));
}
