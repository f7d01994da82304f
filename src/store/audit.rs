//! The audit log's table.

use super::Db;
use super::sql::{Tx, values_rows};
use crate::model::{AuditEvent, AuditFilter, AuditRecord};

/// Rows per INSERT statement (SQLite allows 32766 bound parameters).
const ROWS_PER_STATEMENT: usize = 500;

impl Db {
    /// Appends events atomically: as one statement when they fit in one
    /// (a statement is its own transaction: two round trips to the
    /// database fewer), else in one transaction.
    pub async fn insert_audit(&self, events: &[&AuditEvent], at_ms: i64) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        if events.len() <= ROWS_PER_STATEMENT {
            crate::faults::inject_eio!("audit.write");
            let sql = audit_sql(events.len());
            let insert = audit_insert(&sql, events, at_ms);
            return Ok(insert.execute(self.pool()?).await.map(drop)?);
        }
        let mut tx = self.pool()?.begin().await?;
        insert_audit_in(&mut tx, events, at_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stored biometric writes without their audit record of success:
    /// (action, tenant id, object). Each kind is the set of what is stored
    /// less the set of what the log records, so it costs one pass over
    /// each table, not a lookup per row.
    /// Only writes made at or after `since` (unix seconds) count.
    pub async fn unaudited_writes(
        &self,
        since: i64,
    ) -> anyhow::Result<Vec<(&'static str, i64, String)>> {
        const WRITES: &[(&str, &str)] = &[
            (
                "photo.upload",
                "SELECT tenant_id, file_id FROM files
                 WHERE kind = 'attendance_photo' AND created_at >= $2",
            ),
            (
                "photo.bind",
                "SELECT p.tenant_id, s.face_key FROM attendance_settings s
                 JOIN people p ON p.id = s.person_id WHERE s.updated_at >= $2",
            ),
            (
                "face.enrol",
                "SELECT p.tenant_id, a.face_file_id || ' ' || a.crop_file_id FROM acs_users a
                 JOIN people p ON p.id = a.person_id
                 JOIN files f ON f.file_id = a.face_file_id
                 WHERE a.crop_file_id IS NOT NULL AND f.created_at >= $2",
            ),
        ];
        let mut out = Vec::new();
        for (action, stored) in WRITES {
            let sql = format!(
                "{stored} EXCEPT SELECT tenant_id, object FROM audit_log
                 WHERE action = $1 AND result = 'ok' AND object IS NOT NULL"
            );
            let rows: Vec<(i64, String)> = sqlx::query_as(&sql)
                .bind(*action)
                .bind(since)
                .fetch_all(self.pool()?)
                .await?;
            out.extend(rows.into_iter().map(|(t, object)| (*action, t, object)));
        }
        out.sort();
        Ok(out)
    }

    /// Every stored template's slot as the upload's audit record names it
    /// (`fa/<algorithm>:<slot>`), with its tenant and person's user_id.
    /// Only templates written at or after `since` (unix seconds).
    pub async fn stored_template_slots(
        &self,
        since: i64,
    ) -> anyhow::Result<Vec<(i64, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT p.tenant_id, p.user_id, t.modality || '/' || t.algorithm || ':' || t.slot
             FROM templates t JOIN people p ON p.id = t.person_id WHERE t.updated_at >= $1",
        )
        .bind(since)
        .fetch_all(self.pool()?)
        .await?)
    }

    /// (tenant, subject, object) of every successful `action` recorded.
    pub async fn audited(&self, action: &str) -> anyhow::Result<Vec<(i64, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT tenant_id, subject, object FROM audit_log
             WHERE action = $1 AND result = 'ok' AND subject IS NOT NULL AND object IS NOT NULL",
        )
        .bind(action)
        .fetch_all(self.pool()?)
        .await?)
    }

    /// A page of the tenant's records that `f` lets through, in id order
    /// after `after_id`.
    pub async fn audit_page(
        &self,
        tenant_id: i64,
        f: &AuditFilter,
        after_id: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditRecord>> {
        Ok(sqlx::query_as(
            "SELECT * FROM audit_log
             WHERE tenant_id = $1 AND id > $2
               AND ($3 IS NULL OR subject = $3)
               AND ($4 IS NULL OR action = $4)
               AND ($5 IS NULL OR at_ms >= $5)
               AND ($6 IS NULL OR at_ms < $6)
             ORDER BY id LIMIT $7",
        )
        .bind(tenant_id)
        .bind(after_id)
        .bind(&f.subject)
        .bind(&f.action)
        .bind(f.since_ms)
        .bind(f.until_ms)
        .bind(limit)
        .fetch_all(self.pool()?)
        .await?)
    }
}

/// Appends events in `tx`, so that they commit with the write they
/// record.
pub(super) async fn insert_audit_in(
    tx: &mut Tx<'_>,
    events: &[&AuditEvent],
    at_ms: i64,
) -> anyhow::Result<()> {
    crate::faults::inject_eio!("audit.write");
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let sql = audit_sql(chunk.len());
        audit_insert(&sql, chunk, at_ms).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The INSERT of `rows` audit records (at most [`ROWS_PER_STATEMENT`]).
fn audit_sql(rows: usize) -> String {
    format!(
        "INSERT INTO audit_log(tenant_id, at_ms, actor_kind, actor, action, subject, object, result, log_id)
         VALUES {}",
        values_rows(rows, 9, 1)
    )
}

/// [`audit_sql`] bound to `events`.
fn audit_insert<'q>(
    sql: &'q str,
    events: &[&'q AuditEvent],
    at_ms: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for e in events {
        q = q
            .bind(e.tenant_id)
            .bind(at_ms)
            .bind(e.actor_kind.as_str())
            .bind(e.actor.clone())
            .bind(e.action)
            .bind(e.subject.clone())
            .bind(e.object.clone())
            .bind(e.result.clone())
            .bind(e.log_id.clone());
    }
    q
}
