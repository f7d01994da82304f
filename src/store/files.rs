//! Files' metadata (the blobs themselves are in [`super::blob`]) and the
//! intents that let the orphan sweep find an upload's blob before its row
//! commits.

use super::Db;
use super::rows::SealedFile;
use super::sql::audit_in;
use crate::model::{AuditEvent, FileKind, FileRecord};

/// An upload's intent was claimed by the orphan sweep before its row
/// could commit: the upload took longer than `orphan_grace_secs`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the upload outlived orphan_grace_secs and its blob was claimed by the orphan sweep; \
     raise orphan_grace_secs above upload_deadline_secs"
)]
pub struct IntentLost;

impl Db {
    /// Inserts a file row; `sealed_name` replaces `f.file_name`, which is
    /// not stored in clear. `intent` is the upload's intent
    /// ([`Db::intent_add`]) when it has one: it is dropped in the same
    /// transaction, and if the sweep has claimed it meanwhile (the upload
    /// outlived the grace) nothing is inserted and [`IntentLost`] is the
    /// error — the blob is the sweep's to delete.
    pub async fn insert_file(
        &self,
        f: &FileRecord,
        sealed_name: &[u8],
        intent: Option<i64>,
        audit: Option<&AuditEvent>,
    ) -> anyhow::Result<()> {
        let mut tx = self.begin_write().await?;
        if let Some(at) = intent {
            let n = sqlx::query("DELETE FROM blob_intents WHERE key = $1 AND created_at = $2")
                .bind(&f.file_id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(IntentLost.into());
            }
        }
        sqlx::query(
            "INSERT INTO files(file_id, tenant_id, kind, file_name, format, width, height, size, sha256, key_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&f.file_id)
        .bind(f.tenant_id)
        .bind(f.kind.as_str())
        .bind(sealed_name)
        .bind(f.format.name())
        .bind(f.width)
        .bind(f.height)
        .bind(f.size)
        .bind(&f.sha256)
        .bind(f.key_id)
        .bind(f.created_at)
        .execute(&mut *tx)
        .await?;
        audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a file's metadata (its blob is the caller's to delete).
    pub async fn delete_file(&self, file_id: &str) -> anyhow::Result<()> {
        self.exec_by("DELETE FROM files WHERE file_id = $1", file_id)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------- intents

    /// Records, before an upload's first byte goes to a shared store, that
    /// `key` may soon name an object no row protects.
    pub async fn intent_add(&self, key: &str, at: i64) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO blob_intents(key, created_at) VALUES ($1, $2)")
            .bind(key)
            .bind(at)
            .execute(self.pool()?)
            .await?;
        Ok(())
    }

    /// Forgets the intent of `key` (its blob is gone, or its upload failed
    /// and its blob was deleted).
    pub async fn intent_remove(&self, key: &str) -> anyhow::Result<()> {
        self.exec_by("DELETE FROM blob_intents WHERE key = $1", key)
            .await?;
        Ok(())
    }

    /// Intents the sweep may act on: doomed ones, and uploads' recorded
    /// at or before `until` (key, created_at).
    pub async fn intents_due(&self, until: i64) -> anyhow::Result<Vec<(String, i64)>> {
        self.rows_by(
            "SELECT key, created_at FROM blob_intents WHERE created_at <= $1",
            until,
        )
        .await
    }

    /// Claims an upload's intent for the sweep: marks it doomed unless its
    /// upload has committed (or it changed) meanwhile. After this the
    /// upload can no longer commit, so its blob may go.
    pub async fn intent_doom(&self, key: &str, at: i64) -> anyhow::Result<bool> {
        Ok(sqlx::query(
            "UPDATE blob_intents SET created_at = 0 WHERE key = $1 AND created_at = $2
                 AND NOT EXISTS (SELECT 1 FROM files WHERE file_id = $3)",
        )
        .bind(key)
        .bind(at)
        .bind(key)
        .execute(self.pool()?)
        .await?
        .rows_affected()
            == 1)
    }

    /// Every key with an intent (for consistency checks).
    pub async fn intent_keys(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT key FROM blob_intents")
            .fetch_all(self.pool()?)
            .await?)
    }

    // --------------------------------------------------------------- reads

    /// A file of `tenant_id` and its sealed name (`file_name` is left
    /// empty); another tenant's file is simply not found.
    pub async fn file(
        &self,
        tenant_id: i64,
        kind: FileKind,
        file_id: &str,
    ) -> anyhow::Result<Option<(FileRecord, Vec<u8>)>> {
        let row: Option<SealedFile> = sqlx::query_as(
            "SELECT f.*, p.user_id AS owner FROM files f LEFT JOIN people p ON p.id = f.person_id
                 WHERE f.file_id = $1 AND f.tenant_id = $2 AND f.kind = $3",
        )
        .bind(file_id)
        .bind(tenant_id)
        .bind(kind.as_str())
        .fetch_optional(self.pool()?)
        .await?;
        Ok(row.map(|SealedFile(record, name)| (record, name)))
    }

    /// Every file id referenced by metadata (for consistency checks).
    pub async fn file_ids(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT file_id FROM files")
            .fetch_all(self.pool()?)
            .await?)
    }

    /// How many files there are.
    pub async fn file_count(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM files")
            .fetch_one(self.pool()?)
            .await?;
        Ok(n as u64)
    }

    /// Every file in id order, `limit` at a time: (file_id, kind, digest
    /// of the sealed blob).
    pub fn file_digests(&self, limit: i64) -> FileDigests<'_> {
        FileDigests {
            db: self,
            after: String::new(),
            limit,
        }
    }

    /// Which of `ids` have a file row.
    pub async fn known_file_ids(&self, ids: &[String]) -> anyhow::Result<Vec<String>> {
        let mut known = Vec::new();
        for id in ids {
            let hit: Option<String> =
                sqlx::query_scalar("SELECT file_id FROM files WHERE file_id = $1")
                    .bind(id)
                    .fetch_optional(self.pool()?)
                    .await?;
            known.extend(hit);
        }
        Ok(known)
    }

    /// Door-access face files no door-access user refers to: what a crash
    /// between storing a face and recording it leaves.
    pub async fn dangling_face_files(&self) -> anyhow::Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT file_id FROM files WHERE kind IN ('acs_face', 'acs_face_crop')
               AND file_id NOT IN (SELECT face_file_id FROM acs_users WHERE face_file_id IS NOT NULL)
               AND file_id NOT IN (SELECT crop_file_id FROM acs_users WHERE crop_file_id IS NOT NULL)
             ORDER BY file_id",
        )
        .fetch_all(self.pool()?)
        .await?)
    }
}

/// A walk over every file's digest, page by page (see [`Db::file_digests`]).
pub struct FileDigests<'a> {
    db: &'a Db,
    after: String,
    limit: i64,
}

impl FileDigests<'_> {
    /// The next page; `None` after the last.
    pub async fn next(&mut self) -> anyhow::Result<Option<Vec<(String, String, String)>>> {
        let page: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT file_id, kind, sha256 FROM files WHERE file_id > $1 ORDER BY file_id LIMIT $2",
        )
        .bind(&self.after)
        .bind(self.limit)
        .fetch_all(self.db.pool()?)
        .await?;
        let Some((last, _, _)) = page.last() else {
            return Ok(None);
        };
        self.after = last.clone();
        Ok(Some(page))
    }
}
