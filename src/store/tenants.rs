//! Tenants, the apps that act for them, and the access tokens apps are
//! issued.

use sqlx::Row;

use super::Db;
use super::people::insert_open_id;
use crate::model::{App, Tenant, TokenKind, TokenRecord};

impl Db {
    /// Creates a tenant; a name already taken is a UNIQUE violation
    /// ([`super::is_unique_violation`]).
    pub async fn insert_tenant(
        &self,
        name: &str,
        tenant_key: &str,
        now: i64,
    ) -> Result<Tenant, sqlx::Error> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tenants(name, tenant_key, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(tenant_key)
        .bind(now)
        .fetch_one(self.pool()?)
        .await?;
        Ok(Tenant {
            id,
            name: name.to_string(),
            tenant_key: tenant_key.to_string(),
            created_at: now,
        })
    }

    pub async fn tenant_by_id(&self, id: i64) -> anyhow::Result<Option<Tenant>> {
        self.row_by("SELECT * FROM tenants WHERE id = $1", id).await
    }

    pub async fn tenant_by_name(&self, name: &str) -> anyhow::Result<Option<Tenant>> {
        self.row_by("SELECT * FROM tenants WHERE name = $1", name)
            .await
    }

    /// Every tenant, by name.
    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        self.rows("SELECT * FROM tenants ORDER BY name").await
    }

    // ---------------------------------------------------------------- apps

    /// Inserts an app together with the open_ids of the tenant's people.
    pub async fn insert_app(&self, app: &App, open_ids: &[(String, i64)]) -> anyhow::Result<()> {
        let mut tx = self.pool()?.begin().await?;
        sqlx::query(
            "INSERT INTO apps(app_id, tenant_id, secret_hash, scopes, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&app.app_id)
        .bind(app.tenant_id)
        .bind(&app.secret_hash)
        .bind(app.scopes.join(" "))
        .bind(i64::from(app.disabled))
        .bind(app.created_at)
        .execute(&mut *tx)
        .await?;
        for (open_id, person_id) in open_ids {
            insert_open_id(&mut tx, open_id, &app.app_id, *person_id).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn app(&self, app_id: &str) -> anyhow::Result<Option<App>> {
        self.row_by("SELECT * FROM apps WHERE app_id = $1", app_id)
            .await
    }

    /// Every app, by tenant and age.
    pub async fn apps(&self) -> anyhow::Result<Vec<App>> {
        self.rows("SELECT * FROM apps ORDER BY tenant_id, created_at, app_id")
            .await
    }

    pub async fn apps_of_tenant(&self, tenant_id: i64) -> anyhow::Result<Vec<App>> {
        self.rows_by(
            "SELECT * FROM apps WHERE tenant_id = $1 ORDER BY app_id",
            tenant_id,
        )
        .await
    }

    // -------------------------------------------------------------- tokens

    /// The newest token of this app and kind that is still valid at `valid_at`.
    pub async fn newest_token(
        &self,
        app_id: &str,
        kind: TokenKind,
        valid_at: i64,
    ) -> anyhow::Result<Option<(Vec<u8>, i64)>> {
        Ok(sqlx::query_as(
            "SELECT sealed, expires_at FROM tokens
             WHERE app_id = $1 AND kind = $2 AND expires_at > $3
             ORDER BY expires_at DESC LIMIT 1",
        )
        .bind(app_id)
        .bind(kind.as_str())
        .bind(valid_at)
        .fetch_optional(self.pool()?)
        .await?)
    }

    /// Stores an issued token under its hash; `sealed` is the token itself,
    /// sealed, so that [`Db::newest_token`] can hand it out again.
    pub async fn insert_token(
        &self,
        token_hash: &str,
        rec: &TokenRecord,
        sealed: &[u8],
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO tokens(token_hash, kind, app_id, tenant_id, person_id, sealed, issued_at,
                                expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token_hash)
        .bind(rec.kind.as_str())
        .bind(&rec.app_id)
        .bind(rec.tenant_id)
        .bind(rec.person_id)
        .bind(sealed)
        .bind(rec.issued_at)
        .bind(rec.expires_at)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    /// The record of the token with this hash, expired or not.
    pub async fn token(&self, token_hash: &str) -> anyhow::Result<Option<TokenRecord>> {
        let row = sqlx::query(
            "SELECT kind, app_id, tenant_id, person_id, issued_at, expires_at
             FROM tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool()?)
        .await?;
        Ok(row.and_then(|r| {
            Some(TokenRecord {
                kind: TokenKind::parse(r.get::<&str, _>("kind"))?,
                app_id: r.get("app_id"),
                tenant_id: r.get("tenant_id"),
                person_id: r.get("person_id"),
                issued_at: r.get("issued_at"),
                expires_at: r.get("expires_at"),
            })
        }))
    }

    /// Deletes the tokens that expired before `expired_before`; returns
    /// how many.
    pub async fn purge_tokens(&self, expired_before: i64) -> anyhow::Result<u64> {
        self.exec_by("DELETE FROM tokens WHERE expires_at < $1", expired_before)
            .await
    }
}
