//! Enrolments: a request that a terminal capture someone's face or
//! fingerprint, from queued to sent to finished.

use super::Db;
use super::sql::placeholders;
use crate::model::Enrolment;

impl Db {
    pub async fn insert_enrolment(&self, e: &Enrolment) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO enrolments(oper_id, tenant_id, person_id, sn, kind, file_ids, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&e.oper_id)
        .bind(e.tenant_id)
        .bind(e.person_id)
        .bind(&e.sn)
        .bind(&e.kind)
        .bind(serde_json::to_string(&e.file_ids)?)
        .bind(&e.status)
        .bind(e.created_at)
        .execute(self.pool()?)
        .await?;
        Ok(())
    }

    pub async fn enrolment(&self, oper_id: &str) -> anyhow::Result<Option<Enrolment>> {
        self.row_by("SELECT * FROM enrolments WHERE oper_id = $1", oper_id)
            .await
    }

    /// Enrolments waiting for these (online) devices to be told.
    pub async fn queued_enrolments(&self, sns: &[String]) -> anyhow::Result<Vec<Enrolment>> {
        let mut found = Vec::new();
        for chunk in sns.chunks(500) {
            let sql = format!(
                "SELECT * FROM enrolments WHERE status = 'queued' AND sn IN ({})",
                placeholders(chunk.len(), 1)
            );
            let mut q = sqlx::query_as::<_, Enrolment>(&sql);
            for sn in chunk {
                q = q.bind(sn.as_str());
            }
            found.extend(q.fetch_all(self.pool()?).await?);
        }
        found.sort_by_key(|e| e.created_at);
        Ok(found)
    }

    pub async fn open_enrolments(&self, sn: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM enrolments WHERE sn = $1 AND status IN ('queued', 'sent')",
        )
        .bind(sn)
        .fetch_one(self.pool()?)
        .await?)
    }

    /// Moves an enrolment from `from` to `to`; `false` if it was not in `from`.
    pub async fn move_enrolment(
        &self,
        oper_id: &str,
        from: &[&str],
        to: &str,
        result: Option<(i64, &str)>,
        now: i64,
    ) -> anyhow::Result<bool> {
        let finished = matches!(to, "succeeded" | "failed" | "timed_out" | "cancelled");
        let sql = format!(
            "UPDATE enrolments SET status = $1, errcode = COALESCE($2, errcode),
                    errmsg = COALESCE($3, errmsg), finished_at = $4
             WHERE oper_id = $5 AND status IN ({})",
            placeholders(from.len(), 6)
        );
        let mut q = sqlx::query(&sql)
            .bind(to)
            .bind(result.map(|r| r.0))
            .bind(result.map(|r| r.1))
            .bind(finished.then_some(now))
            .bind(oper_id);
        for f in from {
            q = q.bind(*f);
        }
        let r = q.execute(self.pool()?).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks enrolments started before `before` and still open as timed
    /// out; a page that old is closed on the device by now, so an exit
    /// still owed for it is dropped.
    pub async fn expire_enrolments(&self, before: i64, now: i64) -> anyhow::Result<u64> {
        let pool = self.pool()?;
        sqlx::query("UPDATE enrolments SET exit_owed = 0 WHERE exit_owed = 1 AND created_at < $1")
            .bind(before)
            .execute(pool)
            .await?;
        Ok(sqlx::query(
            "UPDATE enrolments SET status = 'timed_out', finished_at = $1
             WHERE status IN ('queued', 'sent') AND created_at < $2",
        )
        .bind(now)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected())
    }

    /// Cancels a sent enrolment; one with a capture page (not `photo`) then
    /// owes its device a `push_exit_page`. `false` if it was not sent.
    pub async fn cancel_sent_enrolment(&self, oper_id: &str, now: i64) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE enrolments SET status = 'cancelled', finished_at = $1,
                    exit_owed = CASE WHEN kind = 'photo' THEN 0 ELSE 1 END
             WHERE oper_id = $2 AND status = 'sent'",
        )
        .bind(now)
        .bind(oper_id)
        .execute(self.pool()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Cancelled enrolments of these devices that still owe an exit page.
    pub async fn owed_exits(&self, sns: &[String]) -> anyhow::Result<Vec<Enrolment>> {
        if sns.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM enrolments WHERE exit_owed = 1 AND sn IN ({})",
            placeholders(sns.len(), 1)
        );
        let mut q = sqlx::query_as(&sql);
        for sn in sns {
            q = q.bind(sn);
        }
        Ok(q.fetch_all(self.pool()?).await?)
    }

    /// Sets whether an enrolment owes its exit page; `false` if it already
    /// was so (another node claimed the exit first).
    pub async fn set_exit_owed(&self, oper_id: &str, owed: bool) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE enrolments SET exit_owed = $1 WHERE oper_id = $2 AND exit_owed = $3",
        )
        .bind(i64::from(owed))
        .bind(oper_id)
        .bind(i64::from(!owed))
        .execute(self.pool()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
