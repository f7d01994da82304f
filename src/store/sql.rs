//! What the store's files share: the transaction type, writes that ride
//! along in another write's transaction, and SQL text helpers.

use sqlx::any::AnyRow;
use sqlx::{Any, Encode, FromRow, Type};

use super::{Db, audit, changes};
use crate::model::{AuditEvent, Change};

/// A transaction on either engine.
pub type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// What a row of a read can be: a model type, or a tuple of columns.
pub(super) trait Read: for<'r> FromRow<'r, AnyRow> + Send + Unpin {}
impl<T: for<'r> FromRow<'r, AnyRow> + Send + Unpin> Read for T {}

/// What `$1` of a one-key statement can be.
pub(super) trait Key<'q>: 'q + Encode<'q, Any> + Type<Any> + Send {}
impl<'q, K: 'q + Encode<'q, Any> + Type<Any> + Send> Key<'q> for K {}

/// Most statements take one key, `$1`, or none; these run them.
impl Db {
    /// The row `sql` finds with `$1` set to `key`.
    pub(super) async fn row_by<'q, T: Read>(
        &self,
        sql: &'q str,
        key: impl Key<'q>,
    ) -> anyhow::Result<Option<T>> {
        Ok(sqlx::query_as(sql)
            .bind(key)
            .fetch_optional(self.pool()?)
            .await?)
    }

    /// The rows `sql` selects with `$1` set to `key`.
    pub(super) async fn rows_by<'q, T: Read>(
        &self,
        sql: &'q str,
        key: impl Key<'q>,
    ) -> anyhow::Result<Vec<T>> {
        Ok(sqlx::query_as(sql)
            .bind(key)
            .fetch_all(self.pool()?)
            .await?)
    }

    /// The rows `sql`, which takes no parameter, selects.
    pub(super) async fn rows<T: Read>(&self, sql: &str) -> anyhow::Result<Vec<T>> {
        Ok(sqlx::query_as(sql).fetch_all(self.pool()?).await?)
    }

    /// Runs `sql` with `$1` set to `key`; returns how many rows it changed.
    pub(super) async fn exec_by<'q>(&self, sql: &'q str, key: impl Key<'q>) -> anyhow::Result<u64> {
        let done = sqlx::query(sql).bind(key).execute(self.pool()?).await?;
        Ok(done.rows_affected())
    }
}

/// Records a write's audit event in the write's own transaction: the
/// write and its record commit together, so no crash leaves one without
/// the other.
pub(super) async fn audit_in(tx: &mut Tx<'_>, event: Option<&AuditEvent>) -> anyhow::Result<()> {
    if let Some(e) = event {
        audit::insert_audit_in(tx, &[e], chrono::Utc::now().timestamp_millis()).await?;
    }
    Ok(())
}

/// Records a change inside a person write, keeping that write's error type.
pub(super) async fn record_change(
    tx: &mut Tx<'_>,
    tenant_id: i64,
    change: &Change,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    changes::record_change_in(tx, tenant_id, change, now)
        .await
        .map_err(|e| match e.downcast::<sqlx::Error>() {
            Ok(e) => e,
            Err(e) => sqlx::Error::Protocol(e.to_string()),
        })
}

/// Deletes the rows of these files in `tx`; their blobs are the caller's
/// to delete once `tx` commits.
pub(super) async fn delete_files_in<'a>(
    tx: &mut Tx<'_>,
    ids: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<()> {
    for id in ids {
        sqlx::query("DELETE FROM files WHERE file_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// True for a UNIQUE constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// `$first, $first+1, …` for `n` values. (sqlx's QueryBuilder writes `?`
/// under the Any driver, which PostgreSQL does not take.)
pub(crate) fn placeholders(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($first, …), (…), …` for `rows` rows of `cols` values.
pub(crate) fn values_rows(rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", placeholders(cols, first + r * cols)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_from_first() {
        assert_eq!(placeholders(3, 2), "$2, $3, $4");
        assert_eq!(values_rows(2, 2, 2), "($2, $3), ($4, $5)");
    }
}
