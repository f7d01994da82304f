use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    large_allocations_to_the_system();
    facehub::faults::setup();
    let cli = facehub::cli::Cli::parse();
    match facehub::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Fixes glibc's threshold above which an allocation is its own mapping,
/// returned to the system when freed. Left to itself, glibc raises the
/// threshold to the size of each large block freed, so decoded frames of
/// uploads (megabytes each, a few at a time) come to live in the heap's
/// arenas, which keep the memory after they are freed: with 200 clients
/// uploading 10 MB photos the peak RSS was twice what it is with the
/// threshold fixed at 1 MiB (`scripts/bench-all`, the memory row). Buffers
/// under 1 MiB (the read and seal buffers of every request) stay in the
/// heap.
fn large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter, under glibc's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}
