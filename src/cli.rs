//! The `facehub` command line: `serve` and the admin commands. Admin
//! commands open the same data directory as the server and work whether a
//! server is running on it or not (SQLite in WAL mode allows both).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::Config;
use crate::domain::audit::ActorKind;
use crate::domain::{Core, PersonDraft, Scope, TokenKind};
use crate::model::error::Error;
use crate::server::{Application, open_core};

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
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Serve TLS (https://, wss://) with this PEM certificate chain
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's PEM private key
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
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
    Check {
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Copy every blob from one blob store to another, sealed as stored
    /// and verified against the digests recorded at upload on both sides;
    /// resumable (what is already there is verified, not copied again).
    /// Stop the server first; once complete, the data directory uses the destination.
    MigrateStore {
        /// The source: "local" (the data directory) or s3://bucket[/prefix]?endpoint=…
        /// [default: the configured blob store]
        #[arg(long, value_name = "STORE")]
        from: Option<String>,
        /// The blobs' destination: "local" or s3://bucket[/prefix]?endpoint=…
        #[arg(long, value_name = "STORE")]
        to: Option<String>,
        /// The metadata's destination: postgres://… (from the data
        /// directory's SQLite or --database), or "local" (the data
        /// directory's SQLite, from --database)
        #[arg(long, value_name = "DATABASE")]
        to_database: Option<String>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// Add a terminal by its serial number and factory SecretNo
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// The device's serial number
        #[arg(long)]
        sn: String,
        /// The SecretNo burned into the device, which signs its `register`
        #[arg(long)]
        secret_no: String,
        /// Bind it at once
        #[arg(long)]
        bind: bool,
    },
    /// Bind a terminal to its tenant: its `active` then returns a secret
    Bind {
        #[command(flatten)]
        tenant: TenantArg,
        /// The device's serial number
        #[arg(long)]
        sn: String,
    },
    /// Unbind: the device's secret dies and it must activate again
    Unbind {
        #[command(flatten)]
        tenant: TenantArg,
        /// The device's serial number
        #[arg(long)]
        sn: String,
    },
    /// List a tenant's terminals
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        json: bool,
    },
    /// Start an enrolment on a terminal: `fa`/`fp` opens its capture page,
    /// `photo` sends it the person's stored face photos
    Enrol {
        #[command(flatten)]
        tenant: TenantArg,
        /// The terminal to enrol on
        #[arg(long)]
        sn: String,
        /// The person to enrol
        #[arg(long)]
        user_id: String,
        /// fa: face capture on the device; fp: fingerprint capture; photo:
        /// the person's stored face photos, turned into templates by the device
        #[arg(long, value_parser = ["fa", "fp", "photo"])]
        kind: String,
    },
    /// Show an enrolment and its outcome
    Enrolment {
        #[command(flatten)]
        tenant: TenantArg,
        /// The oper_id `enrol` printed
        oper_id: String,
        /// Cancel it if it is still open
        #[arg(long)]
        cancel: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum CheckinCmd {
    /// A person's punch records on one day (UTC)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        /// The person whose records to list
        #[arg(long)]
        user_id: String,
        /// YYYY-MM-DD
        #[arg(long)]
        day: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AcsCmd {
    /// Grant door access to people (by user_id)
    Grant {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(required = true, value_name = "USER_ID")]
        user_ids: Vec<String>,
    },
    /// Revoke door access (their enrolled faces are deleted)
    Revoke {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(required = true, value_name = "USER_ID")]
        user_ids: Vec<String>,
    },
    /// Grant door access to every user_id in a CSV file (column `user_id`)
    Import {
        #[command(flatten)]
        tenant: TenantArg,
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant
    Create { name: String },
    /// List tenants
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AppCmd {
    /// Create an app and print its app_id and app_secret (shown only once)
    Create {
        /// Name of the tenant the app belongs to
        #[arg(long)]
        tenant: String,
        /// A scope the app holds; repeat for several
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Print {"app_id": …, "app_secret": …}
        #[arg(long)]
        json: bool,
    },
    /// List apps
    List {
        /// Only this tenant's apps
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct TenantArg {
    /// Tenant name
    #[arg(long)]
    pub tenant: String,
}

#[derive(Subcommand, Debug)]
pub enum PersonCmd {
    /// Add a person, or update the name and employee number of an existing one
    Add {
        #[command(flatten)]
        tenant: TenantArg,
        /// Tenant-wide user id (the attendance `employee_id`)
        #[arg(long)]
        user_id: String,
        /// Display name
        #[arg(long)]
        name: String,
        /// Employee number (the attendance `employee_no`), unique in the tenant
        #[arg(long)]
        employee_no: Option<String>,
        /// On the device protocol: 0 employee (default for a new person),
        /// 1 visitor, 2 student
        #[arg(long)]
        user_type: Option<String>,
    },
    /// Import people from a CSV file with columns user_id, name[, employee_no, …]
    Import {
        #[command(flatten)]
        tenant: TenantArg,
        file: PathBuf,
    },
    /// List the people of a tenant
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[arg(long)]
        json: bool,
    },
    /// Show one person with their ids and face setting
    Show {
        #[command(flatten)]
        tenant: TenantArg,
        user_id: String,
    },
    /// Erase a person: every photo ever bound to them, their door-access
    /// face and crop, templates, enrolments, punch records and tokens, from
    /// the database and blob storage; connected terminals are told to
    /// delete them. Cannot be undone.
    Erase {
        #[command(flatten)]
        tenant: TenantArg,
        user_id: String,
        /// Print the outcome as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Set the administrator password of the console (read from standard
    /// input, at least 12 characters); ends every console session
    Passwd,
}

#[derive(Subcommand, Debug)]
pub enum KeyCmd {
    /// Generate a new data key, re-seal every blob and sealed value under
    /// it, and retire the old key from the key file. Safe while a server
    /// runs on the same directory: it takes up the new key within a second.
    Rotate {
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every blob and sealed value still under an older key with
    /// the current one, and report what is left under older keys. For
    /// nodes sharing `encryption_key`: once every node has the new key as
    /// `encryption_key` (the old one in `decryption_keys`), this moves the
    /// data off the old key, which may then leave the configuration.
    Reseal {
        #[arg(long)]
        json: bool,
    },
    /// Print a new random data key (base64), for `encryption_key` /
    /// `decryption_keys`; touches nothing
    New {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// List audit records (oldest first)
    List {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// At most this many records
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Export every matching record, as CSV or JSON lines
    Export {
        #[command(flatten)]
        tenant: TenantArg,
        #[command(flatten)]
        filter: AuditFilterArgs,
        #[arg(long, value_parser = ["csv", "jsonl"], default_value = "csv")]
        format: String,
        /// Write here instead of standard output
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct AuditFilterArgs {
    /// Only records about this person
    #[arg(long)]
    user_id: Option<String>,
    /// Only this action (e.g. photo.download, face.enrol, template.sync, person.erase)
    #[arg(long)]
    action: Option<String>,
    /// From this time on (RFC 3339, e.g. 2026-11-01T00:00:00Z)
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339)
    #[arg(long)]
    until: Option<String>,
}

impl AuditFilterArgs {
    fn filter(&self) -> anyhow::Result<crate::domain::audit::AuditFilter> {
        let ms = |v: &Option<String>, name: &str| -> anyhow::Result<Option<i64>> {
            v.as_deref()
                .map(|t| {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map(|d| d.timestamp_millis())
                        .map_err(|e| anyhow::anyhow!("--{name} {t:?}: {e}"))
                })
                .transpose()
        };
        Ok(crate::domain::audit::AuditFilter {
            subject: self.user_id.clone(),
            action: self.action.clone(),
            since_ms: ms(&self.since, "since")?,
            until_ms: ms(&self.until, "until")?,
        })
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Print a tenant_access_token for an app
    Tenant {
        /// The app (cli_…) to issue the token for
        #[arg(long)]
        app_id: String,
    },
    /// Print a user_access_token (u-…) acting for one person of the app's
    /// tenant, valid for token_ttl_secs
    User {
        /// The app (cli_…) the person acts through
        #[arg(long)]
        app_id: String,
        /// The person's user_id
        #[arg(long)]
        user_id: String,
    },
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
    if let Command::Serve {
        listen,
        tls_cert,
        tls_key,
    } = &cli.command
    {
        if let Some(l) = listen {
            config.listen = *l;
        }
        if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
            config.tls = Some(crate::config::TlsConfig {
                cert_file: cert.clone(),
                key_file: key.clone(),
            });
        }
        init_logging(&config);
        let app = Application::build(config).await?;
        tracing::info!(addr = %app.local_addr(), "facehub listening");
        return app.run_with_shutdown(shutdown_signal()).await;
    }
    if let Command::Key(KeyCmd::New { json }) = cli.command {
        let line = crate::crypto::new_key_line();
        let id = crate::crypto::key_id_hex(crate::crypto::Key::from_base64(&line)?.id());
        let out = &mut std::io::stdout().lock();
        if json {
            let v = serde_json::json!({"key": line, "key_id": id});
            writeln!(out, "{v}")?;
        } else {
            writeln!(out, "{line}")?;
        }
        return Ok(());
    }
    let core = open_core(config).await?;
    let out = &mut std::io::stdout().lock();
    let result = admin(&core, cli.command, out).await;
    core.db.close().await;
    result
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

fn csv_rows(rows: impl IntoIterator<Item = [String; 9]>) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        w.write_record(r)?;
    }
    Ok(w.into_inner()?)
}

fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn audit_tsv(r: &crate::domain::audit::AuditRecord) -> String {
    format!(
        "{}\t{}\t{}:{}\t{}\t{}\t{}\t{}",
        r.id,
        rfc3339_ms(r.at_ms),
        r.actor_kind,
        r.actor,
        r.action,
        r.subject.as_deref().unwrap_or("-"),
        r.object.as_deref().unwrap_or("-"),
        r.result
    )
}

fn user_err(e: Error) -> anyhow::Error {
    match e {
        Error::InvalidParam(m) => anyhow::anyhow!(m),
        other => anyhow::Error::new(other),
    }
}

async fn admin(core: &Core, cmd: Command, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        Command::Serve { .. } => unreachable!("handled by run"),
        Command::Tenant(TenantCmd::Create { name }) => {
            let t = core.create_tenant(&name).await.map_err(user_err)?;
            writeln!(
                out,
                "created tenant {} (tenant_key {})",
                t.name, t.tenant_key
            )?;
        }
        Command::Tenant(TenantCmd::List { json }) => {
            let ts = core.db.tenants().await?;
            if json {
                let v: Vec<_> = ts
                    .iter()
                    .map(|t| json!({"name": t.name, "tenant_key": t.tenant_key, "created_at": t.created_at}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for t in ts {
                    writeln!(out, "{}\t{}", t.name, t.tenant_key)?;
                }
            }
        }
        Command::App(AppCmd::Create {
            tenant,
            scopes,
            json,
        }) => {
            let tenant = core.tenant(&tenant).await.map_err(user_err)?;
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!(e))?;
            let created = core.create_app(&tenant, &scopes).await.map_err(user_err)?;
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"app_id": created.app.app_id, "app_secret": created.app_secret})
                )?;
            } else {
                writeln!(out, "app_id:     {}", created.app.app_id)?;
                writeln!(out, "app_secret: {}", created.app_secret)?;
                writeln!(out, "scopes:     {}", created.app.scopes.join(" "))?;
                writeln!(out, "(the secret is stored only as a hash: keep it now)")?;
            }
        }
        Command::App(AppCmd::List { tenant, json }) => {
            let tenants = core.db.tenants().await?;
            let name_of = |id: i64| {
                tenants
                    .iter()
                    .find(|t| t.id == id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default()
            };
            let apps: Vec<_> = core
                .db
                .apps()
                .await?
                .into_iter()
                .filter(|a| tenant.as_ref().is_none_or(|t| &name_of(a.tenant_id) == t))
                .collect();
            if json {
                let v: Vec<_> = apps
                    .iter()
                    .map(|a| json!({"app_id": a.app_id, "tenant": name_of(a.tenant_id), "scopes": a.scopes, "disabled": a.disabled}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for a in apps {
                    writeln!(
                        out,
                        "{}\t{}\t{}",
                        a.app_id,
                        name_of(a.tenant_id),
                        a.scopes.join(" ")
                    )?;
                }
            }
        }
        Command::Person(PersonCmd::Add {
            tenant,
            user_id,
            name,
            employee_no,
            user_type,
        }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let mut draft =
                PersonDraft::new(&user_id, &name, employee_no.as_deref()).map_err(user_err)?;
            draft.user_type = user_type
                .map(|t| crate::domain::UserType::parse(&t))
                .transpose()
                .map_err(user_err)?;
            let (p, outcome) = core
                .upsert_person(&tenant, &draft)
                .await
                .map_err(user_err)?;
            writeln!(out, "{:?} {} (union_id {})", outcome, p.user_id, p.union_id)?;
        }
        Command::Person(PersonCmd::Import { tenant, file }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let f = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let len = f.metadata()?.len();
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} importing [{bar:40}] {bytes}/{total_bytes} ({eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            let report = core
                .import_people(&tenant, std::io::BufReader::new(f), |pos| {
                    bar.set_position(pos)
                })
                .await
                .map_err(user_err)?;
            bar.finish_and_clear();
            writeln!(
                out,
                "created {}, updated {}, unchanged {}, rejected {}",
                report.created,
                report.updated,
                report.unchanged,
                report.rejected.len()
            )?;
            for (line, why) in &report.rejected {
                writeln!(out, "  line {line}: {why}")?;
            }
        }
        Command::Person(PersonCmd::List { tenant, json }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let people = core.db.people(tenant.id).await?;
            if json {
                let v: Vec<_> = people
                    .iter()
                    .map(|p| json!({"user_id": p.user_id, "name": p.name, "employee_no": p.employee_no, "union_id": p.union_id}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for p in people {
                    writeln!(
                        out,
                        "{}\t{}\t{}",
                        p.user_id,
                        p.name,
                        p.employee_no.as_deref().unwrap_or("-")
                    )?;
                }
            }
        }
        Command::Person(PersonCmd::Show { tenant, user_id }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let Some(p) = core.person(tenant.id, &user_id).await? else {
                bail!("no person {user_id:?} in tenant {}", tenant.name);
            };
            let open_ids: serde_json::Map<_, _> = core
                .db
                .open_ids_of(p.id)
                .await?
                .into_iter()
                .map(|(app, id)| (app, json!(id)))
                .collect();
            let face = core.db.attendance(p.id).await?.map(|s| {
                json!({"face_key": s.face_key, "face_key_open": s.face_key_open, "face_key_update_time": s.face_key_update_time})
            });
            let v = json!({
                "user_id": p.user_id,
                "name": p.name,
                "employee_no": p.employee_no,
                "union_id": p.union_id,
                "open_ids": open_ids,
                "extra": p.extra,
                "attendance": face,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        Command::Token(TokenCmd::Tenant { app_id }) => {
            let app = core
                .db
                .app(&app_id)
                .await?
                .with_context(|| format!("no app {app_id}"))?;
            let t = core
                .token_for(&app, TokenKind::Tenant)
                .await
                .map_err(user_err)?;
            writeln!(
                out,
                "{}",
                json!({"tenant_access_token": t.token, "expire": t.expire})
            )?;
        }
        Command::Acs(cmd) => {
            let (tenant, ids, grant) = match cmd {
                AcsCmd::Grant { tenant, user_ids } => (tenant, user_ids, true),
                AcsCmd::Revoke { tenant, user_ids } => (tenant, user_ids, false),
                AcsCmd::Import { tenant, file } => {
                    let mut rdr = csv::ReaderBuilder::new()
                        .trim(csv::Trim::All)
                        .from_path(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    let col = rdr
                        .headers()?
                        .iter()
                        .position(|h| h == "user_id")
                        .context("the CSV has no user_id column")?;
                    let mut ids = Vec::new();
                    for rec in rdr.records() {
                        let rec = rec?;
                        if let Some(id) = rec.get(col).filter(|s| !s.is_empty()) {
                            ids.push(id.to_string());
                        }
                    }
                    (tenant, ids, true)
                }
            };
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let n = if grant {
                core.acs_grant(&tenant, &ids).await.map_err(user_err)?
            } else {
                core.acs_revoke(&tenant, &ids).await.map_err(user_err)?
            };
            let verb = if grant { "granted" } else { "revoked" };
            writeln!(out, "{verb} door access for {n} of {} people", ids.len())?;
        }
        Command::Device(cmd) => device_admin(core, cmd, out).await?,
        Command::Person(PersonCmd::Erase {
            tenant,
            user_id,
            json,
        }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let done = core
                .erase_person(tenant.id, &user_id, ActorKind::Admin, "cli", None)
                .await
                .map_err(user_err)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&done)?)?;
            } else {
                writeln!(
                    out,
                    "erased {}: {} photos, {} templates; terminals are told at their next sync",
                    done.user_id, done.files, done.templates
                )?;
            }
        }
        Command::Audit(AuditCmd::List {
            tenant,
            filter,
            limit,
            json,
        }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let records = core
                .audit_page(tenant.id, &filter.filter()?, 0, limit)
                .await
                .map_err(user_err)?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
            } else {
                for r in records {
                    writeln!(out, "{}", audit_tsv(&r))?;
                }
            }
        }
        Command::Audit(AuditCmd::Export {
            tenant,
            filter,
            format,
            output,
        }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let filter = filter.filter()?;
            let mut sink: Box<dyn Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(&mut *out),
            };
            let csv = format == "csv";
            if csv {
                sink.write_all(&csv_rows([[
                    "id",
                    "time",
                    "actor_kind",
                    "actor",
                    "action",
                    "subject",
                    "object",
                    "result",
                    "log_id",
                ]
                .map(String::from)])?)?;
            }
            let (mut after, mut n) = (0, 0u64);
            loop {
                let page = core
                    .audit_page(tenant.id, &filter, after, 1000)
                    .await
                    .map_err(user_err)?;
                let Some(last) = page.last() else { break };
                after = last.id;
                n += page.len() as u64;
                if csv {
                    sink.write_all(&csv_rows(page.iter().map(|r| {
                        [
                            r.id.to_string(),
                            rfc3339_ms(r.at_ms),
                            r.actor_kind.clone(),
                            r.actor.clone(),
                            r.action.clone(),
                            r.subject.clone().unwrap_or_default(),
                            r.object.clone().unwrap_or_default(),
                            r.result.clone(),
                            r.log_id.clone().unwrap_or_default(),
                        ]
                    }))?)?;
                } else {
                    for r in &page {
                        serde_json::to_writer(&mut sink, r)?;
                        sink.write_all(b"\n")?;
                    }
                }
            }
            sink.flush()?;
            drop(sink);
            if let Some(p) = output {
                writeln!(out, "exported {n} records to {}", p.display())?;
            }
        }
        Command::Admin(AdminCmd::Passwd) => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                eprint!("New administrator password (input is shown): ");
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            core.set_admin_password(password).await.map_err(user_err)?;
            writeln!(out, "administrator password set; open /admin to log in")?;
        }
        Command::Key(cmd @ (KeyCmd::Rotate { json } | KeyCmd::Reseal { json })) => {
            let rotate = matches!(cmd, KeyCmd::Rotate { .. });
            let r = if rotate {
                core.rotate_key(std::time::Duration::from_secs(2)).await?
            } else {
                core.reseal_keys().await?
            };
            if json {
                writeln!(out, "{}", serde_json::to_string(&r)?)?;
            } else {
                writeln!(
                    out,
                    "{} {}: re-sealed {} blobs and {} values; retired {}",
                    if rotate { "new key" } else { "key" },
                    r.key_id,
                    r.blobs_resealed,
                    r.values_resealed,
                    if r.retired.is_empty() {
                        "none".to_string()
                    } else {
                        r.retired.join(", ")
                    }
                )?;
                if r.retire_at_restart {
                    writeln!(
                        out,
                        "a server is running: the old key stays in the key file until it \
                         restarts (it may be finishing uploads under it), and is retired then"
                    )?;
                } else if r.remaining > 0 {
                    writeln!(
                        out,
                        "{} items are still under an older key (a node still sealing under \
                         it?): run key reseal again once every node has the current key",
                        r.remaining
                    )?;
                } else if !rotate {
                    writeln!(out, "nothing is sealed under an older key")?;
                }
            }
        }
        Command::Key(KeyCmd::New { .. }) => unreachable!("handled by run"),
        Command::Check { json } => {
            // With a server running, an upload's blob lands just before its
            // row commits: look twice before calling a blob unreferenced.
            let settle = if crate::store::server_running(&core.config.data_dir) {
                std::time::Duration::from_secs(2)
            } else {
                std::time::Duration::ZERO
            };
            let report = core.check(settle).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                writeln!(
                    out,
                    "blobs checked: {} ({} bytes)\nsealed values checked: {}\n\
                     missing: {}\ncorrupt: {}\nunreferenced: {}\ndangling face files: {}\n\
                     temporary files: {}\nrecent unreferenced (uploads in flight?): {}\n\
                     writes without their audit record: {}",
                    report.blobs_checked,
                    report.blob_bytes,
                    report.sealed_checked,
                    report.missing.len(),
                    report.corrupt.len() + report.sealed_bad.len(),
                    report.unreferenced.len(),
                    report.dangling.len(),
                    report.temporary,
                    report.recent,
                    report.unaudited.len()
                )?;
                for id in &report.missing {
                    writeln!(out, "missing\t{id}")?;
                }
                for p in report.corrupt.iter().chain(&report.sealed_bad) {
                    writeln!(out, "corrupt\t{}\t{}", p.id, p.why)?;
                }
                for id in &report.unreferenced {
                    writeln!(out, "unreferenced\t{id}")?;
                }
                for id in &report.dangling {
                    writeln!(out, "dangling\t{id}")?;
                }
                for w in &report.unaudited {
                    writeln!(out, "unaudited\t{w}")?;
                }
                for p in &report.weak_secret_nos {
                    writeln!(out, "warning: weak SecretNo\t{}\t{}", p.id, p.why)?;
                }
            }
            out.flush()?;
            anyhow::ensure!(
                report.problems() == 0,
                "{} problem(s) found",
                report.problems()
            );
        }
        Command::MigrateStore {
            from,
            to,
            to_database,
            json,
        } => {
            // Uploads during the copy would be left behind in the source.
            let _lock = crate::store::lock_data_dir(&core.config.data_dir).context(
                "a server is running on this data directory: stop it before migrate-store",
            )?;
            anyhow::ensure!(
                to.is_some() || to_database.is_some(),
                "name --to (the blobs' destination), --to-database (the metadata's), or both"
            );
            // The source is where the data directory's blobs are now,
            // unless named (resuming after a switch, say).
            if let Some(to) = to {
                let from = match from {
                    Some(f) => crate::server::canonical_blob_store(Some(&f))?,
                    None => crate::server::canonical_blob_store(core.config.blobs.as_deref())?,
                };
                let to = crate::server::canonical_blob_store(Some(&to))?;
                anyhow::ensure!(
                    from != to,
                    "the blobs are in {to} already (a migrate-store to it finished); name --from to \
                     copy from another store"
                );
                let source =
                    crate::server::open_blob_store(Some(&from), &core.config, &core.db).await?;
                let dest =
                    crate::server::open_blob_store(Some(&to), &core.config, &core.db).await?;
                dest.probe().await.context("the destination")?;
                core.db
                    .meta_set(crate::server::MAINTENANCE, "migrate-store")
                    .await?;
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner} copying blobs [{bar:40}] {pos}/{len} ({eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                let m = core
                    .migrate_blobs(source, dest, |done, total| {
                        bar.set_length(total);
                        bar.set_position(done);
                    })
                    .await;
                core.db.meta_set(crate::server::MAINTENANCE, "").await?;
                let m = m?;
                bar.finish_and_clear();
                if m.complete() {
                    // From now on every command and server start finds the
                    // blobs there.
                    core.db.meta_set(crate::server::BLOB_STORE, &to).await?;
                }
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&m)?)?;
                } else {
                    writeln!(
                        out,
                        "files: {}\ncopied: {} ({} bytes)\nalready there: {}\nmissing: {}\ncorrupt: {}",
                        m.files,
                        m.copied,
                        m.copied_bytes,
                        m.present,
                        m.missing.len(),
                        m.corrupt.len()
                    )?;
                    for id in &m.missing {
                        writeln!(out, "missing\t{id}")?;
                    }
                    for p in &m.corrupt {
                        writeln!(out, "corrupt\t{}\t{}", p.id, p.why)?;
                    }
                    if m.complete() {
                        writeln!(
                            out,
                            "every blob is in {to}, and the data directory now uses it: start the \
                             server (without --blobs, or with this one); the source's blobs can then \
                             be removed"
                        )?;
                    }
                }
                out.flush()?;
                anyhow::ensure!(
                    m.complete(),
                    "{} blob(s) could not be copied",
                    m.missing.len() + m.corrupt.len()
                );
            }
            if let Some(target) = to_database {
                migrate_metadata(core, &target, json, out).await?;
            }
        }
        Command::Checkin(CheckinCmd::List {
            tenant,
            user_id,
            day,
        }) => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let records = core
                .checkins_on(tenant.id, &user_id, &day)
                .await
                .map_err(user_err)?;
            for (sn, r) in records {
                let at = chrono::DateTime::from_timestamp(r.timestamp, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{at}\t{sn}\tpass_type {}\tpass_method {}",
                    r.pass_type.map_or("-".into(), |v| v.to_string()),
                    r.pass_method.map_or("-".into(), |v| v.to_string())
                )?;
            }
        }
        Command::Token(TokenCmd::User { app_id, user_id }) => {
            let t = core
                .issue_user_token(&app_id, &user_id)
                .await
                .map_err(user_err)?;
            writeln!(
                out,
                "{}",
                json!({"access_token": t.token, "token_type": "Bearer", "expires_in": t.expire})
            )?;
        }
    }
    Ok(())
}

async fn device_admin(core: &Core, cmd: DeviceCmd, out: &mut impl Write) -> anyhow::Result<()> {
    match cmd {
        DeviceCmd::Add {
            tenant,
            sn,
            secret_no,
            bind,
        } => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            core.add_device(&tenant, &sn, &secret_no)
                .await
                .map_err(user_err)?;
            if bind {
                core.bind_device(tenant.id, &sn).await.map_err(user_err)?;
            }
            writeln!(
                out,
                "added device {sn}{}",
                if bind { " (bound)" } else { "" }
            )?;
        }
        DeviceCmd::Bind { tenant, sn } => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let changed = core.bind_device(tenant.id, &sn).await.map_err(user_err)?;
            writeln!(
                out,
                "{}",
                if changed {
                    format!("bound {sn}")
                } else {
                    format!("{sn} was already bound")
                }
            )?;
        }
        DeviceCmd::Unbind { tenant, sn } => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let changed = core.unbind_device(tenant.id, &sn).await.map_err(user_err)?;
            writeln!(
                out,
                "{}",
                if changed {
                    format!("unbound {sn}")
                } else {
                    format!("{sn} was not bound")
                }
            )?;
        }
        DeviceCmd::List { tenant, json } => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let version = core.perm_version(tenant.id).await.map_err(user_err)?;
            let devices = core.db.devices(tenant.id).await?;
            if json {
                let v: Vec<_> = devices
                    .iter()
                    .map(|d| {
                        json!({"sn": d.sn, "bound": d.bound, "firmware_version": d.firmware_version,
                               "fa_algorithms": d.fa_algorithms, "fp_algorithms": d.fp_algorithms,
                               "seen_version": d.seen_version, "perm_version": version,
                               "last_seen": d.last_seen})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for d in devices {
                    writeln!(
                        out,
                        "{}\t{}\tfa {}\tfp {}\tbacklog {}",
                        d.sn,
                        if d.bound { "bound" } else { "unbound" },
                        d.fa_algorithms.join(","),
                        d.fp_algorithms.join(","),
                        (version - d.seen_version).max(0)
                    )?;
                }
            }
        }
        DeviceCmd::Enrol {
            tenant,
            sn,
            user_id,
            kind,
        } => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let e = core
                .start_enrolment(tenant.id, &sn, &user_id, &kind)
                .await
                .map_err(user_err)?;
            writeln!(out, "{}", json!({"oper_id": e.oper_id, "status": e.status}))?;
        }
        DeviceCmd::Enrolment {
            tenant,
            oper_id,
            cancel,
        } => {
            let tenant = core.tenant(&tenant.tenant).await.map_err(user_err)?;
            let e = if cancel {
                core.cancel_enrolment(tenant.id, &oper_id).await
            } else {
                core.enrolment(tenant.id, &oper_id).await
            }
            .map_err(user_err)?;
            writeln!(
                out,
                "{}",
                json!({"oper_id": e.oper_id, "sn": e.sn, "kind": e.kind, "status": e.status,
                       "errcode": e.errcode, "errmsg": e.errmsg})
            )?;
        }
    }
    Ok(())
}

/// `migrate-store --to-database`: every table copied and proved.
async fn migrate_metadata(
    core: &Core,
    target: &str,
    json: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let (to, shown) = match target {
        "local" => {
            anyhow::ensure!(
                core.config.database.is_some(),
                "the metadata is in the data directory's SQLite already"
            );
            let path = core.config.database_path();
            (
                crate::store::Db::open_sqlite(&path).await?,
                path.display().to_string(),
            )
        }
        url => {
            anyhow::ensure!(
                core.config.database.as_deref() != Some(url),
                "the metadata is in {} already",
                crate::config::redact_url(url)
            );
            (
                crate::store::Db::open(Some(url), &core.config.database_path()).await?,
                crate::config::redact_url(url),
            )
        }
    };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} copying metadata: {msg}")
            .expect("valid template"),
    );
    let tables = core
        .db
        .copy_to(&to, |table, rows| {
            bar.set_message(format!("{table} ({rows} rows)"))
        })
        .await;
    bar.finish_and_clear();
    to.close().await;
    let tables = tables?;
    let bad: Vec<&str> = tables
        .iter()
        .filter(|t| !t.verified)
        .map(|t| t.table.as_str())
        .collect();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&tables)?)?;
    } else {
        for t in &tables {
            writeln!(
                out,
                "{}\t{} rows\t{} copied\t{}",
                t.table,
                t.rows,
                t.copied,
                if t.verified { "verified" } else { "DIFFERS" }
            )?;
        }
        if bad.is_empty() {
            writeln!(
                out,
                "the metadata is in {shown}, every table verified: start every node with \
                 --database (or \"database\" in its configuration) naming it"
            )?;
        }
    }
    out.flush()?;
    anyhow::ensure!(
        bad.is_empty(),
        "these tables differ between the two stores (rows changed in the destination, or in \
         the source since an earlier run): {}",
        bad.join(", ")
    );
    Ok(())
}
