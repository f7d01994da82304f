//! The fleet as the admin side lists it and connections leave it: a
//! tenant's devices, and how far each has synced the tenant's change log.

use super::DeviceRow;
use crate::domain::Core;
use crate::model::error::{Error, Result};

impl Core {
    /// The tenant's device `sn`, or a parameter error naming it.
    pub async fn tenant_device(&self, tenant_id: i64, sn: &str) -> Result<DeviceRow> {
        match self.db.device(sn).await? {
            Some(d) if d.tenant_id == tenant_id => Ok(d),
            _ => Err(Error::param(format!(
                "device {sn} is not a device of this tenant"
            ))),
        }
    }

    /// A tenant's devices, by sn.
    pub async fn devices(&self, tenant_id: i64) -> anyhow::Result<Vec<DeviceRow>> {
        self.db.devices(tenant_id).await
    }

    /// The permission version device `sn` last confirmed (0 for none, or
    /// an unknown device).
    pub async fn sync_position(&self, sn: &str) -> anyhow::Result<i64> {
        Ok(self.db.device(sn).await?.map_or(0, |d| d.seen_version))
    }

    /// Records, as a device goes, the permission version it has confirmed
    /// and when it was last seen, so it resumes from there.
    pub async fn record_sync_position(&self, sn: &str, version: i64) -> anyhow::Result<()> {
        self.db.set_seen(sn, version, self.now()).await
    }
}
