//! The `facehub` command line: `serve` and the admin commands. Admin
//! commands open the same data directory as the server and work whether a
//! server is running on it or not (SQLite in WAL mode allows both).
//!
//! Each command group lives in its own module with its clap arguments and
//! its handler; this module holds the global options, `serve` and the
//! dispatch.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, TlsConfig};
use crate::domain::{Core, Tenant};
use crate::model::error::Error;
use crate::server::{Application, open_core};

mod acs;
mod admin;
mod app;
mod audit;
mod check;
mod checkin;
mod device;
mod key;
mod migrate_store;
mod person;
mod tenant;
mod token;

pub use acs::AcsCmd;
pub use admin::AdminCmd;
pub use app::AppCmd;
pub use audit::{AuditCmd, AuditFilterArgs};
pub use check::CheckArgs;
pub use checkin::CheckinCmd;
pub use device::DeviceCmd;
pub use key::KeyCmd;
pub use migrate_store::MigrateStoreArgs;
pub use person::PersonCmd;
pub use tenant::TenantCmd;
pub use token::TokenCmd;

#[derive(Parser, Debug)]
#[command(name = "facehub", version, about = "Self-hosted face photo and biometric template server, wire-compatible with Feishu open-apis", long_about = None)]
pub struct Cli {
    /// Data directory (database, blobs, key file) [default: ./facehub-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// TOML configuration file; FACEHUB_* environment variables override it
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Blob store: s3://bucket[/prefix]?endpoint=…&region=… (credentials
    /// from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) [default: the data
    /// directory]
    #[arg(long, global = true, value_name = "URL")]
    pub blobs: Option<String>,
    /// Share rate limits across nodes through this Redis (redis://host:port/db)
    #[arg(long, global = true, value_name = "URL")]
    pub redis: Option<String>,
    /// Metadata store: postgres://user:password@host:port/database
    /// [default: SQLite in the data directory]
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP server
    Serve(ServeArgs),
    /// Manage tenants (companies)
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// Manage apps (app_id / app_secret and their scopes)
    #[command(subcommand)]
    App(AppCmd),
    /// Manage the people of a tenant
    #[command(subcommand)]
    Person(PersonCmd),
    /// Issue access tokens without the app secret (for scripts and tests)
    #[command(subcommand)]
    Token(TokenCmd),
    /// Door access: who may enrol a face at the doors
    #[command(subcommand)]
    Acs(AcsCmd),
    /// Attendance and door terminals (WeCom device protocol)
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Punch records uploaded by terminals
    #[command(subcommand)]
    Checkin(CheckinCmd),
    /// The encryption key of the data directory
    #[command(subcommand)]
    Key(KeyCmd),
    /// The admin console (served at /admin)
    #[command(subcommand)]
    Admin(AdminCmd),
    /// The audit log of biometric data: who read or wrote whose photos and
    /// templates, when, and with what result
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Verify the data directory: read every blob against its digest and
    /// decrypt it, open every sealed value, and report missing, corrupt and
    /// unreferenced blobs and leftover temporary files (exit status 1 if any
    /// blob or value is wrong). Safe while a server runs.
    Check(CheckArgs),
    /// Copy every blob from one blob store to another, sealed as stored
    /// and verified against the digests recorded at upload on both sides;
    /// resumable (what is already there is verified, not copied again).
    /// Stop the server first; once complete, the data directory uses the destination.
    MigrateStore(MigrateStoreArgs),
}

#[derive(Args, Debug)]
pub struct TenantArg {
    /// Tenant name
    #[arg(long)]
    pub tenant: String,
}

impl TenantArg {
    /// The named tenant; an unknown name is the user's error, shown plainly.
    async fn resolve(&self, core: &Core) -> anyhow::Result<Tenant> {
        core.tenant(&self.tenant).await.map_err(user_err)
    }
}

/// A domain error as the command's error: a bad parameter becomes its bare
/// message.
fn user_err(e: Error) -> anyhow::Error {
    match e {
        Error::InvalidParam(m) => anyhow::anyhow!(m),
        other => anyhow::Error::new(other),
    }
}

/// Prints `rows` as one pretty JSON array with `--json` (each row as
/// `json_of` shapes it: the HTTP API's own type where there is one), else
/// a line each, as `line_of` writes it.
fn listing<T, J: serde::Serialize>(
    out: &mut impl Write,
    json: bool,
    rows: &[T],
    json_of: impl Fn(&T) -> J,
    line_of: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        let v: Vec<J> = rows.iter().map(json_of).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for row in rows {
            writeln!(out, "{}", line_of(row))?;
        }
    }
    Ok(())
}

/// Says what a change did: `done` when it changed something, else
/// `already` (binding a bound terminal is not an error).
fn said(out: &mut impl Write, changed: bool, done: String, already: String) -> anyhow::Result<()> {
    writeln!(out, "{}", if changed { done } else { already })?;
    Ok(())
}

/// A progress bar on standard error, drawn by `template` (indicatif's).
fn progress(len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(d) = cli.data {
        config.data_dir = d;
    }
    if let Some(b) = cli.blobs {
        config.blobs = Some(b);
    }
    if let Some(r) = cli.redis {
        config.redis = Some(r);
    }
    if let Some(d) = cli.database {
        config.database = Some(d);
    }
    match cli.command {
        Command::Serve(args) => serve(config, args).await,
        // A new key is printed, not stored: there is nothing to open.
        Command::Key(KeyCmd::New { json }) => key::print_new(json, &mut std::io::stdout().lock()),
        command => {
            let core = open_core(config).await?;
            let out = &mut std::io::stdout().lock();
            let result = dispatch(&core, command, out).await;
            core.close().await;
            result
        }
    }
}

/// Runs a command that works on the opened data directory.
async fn dispatch(core: &Core, cmd: Command, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        Command::Serve(_) => unreachable!("handled by run"),
        Command::Tenant(cmd) => tenant::run(core, cmd, out).await,
        Command::App(cmd) => app::run(core, cmd, out).await,
        Command::Person(cmd) => person::run(core, cmd, out).await,
        Command::Token(cmd) => token::run(core, cmd, out).await,
        Command::Acs(cmd) => acs::run(core, cmd, out).await,
        Command::Device(cmd) => device::run(core, cmd, out).await,
        Command::Checkin(cmd) => checkin::run(core, cmd, out).await,
        Command::Key(cmd) => key::run(core, cmd, out).await,
        Command::Admin(cmd) => admin::run(core, cmd, out).await,
        Command::Audit(cmd) => audit::run(core, cmd, out).await,
        Command::Check(args) => check::run(core, args, out).await,
        Command::MigrateStore(args) => migrate_store::run(core, args, out).await,
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Serve TLS (https://, wss://) with this PEM certificate chain
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// `serve` lives here rather than in a module of its own so that its log
/// lines keep the target `facehub::cli`, which log filters may name.
async fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let (Some(cert), Some(key)) = (args.tls_cert, args.tls_key) {
        config.tls = Some(TlsConfig {
            cert_file: cert,
            key_file: key,
        });
    }
    init_logging(&config);
    let app = Application::build(config).await?;
    tracing::info!(addr = %app.local_addr(), "facehub listening");
    app.run_with_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if config.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
