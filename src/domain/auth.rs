//! Tenants, apps and their access tokens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ids::{derive_hex, random_bytes};
use super::{App, Core, Scope, Tenant, TokenKind, TokenRecord};
use crate::model::error::{Error, Result};
use crate::store::is_unique_violation;

/// A token is handed out again while at least this much of its life is left
/// (the platform's 30-minute rule).
pub const REISSUE_MARGIN_SECS: i64 = 30 * 60;

/// How long a verified token is trusted without asking the metadata store.
pub const TOKEN_CACHE_SECS: u64 = 30;

#[derive(Debug, Clone)]
pub struct CachedToken {
    caller: Caller,
    expires_at: i64,
}

/// Recently verified tokens, so a request does not cost two metadata
/// queries before it starts. A revocation empties it on this node and, over
/// a shared store, on every node at once ([`Core::hear_other_nodes`]).
/// Entries live [`TOKEN_CACHE_SECS`] at most: should a node miss the notice
/// (its LISTEN connection down and not yet back), that bounds how long it
/// honours a revoked token.
#[derive(Clone)]
pub(crate) struct TokenCache {
    cache: moka::sync::Cache<String, CachedToken>,
    /// Revocations so far: a verification that overlapped one may have
    /// read what it revoked, and is not kept.
    revocations: Arc<AtomicU64>,
}

impl TokenCache {
    pub(crate) fn new() -> TokenCache {
        TokenCache {
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs(TOKEN_CACHE_SECS))
                .build(),
            revocations: Arc::default(),
        }
    }

    fn get(&self, hash: &str) -> Option<CachedToken> {
        self.cache.get(hash)
    }

    /// To pass to `insert`, taken before the store is asked.
    fn revocations(&self) -> u64 {
        self.revocations.load(Ordering::SeqCst)
    }

    /// Forgets every cached token: some of them are revoked.
    pub(crate) fn invalidate_all(&self) {
        // Counted first: see `insert`.
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }

    /// Keeps a token verified against the store after `seen` was counted,
    /// unless a revocation came since. Checked after inserting: a
    /// revocation counted later empties the cache after the insert.
    fn insert(&self, seen: u64, hash: String, token: CachedToken) {
        self.cache.insert(hash.clone(), token);
        if self.revocations() != seen {
            self.cache.invalidate(&hash);
        }
    }
}

/// A freshly created app; the secret is shown once and stored only hashed.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub app: App,
    pub app_secret: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    /// Seconds of life left.
    pub expire: i64,
}

/// Who is calling: resolved from a valid access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: i64,
    pub app_id: String,
    pub scopes: Vec<String>,
    /// Set when the token is a user access token.
    pub person_id: Option<i64>,
    /// The request's X-Tt-Logid, for the audit log.
    pub log_id: Option<String>,
}

/// Which access tokens an endpoint takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTypes {
    pub tenant: bool,
    pub user: bool,
}

impl TokenTypes {
    pub const TENANT: TokenTypes = TokenTypes {
        tenant: true,
        user: false,
    };
    pub const TENANT_OR_USER: TokenTypes = TokenTypes {
        tenant: true,
        user: true,
    };
}

impl Caller {
    pub fn has_any(&self, scopes: &[&str]) -> bool {
        self.scopes.iter().any(|s| scopes.contains(&s.as_str()))
    }
}

/// App secrets are 32 random alphanumerics (~190 bits), so one round of
/// SHA-256 (salted with the app id) is enough: a slow password hash only
/// helps against guessable secrets, and it would make every token request a
/// CPU cost an attacker can trigger.
pub(crate) fn hash_secret(app_id: &str, secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"facehub app secret\0")
        .chain_update(app_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(secret.as_bytes())
        .finalize();
    format!("sha256:{}", hex::encode(digest))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Core {
    pub async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(Error::param(
                "tenant name must be 1 to 64 printable characters",
            ));
        }
        let tenant_key = hex::encode(random_bytes::<8>());
        match self.db.insert_tenant(name, &tenant_key, self.now()).await {
            Ok(t) => Ok(t),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::param(format!("tenant {name:?} already exists")))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn tenant(&self, name: &str) -> Result<Tenant> {
        self.db
            .tenant_by_name(name)
            .await?
            .ok_or_else(|| Error::param(format!("no tenant named {name:?}")))
    }

    /// Every tenant, by name.
    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        self.db.tenants().await
    }

    /// Every app, by tenant, then age.
    pub async fn apps(&self) -> anyhow::Result<Vec<App>> {
        self.db.apps().await
    }

    /// A tenant's apps, by app_id.
    pub async fn apps_of(&self, tenant_id: i64) -> anyhow::Result<Vec<App>> {
        self.db.apps_of_tenant(tenant_id).await
    }

    pub async fn app(&self, app_id: &str) -> anyhow::Result<Option<App>> {
        self.db.app(app_id).await
    }

    pub async fn create_app(&self, tenant: &Tenant, scopes: &[Scope]) -> Result<NewApp> {
        let app_id = format!("cli_{}", hex::encode(random_bytes::<8>()));
        let app_secret: String = rand::rngs::OsRng
            .sample_iter(&Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        let mut names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
        names.sort();
        names.dedup();
        let app = App {
            secret_hash: hash_secret(&app_id, &app_secret),
            app_id,
            tenant_id: tenant.id,
            scopes: names,
            disabled: false,
            created_at: self.now(),
        };
        let open_ids: Vec<(String, i64)> = self
            .db
            .people(tenant.id)
            .await?
            .iter()
            .map(|p| (self.open_id(&app.app_id, &p.user_id), p.id))
            .collect();
        self.db.insert_app(&app, &open_ids).await?;
        Ok(NewApp { app, app_secret })
    }

    pub(crate) fn union_id(&self, tenant_key: &str, user_id: &str) -> String {
        format!(
            "on_{}",
            derive_hex(&self.id_secret, &["union", tenant_key, user_id], 32)
        )
    }

    pub(crate) fn open_id(&self, app_id: &str, user_id: &str) -> String {
        format!(
            "ou_{}",
            derive_hex(&self.id_secret, &["open", app_id, user_id], 32)
        )
    }

    /// Checks app credentials; the token endpoints' errors.
    pub async fn verify_app(&self, app_id: &str, app_secret: &str) -> Result<App> {
        if app_id.is_empty() || app_secret.is_empty() {
            return Err(Error::TokenParam("invalid param".into()));
        }
        let Some(app) = self.db.app(app_id).await? else {
            return Err(Error::TokenParam("invalid param".into()));
        };
        let given = hash_secret(app_id, app_secret);
        if !bool::from(given.as_bytes().ct_eq(app.secret_hash.as_bytes())) {
            return Err(Error::WrongAppSecret);
        }
        if app.disabled {
            return Err(Error::AppDisabled);
        }
        Ok(app)
    }

    /// `tenant_access_token/internal` (and the app token with `kind = App`):
    /// the current token if it has at least 30 minutes left, else a new one.
    pub async fn issue_token(
        &self,
        app_id: &str,
        app_secret: &str,
        kind: TokenKind,
    ) -> Result<IssuedToken> {
        let app = self.verify_app(app_id, app_secret).await?;
        self.token_for(&app, kind).await
    }

    pub async fn token_for(&self, app: &App, kind: TokenKind) -> Result<IssuedToken> {
        let now = self.now();
        let aad = format!("token:{}:{}", app.app_id, kind.as_str());
        if let Some((sealed, expires_at)) = self
            .db
            .newest_token(&app.app_id, kind, now + REISSUE_MARGIN_SECS - 1)
            .await?
        {
            // A token that cannot be opened (another key, damage) is as good
            // as absent: issue a new one rather than failing every request.
            match self.keys.open_small(aad.as_bytes(), &sealed) {
                Ok(token) => {
                    return Ok(IssuedToken {
                        token: String::from_utf8(token).context("stored token is not UTF-8")?,
                        expire: expires_at - now,
                    });
                }
                Err(e) => tracing::warn!(error = %e, "a stored token could not be opened"),
            }
        }
        let token = format!("t-{}", hex::encode(random_bytes::<20>()));
        let ttl = self.config.token_ttl_secs as i64;
        let rec = TokenRecord {
            kind,
            app_id: app.app_id.clone(),
            tenant_id: app.tenant_id,
            person_id: None,
            issued_at: now,
            expires_at: now + ttl,
        };
        let sealed = self.keys.seal_small(aad.as_bytes(), token.as_bytes());
        self.db
            .insert_token(&hash_token(&token), &rec, &sealed)
            .await?;
        // Opportunistic clean-up of tokens that expired a day ago.
        if rand::random::<u8>() == 0 {
            self.db.purge_tokens(now - 86_400).await?;
        }
        Ok(IssuedToken { token, expire: ttl })
    }

    /// Issues a user access token (`u-…`) for a person of the app's tenant,
    /// valid for `token_ttl_secs`. facehub has no OAuth login: an operator
    /// issues these from the CLI for the people who act through an app.
    pub async fn issue_user_token(&self, app_id: &str, user_id: &str) -> Result<IssuedToken> {
        let app = self
            .db
            .app(app_id)
            .await?
            .ok_or_else(|| Error::param(format!("no app {app_id:?}")))?;
        if app.disabled {
            return Err(Error::AppDisabled);
        }
        let person = self.known_person(app.tenant_id, user_id).await?;
        let now = self.now();
        let ttl = self.config.token_ttl_secs as i64;
        let token = format!("u-{}", hex::encode(random_bytes::<20>()));
        let rec = TokenRecord {
            kind: TokenKind::User,
            app_id: app.app_id.clone(),
            tenant_id: app.tenant_id,
            person_id: Some(person.id),
            issued_at: now,
            expires_at: now + ttl,
        };
        let aad = format!("token:{}:user:{}", app.app_id, person.id);
        let sealed = self.keys.seal_small(aad.as_bytes(), token.as_bytes());
        self.db
            .insert_token(&hash_token(&token), &rec, &sealed)
            .await?;
        Ok(IssuedToken { token, expire: ttl })
    }

    /// Resolves a bearer value to its caller, for endpoints that take tenant
    /// access tokens only.
    pub async fn authenticate_tenant(&self, bearer: &str) -> Result<Caller> {
        self.authenticate(bearer, TokenTypes::TENANT).await
    }

    /// Resolves a bearer value to its caller. The token's prefix says its
    /// kind; a kind the endpoint does not take is answered the platform's
    /// way (a tenant token with 99991663, a user token with 99991668).
    pub async fn authenticate(&self, bearer: &str, accepts: TokenTypes) -> Result<Caller> {
        let kind = if bearer.starts_with("t-") {
            TokenKind::Tenant
        } else if bearer.starts_with("u-") {
            TokenKind::User
        } else {
            return Err(Error::MalformedToken);
        };
        let invalid = || match kind {
            TokenKind::User => Error::InvalidUserToken,
            _ => Error::InvalidTenantToken,
        };
        let expired = || match kind {
            TokenKind::User => Error::UserTokenExpired,
            _ => Error::InvalidTenantToken,
        };
        let accepted = match kind {
            TokenKind::User => accepts.user,
            _ => accepts.tenant,
        };
        if !accepted {
            return Err(invalid());
        }
        let hash = hash_token(bearer);
        let now = self.now();
        if let Some(hit) = self.token_cache.get(&hash) {
            if hit.expires_at <= now {
                return Err(expired());
            }
            return Ok(hit.caller);
        }
        let seen = self.token_cache.revocations();
        let Some(rec) = self.db.token(&hash).await? else {
            return Err(invalid());
        };
        if rec.kind != kind {
            return Err(invalid());
        }
        if rec.expires_at <= now {
            return Err(expired());
        }
        let Some(app) = self.db.app(&rec.app_id).await? else {
            return Err(invalid());
        };
        if app.disabled || app.tenant_id != rec.tenant_id {
            return Err(invalid());
        }
        if kind == TokenKind::User && rec.person_id.is_none() {
            return Err(invalid());
        }
        let caller = Caller {
            tenant_id: rec.tenant_id,
            app_id: app.app_id,
            scopes: app.scopes,
            person_id: rec.person_id,
            log_id: None,
        };
        self.token_cache.insert(
            seen,
            hash,
            CachedToken {
                caller: caller.clone(),
                expires_at: rec.expires_at,
            },
        );
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::core;

    /// A verification that read the store before a revocation and caches
    /// after it would keep a revoked token for the entry's whole life.
    #[test]
    fn a_verification_overlapping_a_revocation_is_not_kept() {
        let cache = TokenCache::new();
        let token = CachedToken {
            caller: Caller {
                tenant_id: 1,
                app_id: "cli_a".into(),
                scopes: vec![],
                person_id: None,
                log_id: None,
            },
            expires_at: i64::MAX,
        };
        let seen = cache.revocations();
        cache.invalidate_all();
        cache.insert(seen, "h".into(), token.clone());
        assert!(cache.get("h").is_none());
        cache.insert(cache.revocations(), "h".into(), token);
        assert!(cache.get("h").is_some());
    }

    #[tokio::test]
    async fn token_lifecycle() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        let scope = Scope::parse("attendance:rule").unwrap();
        let app = core.create_app(&t, &[scope]).await.unwrap();
        assert!(app.app.app_id.starts_with("cli_") && app.app.app_id.len() == 20);
        assert!(!app.app.secret_hash.contains(&app.app_secret));

        let issue = || core.issue_token(&app.app.app_id, &app.app_secret, TokenKind::Tenant);
        let a = issue().await.unwrap();
        assert!(a.token.starts_with("t-"));
        assert_eq!(a.expire, 7200);
        let caller = core.authenticate_tenant(&a.token).await.unwrap();
        assert_eq!(caller.tenant_id, t.id);

        // Same token while >= 30 min are left.
        core.clock.advance(5400);
        let b = issue().await.unwrap();
        assert_eq!(b.token, a.token);
        assert_eq!(b.expire, 1800);
        // A new one when less is left; both stay valid.
        core.clock.advance(1);
        let c = issue().await.unwrap();
        assert_ne!(c.token, a.token);
        assert!(core.authenticate_tenant(&a.token).await.is_ok());
        // Expired.
        core.clock.advance(1800);
        assert!(matches!(
            core.authenticate_tenant(&a.token).await,
            Err(Error::InvalidTenantToken)
        ));
        assert!(core.authenticate_tenant(&c.token).await.is_ok());
    }

    #[tokio::test]
    async fn bad_credentials() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        let app = core.create_app(&t, &[]).await.unwrap();
        let id = &app.app.app_id;
        assert!(matches!(
            core.issue_token(id, "nope", TokenKind::Tenant).await,
            Err(Error::WrongAppSecret)
        ));
        assert!(matches!(
            core.issue_token("cli_0000000000000000", &app.app_secret, TokenKind::Tenant)
                .await,
            Err(Error::TokenParam(_))
        ));
        assert!(matches!(
            core.issue_token("", "", TokenKind::Tenant).await,
            Err(Error::TokenParam(_))
        ));
        for (bearer, want) in [
            ("abc", "MalformedToken"),
            ("u-abc", "InvalidUserToken"),
            ("t-abc", "InvalidTenantToken"),
        ] {
            let e = core.authenticate_tenant(bearer).await.unwrap_err();
            assert_eq!(format!("{e:?}"), want);
        }
        // An app token is not a tenant token.
        let at = core
            .issue_token(id, &app.app_secret, TokenKind::App)
            .await
            .unwrap();
        assert!(matches!(
            core.authenticate_tenant(&at.token).await,
            Err(Error::InvalidTenantToken)
        ));
        assert!(core.create_tenant("acme").await.is_err());
    }
}
