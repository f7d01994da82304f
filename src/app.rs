//! Building and running the server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::crypto::{Key, KeyRing};
use crate::domain::Core;
use crate::store::Db;
use crate::store::blob::LocalBlobStore;
use crate::store::sealed::SealedBlobs;

/// Opens the data directory (database, blobs, key) without serving; used by
/// `serve` and by every admin command, which works whether a server runs on
/// the same directory or not.
pub async fn open_core(config: Config) -> anyhow::Result<Core> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let keys = match &config.encryption_key {
        Some(k) => KeyRing::new(Key::from_base64(k).context("encryption_key")?),
        None => KeyRing::load_or_create(&config.key_file())?,
    };
    let db = Db::open_sqlite(&config.database_path()).await?;
    let local = LocalBlobStore::open(&config.data_dir)?;
    let blobs = SealedBlobs::new(Arc::new(local), keys.clone());
    Core::new(config, db, blobs, keys).await
}

pub struct Application {
    listener: TcpListener,
    core: Arc<Core>,
}

impl Application {
    /// Opens storage, sweeps leftovers of interrupted uploads and binds the
    /// listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listen = config.listen;
        let core = open_core(config).await?;
        Self::with_core(core, listen).await
    }

    pub async fn with_core(core: Core, listen: SocketAddr) -> anyhow::Result<Application> {
        let swept = LocalBlobStore::open(&core.config.data_dir)?.sweep_tmp()?;
        if swept > 0 {
            tracing::warn!(
                count = swept,
                "removed temporary files of interrupted uploads"
            );
        }
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        Ok(Application {
            listener,
            core: Arc::new(core),
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

        let router = crate::api::router(crate::api::AppState::new(self.core.clone()));
        let mut builder = Builder::new(TokioExecutor::new());
        // A client that never finishes its request head is cut off.
        builder
            .http1()
            .title_case_headers(true)
            // Bounds what one connection reads ahead of its handler
            // (hyper's default is ~400 KiB); still far above any header.
            .max_buf_size(128 * 1024)
            .timer(TokioTimer::new())
            .header_read_timeout(std::time::Duration::from_secs(30));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
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
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(self.listener);
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
