//! Terminals: their bring-up (register → active → subscribe, WeCom's
//! model), the templates they enrol, the tenant's change log they sync
//! from, enrolments started from the admin side, and punch records. The
//! core takes and returns typed values ([`messages`]); a protocol surface
//! (`api::wecom`) reads and writes its frames.

pub mod bringup;
pub mod checkin;
pub mod enrol;
pub mod fleet;
pub use fleet::{PRESENCE_LEASE_SECS, Presence, Terminal, device_id};
pub mod hub;
pub mod messages;
pub mod sync;
pub mod upload;
pub mod zk;
pub mod zk_bio;
pub mod zk_commands;
pub mod zk_photos;
pub mod zk_sync;

use super::{Core, Tenant};
use crate::model::ZkSettings;
use crate::model::error::{Error, Result};

pub use crate::model::devices::{
    Change, CheckinRecord, DeviceKey, DeviceRow, DeviceUser, Enrolment, Modality, PersonTemplates,
    StoredTemplate, TemplateWrite,
};
use bringup::sha256_hex;
pub use bringup::{SECRET_NO_MIN_CHARS, SECRET_NO_MIN_DISTINCT, check_secret_no, signature};

/// Codes of the device protocol (names as in the vendor code the notes
/// quote; see docs/device-protocol.md for when each is sent).
pub mod codes {
    pub const INVALID_ACTIVE_CODE: i64 = 600003;
    pub const NOT_AUTHORISED: i64 = 600004;
    pub const NOT_REGISTERED: i64 = 600014;
    pub const NOT_LOGGED_IN: i64 = 600020;
    /// WeCom's global "invalid media_id".
    pub const INVALID_MEDIA_ID: i64 = 40007;
    /// WeCom's global "invalid JSON".
    pub const BAD_JSON: i64 = 47001;
}

/// How far a `register` timestamp may be from the server's clock.
pub const REGISTER_WINDOW_SECS: i64 = 300;
/// Algorithm names a device may list per modality.
pub const MAX_ALGORITHMS: usize = 5;

/// A device that has logged in (`subscribe_corp`) on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub sn: String,
    pub tenant_id: i64,
    /// Priority order; never empty (`["default"]` when the device listed none).
    pub fa_algorithms: Vec<String>,
    pub fp_algorithms: Vec<String>,
}

/// What `subscribe_corp` carries.
#[derive(Debug, Clone, Default)]
pub struct Subscription {
    pub secret: String,
    pub firmware_version: String,
    pub fa_algorithms: Vec<String>,
    pub fp_algorithms: Vec<String>,
}

/// At most `max` bytes of `s` (on a character boundary), for echoing what a
/// client sent without echoing megabytes.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An algorithm name as stored: missing, empty and `default` are all the
/// default algorithm.
pub fn algorithm_name(name: Option<&str>) -> Result<String, String> {
    if name.is_some_and(|n| n.chars().any(char::is_control)) {
        return Err("algorithm names must not contain control characters".into());
    }
    match name.map(str::trim) {
        None | Some("") | Some("default") => Ok("default".into()),
        Some(n) if n.len() > 64 => Err(format!(
            "algorithm name {:?}… is longer than 64 bytes",
            clip(n, 64)
        )),
        Some(n) => Ok(n.to_string()),
    }
}

/// A device's algorithm list from `subscribe_corp`, in priority order
/// (duplicates dropped). An empty list means the default algorithm.
pub fn algorithm_list(names: &[String], field: &str) -> Result<Vec<String>> {
    if names.len() > MAX_ALGORITHMS {
        return Err(Error::param(format!(
            "{field} lists {} algorithms, at most {MAX_ALGORITHMS}",
            names.len()
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let n = algorithm_name(Some(n)).map_err(Error::param)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        out.push("default".into());
    }
    Ok(out)
}

fn validate_sn(sn: &str) -> Result<()> {
    if sn.is_empty() || sn.len() > 64 || !sn.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::param(
            "sn must be 1 to 64 printable ASCII characters",
        ));
    }
    Ok(())
}

impl Core {
    // ------------------------------------------------------------- admin

    /// Adds a terminal for `tenant` with its factory SecretNo; it can then
    /// register, and works once bound.
    pub async fn add_device(&self, tenant: &Tenant, sn: &str, secret_no: &str) -> Result<()> {
        validate_sn(sn)?;
        check_secret_no(secret_no).map_err(Error::param)?;
        let sealed = self.keys.seal_small(
            format!("device:{sn}:secret_no").as_bytes(),
            secret_no.as_bytes(),
        );
        self.insert_device(sn, tenant, &sealed, None).await
    }

    async fn insert_device(
        &self,
        sn: &str,
        tenant: &Tenant,
        sealed_secret_no: &[u8],
        zk: Option<&ZkSettings>,
    ) -> Result<()> {
        match self
            .db
            .insert_device(sn, tenant.id, sealed_secret_no, zk, self.now())
            .await
        {
            Ok(()) => {
                // Its registrations start with a clean slate on this node.
                self.guard.device_register.forget_target(sn);
                Ok(())
            }
            Err(e) if crate::store::is_unique_violation(&e) => {
                Err(Error::param(format!("device {sn} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Binds the device to its tenant: `active` now hands out a secret, and
    /// a connected device is told with `push_bind_corp`. `false` if it was
    /// bound already.
    pub async fn bind_device(&self, tenant_id: i64, sn: &str) -> Result<bool> {
        self.tenant_device(tenant_id, sn).await?;
        let secret = hex::encode(super::ids::random_bytes::<24>());
        let sealed = self
            .keys
            .seal_small(format!("device:{sn}:secret").as_bytes(), secret.as_bytes());
        let changed = self
            .db
            .set_bound(sn, tenant_id, Some((&sealed, &sha256_hex(&secret))))
            .await?;
        if changed {
            self.hub.tell_bound(sn);
        }
        Ok(changed)
    }

    /// Unbinds: the secret dies, the device is told (`push_unbind_corp`)
    /// and disconnected, and must register and activate again.
    pub async fn unbind_device(&self, tenant_id: i64, sn: &str) -> Result<bool> {
        self.tenant_device(tenant_id, sn).await?;
        let changed = self.db.set_bound(sn, tenant_id, None).await?;
        if changed {
            self.hub.unbind(sn);
        }
        Ok(changed)
    }

    /// `get_perm_version`.
    pub async fn perm_version(&self, tenant_id: i64) -> Result<i64> {
        Ok(self.db.perm_version(tenant_id).await?)
    }

    /// Records a change as the tenant's next version and wakes the pushes.
    pub async fn record_change(&self, tenant_id: i64, change: &Change) -> Result<i64> {
        let v = self.db.record_change(tenant_id, change, self.now()).await?;
        self.devices_changed().await;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_lists() {
        let l = |v: &[&str]| {
            algorithm_list(
                &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "fa_algorithm",
            )
        };
        assert_eq!(l(&[]).unwrap(), ["default"]);
        assert_eq!(l(&["x", "", "x", "y"]).unwrap(), ["x", "default", "y"]);
        assert!(l(&["a", "b", "c", "d", "e"]).is_ok());
        assert!(l(&["a", "b", "c", "d", "e", "f"]).is_err());
        assert!(l(&["a\n"]).is_err());
    }
}
