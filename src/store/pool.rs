//! Opening the store, its connection pool and transactions, and the
//! notices nodes sharing a PostgreSQL store send one another.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Executor};

use super::reach::Reach;
use super::{Backend, Db, Notice, Tx, private};

/// The channel nodes sharing a PostgreSQL store announce device-facing
/// changes on, so every node's device sync runs at once instead of at its
/// next one-second poll.
const DEVICES_CHANNEL: &str = "facehub_devices";

/// The channel a revocation of access tokens is announced on, so every
/// node forgets the tokens it has cached at once.
const TOKENS_CHANNEL: &str = "facehub_tokens";

/// Whether a pooled connection may be handed out: one the driver still
/// counts inside a transaction is closed instead (closing it rolls back
/// whatever the database still holds, and frees its locks). A dropped
/// transaction's ROLLBACK has run by then (the pool pings a connection as
/// it takes it back), so this sees only transactions that could not be
/// ended: SQLite rolls a transaction back by itself on some I/O errors
/// (SQLITE_FULL, SQLITE_IOERR), after which the driver's own ROLLBACK
/// fails and its depth stays above zero; such a connection would fail
/// every `BEGIN IMMEDIATE`, and turn every `begin` into a SAVEPOINT that
/// keeps a real transaction, and the write lock, open for good.
fn outside_transaction(conn: &sqlx::AnyConnection) -> bool {
    use sqlx::Connection as _;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::warn!("a pooled database connection was left inside a transaction; closing it");
    }
    clean
}

impl Db {
    /// Opens the metadata store `database` names: a `postgres://` URL, or
    /// else the SQLite file at `sqlite_path`.
    pub async fn open(database: Option<&str>, sqlite_path: &Path) -> anyhow::Result<Db> {
        match database {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Db::open_postgres(url).await
            }
            Some(other) => anyhow::bail!(
                "database: {:?} is not a postgres:// URL (leave it unset for the embedded SQLite)",
                crate::config::redact_url(other)
            ),
            None => Db::open_sqlite(sqlite_path).await,
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` in WAL mode
    /// with `synchronous=FULL`, so a committed transaction survives power loss,
    /// and brings its schema up to date. Its files are owner-only
    /// ([`private::database_files`]).
    pub async fn open_sqlite(path: &Path) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        private::database_files(path)?;
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        let opts = AnyConnectOptions::from_url(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            // An in-process database cannot drop a connection, so the ping
            // a pool sends before lending one out (a round trip to the
            // connection's thread, as dear as the query) proves nothing.
            .test_before_acquire(false)
            .before_acquire(|conn, _| Box::pin(async move { Ok(outside_transaction(conn)) }))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Per connection: the Any driver takes only a URL, which
                    // carries none of these. secure_delete overwrites deleted
                    // rows instead of leaving them in free pages: an erased
                    // person's sealed templates must not linger.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                         PRAGMA secure_delete = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await
            .with_context(|| format!("opening database {}", path.display()))?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("migrating database schema")?;
        Ok(Db {
            connections: pool,
            backend: Backend::Sqlite,
            url: None,
            reach: Default::default(),
        })
    }

    /// Connects to PostgreSQL and brings its schema up to date. Nodes
    /// starting together are safe: sqlx's migrator holds an advisory lock
    /// while it migrates, so one node migrates and the others wait.
    pub async fn open_postgres(url: &str) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let shown = crate::config::redact_url(url);
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .before_acquire(|conn, _| Box::pin(async move { Ok(outside_transaction(conn)) }))
            .connect(url)
            .await
            .with_context(|| format!("connecting to {shown}"))?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .with_context(|| format!("migrating the schema of {shown}"))?;
        let url: std::sync::Arc<str> = url.into();
        let reach = std::sync::Arc::<Reach>::default();
        Reach::watch(&reach, url.clone());
        Ok(Db {
            connections: pool,
            backend: Backend::Postgres,
            url: Some(url),
            reach,
        })
    }

    /// The connection pool, or at once an error (of kind `NotConnected`)
    /// while PostgreSQL does not answer ([`Reach`]).
    pub(crate) fn pool(&self) -> Result<&sqlx::AnyPool, sqlx::Error> {
        self.reach.check()?;
        Ok(&self.connections)
    }

    /// Which engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction that will write. SQLite's deferred transaction
    /// that reads before it writes can fail with SQLITE_BUSY on upgrade;
    /// `BEGIN IMMEDIATE` takes the write lock up front instead. PostgreSQL
    /// locks rows as they are written.
    pub(crate) async fn begin_write(&self) -> Result<Tx<'static>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool()?.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool()?.begin().await,
        }
    }

    /// Runs a trivial read: fails while the database cannot be reached.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1").execute(self.pool()?).await?;
        Ok(())
    }

    /// Commits a one-row write, as every upload must: fails while the
    /// store cannot commit (a full disk, a write lock held, a read-only
    /// file), where a read still answers.
    pub async fn probe_commit(&self, now_ms: i64) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ('ready_probe', $1) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_ms.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes the pool, waiting for the connections in use to come back.
    pub async fn close(&self) {
        self.connections.close().await
    }

    /// Tells every node sharing this store (PostgreSQL NOTIFY) that what
    /// devices are owed has changed. The change itself is committed: a
    /// lost notice only delays it to the nodes' next poll.
    pub async fn devices_changed(&self) -> anyhow::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query(&format!("NOTIFY {DEVICES_CHANNEL}"))
                .execute(self.pool()?)
                .await?;
        }
        Ok(())
    }

    /// Tells every node sharing this store (PostgreSQL NOTIFY) that `tx`
    /// revokes access tokens. The notice goes out when `tx` commits and
    /// only then: no node hears of a revocation before it can see it, and
    /// no crash between the commit and the notice can lose it.
    pub(crate) async fn tokens_revoked(&self, tx: &mut Tx<'_>) -> anyhow::Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query(&format!("NOTIFY {TOKENS_CHANNEL}"))
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Calls `hear` with every [`Notice`] from any node (this one
    /// included), on one LISTEN connection for all channels, until the
    /// returned task is aborted; `None` on SQLite, whose one node needs no
    /// telling. The connection reconnects by itself, and says
    /// [`Notice::Listening`] each time it is up.
    pub fn on_notices(
        &self,
        hear: impl Fn(Notice) + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let url = self.url.clone()?;
        Some(tokio::spawn(async move {
            loop {
                let listened: Result<std::convert::Infallible, sqlx::Error> = async {
                    let mut l = sqlx::postgres::PgListener::connect(&url).await?;
                    l.listen_all([DEVICES_CHANNEL, TOKENS_CHANNEL]).await?;
                    loop {
                        hear(Notice::Listening);
                        // `None`: the connection was lost and is back (the
                        // listener reconnects before it says so), so what
                        // was announced meanwhile went unheard.
                        while let Some(n) = l.try_recv().await? {
                            match n.channel() {
                                DEVICES_CHANNEL => hear(Notice::DevicesChanged),
                                TOKENS_CHANNEL => hear(Notice::TokensRevoked),
                                _ => {}
                            }
                        }
                    }
                }
                .await;
                let Err(e) = listened;
                tracing::warn!(error = %e, "listening for other nodes' notices; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SQLite rolls a transaction back by itself on some I/O errors (a full
    /// disk among them); the driver's own ROLLBACK then fails, its depth
    /// stays at one, and the connection went back to the pool "inside" a
    /// transaction: `begin_with` then failed on it for good, and `begin`
    /// opened a SAVEPOINT, a real transaction no ROLLBACK TO ever ended,
    /// holding the database's write lock. Simulated here by ending the
    /// transaction behind the driver's back.
    #[tokio::test]
    async fn a_transaction_ended_behind_the_driver_leaks_no_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        db.meta_set("k", "0").await.unwrap();
        for round in 0..3 {
            let mut tx = db.begin_write().await.unwrap();
            sqlx::query("UPDATE meta SET value = 'lost' WHERE key = 'k'")
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
            drop(tx);
            // Every later transaction works, and none holds the lock.
            for i in 0..10 {
                let mut tx = db
                    .begin_write()
                    .await
                    .unwrap_or_else(|e| panic!("{round}.{i}: {e}"));
                sqlx::query("UPDATE meta SET value = $1 WHERE key = 'k'")
                    .bind(format!("{round}.{i}"))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                let mut tx = db.pool().unwrap().begin().await.unwrap();
                sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
                tx.rollback().await.unwrap();
            }
            assert_eq!(
                db.meta_get("k").await.unwrap().as_deref(),
                Some(format!("{round}.9").as_str())
            );
        }
        // Another connection (another process) can still write at once.
        let other = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), other.meta_set("k", "other"))
            .await
            .expect("the database is not left locked")
            .unwrap();
    }
}
