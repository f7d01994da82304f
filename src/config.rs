//! Configuration: built-in defaults, then a TOML file (`--config`), then
//! `FACEHUB_*` environment variables (nested keys with `__`, e.g.
//! `FACEHUB_LIMITS__PHOTO_MAX_BYTES`), then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, blobs and key file live.
    pub data_dir: PathBuf,
    /// Address `serve` listens on.
    pub listen: SocketAddr,
    /// Base64 of a 32-byte key. When absent, the key is read from
    /// `encryption_key_file`, which is created on first start.
    pub encryption_key: Option<String>,
    /// Defaults to `<data_dir>/master.key`.
    pub encryption_key_file: Option<PathBuf>,
    /// Further keys (base64, like `encryption_key`) that data may be
    /// sealed under but nothing new is: how nodes sharing `encryption_key`
    /// rotate it (README, "Rotating a shared key"). A list; in the
    /// environment, one string of comma-separated keys.
    #[serde(deserialize_with = "list_or_commas")]
    pub decryption_keys: Vec<String>,
    /// The metadata store: `<data_dir>/facehub.db` (SQLite) when absent,
    /// or a PostgreSQL server shared by every node,
    /// `postgres://user:password@host:port/database`. Nodes sharing one
    /// must also share `blobs` and hold the same keys (`encryption_key`,
    /// `decryption_keys`).
    pub database: Option<String>,
    /// Where blobs (sealed photos, images) go: `<data_dir>/blobs/` when
    /// absent, or an S3-compatible bucket,
    /// `s3://bucket[/prefix]?endpoint=http://host:port&region=name`, with
    /// credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub blobs: Option<String>,
    /// An unreferenced blob in a bucket shared by several nodes is removed
    /// as an orphan only once older than this: a younger one may be an
    /// upload another node is about to commit. Keep it above
    /// `limits.upload_deadline_secs`.
    pub orphan_grace_secs: u64,
    /// Share the rate limits of all nodes through this Redis
    /// (`redis://host:port/db`); each node limits on its own when absent.
    pub redis: Option<String>,
    /// Life of an access token in seconds (the platform's is 7200).
    pub token_ttl_secs: u64,
    /// Requests per second per app and endpoint (the platform's is 50).
    pub rate_limit_per_second: u32,
    /// Requests per minute per app and endpoint, for the endpoints the
    /// platform also caps per minute (lingo: 1000).
    pub rate_limit_per_minute: u32,
    /// Serve TLS (https:// and wss://) with this certificate.
    pub tls: Option<TlsConfig>,
    pub limits: Limits,
    pub device: DeviceConfig,
    pub security: SecurityConfig,
    pub log: LogConfig,
}

/// By hand, so that no `{:?}` (a log line, a panic message) shows the keys
/// or a password in a URL. Every field is named: a new one must be
/// placed here too.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Config {
            data_dir,
            listen,
            encryption_key,
            encryption_key_file,
            decryption_keys,
            database,
            blobs,
            orphan_grace_secs,
            redis,
            token_ttl_secs,
            rate_limit_per_second,
            rate_limit_per_minute,
            tls,
            limits,
            device,
            security,
            log,
        } = self;
        let url = |u: &Option<String>| u.as_deref().map(redact_url);
        f.debug_struct("Config")
            .field("data_dir", data_dir)
            .field("listen", listen)
            .field(
                "encryption_key",
                &encryption_key.as_ref().map(|_| "<hidden>"),
            )
            .field("encryption_key_file", encryption_key_file)
            .field(
                "decryption_keys",
                &format_args!("<{} hidden>", decryption_keys.len()),
            )
            .field("database", &url(database))
            .field("blobs", blobs)
            .field("orphan_grace_secs", orphan_grace_secs)
            .field("redis", &url(redis))
            .field("token_ttl_secs", token_ttl_secs)
            .field("rate_limit_per_second", rate_limit_per_second)
            .field("rate_limit_per_minute", rate_limit_per_minute)
            .field("tls", tls)
            .field("limits", limits)
            .field("device", device)
            .field("security", security)
            .field("log", log)
            .finish()
    }
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The WeCom device protocol (WebSocket at `/` and `/websocket`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceConfig {
    /// Largest frame a device may send. 200 users with 22 full template
    /// slots of 8 KiB each, in base64, fit.
    pub max_frame_mib: usize,
    /// A connection that sends nothing (not even `ping`, due every 20–40 s)
    /// for this long is closed.
    pub idle_timeout_secs: u64,
    /// An enrolment with no answer from its device after this long is
    /// marked timed out.
    pub enrol_timeout_secs: u64,
    /// Slowest link served: writing a frame may take `idle_timeout_secs`
    /// plus its size at this rate (KiB/s) before the device is cut off.
    pub min_send_rate_kib: u64,
    /// Commands one terminal (one address before it names itself) may send
    /// a second, with as many in a burst; more are answered 45009 unrun.
    pub commands_per_second: u32,
    /// Punch and door records (terminals' and the API's) whose time is
    /// older than this many days are deleted with their capture photos,
    /// the deletion audited; 0 keeps them.
    pub record_retention_days: u32,
    /// Capture photo bytes one `checkin` frame may store (at least one
    /// photo's worth, whatever is set): the records beyond are failed, so
    /// the terminal sends them again in its next frame. Bounds how long a
    /// frame holds the validation core.
    pub capture_mib_per_frame: usize,
    /// Serial numbers noted as pending at most (ZKTeco terminals that call
    /// before an admin adds them); beyond, calls are refused unnoted.
    pub pending_max: usize,
    /// Largest body a ZKTeco terminal may post to `/iclock/*`.
    pub push_body_mib: usize,
    /// How often a ZKTeco terminal is told to poll `getrequest` (its init's
    /// `Delay`), in seconds.
    pub push_poll_secs: u64,
    /// A ZKTeco terminal's batch of commands not all confirmed after this
    /// long is sent again.
    pub push_resend_secs: u64,
    /// Text one `getrequest` answer may carry, in KiB (the V3.2.0 manual's
    /// 40; attendance firmware of PUSH 2.4 takes up to 900): templates are
    /// the bulk of it.
    pub push_reply_kib: usize,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            max_frame_mib: 64,
            idle_timeout_secs: 90,
            enrol_timeout_secs: 300,
            min_send_rate_kib: 32,
            commands_per_second: 100,
            record_retention_days: 0,
            capture_mib_per_frame: 16,
            pending_max: 1000,
            push_body_mib: 16,
            push_poll_secs: 10,
            push_resend_secs: 60,
            push_reply_kib: 40,
        }
    }
}

/// What a client without a credential can cost: password and SecretNo
/// guessing, connections that have not logged in (docs/security.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Failed attempts (admin login, terminal `register`) an address, an
    /// account or a serial number may make before it is locked out.
    pub failures_before_lockout: u32,
    /// The first lockout; each further failure doubles it, up to
    /// `lockout_max_secs`.
    pub lockout_secs: u64,
    pub lockout_max_secs: u64,
    /// Password checks (argon2, ~19 MiB each) running at once; more wait
    /// up to a second, then are refused with 429.
    pub password_checks: usize,
    /// Proxies whose `X-Forwarded-For` names the client; from any other
    /// peer the header is ignored.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Browser origins (`https://host`) allowed to open the device
    /// WebSocket; terminals send no `Origin`, so none is needed for them.
    pub device_origins: Vec<String>,
    /// Bytes a device connection may send before it has proved who it is.
    pub prelogin_bytes: usize,
    /// Seconds a device connection has to prove who it is.
    pub prelogin_deadline_secs: u64,
    /// Device connections that have not yet proved who they are, in all
    /// and per client address.
    pub prelogin_connections: usize,
    pub prelogin_connections_per_address: usize,
    /// How long an `active_code` handed out by `register` stays valid.
    pub active_code_ttl_secs: i64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            failures_before_lockout: 5,
            lockout_secs: 60,
            lockout_max_secs: 3600,
            password_checks: 2,
            trusted_proxies: Vec::new(),
            device_origins: Vec::new(),
            prelogin_bytes: 64 * 1024,
            prelogin_deadline_secs: 10,
            prelogin_connections: 512,
            prelogin_connections_per_address: 16,
            active_code_ttl_secs: 24 * 3600,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub photo_min_bytes: u64,
    pub photo_max_bytes: u64,
    pub photo_min_side: u32,
    pub photo_max_side: u32,
    /// Largest JSON request body accepted.
    pub json_max_bytes: usize,
    /// A request body that sends no bytes for this long is abandoned.
    pub body_idle_timeout_secs: u64,
    /// An upload must be complete within this time.
    pub upload_deadline_secs: u64,
    /// A request head (line and headers) must arrive within this time.
    pub header_timeout_secs: u64,
    /// A JSON request body must arrive within this time.
    pub json_deadline_secs: u64,
    /// Uploads in progress at once; more are refused with 429.
    pub max_concurrent_uploads: usize,
    /// Open client connections at once; more wait to be accepted.
    pub max_connections: usize,
    /// Memory all full image decodes together may use (each upload is
    /// charged its file plus an estimate of its pixels, up to this budget).
    pub decode_memory_mib: u64,
    /// How long a received upload may wait for decode memory or a CPU slot
    /// before it is refused as the frequency limit (429).
    pub decode_wait_secs: u64,
    /// New uploads are refused (507, "storage full") while the data
    /// directory's filesystem has less free space than this, so that the
    /// database always has room to commit and to record; 0 turns it off.
    pub min_free_mib: u64,
    /// After an answer given before the request body was read (an early
    /// refusal), the rest of the body is read and discarded for at most
    /// this long, this long without a byte, and this many bytes, before
    /// the connection closes (see `api::linger`). Keep the bytes above the
    /// largest upload limit.
    pub linger_secs: u64,
    pub linger_idle_secs: u64,
    pub linger_max_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `facehub=debug`.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("facehub-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            encryption_key: None,
            encryption_key_file: None,
            decryption_keys: Vec::new(),
            blobs: None,
            orphan_grace_secs: 3600,
            redis: None,
            database: None,
            tls: None,
            token_ttl_secs: 7200,
            rate_limit_per_second: 50,
            rate_limit_per_minute: 1000,
            limits: Limits::default(),
            device: DeviceConfig::default(),
            security: SecurityConfig::default(),
            log: LogConfig::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            photo_min_bytes: 100,
            photo_max_bytes: 10 * 1024 * 1024,
            photo_min_side: 64,
            photo_max_side: 8192,
            json_max_bytes: 1024 * 1024,
            body_idle_timeout_secs: 30,
            upload_deadline_secs: 600,
            header_timeout_secs: 30,
            json_deadline_secs: 30,
            max_concurrent_uploads: 256,
            max_connections: 4096,
            decode_memory_mib: 1024,
            decode_wait_secs: 60,
            min_free_mib: 100,
            // nginx's lingering_time and lingering_timeout.
            linger_secs: 30,
            linger_idle_secs: 5,
            linger_max_bytes: 12 * 1024 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

/// A list of strings, or one string of comma-separated items (what an
/// environment variable can hold; base64 has no commas).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrCommas {
        List(Vec<String>),
        Commas(String),
    }
    Ok(match ListOrCommas::deserialize(d)? {
        ListOrCommas::List(v) => v,
        ListOrCommas::Commas(s) => s
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

impl Config {
    /// Defaults ← `file` ← `FACEHUB_*` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(path.exists(), "config file {} not found", path.display());
            fig = fig.merge(Toml::file(path));
        }
        fig = fig.merge(Env::prefixed("FACEHUB_").split("__"));
        Ok(fig.extract()?)
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("facehub.db")
    }

    pub fn key_file(&self) -> PathBuf {
        self.encryption_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// A database URL fit for logs and errors: the password replaced.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<not a URL>".to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    #[test]
    fn redacts_password() {
        assert_eq!(
            redact_url("postgres://fh:s3cret@db:5432/facehub"),
            "postgres://fh:***@db:5432/facehub"
        );
        assert_eq!(redact_url("nonsense"), "<not a URL>");
    }

    use super::*;

    #[test]
    fn layers_override_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "facehub.toml",
                "listen = \"0.0.0.0:9000\"\ntoken_ttl_secs = 60\n[limits]\nphoto_max_bytes = 5\n",
            )?;
            jail.set_env("FACEHUB_TOKEN_TTL_SECS", "30");
            jail.set_env("FACEHUB_LIMITS__PHOTO_MIN_SIDE", "10");
            let c = Config::load(Some(Path::new("facehub.toml"))).unwrap();
            assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
            assert_eq!(c.token_ttl_secs, 30);
            assert_eq!(c.limits.photo_max_bytes, 5);
            assert_eq!(c.limits.photo_min_side, 10);
            assert_eq!(c.data_dir, PathBuf::from("facehub-data"));
            Ok(())
        });
    }

    #[test]
    fn decryption_keys_are_a_list_or_comma_separated() {
        const A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        const B: &str = "+/8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0=";
        figment::Jail::expect_with(|jail| {
            jail.create_file("k.toml", &format!("decryption_keys = [\"{A}\", \"{B}\"]\n"))?;
            let c = Config::load(Some(Path::new("k.toml"))).unwrap();
            assert_eq!(c.decryption_keys, [A, B]);
            jail.set_env("FACEHUB_DECRYPTION_KEYS", format!("{A}, {B},"));
            assert_eq!(Config::load(None).unwrap().decryption_keys, [A, B]);
            jail.set_env("FACEHUB_DECRYPTION_KEYS", B);
            assert_eq!(Config::load(None).unwrap().decryption_keys, [B]);
            Ok(())
        });
        assert!(Config::default().decryption_keys.is_empty());
    }

    #[test]
    fn debug_shows_no_key_and_no_password() {
        const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let c = Config {
            encryption_key: Some(KEY.into()),
            decryption_keys: vec![KEY.replace('A', "B")],
            database: Some("postgres://fh:pg-s3cret@db:5432/facehub".into()),
            redis: Some("redis://:redis-s3cret@cache:6379/0".into()),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        for secret in [KEY, &KEY.replace('A', "B"), "pg-s3cret", "redis-s3cret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("db:5432") && shown.contains("<1 hidden>"),
            "{shown}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listne = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            Ok(())
        });
    }
}

#[cfg(test)]
mod default_tests {
    use super::*;

    #[test]
    fn zero_configuration_defaults() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("facehub-data"));
        assert_eq!(c.token_ttl_secs, 7200);
        assert_eq!(c.rate_limit_per_second, 50);
        assert_eq!(c.database_path(), PathBuf::from("facehub-data/facehub.db"));
        assert_eq!(c.key_file(), PathBuf::from("facehub-data/master.key"));
    }
}
