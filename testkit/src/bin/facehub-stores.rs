//! Starts and stops the stores of a whole test run, for scripts/test's
//! scale-out pass and scripts/bench-scaleout; the servers outlive this
//! command, and `stop` ends them and removes their directory.
//!
//!   facehub-stores postgres start DIR   prints postgres://postgres@127.0.0.1:PORT
//!   facehub-stores postgres stop DIR
//!   facehub-stores garage start DIR     prints the `export …` lines to eval:
//!                                       AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
//!                                       FACEHUB_BLOBS (the bucket), GARAGE_PIDS
//!   facehub-stores garage stop DIR
//!
//! With `BASE_PORT` set, Garage node i listens for S3 on BASE_PORT+10*i
//! and for RPC on the port after; otherwise on free loopback ports.

use std::path::Path;
use std::process::ExitCode;

use facehub_testkit::{garage, postgres};

const USAGE: &str = "usage: facehub-stores postgres|garage start|stop DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [store, action, dir] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let done = match (store.as_str(), action.as_str()) {
        ("postgres", "start") => {
            println!("{}", postgres::start_detached(dir));
            Ok(())
        }
        ("postgres", "stop") => postgres::stop(dir),
        ("garage", "start") => {
            let base_port = std::env::var("BASE_PORT")
                .ok()
                .filter(|p| !p.is_empty())
                .map(|p| p.parse().expect("BASE_PORT: a port number"));
            let cluster = garage::start_detached(dir, base_port);
            let pids: Vec<String> = cluster.pids.iter().map(u32::to_string).collect();
            println!(
                "export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}",
                garage::S3_KEY_ID,
                garage::S3_SECRET
            );
            println!("export FACEHUB_BLOBS='{}'", cluster.bucket_url);
            println!("export GARAGE_PIDS='{}'", pids.join(" "));
            Ok(())
        }
        ("garage", "stop") => garage::stop(dir),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facehub-stores: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
