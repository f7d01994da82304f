//! A real Garage cluster (the S3-compatible object store) for the tests:
//! three nodes on loopback, `replication_factor = 3`, consistent mode,
//! fsync on, `bootstrap_peers` set so that restarted nodes re-join, one
//! zone per node, a key and a bucket. Each test starts its own cluster on
//! free ports, so it may kill and restart nodes.
//!
//! Needs the `garage` binary (2.5): `$GARAGE_BIN`, else `garage` on PATH.
//! `scripts/test` builds it with `cargo install garage --version 2.5.0
//! --locked` when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{S3_KEY_ID, S3_SECRET};

pub const BUCKET: &str = "facehub";
pub const REGION: &str = "garage";

struct Node {
    config: PathBuf,
    rpc: u16,
    s3: u16,
    id: String,
    child: Option<Child>,
}

pub struct Garage {
    _dir: tempfile::TempDir,
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
            "garage is needed for the scale-out tests: run scripts/test, or \
             `cargo install garage --version 2.5.0 --locked`",
        )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Node {
    fn write_config(&self, dir: &Path, peers: &[String]) {
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
rpc_secret = "{secret}"
bootstrap_peers = [{peers}]

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
            dir = dir.display(),
            rpc = self.rpc,
            s3 = self.s3,
            secret = "1799bccfd7411eddcf9ebd316bc1f5287ad12a68094e1c6ac6abde7e6feae1ec",
            peers = peers.join(", "),
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.config.with_extension("log")).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting garage");
        self.child = Some(child);
    }

    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
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
    /// Starts the cluster and waits until all three nodes are healthy and
    /// the bucket answers.
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = (0..3)
            .map(|i| {
                let d = dir.path().join(format!("n{i}"));
                std::fs::create_dir_all(&d).unwrap();
                Node {
                    config: d.join("garage.toml"),
                    rpc: free_port(),
                    s3: free_port(),
                    id: String::new(),
                    child: None,
                }
            })
            .collect();
        for n in &mut nodes {
            n.write_config(n.config.parent().unwrap(), &[]);
            n.start();
        }
        for n in &mut nodes {
            let full = n.cli_retrying(&["node", "id", "-q"]);
            n.id = full.trim().to_string();
        }
        // Restarted nodes find the others through bootstrap_peers.
        let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
        for (i, n) in nodes.iter().enumerate() {
            let others: Vec<String> = ids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, id)| id.clone())
                .collect();
            n.write_config(n.config.parent().unwrap(), &others);
        }
        for id in &ids[1..] {
            nodes[0].cli_retrying(&["node", "connect", id]);
        }
        let g = Garage { _dir: dir, nodes };
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

    /// facehub's `blobs` URL through node 0's S3 API.
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
        self.nodes[i].start();
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
