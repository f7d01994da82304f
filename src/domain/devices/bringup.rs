//! Bring-up on the WeCom device protocol: `register` (proven by the
//! factory SecretNo, throttled), `active` (an active code, once an admin
//! has bound the terminal), `subscribe_corp` (the device secret). A
//! terminal's credentials are checked in constant time and every failure
//! a stranger can cause gets one answer.

use std::net::IpAddr;

use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{DeviceKey, REGISTER_WINDOW_SECS, Session, Subscription, algorithm_list, codes};
use crate::domain::Core;
use crate::domain::guard::{Attempt, ClientKey};
use crate::model::error::{Error, Result};

/// The WeCom signature: SHA-1 (hex) of the values sorted as strings and
/// concatenated.
pub fn signature(values: &[&str]) -> String {
    let mut v = values.to_vec();
    v.sort_unstable();
    hex::encode(Sha1::digest(v.concat().as_bytes()))
}

pub(super) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Shortest SecretNo accepted, and the fewest distinct characters in it:
/// the SecretNo is all that proves a terminal is the company's, and it can
/// be tried online (throttled) and offline against a captured `register`
/// frame (a SHA-1 over it and public values), so it must not be short or
/// repetitive. Factory SecretNos are long random strings.
pub const SECRET_NO_MIN_CHARS: usize = 16;
pub const SECRET_NO_MIN_DISTINCT: usize = 8;

/// Whether `secret_no` is strong enough to be a terminal's SecretNo; the
/// reason if not.
pub fn check_secret_no(secret_no: &str) -> std::result::Result<(), String> {
    let chars = secret_no.chars().count();
    if chars < SECRET_NO_MIN_CHARS || secret_no.len() > 256 {
        return Err(format!(
            "secret_no must be {SECRET_NO_MIN_CHARS} to 256 characters (it has {chars})"
        ));
    }
    let distinct: std::collections::HashSet<char> = secret_no.chars().collect();
    if distinct.len() < SECRET_NO_MIN_DISTINCT {
        return Err(format!(
            "secret_no must have at least {SECRET_NO_MIN_DISTINCT} distinct characters (it has {})",
            distinct.len()
        ));
    }
    Ok(())
}

impl Core {
    // ----------------------------------------------------------- bring-up

    /// `register`: checks the timestamp's age and the signature over (sn,
    /// SecretNo, timestamp, nonce, "register"), then issues a fresh active
    /// code. An unknown serial number, a wrong signature and an attempt
    /// refused by the lockout get one and the same answer, so the answer
    /// tells a stranger neither which serial numbers exist nor whether
    /// guessing has been noticed. Failures against a known serial number
    /// count towards the lockout of the client address and of that serial
    /// number ([`super::guard`]); an unknown one counts towards neither, so
    /// a terminal that retries before an admin has added it is not locked
    /// out once added.
    pub async fn register_device(
        &self,
        sn: &str,
        timestamp: &str,
        nonce: &str,
        device_signature: &str,
        client: IpAddr,
    ) -> Result<String> {
        let refused = || {
            Error::DeviceRefused(
                codes::NOT_REGISTERED,
                "register refused: sn unknown or device_signature wrong".into(),
            )
        };
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| Error::param("timestamp must be a Unix time in seconds"))?;
        let skew = (self.now() - ts).abs();
        if skew > REGISTER_WINDOW_SECS {
            return Err(Error::DeviceRefused(
                codes::NOT_REGISTERED,
                format!(
                    "timestamp is {skew} s from the server's clock, at most {REGISTER_WINDOW_SECS} s"
                ),
            ));
        }
        // The same work whatever the verdict will be, so that how long the
        // answer takes tells nothing either.
        let given = device_signature.to_ascii_lowercase();
        // A ZKTeco terminal's row has no SecretNo: unknown to WeCom bring-up.
        let device = self
            .db
            .device(sn)
            .await?
            .filter(|d| d.protocol == crate::model::Protocol::WeCom);
        let ok = match &device {
            None => {
                let expected = signature(&[sn, "", timestamp, nonce, "register"]);
                let _ = expected.as_bytes().ct_eq(given.as_bytes());
                false
            }
            Some(device) => {
                let secret_no = self.keys.open_small(
                    format!("device:{sn}:secret_no").as_bytes(),
                    &device.sealed_secret_no,
                )?;
                let secret_no = String::from_utf8(secret_no).map_err(anyhow::Error::from)?;
                let expected = signature(&[sn, &secret_no, timestamp, nonce, "register"]);
                bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
            }
        };
        let key = ClientKey::of(client);
        if let Err(r) = self.guard.device_register.admit(key, sn) {
            self.refused(Attempt::DeviceRegister, key, r);
            return Err(refused());
        }
        if device.is_none() {
            self.metrics
                .attempt_failed(Attempt::DeviceRegister.as_str());
            return Err(refused());
        }
        self.attempted(Attempt::DeviceRegister, key, sn, ok);
        if !ok {
            return Err(refused());
        }
        let code = hex::encode(crate::model::ids::random_bytes::<16>());
        if !self
            .db
            .record_register(sn, ts, nonce, &sha256_hex(&code))
            .await?
        {
            return Err(Error::DeviceRefused(
                codes::NOT_REGISTERED,
                "register replayed: timestamp and nonce are not newer than the last register's"
                    .into(),
            ));
        }
        Ok(code)
    }

    /// The serial number a live (unexpired) active code was issued to.
    pub async fn active_code_device(&self, active_code: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .device_by(DeviceKey::ActiveCode, &sha256_hex(active_code))
            .await?
            .filter(|d| {
                let issued = d.register_ts.unwrap_or(i64::MIN);
                self.now().saturating_sub(issued) <= self.config.security.active_code_ttl_secs
            })
            .map(|d| d.sn))
    }

    /// `active`: the device's secret, once an admin has bound it. An active
    /// code lives `security.active_code_ttl_secs`; an older one is answered
    /// 600014, on which terminals register again.
    pub async fn activate_device(&self, active_code: &str) -> Result<(String, String)> {
        let device = self
            .db
            .device_by(DeviceKey::ActiveCode, &sha256_hex(active_code))
            .await?
            .ok_or_else(|| {
                Error::DeviceRefused(codes::INVALID_ACTIVE_CODE, "active_code is invalid".into())
            })?;
        let issued = device.register_ts.unwrap_or(i64::MIN);
        if self.now().saturating_sub(issued) > self.config.security.active_code_ttl_secs {
            return Err(Error::DeviceRefused(
                codes::NOT_REGISTERED,
                "active_code has expired: register again".into(),
            ));
        }
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
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::Tenant;
    use crate::domain::testing::{core, core_with};

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

    const SECRET_NO: &str = "Fq7x-2Lm9-Rt4v-8Kc3";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn secret_nos_must_be_long_and_varied() {
        assert!(check_secret_no(SECRET_NO).is_ok());
        assert!(check_secret_no("0123456789abcdef").is_ok());
        let short = check_secret_no("0123456789abcde").unwrap_err();
        assert!(
            short.contains("16 to 256 characters (it has 15)"),
            "{short}"
        );
        let dull = check_secret_no("abababababababababab").unwrap_err();
        assert!(dull.contains("8 distinct characters (it has 2)"), "{dull}");
        assert!(check_secret_no(&"0123456789".repeat(26)).is_err());
    }

    pub(crate) async fn bring_up(core: &Core, sn: &str) -> (Tenant, Session) {
        let t = core.create_tenant("acme").await.unwrap();
        core.add_device(&t, sn, SECRET_NO).await.unwrap();
        let now = core.now().to_string();
        let sig = signature(&[sn, SECRET_NO, &now, "7", "register"]);
        let code = core
            .register_device(sn, &now, "7", &sig, ip("10.0.0.1"))
            .await
            .unwrap();
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
        core.add_device(&t, "SN1", SECRET_NO).await.unwrap();
        assert!(core.add_device(&t, "SN1", SECRET_NO).await.is_err());
        let weak = core.add_device(&t, "SN2", "fs").await.unwrap_err();
        assert!(weak.to_string().contains("secret_no must be"), "{weak}");
        let now = core.now();
        let sig = |ts: i64| signature(&["SN1", SECRET_NO, &ts.to_string(), "1", "register"]);
        let refusal = |e: Error| match e {
            Error::DeviceRefused(c, m) => (c, m),
            other => panic!("{other:?}"),
        };
        let code = |e: Error| refusal(e).0;
        let register = |sn: &'static str, ts: i64, sig: String, from: &'static str| {
            let core = &core;
            async move {
                core.register_device(sn, &ts.to_string(), "1", &sig, ip(from))
                    .await
            }
        };
        // An unknown sn and a wrong SecretNo: one and the same answer.
        let unknown = refusal(
            register("SN2", now, sig(now), "10.0.0.1")
                .await
                .unwrap_err(),
        );
        let bad = signature(&["SN1", "other", &now.to_string(), "1", "register"]);
        let wrong = refusal(register("SN1", now, bad, "10.0.0.1").await.unwrap_err());
        assert_eq!(unknown, wrong);
        assert_eq!(unknown.0, codes::NOT_REGISTERED);
        for ts in [now - 301, now + 301] {
            let e = register("SN1", ts, sig(ts), "10.0.0.2").await;
            assert_eq!(code(e.unwrap_err()), codes::NOT_REGISTERED);
        }
        assert!(
            register("SN1", now - 299, sig(now - 299), "10.0.0.2")
                .await
                .is_ok()
        );
        // The same frame again, or an older one, is a replay.
        let e = register("SN1", now - 299, sig(now - 299), "10.0.0.2").await;
        assert_eq!(code(e.unwrap_err()), codes::NOT_REGISTERED);
        let e = register("SN1", now - 300, sig(now - 300), "10.0.0.2").await;
        assert_eq!(code(e.unwrap_err()), codes::NOT_REGISTERED);
        // Upper-case hex is the same signature.
        let upper = sig(now).to_ascii_uppercase();
        assert!(register("SN1", now, upper, "10.0.0.2").await.is_ok());
        let e = core.activate_device("nonsense").await.unwrap_err();
        assert_eq!(code(e), codes::INVALID_ACTIVE_CODE);
    }

    #[tokio::test]
    async fn guessing_a_secret_no_locks_the_guesser_out() {
        let (_dir, core) = core_with(|c| c.security.failures_before_lockout = 3).await;
        let t = core.create_tenant("acme").await.unwrap();
        core.add_device(&t, "SN1", SECRET_NO).await.unwrap();
        let ts = core.now().to_string();
        let attempt = |secret_no: &str, nonce: u32, from: &str| {
            let sig = signature(&["SN1", secret_no, &ts, &nonce.to_string(), "register"]);
            let core = &core;
            let (ts, from) = (ts.clone(), ip(from));
            async move {
                core.register_device("SN1", &ts, &nonce.to_string(), &sig, from)
                    .await
            }
        };
        let wrong = attempt("guess", 1, "10.0.0.66")
            .await
            .unwrap_err()
            .to_string();
        for n in 2..=3 {
            assert_eq!(
                attempt("guess", n, "10.0.0.66")
                    .await
                    .unwrap_err()
                    .to_string(),
                wrong
            );
        }
        // Locked out: the right SecretNo from the guessing address is
        // refused with the same answer as a wrong one.
        let e = attempt(SECRET_NO, 4, "10.0.0.66").await.unwrap_err();
        assert_eq!(e.to_string(), wrong);
        // The terminal itself, from an address that never guessed, is not.
        assert!(attempt(SECRET_NO, 5, "10.0.0.7").await.is_ok());
        // Unknown serial numbers never lock anyone out.
        for n in 0..10 {
            let sig = signature(&["NEW", "x", &ts, "1", "register"]);
            let e = core
                .register_device("NEW", &ts, &n.to_string(), &sig, ip("10.0.0.8"))
                .await
                .unwrap_err();
            assert_eq!(e.to_string(), wrong);
        }
        core.add_device(&t, "NEW", SECRET_NO).await.unwrap();
        let sig = signature(&["NEW", SECRET_NO, &ts, "1", "register"]);
        assert!(
            core.register_device("NEW", &ts, "1", &sig, ip("10.0.0.8"))
                .await
                .is_ok()
        );
        let m = core.metrics.render();
        assert!(
            m.contains("facehub_auth_lockouts_total{attempt=\"device_register\"} 1"),
            "{m}"
        );
        assert!(
            m.contains(
                "facehub_auth_refused_total{attempt=\"device_register\",reason=\"locked_out\"} 1"
            ),
            "{m}"
        );
    }

    #[tokio::test]
    async fn active_codes_expire() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        core.add_device(&t, "SN1", SECRET_NO).await.unwrap();
        let now = core.now().to_string();
        let sig = signature(&["SN1", SECRET_NO, &now, "7", "register"]);
        let code = core
            .register_device("SN1", &now, "7", &sig, ip("10.0.0.1"))
            .await
            .unwrap();
        core.bind_device(t.id, "SN1").await.unwrap();
        core.clock
            .advance(core.config.security.active_code_ttl_secs - 10);
        assert!(core.activate_device(&code).await.is_ok());
        core.clock.advance(20);
        let e = core.activate_device(&code).await.unwrap_err();
        assert!(
            matches!(e, Error::DeviceRefused(codes::NOT_REGISTERED, ref m) if m.contains("expired")),
            "{e:?}"
        );
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
