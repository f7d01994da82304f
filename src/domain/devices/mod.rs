//! Terminals on the WeCom device protocol: their bring-up (register →
//! active → subscribe_corp), the templates they enrol, the tenant's change
//! log they sync from, enrolments started from the admin side, and punch
//! records. Wire framing lives in `api::device`; everything here is plain
//! calls on [`Core`].

pub mod checkin;
pub mod enrol;
pub mod hub;
pub mod sync;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{Core, Tenant};
use crate::error::{Error, Result};

pub use checkin::CheckinRecord;
pub use enrol::Enrolment;

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

/// A template's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    Face,
    Fingerprint,
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Face => "fa",
            Modality::Fingerprint => "fp",
        }
    }

    /// Slots per person: `fa_list` ids 0–11, `fp` ids 0–9.
    pub fn slots(self) -> i64 {
        match self {
            Modality::Face => 12,
            Modality::Fingerprint => 10,
        }
    }
}

/// A person as the device protocol names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceUser {
    pub userid: String,
    pub user_type: i64,
}

/// One version of a tenant's address book.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub create_user: Vec<DeviceUser>,
    #[serde(default)]
    pub update_user: Vec<DeviceUser>,
    #[serde(default)]
    pub delete_user: Vec<DeviceUser>,
}

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub sn: String,
    pub tenant_id: i64,
    pub sealed_secret_no: Vec<u8>,
    pub sealed_secret: Option<Vec<u8>>,
    pub bound: bool,
    pub firmware_version: Option<String>,
    pub fa_algorithms: Vec<String>,
    pub fp_algorithms: Vec<String>,
    pub seen_version: i64,
    pub last_seen: Option<i64>,
    pub created_at: i64,
}

/// Which hashed credential a device is looked up by.
#[derive(Debug, Clone, Copy)]
pub enum DeviceKey {
    ActiveCode,
    Secret,
}

/// One slot write of an upload: `sealed` is `(ciphertext, digest)`, or
/// `None` to delete the slot.
#[derive(Debug, Clone)]
pub struct TemplateWrite {
    pub modality: Modality,
    pub algorithm: String,
    pub slot: i64,
    pub sealed: Option<(Vec<u8>, String)>,
}

/// The writes of one person in one upload.
#[derive(Debug, Clone)]
pub struct PersonTemplates {
    pub person_id: i64,
    pub user: DeviceUser,
    pub writes: Vec<TemplateWrite>,
}

#[derive(Debug, Clone)]
pub struct StoredTemplate {
    pub person_id: i64,
    pub algorithm: String,
    pub slot: i64,
    pub sealed: Vec<u8>,
}

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

/// The WeCom signature: SHA-1 (hex) of the values sorted as strings and
/// concatenated.
pub fn signature(values: &[&str]) -> String {
    let mut v = values.to_vec();
    v.sort_unstable();
    hex::encode(Sha1::digest(v.concat().as_bytes()))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
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
        if secret_no.is_empty() || secret_no.len() > 256 {
            return Err(Error::param("secret_no must be 1 to 256 bytes"));
        }
        let sealed = self.keys.seal_small(
            format!("device:{sn}:secret_no").as_bytes(),
            secret_no.as_bytes(),
        );
        match self
            .db
            .insert_device(sn, tenant.id, &sealed, self.now())
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if crate::store::is_unique_violation(&e) => {
                Err(Error::param(format!("device {sn} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's device `sn`, or a parameter error naming it.
    pub async fn tenant_device(&self, tenant_id: i64, sn: &str) -> Result<DeviceRow> {
        match self.db.device(sn).await? {
            Some(d) if d.tenant_id == tenant_id => Ok(d),
            _ => Err(Error::param(format!(
                "device {sn} is not a device of this tenant"
            ))),
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

    // ----------------------------------------------------------- bring-up

    /// `register`: checks the signature over (sn, SecretNo, timestamp,
    /// nonce, "register") and the timestamp's age, then issues a fresh
    /// active code.
    pub async fn register_device(
        &self,
        sn: &str,
        timestamp: &str,
        nonce: &str,
        device_signature: &str,
    ) -> Result<String> {
        let refused = |m: &str| Error::DeviceRefused(codes::NOT_REGISTERED, m.to_string());
        let Some(device) = self.db.device(sn).await? else {
            return Err(Error::DeviceRefused(
                codes::NOT_AUTHORISED,
                format!("device sn {sn} is not known to this server"),
            ));
        };
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| Error::param("timestamp must be a Unix time in seconds"))?;
        let skew = (self.now() - ts).abs();
        if skew > REGISTER_WINDOW_SECS {
            return Err(refused(&format!(
                "timestamp is {skew} s from the server's clock, at most {REGISTER_WINDOW_SECS} s"
            )));
        }
        let secret_no = self.keys.open_small(
            format!("device:{sn}:secret_no").as_bytes(),
            &device.sealed_secret_no,
        )?;
        let secret_no = String::from_utf8(secret_no).map_err(anyhow::Error::from)?;
        let expected = signature(&[sn, &secret_no, timestamp, nonce, "register"]);
        let given = device_signature.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err(refused("device_signature does not match"));
        }
        let code = hex::encode(super::ids::random_bytes::<16>());
        if !self
            .db
            .record_register(sn, ts, nonce, &sha256_hex(&code))
            .await?
        {
            return Err(refused(
                "register replayed: timestamp and nonce are not newer than the last register's",
            ));
        }
        Ok(code)
    }

    /// `active`: the device's secret, once an admin has bound it.
    pub async fn activate_device(&self, active_code: &str) -> Result<(String, String)> {
        let device = self
            .db
            .device_by(DeviceKey::ActiveCode, &sha256_hex(active_code))
            .await?
            .ok_or_else(|| {
                Error::DeviceRefused(codes::INVALID_ACTIVE_CODE, "active_code is invalid".into())
            })?;
        let Some(sealed) = device.sealed_secret.filter(|_| device.bound) else {
            return Err(Error::DeviceRefused(
                codes::NOT_AUTHORISED,
                "device is not bound to a company yet; retry after push_bind_corp".into(),
            ));
        };
        let secret = self
            .keys
            .open_small(format!("device:{}:secret", device.sn).as_bytes(), &sealed)?;
        Ok((
            device.sn,
            String::from_utf8(secret).map_err(anyhow::Error::from)?,
        ))
    }

    /// `subscribe_corp`: logs the device in with its secret and records
    /// its firmware and algorithm priorities.
    pub async fn subscribe_device(&self, sub: &Subscription) -> Result<Session> {
        let fa = algorithm_list(&sub.fa_algorithms, "fa_algorithm")?;
        let fp = algorithm_list(&sub.fp_algorithms, "fp_algorithm")?;
        if sub.firmware_version.len() > 64 {
            return Err(Error::param("firmware_version is longer than 64 bytes"));
        }
        let device = self
            .db
            .device_by(DeviceKey::Secret, &sha256_hex(&sub.secret))
            .await?
            .filter(|d| d.bound)
            .ok_or_else(|| {
                Error::DeviceRefused(
                    codes::NOT_AUTHORISED,
                    "secret is not valid (the device was unbound?); activate again".into(),
                )
            })?;
        self.db
            .set_subscription(&device.sn, &sub.firmware_version, &fa, &fp, self.now())
            .await?;
        Ok(Session {
            sn: device.sn,
            tenant_id: device.tenant_id,
            fa_algorithms: fa,
            fp_algorithms: fp,
        })
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
    use crate::domain::testing::core;

    #[test]
    fn signature_sorts_values() {
        // Sorted: "1700000000" < "42" < "SN1" < "register" < "s3cret".
        let s = signature(&["SN1", "s3cret", "1700000000", "42", "register"]);
        assert_eq!(
            s,
            hex::encode(Sha1::digest(b"170000000042SN1registers3cret"))
        );
        assert_eq!(
            s,
            signature(&["register", "42", "SN1", "1700000000", "s3cret"])
        );
    }

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

    async fn bring_up(core: &Core, sn: &str) -> (Tenant, Session) {
        let t = core.create_tenant("acme").await.unwrap();
        core.add_device(&t, sn, "factory-secret").await.unwrap();
        let now = core.now().to_string();
        let sig = signature(&[sn, "factory-secret", &now, "7", "register"]);
        let code = core.register_device(sn, &now, "7", &sig).await.unwrap();
        let e = core.activate_device(&code).await.unwrap_err();
        assert!(
            matches!(e, Error::DeviceRefused(codes::NOT_AUTHORISED, _)),
            "{e:?}"
        );
        assert!(core.bind_device(t.id, sn).await.unwrap());
        assert!(!core.bind_device(t.id, sn).await.unwrap());
        let (got_sn, secret) = core.activate_device(&code).await.unwrap();
        assert_eq!(got_sn, sn);
        // `active` again (the device lost the reply): the same secret.
        assert_eq!(core.activate_device(&code).await.unwrap().1, secret);
        let session = core
            .subscribe_device(&Subscription {
                secret,
                firmware_version: "1.0".into(),
                fa_algorithms: vec!["X".into()],
                fp_algorithms: vec![],
            })
            .await
            .unwrap();
        (t, session)
    }

    #[tokio::test]
    async fn register_active_subscribe() {
        let (_dir, core) = core().await;
        let (t, s) = bring_up(&core, "SN1").await;
        assert_eq!(s.tenant_id, t.id);
        assert_eq!(s.fa_algorithms, ["X"]);
        assert_eq!(s.fp_algorithms, ["default"]);
        let d = core.tenant_device(t.id, "SN1").await.unwrap();
        assert_eq!(d.firmware_version.as_deref(), Some("1.0"));
    }

    #[tokio::test]
    async fn register_refusals() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        core.add_device(&t, "SN1", "fs").await.unwrap();
        assert!(core.add_device(&t, "SN1", "fs").await.is_err());
        let now = core.now();
        let sig = |ts: i64| signature(&["SN1", "fs", &ts.to_string(), "1", "register"]);
        let code = |e: Error| match e {
            Error::DeviceRefused(c, _) => c,
            other => panic!("{other:?}"),
        };
        // Unknown sn, wrong SecretNo, stale and future timestamps.
        let e = core
            .register_device("SN2", &now.to_string(), "1", &sig(now))
            .await;
        assert_eq!(code(e.unwrap_err()), codes::NOT_AUTHORISED);
        let bad = signature(&["SN1", "other", &now.to_string(), "1", "register"]);
        let e = core
            .register_device("SN1", &now.to_string(), "1", &bad)
            .await;
        assert_eq!(code(e.unwrap_err()), codes::NOT_REGISTERED);
        for ts in [now - 301, now + 301] {
            let e = core
                .register_device("SN1", &ts.to_string(), "1", &sig(ts))
                .await;
            assert_eq!(code(e.unwrap_err()), codes::NOT_REGISTERED);
        }
        assert!(
            core.register_device("SN1", &(now - 299).to_string(), "1", &sig(now - 299))
                .await
                .is_ok()
        );
        // The same frame again, or an older one, is a replay.
        let e = core
            .register_device("SN1", &(now - 299).to_string(), "1", &sig(now - 299))
            .await;
        assert_eq!(code(e.unwrap_err()), codes::NOT_REGISTERED);
        let e = core
            .register_device("SN1", &(now - 300).to_string(), "1", &sig(now - 300))
            .await;
        assert_eq!(code(e.unwrap_err()), codes::NOT_REGISTERED);
        // Upper-case hex is the same signature.
        let upper = sig(now).to_ascii_uppercase();
        assert!(
            core.register_device("SN1", &now.to_string(), "1", &upper)
                .await
                .is_ok()
        );
        let e = core.activate_device("nonsense").await.unwrap_err();
        assert_eq!(code(e), codes::INVALID_ACTIVE_CODE);
    }

    #[tokio::test]
    async fn unbinding_kills_the_secret() {
        let (_dir, core) = core().await;
        let (t, _) = bring_up(&core, "SN1").await;
        let d = core.db.device("SN1").await.unwrap().unwrap();
        let secret = String::from_utf8(
            core.keys
                .open_small(b"device:SN1:secret", d.sealed_secret.as_deref().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(core.unbind_device(t.id, "SN1").await.unwrap());
        let e = core
            .subscribe_device(&Subscription {
                secret,
                ..Subscription::default()
            })
            .await
            .unwrap_err();
        assert!(matches!(e, Error::DeviceRefused(codes::NOT_AUTHORISED, _)));
        // Another tenant cannot touch it.
        let other = core.create_tenant("other").await.unwrap();
        assert!(core.bind_device(other.id, "SN1").await.is_err());
    }
}
