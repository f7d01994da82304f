//! The `meta` table: what a deployment must remember about itself, one
//! value a key (the sealing key in use, the blob store, maintenance).

use super::Db;

impl Db {
    /// The value stored under `key`, if any.
    pub async fn meta_get(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool()?)
            .await?)
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn meta_set(&self, key: &str, value: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    /// Returns the value stored under `key`, storing `init()` first if the
    /// key is new. Concurrent first calls agree on one value.
    pub async fn meta_get_or_init(
        &self,
        key: &str,
        init: impl FnOnce() -> String,
    ) -> anyhow::Result<String> {
        sqlx::query("INSERT INTO meta(key, value) VALUES ($1, $2) ON CONFLICT(key) DO NOTHING")
            .bind(key)
            .bind(init())
            .execute(self.pool()?)
            .await?;
        let v: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_one(self.pool()?)
            .await?;
        Ok(v)
    }
}
