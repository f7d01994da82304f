//! The admin console's credentials: one administrator password (argon2id,
//! set with `facehub admin passwd`) and browser sessions.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use rand::distributions::Alphanumeric;

use super::Core;
use super::auth::hash_token;
use super::ids::random_bytes;
use super::{App, Scope};
use crate::error::{Error, Result};

/// How long a console session lasts.
pub const SESSION_SECS: i64 = 12 * 3600;

pub struct AdminSession {
    /// The cookie's value (shown once, stored hashed).
    pub token: String,
    pub csrf: String,
}

impl Core {
    /// Sets the administrator password (at least 12 characters).
    pub async fn set_admin_password(&self, password: &str) -> Result<()> {
        if password.chars().count() < 12 {
            return Err(Error::param("the password must be at least 12 characters"));
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
    /// none was set.
    pub async fn admin_login(&self, password: &str) -> Result<Option<AdminSession>> {
        let Some(stored) = self.db.meta_get("admin_password").await? else {
            return Ok(None);
        };
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| Error::internal(format!("password check: {e}")))?;
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
