//! The server: a data directory opened ([`open_core`]), its lock taken,
//! the start-up sweep run, then the API served on one listener (TLS
//! optional) until shutdown. The composition root: it wires the core, the
//! store and the API together and is imported by nothing but the CLI.

mod blobs;
mod open;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

pub use crate::domain::deployment::{BLOB_STORE, MAINTENANCE, canonical_blob_store};
pub use blobs::{blob_store_spec, open_blob_store};
pub use open::open_core;
pub use tls::tls_acceptor;

use crate::config::Config;
use crate::domain::Core;
use crate::store::lock_data_dir;

pub struct Application {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    core: Arc<Core>,
    limiter: Arc<crate::api::ratelimit::RateLimiter>,
    /// Held while serving: one server per data directory.
    _lock: std::fs::File,
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

impl Application {
    /// Opens storage, takes the data directory's lock, binds the listener
    /// (port 0 picks a free port) and recovers from any earlier crash.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listen = config.listen;
        let core = open_core(config).await?;
        Self::with_core(core, listen).await
    }

    pub async fn with_core(core: Core, listen: SocketAddr) -> anyhow::Result<Application> {
        raise_fd_limit(core.config().limits.max_connections);
        let tls = core.config().tls.as_ref().map(tls_acceptor).transpose()?;
        let lock = lock_data_dir(&core.config().data_dir)?;
        // Holding the lock: the store, the key and a stale marker recorded.
        core.begin_serving().await?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        core.recover().await?;
        let (per_second, per_minute) = (
            core.config().rate_limit_per_second,
            core.config().rate_limit_per_minute,
        );
        let limiter = match &core.config().redis {
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
        // Records past their retention, capture photos a crash left
        // without their record, and visitors whose rules all ended go a
        // minute after start and hourly after.
        let retention = tokio::spawn({
            let core = self.core.clone();
            async move {
                let hour = std::time::Duration::from_secs(3600);
                let first = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
                let mut tick = tokio::time::interval_at(first, hour);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    match core.expire_records().await {
                        Ok(pass) if pass != Default::default() => tracing::info!(
                            records = pass.records,
                            photos = pass.photos,
                            unlinked_photos = pass.unlinked_photos,
                            visitors = pass.visitors,
                            "deleted records past their retention, and visitors whose visits ended"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "expiring records"),
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
                self.core.config().limits.header_timeout_secs.max(1),
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
            self.core.config().limits.max_connections.max(1),
        ));
        let linger_bounds = crate::api::linger::Bounds::of(&self.core.config().limits);
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
        retention.abort();
        let _ = sync.await;
        // Upgraded WebSocket connections are no longer hyper's to drain;
        // their sync positions are kept for when they come back.
        for (sn, version, connection) in self.core.close_device_connections() {
            if let Err(e) = self
                .core
                .record_sync_position(&sn, version, connection)
                .await
            {
                tracing::warn!(error = %e, "could not record a device's sync position");
            }
        }
        if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 30 s; closing");
        }
        self.core.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
