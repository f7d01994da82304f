//! Copying the metadata from one store to another (SQLite to PostgreSQL
//! and back), for `facehub migrate-store --to-database`. Rows travel as
//! stored (sealed values stay sealed). Resumable: a row already in the
//! destination (by its key) is left alone, so a second run copies what
//! the first did not reach. Proved per table by a digest of every row
//! computed on both sides.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Db};

/// Every table, parents before children (foreign keys hold at each
/// insert). Schema bookkeeping (`_sqlx_migrations`) stays with each store.
pub const TABLES: &[&str] = &[
    "meta",
    "tenants",
    "apps",
    "people",
    "tokens",
    "open_ids",
    "files",
    "attendance_settings",
    "acs_users",
    "tenant_changes",
    "devices",
    "templates",
    "enrolments",
    "user_flows",
    "audit_log",
    "admin_sessions",
    "blob_intents",
];

/// Tables whose integer key the store generates: after explicit keys
/// are copied in, PostgreSQL's sequence must move past them.
const GENERATED_IDS: &[&str] = &["tenants", "people", "audit_log"];

const BATCH: usize = 200;

/// Meta key of a store's mark, which its copies carry.
const DEPLOYMENT: &str = "deployment_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Integer,
    Text,
    Bytes,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct TableCopy {
    pub table: String,
    pub rows: u64,
    /// Inserted by this run (the rest were there already).
    pub copied: u64,
    /// Both sides hold the same rows, proved by digest.
    pub verified: bool,
}

impl Db {
    /// The columns of `table` shared by this store's schema, with the type
    /// the code binds them as (`rowid` exists only in PostgreSQL's schema).
    async fn columns(&self, table: &str) -> anyhow::Result<Vec<(String, ColumnType)>> {
        let rows: Vec<(String, String)> = match self.backend {
            Backend::Sqlite => {
                sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(self.pool()?)
                    .await?
            }
            Backend::Postgres => {
                sqlx::query_as(
                    "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT)
                     FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1
                       AND column_name <> 'rowid'
                     ORDER BY ordinal_position",
                )
                .bind(table)
                .fetch_all(self.pool()?)
                .await?
            }
        };
        anyhow::ensure!(!rows.is_empty(), "table {table} is missing");
        rows.into_iter()
            .map(|(name, ty)| {
                let ty = ty.to_ascii_lowercase();
                let t = if ty.contains("int") {
                    ColumnType::Integer
                } else if ty.contains("text") || ty.contains("char") {
                    ColumnType::Text
                } else if ty.contains("blob") || ty.contains("bytea") {
                    ColumnType::Bytes
                } else {
                    anyhow::bail!("{table}.{name}: unexpected column type {ty}");
                };
                Ok((name, t))
            })
            .collect()
    }

    /// Copies every row of every table into `to` (whose schema is
    /// migrated and which holds nothing else of another deployment), then
    /// proves each table equal. `progress(table, rows done)` as it goes.
    pub async fn copy_to(
        &self,
        to: &Db,
        progress: impl Fn(&str, u64),
    ) -> anyhow::Result<Vec<TableCopy>> {
        // Rows merged into another deployment's database would join its
        // tenants by id. The destination must be new, or an earlier copy
        // of this store (it holds this store's mark then).
        let ours = self
            .meta_get_or_init(DEPLOYMENT, || {
                hex::encode(crate::model::ids::random_bytes::<16>())
            })
            .await?;
        match to.meta_get(DEPLOYMENT).await? {
            Some(theirs) if theirs == ours => {}
            Some(_) => anyhow::bail!("the destination holds another deployment's metadata"),
            None => {
                let tenants: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
                    .fetch_one(to.pool()?)
                    .await?;
                anyhow::ensure!(
                    tenants == 0,
                    "the destination holds another deployment's metadata ({tenants} tenants)"
                );
            }
        }
        let mut out = Vec::new();
        for &table in TABLES {
            let cols = self.columns(table).await?;
            let theirs: HashMap<String, ColumnType> =
                to.columns(table).await?.into_iter().collect();
            for (name, ty) in &cols {
                anyhow::ensure!(
                    theirs.get(name) == Some(ty),
                    "{table}.{name} differs between the two schemas: upgrade both first"
                );
            }
            let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
            let select = format!("SELECT {} FROM {table}", names.join(", "));
            let mut report = TableCopy {
                table: table.to_string(),
                ..TableCopy::default()
            };
            let mut rows = sqlx::query(&select).fetch(self.pool()?);
            let mut batch: Vec<AnyRow> = Vec::with_capacity(BATCH);
            loop {
                let next = rows.try_next().await?;
                let end = next.is_none();
                if let Some(r) = next {
                    batch.push(r);
                }
                if batch.len() == BATCH || (end && !batch.is_empty()) {
                    report.copied += insert_rows(to, table, &cols, &batch).await?;
                    report.rows += batch.len() as u64;
                    progress(table, report.rows);
                    batch.clear();
                }
                if end {
                    break;
                }
            }
            drop(rows);
            if to.backend == Backend::Postgres && GENERATED_IDS.contains(&table) {
                sqlx::query(&format!(
                    "SELECT CAST(setval(pg_get_serial_sequence('{table}', 'id'),
                                        COALESCE(MAX(id), 0) + 1, false) AS BIGINT)
                     FROM {table}"
                ))
                .execute(to.pool()?)
                .await?;
            }
            let (ours, theirs) = (
                self.table_digest(table, &cols).await?,
                to.table_digest(table, &cols).await?,
            );
            report.verified = ours == theirs;
            out.push(report);
        }
        Ok(out)
    }

    /// (rows, XOR of each row's SHA-256): independent of row order, which
    /// the two engines' collations would not agree on.
    async fn table_digest(
        &self,
        table: &str,
        cols: &[(String, ColumnType)],
    ) -> anyhow::Result<(u64, [u8; 32])> {
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        let sql = format!("SELECT {} FROM {table}", names.join(", "));
        let mut rows = sqlx::query(&sql).fetch(self.pool()?);
        let (mut n, mut acc) = (0u64, [0u8; 32]);
        while let Some(r) = rows.try_next().await? {
            let mut sha = Sha256::new();
            for (i, (_, ty)) in cols.iter().enumerate() {
                match read(&r, i, *ty)? {
                    Value::Null => sha.update([0u8]),
                    Value::Integer(v) => {
                        sha.update([1u8]);
                        sha.update(v.to_le_bytes());
                    }
                    Value::Text(s) => {
                        sha.update([2u8]);
                        sha.update((s.len() as u64).to_le_bytes());
                        sha.update(s.as_bytes());
                    }
                    Value::Bytes(b) => {
                        sha.update([3u8]);
                        sha.update((b.len() as u64).to_le_bytes());
                        sha.update(&b);
                    }
                }
            }
            for (a, b) in acc.iter_mut().zip(sha.finalize()) {
                *a ^= b;
            }
            n += 1;
        }
        Ok((n, acc))
    }
}

enum Value {
    Null,
    Integer(i64),
    Text(String),
    Bytes(Vec<u8>),
}

fn read(r: &AnyRow, i: usize, ty: ColumnType) -> anyhow::Result<Value> {
    Ok(match ty {
        ColumnType::Integer => r
            .try_get::<Option<i64>, _>(i)?
            .map_or(Value::Null, Value::Integer),
        ColumnType::Text => r
            .try_get::<Option<String>, _>(i)?
            .map_or(Value::Null, Value::Text),
        ColumnType::Bytes => r
            .try_get::<Option<Vec<u8>>, _>(i)?
            .map_or(Value::Null, Value::Bytes),
    })
}

/// Inserts `rows` into `table` of `to`, skipping rows whose key is there
/// already; how many were inserted.
async fn insert_rows(
    to: &Db,
    table: &str,
    cols: &[(String, ColumnType)],
    rows: &[AnyRow],
) -> anyhow::Result<u64> {
    let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
    let sql = format!(
        "INSERT INTO {table}({}) VALUES {} ON CONFLICT DO NOTHING",
        names.join(", "),
        super::sql::values_rows(rows.len(), cols.len(), 1)
    );
    let mut q = sqlx::query(&sql);
    for r in rows {
        for (i, (_, ty)) in cols.iter().enumerate() {
            // NULLs typed as their column, which PostgreSQL checks.
            q = match (read(r, i, *ty)?, ty) {
                (Value::Integer(v), _) => q.bind(v),
                (Value::Text(s), _) => q.bind(s),
                (Value::Bytes(b), _) => q.bind(b),
                (Value::Null, ColumnType::Integer) => q.bind(None::<i64>),
                (Value::Null, ColumnType::Text) => q.bind(None::<String>),
                (Value::Null, ColumnType::Bytes) => q.bind(None::<Vec<u8>>),
            };
        }
    }
    Ok(q.execute(to.pool()?).await?.rows_affected())
}
