//! Building and running the server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::crypto::{Key, KeyRing};
use crate::domain::Core;
use crate::store::Db;
use crate::store::blob::{BlobStore, LocalBlobStore};
use crate::store::s3::{S3BlobStore, S3Location};
use crate::store::sealed::SealedBlobs;

/// Opens the data directory (database, blobs, key) without serving; used by
/// `serve` and by every admin command, which works whether a server runs on
/// the same directory or not.
pub async fn open_core(mut config: Config) -> anyhow::Result<Core> {
    crate::store::private::data_dir(&config.data_dir)?;
    let db = Db::open(config.database.as_deref(), &config.database_path()).await?;
    let recorded = db.meta_get("key_id").await?;
    let keys = match &config.encryption_key {
        Some(k) => {
            let mut ring = vec![Key::from_base64(k).context("encryption_key")?];
            for (i, d) in config.decryption_keys.iter().enumerate() {
                ring.push(Key::from_base64(d).with_context(|| format!("decryption_keys[{i}]"))?);
            }
            KeyRing::from_keys(ring)
        }
        None => {
            anyhow::ensure!(
                config.decryption_keys.is_empty(),
                "decryption_keys go with encryption_key; a key file keeps its older keys itself"
            );
            let file = config.key_file();
            // A key file is generated only for a new data directory: data
            // already sealed needs its own key, never a fresh one.
            anyhow::ensure!(
                recorded.is_none() || file.exists(),
                "the key file {} is missing, but this data directory holds data sealed with \
                 key id {}; restore the file or set encryption_key",
                file.display(),
                recorded.as_deref().unwrap_or_default()
            );
            KeyRing::load_or_create(&file)?
        }
    };
    // Every refusal comes before any write: on a shared database a refused
    // node must not leave its key recorded for the others.
    let current = crate::crypto::key_id_hex(keys.current().id());
    let from_config = config.encryption_key.is_some();
    // With a key file, the data was sealed with this ring's keys: starting
    // with another key would fail every read and mix keys in new writes. A
    // recorded key older than the ring's current one is a rotation that
    // stopped after writing the key file; the file is the authority. (Keys
    // from the configuration may change node by node; the check below
    // covers them.)
    if let (Some(recorded), false) = (&recorded, from_config) {
        let known = u32::from_str_radix(recorded, 16)
            .ok()
            .and_then(|id| keys.get(id))
            .is_some();
        anyhow::ensure!(
            known,
            "the encryption key in use (id {current}) is not the key this data directory was \
             written with (id {recorded}); restore {} or set encryption_key",
            config.key_file().display()
        );
    }
    // Data sealed under a key this node lacks could not be read: the wrong
    // key, or a key dropped from decryption_keys before `key reseal` moved
    // everything off it. One scan of the sealed columns.
    let missing: Vec<String> = db
        .key_usage()
        .await?
        .into_iter()
        .filter(|(id, _)| keys.get(*id).is_none())
        .map(|(id, n)| format!("{} ({n} items)", crate::crypto::key_id_hex(id)))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "data is sealed under key id {} that {} does not hold; {}",
        missing.join(", "),
        if from_config {
            "the configuration (encryption_key, decryption_keys)"
        } else {
            "the key file"
        },
        if from_config {
            "keep that key in decryption_keys until `facehub key reseal` reports nothing left \
             under it"
        } else {
            "restore the key file"
        }
    );
    // The key new data is sealed under. With keys from the configuration
    // only a server starting changes it (Application::with_core): an admin
    // command run with another node's configuration does not.
    match recorded {
        None => db.meta_set("key_id", &current).await?,
        Some(r) if r != current && !from_config => db.meta_set("key_id", &current).await?,
        Some(_) => {}
    }
    // A copy of blobs is half done while migrate-store runs: any other
    // writer (an erasure, a rotation, an import) would leave its change in
    // the source only.
    if migration_marked(&db).await? && server_running(&config.data_dir) {
        anyhow::bail!(
            "migrate-store is copying this data directory's blobs; wait until it has finished"
        );
    }
    let spec = blob_store_spec(config.blobs.as_deref(), &db).await?;
    if spec == "local" && db.backend() == crate::store::Backend::Postgres {
        claim_local_blobs(&db, &config.data_dir).await?;
    }
    let store = open_blob_store(Some(&spec), &config, &db).await?;
    config.blobs = Some(spec);
    let blobs = SealedBlobs::new(store, keys.clone());
    Core::new(config, db, blobs, keys).await
}

/// Meta key set while `migrate-store` runs (with the data directory's
/// lock held); a stale one (the copy was killed) is ignored.
pub const MAINTENANCE: &str = "maintenance";

/// Whether a migrate-store marker is set (alive or left by a killed copy).
async fn migration_marked(db: &Db) -> anyhow::Result<bool> {
    Ok(db
        .meta_get(MAINTENANCE)
        .await?
        .is_some_and(|m| !m.is_empty()))
}

/// Meta key of the start count compared with the shared store's epoch.
const BLOB_EPOCH: &str = "blob_epoch";

/// Meta key of the blob store the metadata's blobs are in, in canonical
/// form: `local` or an `s3://` URL.
pub const BLOB_STORE: &str = "blob_store";

/// `local`, or the `s3://` URL as parsed, so that spellings of one store
/// compare equal.
pub fn canonical_blob_store(spec: Option<&str>) -> anyhow::Result<String> {
    Ok(match spec {
        None | Some("local") => "local".to_string(),
        Some(url) => S3Location::parse(url)?.to_string(),
    })
}

/// The store to open: the data directory records where its blobs are, so
/// a command run without `--blobs` still finds them, and a server started
/// with another store is refused instead of splitting the data between
/// two stores. The store is recorded by the first `serve` (or the first
/// command to find files already stored), so admin commands run before it
/// without `--blobs` do not pin the embedded store.
pub async fn blob_store_spec(configured: Option<&str>, db: &Db) -> anyhow::Result<String> {
    let configured = configured
        .map(|c| canonical_blob_store(Some(c)))
        .transpose()?;
    match (db.meta_get(BLOB_STORE).await?, configured) {
        (Some(recorded), None) => Ok(recorded),
        (Some(recorded), Some(c)) if recorded == c => Ok(recorded),
        (Some(recorded), Some(c)) => anyhow::bail!(
            "blobs: this data directory's blobs are in {recorded}, not {c}; move them with \
             `facehub migrate-store --to {c}` first"
        ),
        (None, c) => {
            let c = c.unwrap_or_else(|| "local".to_string());
            if db.file_count().await? > 0 {
                db.meta_set(BLOB_STORE, &c).await?;
            }
            Ok(c)
        }
    }
}

/// The blob store `spec` names: `None` or `"local"` for the data
/// directory, else an `s3://` URL.
pub async fn open_blob_store(
    spec: Option<&str>,
    config: &Config,
    db: &Db,
) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match spec {
        None | Some("local") => Arc::new(LocalBlobStore::open(&config.data_dir)?),
        Some(url) => {
            let loc = S3Location::parse(url)?;
            // The metadata store names its blobs' namespace: every node
            // of a deployment agrees on it, another deployment differs.
            let ns = db.meta_get_or_init("blob_namespace", new_namespace).await?;
            Arc::new(S3BlobStore::open(
                &loc,
                &ns,
                &config.data_dir.join("spool"),
            )?)
        }
    })
}

/// Meta key naming the data directory that holds a PostgreSQL
/// database's blobs when they are local (see `claim_local_blobs`).
const LOCAL_BLOBS_OWNER: &str = "local_blobs_owner";

/// A database other nodes can share, with blobs in one node's data
/// directory: only that directory can serve them, and another node would
/// answer its uploads' downloads with 404s. The database records which
/// directory it is (an id kept in the directory), and any other is refused.
async fn claim_local_blobs(db: &Db, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let file = data_dir.join("blobs-owner");
    let ours = match std::fs::read_to_string(&file) {
        Ok(id) => id.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = new_namespace();
            std::fs::write(&file, &id).with_context(|| format!("writing {}", file.display()))?;
            id
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    let owner = db
        .meta_get_or_init(LOCAL_BLOBS_OWNER, || ours.clone())
        .await?;
    anyhow::ensure!(
        owner == ours,
        "this database keeps its blobs in another data directory (blobs = local, the \
         default): nodes sharing a database need shared blobs (--blobs s3://…), and admin \
         commands run where the blobs are"
    );
    Ok(())
}

fn new_namespace() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Loads the certificate and key `serve` terminates TLS with.
pub fn tls_acceptor(tls: &crate::config::TlsConfig) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .with_context(|| format!("reading {}", tls.cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", tls.cert_file.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{} holds no certificate",
        tls.cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .with_context(|| format!("reading the private key {}", tls.key_file.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

pub struct Application {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    core: Arc<Core>,
    limiter: Arc<crate::api::ratelimit::RateLimiter>,
    /// Held while serving: one server per data directory.
    _lock: std::fs::File,
}

/// Takes the data directory's lock, or says who holds it.
pub fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another facehub server is using {} (its LOCK file is held)",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the data directory"),
    }
}

/// Every connection is a file descriptor, and so is every open blob. The
/// usual soft limit (1024) is far below `max_connections`; raise it to the
/// hard limit, as Go's runtime and nginx's `worker_rlimit_nofile` do.
fn raise_fd_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) if n < max_connections as u64 + 256 => tracing::warn!(
            limit = n,
            max_connections,
            "the open-file limit is below max_connections plus room for blobs and the \
             database; raise it (ulimit -n, LimitNOFILE=) or lower limits.max_connections"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

/// Whether a server holds the data directory's lock right now.
pub fn server_running(dir: &std::path::Path) -> bool {
    match std::fs::File::open(dir.join("LOCK")) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Counts this start in the shared store's epoch; true when another data
/// directory has used the namespace since this one last started. Such a
/// data directory (a restored backup, a copy) must not act on its intents:
/// the live one may have committed those uploads or kept those files since.
async fn namespace_moved_on(core: &Core) -> anyhow::Result<bool> {
    let store = core.blobs.store();
    let ours: u64 = core
        .db
        .meta_get(BLOB_EPOCH)
        .await?
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let theirs = store.epoch().await?;
    let next = ours.max(theirs) + 1;
    store.set_epoch(next).await?;
    core.db.meta_set(BLOB_EPOCH, &next.to_string()).await?;
    if theirs > ours {
        tracing::warn!(
            ours,
            theirs,
            "another data directory has used this bucket namespace since this one last \
             started (a restored backup or a copy?); the sweep deletes nothing this time"
        );
    }
    Ok(theirs > ours)
}

/// Clears what a crash can leave behind: temporary files of unfinished
/// uploads, and blobs whose metadata was never committed (never
/// acknowledged, so never visible).
async fn recover(core: &Core) -> anyhow::Result<()> {
    let retired = core.finish_rotation().await?;
    if !retired.is_empty() {
        tracing::info!(keys = ?retired, "retired encryption keys nothing is sealed under any more");
    }
    let store = core.blobs.store();
    store.probe().await?;
    let swept = store.sweep_incomplete().await?;
    // Faces stored but never recorded against a person (deleting their
    // rows dooms their blobs, which go below).
    let dangling = core.db.dangling_face_files().await?;
    for id in &dangling {
        core.db.delete_file(id).await?;
    }
    // Keys whose blobs no row protects: doomed ones (their rows were
    // deleted) at once, uploads' once older than the grace (younger ones
    // may be another node's upload about to commit).
    let grace = core.orphan_grace();
    let limits = &core.config.limits;
    let slowest = limits.upload_deadline_secs + limits.decode_wait_secs;
    if store.shared() && grace.as_secs() <= slowest {
        tracing::warn!(
            orphan_grace_secs = grace.as_secs(),
            slowest_upload_secs = slowest,
            "orphan_grace_secs is not above upload_deadline_secs + decode_wait_secs: another \
             node's start-up sweep may claim a slow upload, which then fails"
        );
    }
    let behind = store.shared() && namespace_moved_on(core).await?;
    let cutoff = core.now() - i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let mut orphans = 0;
    let due = if behind {
        Vec::new()
    } else {
        core.db.intents_due(cutoff).await?
    };
    for (key, at) in due {
        // An upload's intent is claimed first: after that its upload can
        // no longer commit a row for this blob.
        if at != 0 && !core.db.intent_doom(&key, at).await? {
            continue;
        }
        let unreferenced = core
            .db
            .known_file_ids(std::slice::from_ref(&key))
            .await?
            .is_empty();
        if unreferenced {
            core.drop_blob(&key).await?;
            orphans += 1;
        } else {
            core.db.intent_remove(&key).await?;
        }
    }
    // The data directory is this server's alone (its lock is held), so in
    // the local store any other unreferenced blob is a crash's leftover. In
    // a shared store it may be another deployment's: `check` reports it.
    let mut strays = 0;
    if !store.shared() {
        // Listed before the rows are read: a blob committed in between is
        // then known, never taken for an orphan.
        let listed = store.list().await?;
        let known: std::collections::HashSet<String> =
            core.db.file_ids().await?.into_iter().collect();
        for b in listed {
            if !known.contains(&b.key) {
                core.blobs.delete(&b.key).await?;
                orphans += 1;
            }
        }
    } else {
        let known: std::collections::HashSet<String> =
            core.db.file_ids().await?.into_iter().collect();
        let pending: std::collections::HashSet<String> =
            core.db.intent_keys().await?.into_iter().collect();
        let now = std::time::SystemTime::now();
        strays = store
            .list()
            .await?
            .iter()
            .filter(|b| !known.contains(&b.key) && !pending.contains(&b.key))
            .filter(|b| now.duration_since(b.modified).unwrap_or_default() >= grace)
            .count();
    }
    if strays > 0 {
        tracing::warn!(
            objects = strays,
            "the bucket holds objects this data directory never recorded; left in place \
             (facehub check lists them as unreferenced)"
        );
    }
    if swept + orphans + dangling.len() > 0 {
        tracing::warn!(
            temporary = swept,
            unacknowledged = orphans,
            dangling_faces = dangling.len(),
            "start-up sweep removed temporary files and blobs of uploads never acknowledged"
        );
    } else {
        tracing::info!("start-up sweep: nothing left behind by an earlier run");
    }
    Ok(())
}

impl Application {
    /// Opens storage, takes the data directory's lock, binds the listener
    /// (port 0 picks a free port) and recovers from any earlier crash.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listen = config.listen;
        let core = open_core(config).await?;
        Self::with_core(core, listen).await
    }

    pub async fn with_core(core: Core, listen: SocketAddr) -> anyhow::Result<Application> {
        raise_fd_limit(core.config.limits.max_connections);
        let tls = core.config.tls.as_ref().map(tls_acceptor).transpose()?;
        let lock = lock_data_dir(&core.config.data_dir)?;
        // Serving records the store (see blob_store_spec).
        if core.db.meta_get(BLOB_STORE).await?.is_none() {
            let spec = canonical_blob_store(core.config.blobs.as_deref())?;
            core.db.meta_set(BLOB_STORE, &spec).await?;
        }
        // This node now seals under its current key: with keys from the
        // configuration, the deployment's (`key reseal` checks it).
        let current = crate::crypto::key_id_hex(core.keys.current().id());
        if core.db.meta_get("key_id").await?.as_deref() != Some(current.as_str()) {
            core.db.meta_set("key_id", &current).await?;
        }
        // Holding the lock, any migrate-store marker is a killed copy's.
        if migration_marked(&core.db).await? {
            core.db.meta_set(MAINTENANCE, "").await?;
        }
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        recover(&core).await?;
        let (per_second, per_minute) = (
            core.config.rate_limit_per_second,
            core.config.rate_limit_per_minute,
        );
        let limiter = match &core.config.redis {
            None => crate::api::ratelimit::RateLimiter::new(per_second, per_minute),
            Some(url) => {
                crate::api::ratelimit::RateLimiter::shared(per_second, per_minute, url).await?
            }
        };
        Ok(Application {
            listener,
            tls,
            core: Arc::new(core),
            limiter,
            _lock: lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn core(&self) -> Arc<Core> {
        self.core.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_with_shutdown(std::future::pending()).await
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    ///
    /// hyper is driven directly (rather than through `axum::serve`) to write
    /// HTTP/1 header names in Title-Case, as the platform does: the Python
    /// SDK copies response headers into a plain `dict` and looks up
    /// `X-Tt-Logid` and `Content-Disposition` case-sensitively.
    pub async fn run_with_shutdown(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
        use hyper_util::server::conn::auto::Builder;
        use hyper_util::service::TowerToHyperService;

        let router = crate::api::router(crate::api::AppState::with_limiter(
            self.core.clone(),
            self.limiter.clone(),
        ));
        // A key rotated by `facehub key rotate` is taken up within a second.
        let key_watch = tokio::spawn({
            let core = self.core.clone();
            async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    if let Err(e) = core.watch_key().await {
                        tracing::error!(error = %format!("{e:#}"), "checking for a rotated key");
                    }
                }
            }
        });
        let (sync_stop, sync_stopped) = tokio::sync::oneshot::channel::<()>();
        let sync = tokio::spawn(self.core.clone().run_device_sync(async move {
            let _ = sync_stopped.await;
        }));
        let mut builder = Builder::new(TokioExecutor::new());
        // A client that never finishes its request head is cut off.
        builder
            .http1()
            .title_case_headers(true)
            // Bounds what one connection reads ahead of its handler
            // (hyper's default is ~400 KiB); still far above any header.
            .max_buf_size(128 * 1024)
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(
                self.core.config.limits.header_timeout_secs.max(1),
            ));
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(std::time::Duration::from_secs(20))
            .keep_alive_timeout(std::time::Duration::from_secs(20))
            .max_concurrent_streams(128);
        // Past this many open connections, new ones wait in the kernel's
        // accept queue instead of costing file descriptors and memory.
        let connections = Arc::new(tokio::sync::Semaphore::new(
            self.core.config.limits.max_connections.max(1),
        ));
        let linger_bounds = crate::api::linger::Bounds::of(&self.core.config.limits);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => p.expect("semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            // An answer before the body was read lingers (api::linger).
            let linger = Arc::new(crate::api::linger::Linger::default());
            let stream = crate::api::linger::Lingering::new(stream, linger.clone(), linger_bounds);
            // Every request knows its peer (the throttles of unauthenticated
            // paths count per client address).
            let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                router.clone(),
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req.extensions_mut().insert(linger.clone());
                    req
                },
            ));
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let served = match tls {
                    None => {
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(acceptor) => {
                        // A client that never finishes its handshake is cut off.
                        let handshake = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            acceptor.accept(stream),
                        );
                        let stream = match handshake.await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(self.listener);
        let _ = sync_stop.send(());
        key_watch.abort();
        let _ = sync.await;
        // Upgraded WebSocket connections are no longer hyper's to drain;
        // their sync positions are kept for when they come back.
        for (sn, version) in self.core.hub.close_all() {
            if let Err(e) = self.core.db.set_seen(&sn, version, self.core.now()).await {
                tracing::warn!(error = %e, "could not record a device's sync position");
            }
        }
        if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 30 s; closing");
        }
        self.core.db.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::files::FileKind;
    use crate::image::samples;
    use crate::store::blob::{BlobInfo, BlobReader, BlobWriter};
    use async_trait::async_trait;
    use bytes::Bytes;

    /// The data directory's store, claiming to be shared like a bucket.
    struct Shared(LocalBlobStore);

    #[async_trait]
    impl BlobStore for Shared {
        async fn create(&self, key: &str) -> anyhow::Result<Box<dyn BlobWriter>> {
            self.0.create(key).await
        }
        async fn open(&self, key: &str) -> anyhow::Result<Option<BlobReader>> {
            self.0.open(key).await
        }
        async fn delete(&self, key: &str) -> anyhow::Result<()> {
            self.0.delete(key).await
        }
        async fn list(&self) -> anyhow::Result<Vec<BlobInfo>> {
            self.0.list().await
        }
        fn shared(&self) -> bool {
            true
        }
        async fn ping(&self) -> anyhow::Result<()> {
            self.0.ping().await
        }
        async fn sweep_incomplete(&self) -> anyhow::Result<usize> {
            self.0.sweep_incomplete().await
        }
        async fn incomplete(&self) -> anyhow::Result<usize> {
            self.0.incomplete().await
        }
    }

    async fn shared_core(dir: &std::path::Path) -> Arc<Core> {
        let config = Config {
            data_dir: dir.to_path_buf(),
            orphan_grace_secs: 0,
            ..Config::default()
        };
        let db = Db::open_sqlite(&config.database_path()).await.unwrap();
        let keys = KeyRing::load_or_create(&config.key_file()).unwrap();
        let store = Arc::new(Shared(LocalBlobStore::open(dir).unwrap()));
        let blobs = SealedBlobs::new(store, keys.clone());
        Arc::new(Core::new(config, db, blobs, keys).await.unwrap())
    }

    fn body(bytes: Vec<u8>) -> impl futures_util::Stream<Item = crate::error::Result<Bytes>> {
        futures_util::stream::iter([Ok(Bytes::from(bytes))])
    }

    async fn put(core: &Core, key: &str) {
        let mut w = core.blobs.store().create(key).await.unwrap();
        w.write(b"FHB sealed bytes").await.unwrap();
        w.finish().await.unwrap();
    }

    /// Keys from the configuration: `decryption_keys` widen what is
    /// readable; a node lacking a key data is still sealed under is
    /// refused, naming it; decryption keys without `encryption_key` (a key
    /// file keeps its own older keys) and bad ones are refused.
    #[tokio::test]
    async fn a_node_must_hold_every_key_its_data_is_sealed_under() {
        const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        const K2: &str = "+/8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0=";
        let dir = tempfile::tempdir().unwrap();
        let config = |key: Option<&str>, readable: &[&str]| Config {
            data_dir: dir.path().to_path_buf(),
            encryption_key: key.map(str::to_string),
            decryption_keys: readable.iter().map(|k| k.to_string()).collect(),
            ..Config::default()
        };
        let core = open_core(config(Some(K1), &[])).await.unwrap();
        let tenant = core.create_tenant("acme").await.unwrap();
        core.add_device(&tenant, "SN-1", "app-test-factory-secret")
            .await
            .unwrap();
        core.db.close().await;

        let key_id = |k: &str| format!("{:08x}", Key::from_base64(k).unwrap().id());
        let recorded = |core: &Core| {
            let db = core.db.clone();
            async move { db.meta_get("key_id").await.unwrap() }
        };
        // An admin command with K2 current reads K1's data, and records
        // nothing: only a server starting says what the nodes seal under.
        let core = open_core(config(Some(K2), &[K1])).await.unwrap();
        assert_eq!(recorded(&core).await, Some(key_id(K1)));
        // So key reseal, which would move the data to its key, refuses.
        let e = core.reseal_keys().await.unwrap_err();
        assert!(
            format!("{e:#}").contains("not the key the last server"),
            "{e:#}"
        );
        core.db.close().await;
        // Without K1 a node is refused, naming the key, and records nothing.
        let Err(e) = open_core(config(Some(K2), &[])).await else {
            panic!("opened without K1")
        };
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&key_id(K1)) && msg.contains("decryption_keys"),
            "{msg}"
        );

        let core = open_core(config(Some(K2), &[K1])).await.unwrap();
        assert_eq!(
            recorded(&core).await,
            Some(key_id(K1)),
            "a refused node's key"
        );
        core.db.close().await;

        let mut serving = config(Some(K2), &[K1]);
        serving.listen = "127.0.0.1:0".parse().unwrap();
        let app = Application::build(serving).await.unwrap();
        let core = app.core();
        assert_eq!(recorded(&core).await, Some(key_id(K2)));
        let r = core.reseal_keys().await.unwrap();
        // The device's secret_no (its session secret comes at activation).
        assert_eq!((r.values_resealed, r.remaining), (1, 0), "{r:?}");
        core.db.close().await;
        drop((app, core));
        let core = open_core(config(Some(K2), &[])).await.unwrap();
        core.db.close().await;

        let Err(e) = open_core(config(None, &[K1])).await else {
            panic!("opened")
        };
        assert!(
            format!("{e:#}").contains("decryption_keys go with"),
            "{e:#}"
        );
        let Err(e) = open_core(config(Some(K2), &["not a key"])).await else {
            panic!("opened")
        };
        assert!(format!("{e:#}").contains("decryption_keys[0]"), "{e:#}");
    }

    /// In a shared store the sweep deletes what the data directory said
    /// might be left (uploads cut off, rows deleted), never an object it
    /// knows nothing of; an upload whose intent the sweep claimed cannot
    /// commit a row for a deleted blob.
    #[tokio::test]
    async fn the_sweep_of_a_shared_store_deletes_only_what_it_was_told_of() {
        let dir = tempfile::tempdir().unwrap();
        let core = shared_core(dir.path()).await;
        let tenant = core.create_tenant("acme").await.unwrap();
        let rules = core.attendance_rules();
        let upload = || async {
            let staged = core
                .receive_image(rules, body(samples::png(64, 64)))
                .await
                .unwrap();
            core.commit_image(
                staged,
                tenant.id,
                FileKind::AttendancePhoto,
                "a.png",
                (),
                None,
            )
            .await
        };
        let kept = upload().await.unwrap();
        let gone = upload().await.unwrap();
        assert!(core.db.intent_keys().await.unwrap().is_empty());

        // A crash after an upload's PUT, before its row: its intent stays.
        let cut = "att_cut0ff00000000000000000000000";
        core.db.intent_add(cut, core.now()).await.unwrap();
        put(&core, cut).await;
        // A row deleted, its blob not yet (a crash in between).
        core.db.delete_file(&gone.file_id).await.unwrap();
        // An object nothing here knows of (another copy's upload).
        let stray = "att_5tray000000000000000000000000";
        put(&core, stray).await;

        recover(&core).await.unwrap();
        let mut left = core.blobs.store().keys().await.unwrap();
        left.sort();
        let mut want = vec![kept.file_id.clone(), stray.to_string()];
        want.sort();
        assert_eq!(left, want);
        assert!(core.db.intent_keys().await.unwrap().is_empty());

        // Uploads refused or dropped before their bytes were sent forget
        // their intents (nothing of them can be in the store).
        let refused = core
            .receive_image(rules, body(b"not an image at all".to_vec()))
            .await;
        assert!(refused.is_err());
        let staged = core
            .receive_image(rules, body(samples::png(64, 64)))
            .await
            .unwrap();
        staged.discard().await;
        let mut left_intents = Vec::new();
        for _ in 0..100 {
            left_intents = core.db.intent_keys().await.unwrap();
            if left_intents.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(left_intents.is_empty(), "{left_intents:?}");

        // An upload that outlives the grace: the sweep claims its intent
        // first, and then its row can no longer commit.
        let staged = core
            .receive_image(rules, body(samples::png(64, 64)))
            .await
            .unwrap();
        let due = core.db.intents_due(i64::MAX).await.unwrap();
        assert_eq!(due.len(), 1);
        assert!(core.db.intent_doom(&due[0].0, due[0].1).await.unwrap());
        let e = core
            .commit_image(
                staged,
                tenant.id,
                FileKind::AttendancePhoto,
                "a.png",
                (),
                None,
            )
            .await
            .unwrap_err();
        assert!(format!("{e:?}").contains("orphan_grace_secs"), "{e:?}");
        assert!(
            core.db
                .known_file_ids(&[due[0].0.clone()])
                .await
                .unwrap()
                .is_empty()
        );
        recover(&core).await.unwrap();
        let mut left = core.blobs.store().keys().await.unwrap();
        left.sort();
        assert_eq!(left, want, "the claimed upload's blob was not swept");
    }
}
