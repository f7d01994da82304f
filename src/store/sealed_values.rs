//! Every value the metadata store keeps sealed, in one place: the integrity
//! check opens them all, and key rotation re-seals them all, so a new sealed
//! column is added here or it is neither checked nor rotated.

use super::Db;

/// A sealed column, with the SQL that rebuilds the associated data its
/// value was sealed under. Each expression must match the one the core
/// seals with (`file_name_aad`, `Core::template_aad`, the device and token
/// sealing); the integrity check of a populated store proves they do.
pub struct SealedColumn {
    pub table: &'static str,
    pub column: &'static str,
    aad_sql: &'static str,
    /// A keyed digest of the plaintext kept beside it (templates), which
    /// follows the key on rotation.
    pub digest_column: Option<&'static str>,
}

pub const SEALED_COLUMNS: &[SealedColumn] = &[
    SealedColumn {
        table: "files",
        column: "file_name",
        aad_sql: "'file_name:' || file_id",
        digest_column: None,
    },
    SealedColumn {
        table: "templates",
        column: "data",
        aad_sql: "'template:' || person_id || ':' || modality || ':' || algorithm || ':' || slot",
        digest_column: Some("digest"),
    },
    SealedColumn {
        table: "devices",
        column: "secret_no",
        aad_sql: "'device:' || sn || ':secret_no'",
        digest_column: None,
    },
    SealedColumn {
        table: "devices",
        column: "secret",
        aad_sql: "'device:' || sn || ':secret'",
        digest_column: None,
    },
    SealedColumn {
        table: "tokens",
        column: "sealed",
        aad_sql: "CASE WHEN kind = 'user' THEN 'token:' || app_id || ':user:' || person_id \
                  ELSE 'token:' || app_id || ':' || kind END",
        digest_column: None,
    },
];

/// One sealed value and where it lives.
#[derive(Debug, Clone)]
pub struct SealedValue {
    pub rowid: i64,
    pub aad: Vec<u8>,
    pub sealed: Vec<u8>,
    pub digest: Option<String>,
    /// What an operator can look the row up by (never sealed content).
    pub label: String,
}

impl Db {
    /// How many blobs and sealed values each key id seals, over every
    /// file and every sealed column (one scan of each).
    pub async fn key_usage(&self) -> anyhow::Result<std::collections::BTreeMap<u32, u64>> {
        let mut usage = std::collections::BTreeMap::new();
        for (k, n) in self.file_key_usage().await? {
            *usage.entry(k).or_default() += n;
        }
        for col in SEALED_COLUMNS {
            for (k, n) in self.sealed_key_usage(col).await? {
                *usage.entry(k).or_default() += n;
            }
        }
        Ok(usage)
    }

    /// How many sealed values each key id seals in `col`.
    pub async fn sealed_key_usage(&self, col: &SealedColumn) -> anyhow::Result<Vec<(u32, u64)>> {
        let sql = format!(
            "SELECT substr({c}, 1, 4) AS kid, count(*) AS n FROM {t}
             WHERE {c} IS NOT NULL GROUP BY kid",
            c = col.column,
            t = col.table
        );
        let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(&sql).fetch_all(self.pool()?).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kid, n)| Some((u32::from_be_bytes(kid.try_into().ok()?), n as u64)))
            .collect())
    }

    /// Files whose blob is sealed under another key than `key_id`, in id
    /// order after `after`: (file_id, digest of the sealed blob).
    pub async fn files_not_under_key(
        &self,
        key_id: u32,
        after: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT file_id, sha256 FROM files WHERE key_id != $1 AND file_id > $2
             ORDER BY file_id LIMIT $3",
        )
        .bind(i64::from(key_id))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool()?)
        .await?)
    }

    /// Records a blob re-sealed under `key_id`, if its row still holds
    /// the digest it was read with. False when the file is gone.
    pub async fn set_file_seal(
        &self,
        file_id: &str,
        old_sha256: &str,
        sha256: &str,
        key_id: u32,
    ) -> anyhow::Result<bool> {
        let n = sqlx::query(
            "UPDATE files SET sha256 = $1, key_id = $2 WHERE file_id = $3 AND sha256 = $4",
        )
        .bind(sha256)
        .bind(i64::from(key_id))
        .bind(file_id)
        .bind(old_sha256)
        .execute(self.pool()?)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Files per key id.
    pub async fn file_key_usage(&self) -> anyhow::Result<Vec<(u32, u64)>> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT key_id, count(*) AS n FROM files GROUP BY key_id")
                .fetch_all(self.pool()?)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(k, n)| (k as u32, n as u64))
            .collect())
    }

    /// Every sealed value of `col` in rowid order, `limit` at a time.
    pub fn sealed_values<'a>(&'a self, col: &'a SealedColumn, limit: i64) -> SealedValues<'a> {
        SealedValues {
            db: self,
            col,
            after: 0,
            limit,
        }
    }

    /// Replaces sealed values whose stored value is still what was read
    /// (a value changed meanwhile was re-sealed by its writer under the
    /// current key already). Returns how many were replaced.
    pub async fn reseal_values(
        &self,
        col: &SealedColumn,
        updates: &[(SealedValue, Vec<u8>, Option<String>)],
    ) -> anyhow::Result<u64> {
        let sql = match col.digest_column {
            Some(d) => format!(
                "UPDATE {t} SET {c} = $1, {d} = $2 WHERE rowid = $3 AND {c} = $4",
                t = col.table,
                c = col.column
            ),
            None => format!(
                "UPDATE {t} SET {c} = $1 WHERE rowid = $2 AND {c} = $3",
                t = col.table,
                c = col.column
            ),
        };
        // Take the write lock at once: a transaction that read first could
        // not wait for it once another writer committed.
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for (old, sealed, digest) in updates {
            let mut q = sqlx::query(&sql).bind(sealed);
            if col.digest_column.is_some() {
                q = q.bind(digest.as_deref().unwrap_or_default());
            }
            n += q
                .bind(old.rowid)
                .bind(&old.sealed)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// A walk over one column's sealed values, page by page (see
/// [`Db::sealed_values`]).
pub struct SealedValues<'a> {
    db: &'a Db,
    col: &'a SealedColumn,
    after: i64,
    limit: i64,
}

impl SealedValues<'_> {
    /// The next page; `None` after the last.
    pub async fn next(&mut self) -> anyhow::Result<Option<Vec<SealedValue>>> {
        let digest = self.col.digest_column.unwrap_or("NULL");
        let sql = format!(
            "SELECT rowid, {aad} AS aad, {c} AS sealed, {digest} AS digest FROM {t}
             WHERE rowid > $1 AND {c} IS NOT NULL ORDER BY rowid LIMIT $2",
            aad = self.col.aad_sql,
            c = self.col.column,
            t = self.col.table,
        );
        let rows: Vec<(i64, String, Vec<u8>, Option<String>)> = sqlx::query_as(&sql)
            .bind(self.after)
            .bind(self.limit)
            .fetch_all(self.db.pool()?)
            .await?;
        let page: Vec<SealedValue> = rows
            .into_iter()
            .map(|(rowid, aad, sealed, digest)| SealedValue {
                rowid,
                label: format!("{}.{} rowid {rowid}", self.col.table, self.col.column),
                aad: aad.into_bytes(),
                sealed,
                digest,
            })
            .collect();
        let Some(last) = page.last() else {
            return Ok(None);
        };
        self.after = last.rowid;
        Ok(Some(page))
    }
}
