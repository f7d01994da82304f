//! Whether PostgreSQL can be reached, watched on a connection of its own,
//! so that while it cannot every call fails at once instead of waiting
//! out the pool's acquire timeout. Without it, each query of a request
//! retries refused connects for 5 s before failing, and a request that
//! makes two queries is refused only after some 10 s; clients time out,
//! retry, and pile up behind the outage.
//!
//! The watch runs its own connection rather than borrowing the pool's:
//! a pool busy to its last connection is a loaded database, not a lost
//! one, and must not read as down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{Connection as _, Executor as _};

/// How often a reachable database is pinged.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How often an unreachable one is tried again: the outage ends for the
/// clients within this of the database's return.
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// How long a connect or a ping may take before the database counts as
/// unreachable (a partition answers nothing at all).
const PATIENCE: Duration = Duration::from_secs(3);

/// The watch's verdict, shared by every clone of the store.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    down: AtomicBool,
}

impl Reach {
    /// Fails while the last ping went unanswered.
    pub(crate) fn check(&self) -> Result<(), sqlx::Error> {
        if self.down.load(Ordering::Relaxed) {
            return Err(unreachable());
        }
        Ok(())
    }

    /// Records a ping's outcome; true when it changes the verdict.
    fn set(&self, down: bool) -> bool {
        self.down.swap(down, Ordering::Relaxed) != down
    }

    /// Pings `url` on a connection of its own until every store holding
    /// `reach` is gone. Starts out reachable: the pool has just connected.
    pub(crate) fn watch(reach: &Arc<Reach>, url: Arc<str>) {
        let weak = Arc::downgrade(reach);
        tokio::spawn(async move {
            let mut conn: Option<sqlx::postgres::PgConnection> = None;
            let mut wait = PING_EVERY;
            loop {
                // Waits first: a short-lived command (the CLI) never opens
                // the watch's connection.
                tokio::time::sleep(wait).await;
                let Some(reach) = weak.upgrade() else { return };
                let answered = tokio::time::timeout(PATIENCE, ping(&mut conn, &url))
                    .await
                    .is_ok_and(|r| r.is_ok());
                if !answered {
                    conn = None;
                }
                if reach.set(!answered) {
                    let shown = crate::config::redact_url(&url);
                    if answered {
                        tracing::info!(database = %shown, "the metadata store answers again");
                    } else {
                        tracing::warn!(
                            database = %shown,
                            "the metadata store does not answer; refusing requests that need it until it does"
                        );
                    }
                }
                wait = if answered { PING_EVERY } else { RETRY_EVERY };
            }
        });
    }
}

async fn ping(conn: &mut Option<sqlx::postgres::PgConnection>, url: &str) -> sqlx::Result<()> {
    if conn.is_none() {
        *conn = Some(sqlx::postgres::PgConnection::connect(url).await?);
    }
    let c = conn.as_mut().expect("connected above");
    c.execute("SELECT 1").await?;
    Ok(())
}

/// The error a call gets while the database does not answer. The core
/// reads it (an I/O error of kind `NotConnected`) as "unavailable".
fn unreachable() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "the metadata store does not answer",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_changes_only_on_a_different_outcome() {
        let r = Reach::default();
        assert!(r.check().is_ok());
        assert!(!r.set(false));
        assert!(r.set(true));
        assert!(!r.set(true));
        let e = r.check().unwrap_err();
        assert!(
            matches!(&e, sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::NotConnected),
            "{e:?}"
        );
        assert!(r.set(false));
        assert!(r.check().is_ok());
    }
}
