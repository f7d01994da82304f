//! Punch records terminals report.

use super::Db;
use crate::model::CheckinRecord;

impl Db {
    /// Stores punch records; already stored ones are left alone.
    pub async fn insert_checkins(
        &self,
        tenant_id: i64,
        sn: &str,
        records: &[(i64, CheckinRecord)],
        now: i64,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool()?.begin().await?;
        for (person_id, c) in records {
            sqlx::query(
                "INSERT INTO checkins(tenant_id, person_id, sn, timestamp, pass_type, pass_method, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(tenant_id)
            .bind(person_id)
            .bind(sn)
            .bind(c.timestamp)
            .bind(c.pass_type)
            .bind(c.pass_method)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A person's punch records in `[from, to)`, oldest first.
    pub async fn checkins(
        &self,
        person_id: i64,
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<(String, CheckinRecord)>> {
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT sn, timestamp, pass_type, pass_method FROM checkins
             WHERE person_id = $1 AND timestamp >= $2 AND timestamp < $3 ORDER BY timestamp, sn",
        )
        .bind(person_id)
        .bind(from)
        .bind(to)
        .fetch_all(self.pool()?)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(sn, timestamp, pass_type, pass_method)| {
                let record = CheckinRecord {
                    timestamp,
                    pass_type,
                    pass_method,
                };
                (sn, record)
            })
            .collect())
    }
}
