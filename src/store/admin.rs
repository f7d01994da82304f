//! Admin console sessions and app changes made from the console.

use super::Db;

impl Db {
    /// Opens a console session under its token's hash, with its CSRF token.
    pub async fn insert_admin_session(
        &self,
        token_hash: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        // Expired sessions go as new ones come.
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool()?)
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions(token_hash, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    /// The CSRF token of a session that has not expired.
    pub async fn admin_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT csrf FROM admin_sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool()?)
        .await?)
    }

    /// Ends one session (a logout).
    pub async fn delete_admin_session(&self, token_hash: &str) -> anyhow::Result<()> {
        self.exec_by(
            "DELETE FROM admin_sessions WHERE token_hash = $1",
            token_hash,
        )
        .await?;
        Ok(())
    }

    /// Ends every session.
    pub async fn delete_admin_sessions(&self) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM admin_sessions")
            .execute(self.pool()?)
            .await?;
        Ok(())
    }

    /// Replaces an app's secret hash and drops its tokens; false if no such app.
    pub async fn set_app_secret(&self, app_id: &str, secret_hash: &str) -> anyhow::Result<bool> {
        let sql = "UPDATE apps SET secret_hash = $1 WHERE app_id = $2";
        self.update_app(sql, secret_hash, app_id, true).await
    }

    /// Replaces an app's scopes; false if no such app. Its tokens stay, but
    /// every node's cached copy of them, which holds the old scopes, goes.
    pub async fn set_app_scopes(&self, app_id: &str, scopes: &str) -> anyhow::Result<bool> {
        let sql = "UPDATE apps SET scopes = $1 WHERE app_id = $2";
        self.update_app(sql, scopes, app_id, false).await
    }

    /// Runs `sql`, an update of app `app_id` to `value`, and in the same
    /// transaction drops every node's cached tokens of it (and its stored
    /// tokens too with `drop_tokens`); false if no such app.
    async fn update_app(
        &self,
        sql: &str,
        value: &str,
        app_id: &str,
        drop_tokens: bool,
    ) -> anyhow::Result<bool> {
        let mut tx = self.pool()?.begin().await?;
        let n = sqlx::query(sql)
            .bind(value)
            .bind(app_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if drop_tokens {
            sqlx::query("DELETE FROM tokens WHERE app_id = $1")
                .bind(app_id)
                .execute(&mut *tx)
                .await?;
        }
        self.tokens_revoked(&mut tx).await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The tenant and kind of a stored file.
    pub async fn file_owner(&self, file_id: &str) -> anyhow::Result<Option<(i64, String)>> {
        Ok(
            sqlx::query_as("SELECT tenant_id, kind FROM files WHERE file_id = $1")
                .bind(file_id)
                .fetch_optional(self.pool()?)
                .await?,
        )
    }

    /// Address-book versions bound terminals have not been sent, summed.
    pub async fn sync_backlog(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(coalesce(sum(CASE WHEN t.perm_version > d.seen_version
                                           THEN t.perm_version - d.seen_version ELSE 0 END), 0)
                         AS BIGINT)
             FROM devices d JOIN tenants t ON t.id = d.tenant_id WHERE d.bound <> 0",
        )
        .fetch_one(self.pool()?)
        .await?)
    }
}
