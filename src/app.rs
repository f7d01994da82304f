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
pub async fn open_core(config: Config) -> anyhow::Result<Core> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let db = Db::open_sqlite(&config.database_path()).await?;
    let recorded = db.meta_get("key_id").await?;
    let keys = match &config.encryption_key {
        Some(k) => KeyRing::new(Key::from_base64(k).context("encryption_key")?),
        None => {
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
    // The data was sealed with this ring's keys: starting with another key
    // would fail every read and mix keys in new writes. Refuse instead. A
    // recorded key that is older than the ring's current one is a rotation
    // that stopped after writing the key file; the file is the authority.
    let current = format!("{:08x}", keys.current().id());
    let recorded = db.meta_get_or_init("key_id", || current.clone()).await?;
    let known = u32::from_str_radix(&recorded, 16)
        .ok()
        .and_then(|id| keys.get(id))
        .is_some();
    anyhow::ensure!(
        known,
        "the encryption key in use (id {current}) is not the key this data directory was \
         written with (id {recorded}); restore {} or set encryption_key",
        config.key_file().display()
    );
    if recorded != current {
        db.meta_set("key_id", &current).await?;
    }
    let store = open_blob_store(config.blobs.as_deref(), &config, &db).await?;
    let blobs = SealedBlobs::new(store, keys.clone());
    Core::new(config, db, blobs, keys).await
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
            Arc::new(S3BlobStore::open(&loc, &ns)?)
        }
    })
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
    // Faces stored but never recorded against a person (their rows go
    // first; their blobs then count as orphans below).
    let dangling = core.db.dangling_face_files().await?;
    for id in &dangling {
        core.db.delete_file(id).await?;
    }
    // Listed before the rows are read: a blob committed in between is
    // then known, never taken for an orphan.
    let listed = store.list().await?;
    let known: std::collections::HashSet<String> = core.db.file_ids().await?.into_iter().collect();
    let grace = core.orphan_grace();
    let now = std::time::SystemTime::now();
    let mut orphans = 0;
    for b in listed {
        let young = now.duration_since(b.modified).unwrap_or_default() < grace;
        if !known.contains(&b.key) && !young {
            core.blobs.delete(&b.key).await?;
            orphans += 1;
        }
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
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => p.expect("semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let (stream, _peer) = tokio::select! {
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
            let service = TowerToHyperService::new(router.clone());
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
