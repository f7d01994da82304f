//! The tenant's change logs: every change terminals must hear of, under
//! the next version of its list (`perm_version` for staff,
//! `visitor_version` for visitors), which device sync sends in order.

use super::Db;
use super::sql::Tx;
use crate::model::{Change, Seen, Stream};

/// The counter and the log of a list.
fn names(stream: Stream) -> (&'static str, &'static str) {
    match stream {
        Stream::People => ("perm_version", "tenant_changes"),
        Stream::Visitors => ("visitor_version", "visitor_changes"),
    }
}

impl Db {
    /// The tenant's current staff version.
    pub async fn perm_version(&self, tenant_id: i64) -> anyhow::Result<i64> {
        Ok(self.versions(tenant_id).await?.people)
    }

    /// The tenant's current versions of both lists.
    pub async fn versions(&self, tenant_id: i64) -> anyhow::Result<Seen> {
        let (people, visitors): (i64, i64) =
            sqlx::query_as("SELECT perm_version, visitor_version FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_one(self.pool()?)
                .await?;
        Ok(Seen { people, visitors })
    }

    /// Current versions of all tenants that have any.
    pub async fn perm_versions(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        self.rows("SELECT id, perm_version FROM tenants WHERE perm_version > 0")
            .await
    }

    /// Records one change in its own transaction ([`record_change_in`]);
    /// returns the version (0 for an empty change).
    pub async fn record_change(
        &self,
        tenant_id: i64,
        change: &Change,
        now: i64,
    ) -> anyhow::Result<i64> {
        let mut tx = self.pool()?.begin().await?;
        let v = record_change_in(&mut tx, tenant_id, change, now).await?;
        tx.commit().await?;
        Ok(v.unwrap_or(0))
    }

    /// The changes of a list after `after`, oldest first, at most `limit`.
    pub async fn changes_after(
        &self,
        tenant_id: i64,
        stream: Stream,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(i64, Change)>> {
        let (version, log) = names(stream);
        let sql = format!(
            "SELECT {version}, changes FROM {log}
             WHERE tenant_id = $1 AND {version} > $2 ORDER BY {version} LIMIT $3"
        );
        let rows: Vec<(i64, String)> = sqlx::query_as(&sql)
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

/// Records a change in `tx`, so that it commits with the write it
/// announces: its visitors (user_type 1) as the tenant's next
/// `visitor_version`, everyone else as the next `perm_version`, each list
/// only if it has a part in the change. Returns the version recorded (the
/// staff list's, if both were).
pub(super) async fn record_change_in(
    tx: &mut Tx<'_>,
    tenant_id: i64,
    change: &Change,
    now: i64,
) -> anyhow::Result<Option<i64>> {
    let mut recorded = None;
    for stream in [Stream::Visitors, Stream::People] {
        let part = change.part(stream == Stream::Visitors);
        if !part.is_empty() {
            recorded = Some(record_in(tx, tenant_id, stream, &part, now).await?);
        }
    }
    Ok(recorded)
}

async fn record_in(
    tx: &mut Tx<'_>,
    tenant_id: i64,
    stream: Stream,
    change: &Change,
    now: i64,
) -> anyhow::Result<i64> {
    let (version, log) = names(stream);
    let v: i64 = sqlx::query_scalar(&format!(
        "UPDATE tenants SET {version} = {version} + 1 WHERE id = $1 RETURNING {version}"
    ))
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO {log}(tenant_id, {version}, changes, created_at) VALUES ($1, $2, $3, $4)"
    ))
    .bind(tenant_id)
    .bind(v)
    .bind(serde_json::to_string(change)?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(v)
}
