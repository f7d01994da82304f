//! Erasure: removing a person and everything stored about them, and
//! making sure SQLite's files keep no copy of what was deleted.

use std::time::Duration;

use super::sql::delete_files_in;
use super::{Backend, Db, audit, changes};
use crate::model::{AuditEvent, Change, Person};

impl Db {
    /// Erases a person in one transaction: every photo ever bound to them
    /// (rows only; the blobs are the caller's to delete afterwards, and a
    /// crash first leaves orphans the start-up sweep removes), the person
    /// and, by cascade, their settings, door access, templates, enrolments,
    /// punch records, open ids and tokens. Terminals are told through the
    /// change log (`change`), and the erasure is audited in the same
    /// transaction with the record `audit(files, templates)` returns, so
    /// that no erasure goes unrecorded. Returns the erased files' ids and
    /// the template count.
    pub async fn erase_person(
        &self,
        person: &Person,
        change: &Change,
        audit: impl FnOnce(usize, u64) -> AuditEvent,
        now: i64,
    ) -> anyhow::Result<(Vec<String>, u64)> {
        let mut tx = self.pool()?.begin().await?;
        // Write first (see the module comment in mod.rs): take the write lock
        // before reading. The tenant's row first, as access writes take it
        // (store::access): the person's row after it, never the other way
        // round, or the two deadlock on PostgreSQL.
        sqlx::query("UPDATE tenants SET access_due = access_due WHERE id = $1")
            .bind(person.tenant_id)
            .execute(&mut *tx)
            .await?;
        let gone = sqlx::query("UPDATE people SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(person.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        anyhow::ensure!(gone == 1, "person {} vanished", person.id);
        let files: Vec<String> = sqlx::query_scalar(
            "SELECT file_id FROM files WHERE person_id = $1
             UNION SELECT face_key FROM attendance_settings WHERE person_id = $1
             UNION SELECT face_file_id FROM acs_users WHERE person_id = $1 AND face_file_id IS NOT NULL
             UNION SELECT crop_file_id FROM acs_users WHERE person_id = $1 AND crop_file_id IS NOT NULL",
        )
        .bind(person.id)
        .fetch_all(&mut *tx)
        .await?;
        let templates: i64 =
            sqlx::query_scalar("SELECT count(*) FROM templates WHERE person_id = $1")
                .bind(person.id)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM people WHERE id = $1")
            .bind(person.id)
            .execute(&mut *tx)
            .await?;
        delete_files_in(&mut tx, files.iter().map(String::as_str)).await?;
        changes::record_change_in(&mut tx, person.tenant_id, change, now).await?;
        let audit = audit(files.len(), templates as u64);
        audit::insert_audit_in(&mut tx, &[&audit], now * 1000).await?;
        // The person's user tokens went with their row (ON DELETE CASCADE).
        self.tokens_revoked(&mut tx).await?;
        tx.commit().await?;
        Ok((files, templates as u64))
    }

    /// Folds the write-ahead log into the database and empties it, so
    /// that deleted pages survive in neither file. Readers can hold the
    /// log for a moment: retried briefly, then left to the next checkpoint.
    /// PostgreSQL has neither file; its dead rows (sealed values only) go
    /// when vacuum reuses their space.
    pub async fn checkpoint_truncate(&self) -> anyhow::Result<bool> {
        if self.backend == Backend::Postgres {
            return Ok(true);
        }
        for _ in 0..50 {
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(self.pool()?)
                .await?;
            if busy == 0 {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(false)
    }
}
