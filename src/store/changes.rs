//! The tenant's change log: every change terminals must hear of, under
//! the tenant's next version (`perm_version`), which device sync sends in
//! order.

use super::Db;
use super::sql::Tx;
use crate::model::Change;

impl Db {
    /// The tenant's current version.
    pub async fn perm_version(&self, tenant_id: i64) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT perm_version FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_one(self.pool()?)
                .await?,
        )
    }

    /// Current versions of all tenants that have any.
    pub async fn perm_versions(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        self.rows("SELECT id, perm_version FROM tenants WHERE perm_version > 0")
            .await
    }

    /// Records one change as the tenant's next version, in its own
    /// transaction; returns the version.
    pub async fn record_change(
        &self,
        tenant_id: i64,
        change: &Change,
        now: i64,
    ) -> anyhow::Result<i64> {
        let mut tx = self.pool()?.begin().await?;
        let v = record_change_in(&mut tx, tenant_id, change, now).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// The changes after `after`, oldest first, at most `limit`.
    pub async fn changes_after(
        &self,
        tenant_id: i64,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(i64, Change)>> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT perm_version, changes FROM tenant_changes
             WHERE tenant_id = $1 AND perm_version > $2 ORDER BY perm_version LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool()?)
        .await?;
        rows.into_iter()
            .map(|(v, json)| Ok((v, serde_json::from_str(&json)?)))
            .collect()
    }
}

/// Records one change as the tenant's next version in `tx`, so that it
/// commits with the write it announces; returns the version.
pub(super) async fn record_change_in(
    tx: &mut Tx<'_>,
    tenant_id: i64,
    change: &Change,
    now: i64,
) -> anyhow::Result<i64> {
    let v: i64 = sqlx::query_scalar(
        "UPDATE tenants SET perm_version = perm_version + 1 WHERE id = $1 RETURNING perm_version",
    )
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO tenant_changes(tenant_id, perm_version, changes, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant_id)
    .bind(v)
    .bind(serde_json::to_string(change)?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(v)
}
