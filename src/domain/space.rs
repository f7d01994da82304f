//! The free-space floor: new uploads stop before the data directory's
//! filesystem is full, so that the metadata store always has room to
//! commit and to record (a full disk that SQLite meets mid-transaction is
//! what wedged it, issue 22). Reads, and writes already under way, go on.

use super::Core;
use crate::model::error::{Error, Result};

/// How often a full disk is logged at most.
const WARN_EVERY_SECS: i64 = 10;

impl Core {
    /// `Ok` while the data directory's filesystem has at least
    /// `limits.min_free_mib` free for this process's user; else the
    /// "storage full" refusal. A filesystem that cannot be asked is let
    /// through (and logged): the floor is a margin, not the guarantee.
    pub fn check_free_space(&self) -> Result<()> {
        let floor = self.config.limits.min_free_mib.saturating_mul(1 << 20);
        if floor == 0 {
            return Ok(());
        }
        let free = match rustix::fs::statvfs(&self.config.data_dir) {
            Ok(s) => s.f_bavail.saturating_mul(s.f_frsize),
            Err(e) => {
                self.warn_space(&format!(
                    "cannot read the free space of the data directory: {e}"
                ));
                return Ok(());
            }
        };
        self.metrics
            .storage_free_bytes
            .set(i64::try_from(free).unwrap_or(i64::MAX));
        if free >= floor {
            return Ok(());
        }
        self.metrics.upload_refused("storage_full");
        let why = format!(
            "{} MiB free on the data directory's filesystem, below the floor of {} MiB \
             (limits.min_free_mib)",
            free >> 20,
            floor >> 20
        );
        self.warn_space(&format!("refusing uploads: {why}"));
        Err(Error::StorageFull(why))
    }

    /// Logs at most once per [`WARN_EVERY_SECS`], however many uploads.
    fn warn_space(&self, message: &str) {
        if self
            .space_warned
            .speak(chrono::Utc::now().timestamp(), WARN_EVERY_SECS)
        {
            tracing::warn!("{message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::testing::core_with;
    use crate::model::error::Error;

    #[tokio::test]
    async fn uploads_stop_below_the_floor() {
        let (_dir, core) = core_with(|c| c.limits.min_free_mib = 0).await;
        assert!(core.check_free_space().is_ok());
        // A floor above any disk: refused, with the figures, and counted.
        let (_dir, core) = core_with(|c| c.limits.min_free_mib = u64::MAX >> 21).await;
        let e = core.check_free_space().unwrap_err();
        assert!(
            matches!(&e, Error::StorageFull(m) if m.contains("below the floor")),
            "{e}"
        );
        let m = core.metrics.render();
        assert!(
            m.contains("facehub_uploads_refused_total{rule=\"storage_full\"} 1"),
            "{m}"
        );
        assert!(m.contains("facehub_storage_free_bytes "), "{m}");
        // A floor of 1 MiB on this machine's disk: room.
        let (_dir, core) = core_with(|c| c.limits.min_free_mib = 1).await;
        assert!(core.check_free_space().is_ok());
    }
}
