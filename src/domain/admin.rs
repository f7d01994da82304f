//! The admin console's credentials: one administrator password (argon2id,
//! set with `facehub admin passwd`) and browser sessions.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;

use std::net::IpAddr;
use std::sync::Arc;

use super::Core;
use super::auth::hash_token;
use super::guard::{Attempt, ClientKey};
use super::ids::random_bytes;
use super::{App, Scope};
use crate::model::error::{Error, Result};

/// The one administrator account: the target its failed logins count
/// against.
const ADMIN_ACCOUNT: &str = "admin";

/// The longest administrator password: a longer login attempt is wrong
/// without being hashed.
const MAX_PASSWORD_BYTES: usize = 1024;

/// How long a console session lasts.
pub const SESSION_SECS: i64 = 12 * 3600;

pub struct AdminSession {
    /// The cookie's value (shown once, stored hashed).
    pub token: String,
    pub csrf: String,
}

/// Whether `password` matches `stored` (a PHC string), as argon2's own
/// `verify_password` decides, but computed in a block buffer each
/// password-check thread allocates once and keeps: a fresh 19 MiB buffer
/// per check leaves freed buffers behind in the allocator (see
/// [`super::guard::PasswordPool`]).
fn verify_password(stored: &str, password: &[u8]) -> bool {
    thread_local! {
        static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) = (
        argon2::Params::try_from(&hash),
        argon2::Algorithm::try_from(hash.algorithm),
    ) else {
        return false;
    };
    let Ok(version) = hash.version.map(argon2::Version::try_from).transpose() else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    let computed = BLOCKS.with_borrow_mut(|memory| {
        memory.resize(blocks, argon2::Block::default());
        argon
            .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
            .is_ok()
    });
    computed && bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), &out[..]))
}

impl Core {
    /// Sets the administrator password (at least 12 characters).
    pub async fn set_admin_password(&self, password: &str) -> Result<()> {
        if password.chars().count() < 12 {
            return Err(Error::param("the password must be at least 12 characters"));
        }
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(Error::param(format!(
                "the password must be at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
        })
        .await
        .map_err(|e| Error::internal(format!("password hashing: {e}")))?
        .map_err(|e| Error::internal(format!("password hashing: {e}")))?;
        self.db.meta_set("admin_password", &hash).await?;
        // A new password ends every session.
        self.db.delete_admin_sessions().await?;
        Ok(())
    }

    /// Checks the password and opens a session; `None` if it is wrong or
    /// none was set. Attempts go through the login gate (per address and
    /// per account) and the password-check pool, so guessing is slow and
    /// costs bounded memory (see [`super::guard`]). The check runs in a
    /// task of its own: a client that hangs up cannot cut it short before
    /// its outcome is counted.
    pub async fn admin_login(
        self: &Arc<Self>,
        password: &str,
        client: IpAddr,
    ) -> Result<Option<AdminSession>> {
        let core = self.clone();
        let password = password.to_string();
        tokio::spawn(async move { core.check_admin_password(password, client).await })
            .await
            .map_err(|e| Error::internal(format!("password check: {e}")))?
    }

    async fn check_admin_password(
        &self,
        password: String,
        client: IpAddr,
    ) -> Result<Option<AdminSession>> {
        let key = ClientKey::of(client);
        let gate = &self.guard.admin_login;
        gate.admit(key, ADMIN_ACCOUNT)
            .map_err(|r| self.refused(Attempt::AdminLogin, key, r))?;
        let slot = self
            .guard
            .passwords
            .slot(key)
            .await
            .map_err(|r| self.refused(Attempt::AdminLogin, key, r))?;
        // Again now: a lockout may have started while this attempt waited.
        gate.admit(key, ADMIN_ACCOUNT)
            .map_err(|r| self.refused(Attempt::AdminLogin, key, r))?;
        let stored = self.db.meta_get("admin_password").await?;
        let (ok, slot) = match stored {
            // No password is that long (see set_admin_password): wrong
            // without hashing a megabyte.
            Some(stored) if password.len() <= MAX_PASSWORD_BYTES => {
                self.guard
                    .passwords
                    .run(slot, move || verify_password(&stored, password.as_bytes()))
                    .await?
            }
            _ => (false, slot),
        };
        // Counted before the address may try again.
        self.attempted(Attempt::AdminLogin, key, ADMIN_ACCOUNT, ok);
        drop(slot);
        if !ok {
            return Ok(None);
        }
        let token = hex::encode(random_bytes::<32>());
        let csrf = hex::encode(random_bytes::<16>());
        let now = self.now();
        self.db
            .insert_admin_session(&hash_token(&token), &csrf, now, now + SESSION_SECS)
            .await?;
        Ok(Some(AdminSession { token, csrf }))
    }

    /// The CSRF token of a live session.
    pub async fn admin_session(&self, token: &str) -> Result<Option<String>> {
        Ok(self
            .db
            .admin_session(&hash_token(token), self.now())
            .await?)
    }

    pub async fn admin_logout(&self, token: &str) -> Result<()> {
        self.db.delete_admin_session(&hash_token(token)).await?;
        Ok(())
    }

    /// A new secret for an app; its tokens die with the old one.
    pub async fn rotate_app_secret(&self, app_id: &str) -> Result<String> {
        let secret: String = rand::rngs::OsRng
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let changed = self
            .db
            .set_app_secret(app_id, &super::auth::hash_secret(app_id, &secret))
            .await?;
        if !changed {
            return Err(Error::param(format!("no app {app_id:?}")));
        }
        self.token_cache.invalidate_all();
        Ok(secret)
    }

    /// Replaces an app's scopes.
    pub async fn set_app_scopes(&self, app_id: &str, scopes: &[Scope]) -> Result<App> {
        let mut names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
        names.sort();
        names.dedup();
        if !self.db.set_app_scopes(app_id, &names.join(" ")).await? {
            return Err(Error::param(format!("no app {app_id:?}")));
        }
        self.token_cache.invalidate_all();
        self.db
            .app(app_id)
            .await?
            .ok_or_else(|| Error::param(format!("no app {app_id:?}")))
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordVerifier;

    use super::*;

    #[test]
    fn verification_agrees_with_argon2s_own() {
        let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let stored = Argon2::default()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        let own = |pw: &[u8]| {
            Argon2::default()
                .verify_password(pw, &PasswordHash::new(&stored).unwrap())
                .is_ok()
        };
        for pw in [&b"correct horse battery"[..], b"correct horse batterz", b""] {
            assert_eq!(verify_password(&stored, pw), own(pw), "{pw:?}");
        }
        assert!(verify_password(&stored, b"correct horse battery"));
        // Twice on one thread: the kept buffer is reused, not stale.
        assert!(verify_password(&stored, b"correct horse battery"));
        assert!(!verify_password("not a hash", b"x"));
        // Another algorithm's parameters are honoured.
        let light = Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x10,
            argon2::Params::new(1024, 2, 1, Some(24)).unwrap(),
        );
        let stored = light.hash_password(b"pw", &salt).unwrap().to_string();
        assert!(verify_password(&stored, b"pw"));
        assert!(!verify_password(&stored, b"pX"));
    }
}
