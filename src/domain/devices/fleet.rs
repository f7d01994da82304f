//! The fleet as the admin side lists it and connections leave it: a
//! tenant's devices, and how far each has synced the tenant's change log.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::DeviceRow;
use crate::domain::Core;
use crate::model::error::{Error, Result};
use crate::model::{BookKey, Seen};

/// How long a device counts as logged in after the node holding its
/// connection last said so: renewed every third of it, so a node that
/// stops (or dies) lets its devices show offline within this time.
pub const PRESENCE_LEASE_SECS: i64 = 45;

/// A device's connection state as it is now, whichever node holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub online: bool,
    /// The newest address-book version the device was sent.
    pub seen_version: i64,
    pub last_seen: Option<i64>,
}

/// A terminal as the platform's device list shows it.
#[derive(Debug, Clone)]
pub struct Terminal {
    /// The platform's `device_id`: a decimal number, derived from the sn
    /// ([`device_id`]).
    pub device_id: String,
    pub device: DeviceRow,
    pub presence: Presence,
    /// People whose face template this terminal receives (in one of the
    /// face algorithms it subscribed with).
    pub faces: i64,
}

/// The platform's numeric `device_id` for a terminal: the first 63 bits of
/// SHA-256 over the sn, in decimal (the platform's ids are 19-digit
/// numbers). Derived rather than stored, so every node and every store
/// names a terminal alike, and it never changes while the sn does not.
pub fn device_id(sn: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"facehub device id\0")
        .chain_update(sn.as_bytes())
        .finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) >> 1;
    n.to_string()
}

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

    /// Where a device stands now: live from this node's connection if it
    /// holds it, else from the lease the holding node renews (an unbound
    /// device is offline whatever its lease says: unbinding closes it).
    pub fn presence(&self, d: &DeviceRow) -> Presence {
        match self.hub.pushed(&d.sn) {
            Some(pushed) => Presence {
                online: true,
                seen_version: pushed.people.max(d.seen_version),
                last_seen: Some(self.now()),
            },
            None => Presence {
                online: d.bound && d.online_until.is_some_and(|t| t > self.now()),
                seen_version: d.seen_version,
                last_seen: d.last_seen,
            },
        }
    }

    /// A tenant's terminals, by sn, with what the platform's device list
    /// shows of each.
    pub async fn terminals(&self, tenant_id: i64) -> Result<Vec<Terminal>> {
        // Terminals holding the same book with the same algorithms share
        // a count.
        let mut faces: HashMap<(BookKey, Vec<String>), i64> = HashMap::new();
        let mut out = Vec::new();
        for device in self.db.devices(tenant_id).await? {
            let key = (device.book.clone(), device.fa_algorithms.clone());
            let count = match faces.get(&key) {
                Some(n) => *n,
                None => {
                    let n = self.db.face_holders(tenant_id, &key.0, &key.1).await?;
                    faces.insert(key, n);
                    n
                }
            };
            out.push(Terminal {
                device_id: device_id(&device.sn),
                presence: self.presence(&device),
                faces: count,
                device,
            });
        }
        Ok(out)
    }

    /// The versions device `sn` was last sent (0 for none, or an unknown
    /// device).
    pub async fn sync_position(&self, sn: &str) -> anyhow::Result<Seen> {
        Ok(self.db.device(sn).await?.map_or(Seen::default(), |d| Seen {
            people: d.seen_version,
            visitors: d.seen_visitor_version,
        }))
    }

    /// Records, as a device goes, the versions it was sent and when it was
    /// last seen, so it resumes from there.
    pub async fn record_sync_position(
        &self,
        sn: &str,
        seen: Seen,
        connection: u64,
    ) -> anyhow::Result<()> {
        let owner = self.hub.owner(connection);
        self.db.set_seen(sn, seen, self.now(), &owner).await
    }
}

#[cfg(test)]
mod tests {
    use super::device_id;

    #[test]
    fn device_ids_are_stable_63_bit_numbers() {
        let id = device_id("SN0001");
        assert_eq!(id, device_id("SN0001"));
        let n: u64 = id.parse().unwrap();
        assert!(n < 1 << 63);
        assert_ne!(id, device_id("SN0002"));
        // Fixed: a terminal's id never changes across releases.
        assert_eq!(device_id("SN0001"), "3323259963170896332");
    }
}
