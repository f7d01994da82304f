use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
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
