//! A real Garage cluster (the S3-compatible object store): three nodes on
//! loopback, `replication_factor = 3`, consistent mode, fsync on,
//! `bootstrap_peers` set so that restarted nodes re-join, one zone per
//! node, a key ([`S3_KEY_ID`], [`S3_SECRET`]) and a bucket ([`BUCKET`]).
//!
//! [`Garage::start`] starts a private cluster on free ports in a temporary
//! directory, so a test may kill and restart its nodes; its `Drop` kills
//! them and removes the directory. [`start_detached`] starts a whole test
//! run's cluster (`facehub-stores garage start DIR`, from scripts/test) in
//! a directory the caller names and leaves it running; [`stop`] stops it.
//!
//! Needs the `garage` binary (2.5): `$GARAGE_BIN`, else `garage` on PATH
//! or in `~/.cargo/bin`. `scripts/prerequisites` installs it with `cargo
//! install garage --version 2.5.0 --locked` when it is missing.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::os::{alive, cmdline, free_ports, random_hex, signal};

pub const BUCKET: &str = "facehub";
pub const REGION: &str = "garage";

/// The S3 key of every cluster started here. Garage key ids are "GK" and
/// 24 hex digits; secrets 64 hex digits.
pub const S3_KEY_ID: &str = "GK0123456789abcdef01234567";
pub const S3_SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Where a detached cluster records its nodes' pids, for [`stop`].
const PIDS_FILE: &str = "pids";

struct Node {
    /// Holds `garage.toml`, `garage.log`, `meta/` and `data/`.
    dir: PathBuf,
    rpc: u16,
    s3: u16,
    id: String,
    child: Option<Child>,
}

pub struct Garage {
    /// Removes the nodes' directories once they are killed: `None` for a
    /// detached cluster, whose directory the caller named.
    _temp: Option<tempfile::TempDir>,
    rpc_secret: String,
    /// Nodes start in a process group of their own, so that they outlive
    /// the process that started them and whatever signals its group.
    detached: bool,
    nodes: Vec<Node>,
}

fn binary() -> PathBuf {
    if let Some(b) = std::env::var_os("GARAGE_BIN") {
        return b.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin")))
        .map(|d| d.join("garage"))
        .find(|p| p.is_file())
        .expect(
            "garage is needed for the scale-out tests: run scripts/prerequisites, or \
             `cargo install garage --version 2.5.0 --locked`",
        )
}

impl Node {
    fn config(&self) -> PathBuf {
        self.dir.join("garage.toml")
    }

    fn write_config(&self, rpc_secret: &str, peers: &[String]) {
        let peers: Vec<String> = peers.iter().map(|p| format!("{p:?}")).collect();
        let text = format!(
            r#"metadata_dir = "{dir}/meta"
data_dir = "{dir}/data"
replication_factor = 3
consistency_mode = "consistent"
metadata_fsync = true
data_fsync = true
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{rpc_secret}"
bootstrap_peers = [{peers}]

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
            dir = self.dir.display(),
            rpc = self.rpc,
            s3 = self.s3,
            peers = peers.join(", "),
        );
        std::fs::write(self.config(), text).unwrap();
    }

    fn start(&mut self, detached: bool) {
        let log = std::fs::File::create(self.dir.join("garage.log")).unwrap();
        let mut cmd = Command::new(binary());
        cmd.arg("-c")
            .arg(self.config())
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if detached {
            cmd.process_group(0);
        }
        self.child = Some(cmd.spawn().expect("starting garage"));
    }

    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(binary())
            .arg("-c")
            .arg(self.config())
            .args(args)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "garage {args:?}: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ))
        }
    }

    fn cli_retrying(&self, args: &[&str]) -> String {
        let start = Instant::now();
        loop {
            match self.cli(args) {
                Ok(out) => return out,
                Err(e) if start.elapsed() > Duration::from_secs(60) => panic!("{e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

impl Garage {
    /// Starts a private cluster on free ports and waits until all three
    /// nodes are healthy and the bucket is there.
    pub fn start() -> Garage {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().to_path_buf();
        Garage::launch(&dir, Some(temp), None, false)
    }

    /// The cluster in `dir/n0`…`dir/n2`: node `i` listens for S3 on
    /// `base_port + 10 i` and for RPC on the port after, or on free ports.
    fn launch(
        dir: &Path,
        temp: Option<tempfile::TempDir>,
        base_port: Option<u16>,
        detached: bool,
    ) -> Garage {
        let ports: Vec<(u16, u16)> = match base_port {
            Some(base) => (0..3).map(|i| (base + 10 * i, base + 10 * i + 1)).collect(),
            None => {
                let free = free_ports(6);
                (0..3).map(|i| (free[i], free[3 + i])).collect()
            }
        };
        let nodes = ports
            .into_iter()
            .enumerate()
            .map(|(i, (s3, rpc))| {
                let d = dir.join(format!("n{i}"));
                std::fs::create_dir_all(&d).unwrap();
                Node {
                    dir: d,
                    rpc,
                    s3,
                    id: String::new(),
                    child: None,
                }
            })
            .collect();
        // Built first, so that a cluster that fails to come up is killed
        // (by Drop) rather than left running.
        let mut g = Garage {
            _temp: temp,
            rpc_secret: random_hex(32),
            detached,
            nodes,
        };
        for n in &mut g.nodes {
            n.write_config(&g.rpc_secret, &[]);
            n.start(detached);
        }
        for n in &mut g.nodes {
            let full = n.cli_retrying(&["node", "id", "-q"]);
            n.id = full.trim().to_string();
        }
        // Restarted nodes find the others through bootstrap_peers.
        let ids: Vec<String> = g.nodes.iter().map(|n| n.id.clone()).collect();
        for (i, n) in g.nodes.iter().enumerate() {
            let others: Vec<String> = ids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, id)| id.clone())
                .collect();
            n.write_config(&g.rpc_secret, &others);
        }
        for id in &ids[1..] {
            g.nodes[0].cli_retrying(&["node", "connect", id]);
        }
        g.wait_healthy(3);
        for (i, id) in ids.iter().enumerate() {
            let short = id.split('@').next().unwrap();
            g.nodes[0].cli_retrying(&[
                "layout",
                "assign",
                "-z",
                &format!("dc{}", i + 1),
                "-c",
                "1G",
                &short[..16],
            ]);
        }
        g.nodes[0].cli_retrying(&["layout", "apply", "--version", "1"]);
        g.nodes[0].cli_retrying(&[
            "key", "import", "--yes", S3_KEY_ID, S3_SECRET, "-n", "facehub",
        ]);
        g.nodes[0].cli_retrying(&["bucket", "create", BUCKET]);
        g.nodes[0].cli_retrying(&[
            "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", S3_KEY_ID,
        ]);
        g
    }

    /// Waits until `garage status` lists `n` healthy nodes.
    pub fn wait_healthy(&self, n: usize) {
        let start = Instant::now();
        let live = self
            .nodes
            .iter()
            .find(|x| x.child.is_some())
            .expect("a running node");
        loop {
            let healthy = live
                .cli(&["status"])
                .map(|s| healthy_count(&s))
                .unwrap_or(0);
            if healthy >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "garage: {healthy} of {n} nodes healthy after 90 s"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The S3 endpoint of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3)
    }

    /// facehub's `blobs` URL for the whole bucket through node 0's S3 API.
    pub fn bucket_url(&self) -> String {
        format!(
            "s3://{BUCKET}?endpoint={}&region={REGION}",
            self.endpoint(0)
        )
    }

    /// facehub's `blobs` URL for `prefix` of the bucket through node 0's
    /// S3 API.
    pub fn blobs_url(&self, prefix: &str) -> String {
        format!(
            "s3://{BUCKET}/{prefix}?endpoint={}&region={REGION}",
            self.endpoint(0)
        )
    }

    /// SIGKILL node `i` (by its pid).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node {i} is running");
        self.nodes[i].start(self.detached);
    }
}

/// Counts the node lines of the "HEALTHY NODES" section of `garage status`.
fn healthy_count(status: &str) -> usize {
    let mut in_healthy = false;
    let mut n = 0;
    for line in status.lines() {
        if line.starts_with("====") {
            in_healthy = line.contains("HEALTHY NODES");
            continue;
        }
        let first = line.split_whitespace().next().unwrap_or_default();
        let is_node = first.len() >= 16 && first.chars().all(|c| c.is_ascii_hexdigit());
        if in_healthy && is_node {
            n += 1;
        }
    }
    n
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A cluster left running by [`start_detached`].
pub struct Detached {
    /// facehub's `blobs` URL for the bucket ([`Garage::bucket_url`]).
    pub bucket_url: String,
    /// The nodes' processes.
    pub pids: Vec<u32>,
}

/// Starts a whole test run's cluster in `dir` (created if missing) on
/// ports from `base_port` (see [`Garage::launch`]) or free ones, and
/// leaves it running after this process exits; [`stop`] stops it.
pub fn start_detached(dir: &Path, base_port: Option<u16>) -> Detached {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let dir = std::path::absolute(dir).unwrap();
    let mut g = Garage::launch(&dir, None, base_port, true);
    let pids: Vec<u32> = g
        .nodes
        .iter_mut()
        .map(|n| n.child.take().expect("started").id())
        .collect();
    let listed: Vec<String> = pids.iter().map(u32::to_string).collect();
    std::fs::write(dir.join(PIDS_FILE), listed.join(" ") + "\n").unwrap();
    Detached {
        bucket_url: g.bucket_url(),
        pids,
    }
}

/// Stops the cluster [`start_detached`] started in `dir` (SIGTERM, then
/// SIGKILL to what is left after 10 s), waits until its nodes are gone and
/// removes `dir`.
pub fn stop(dir: &Path) -> std::io::Result<()> {
    let dir = match std::path::absolute(dir) {
        Ok(d) if d.exists() => d,
        _ => return Ok(()),
    };
    let listed = std::fs::read_to_string(dir.join(PIDS_FILE)).unwrap_or_default();
    // Only processes still running on this cluster's configuration: a pid
    // may have been reused since.
    let ours = |pid: &u32| cmdline(*pid).iter().any(|a| Path::new(a).starts_with(&dir));
    let pids: Vec<u32> = listed
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(ours)
        .collect();
    if !pids.is_empty() {
        signal("TERM", &pids);
        let start = Instant::now();
        while pids.iter().any(|&p| alive(p)) {
            if start.elapsed() > Duration::from_secs(10) {
                signal("KILL", &pids);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "garage processes {pids:?} outlived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::fs::remove_dir_all(&dir)
}
