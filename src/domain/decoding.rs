//! The decode budget: images are decoded within a memory budget
//! (`limits.decode_memory_mib`) and a slot a core, whatever decodes them
//! (uploads, photos shrunk for terminals).

use super::Core;
use crate::model::error::{Error, Result};

/// The decode memory and slot one decode holds while it runs.
pub(crate) type DecodePermits<'a> = (
    tokio::sync::SemaphorePermit<'a>,
    tokio::sync::SemaphorePermit<'a>,
);

impl Core {
    /// What decoding an image of about `mib` MiB holds: that much of the
    /// decode memory budget (at most all of it) and a decode slot. Waiting
    /// longer than `decode_wait_secs` for them is refused like the
    /// frequency limit.
    pub(crate) async fn decode_permits(&self, mib: u64) -> Result<DecodePermits<'_>> {
        let budget = self.config.limits.decode_memory_mib.max(1);
        let mib = u32::try_from(mib.clamp(1, budget)).unwrap_or(u32::MAX);
        let wait = std::time::Duration::from_secs(self.config.limits.decode_wait_secs);
        let permits = tokio::time::timeout(wait, async {
            let memory = self.decode_memory.acquire_many(mib).await?;
            let slot = self.decode_slots.acquire().await?;
            Ok::<_, tokio::sync::AcquireError>((memory, slot))
        })
        .await;
        match permits {
            Ok(p) => p.map_err(|e| Error::Internal(e.into())),
            Err(_) => {
                tracing::warn!("image decoding is saturated");
                Err(Error::RateLimited {
                    limit: self.config.rate_limit_per_second,
                    reset_secs: 1,
                })
            }
        }
    }
}
