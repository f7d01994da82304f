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

use crate::model::error::cannot_serve_now;

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
                let answered = match tokio::time::timeout(PATIENCE, ping(&mut conn, &url)).await {
                    Ok(Ok(())) => true,
                    Ok(Err(e)) => {
                        conn = None;
                        refused_while_up(&e)
                    }
                    Err(_) => {
                        conn = None;
                        false
                    }
                };
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

/// Whether a failed ping still shows a database that serves: it said no
/// for a reason of its own (too many connections for the watch's, a
/// password changed), which its pool's connections do not share. A
/// refusal to serve at all (class 08, or 57P0x: shutting down, starting
/// up) and an error on the socket mean it does not answer.
fn refused_while_up(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => !d.code().is_some_and(|c| cannot_serve_now(&c)),
        _ => false,
    }
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

    /// A database error with an SQLSTATE, as PostgreSQL's driver gives.
    #[derive(Debug)]
    struct Sqlstate(&'static str);

    impl std::fmt::Display for Sqlstate {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Sqlstate {}

    impl sqlx::error::DatabaseError for Sqlstate {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn a_database_that_says_no_to_the_watch_alone_still_serves() {
        let said = |code| sqlx::Error::Database(Box::new(Sqlstate(code)));
        // Too many connections (for the watch's), a wrong password: it is up.
        assert!(refused_while_up(&said("53300")));
        assert!(refused_while_up(&said("28P01")));
        // Shutting down, starting up, a connection failure: it is not.
        for code in ["57P01", "57P03", "08006"] {
            assert!(!refused_while_up(&said(code)), "{code}");
        }
        let reset = sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert!(!refused_while_up(&reset));
    }
}
