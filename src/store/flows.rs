//! Punch records ("user flows"): what terminals report and what other
//! systems create over the API, one table.

use super::Db;
use super::sql::placeholders;
use crate::model::{CheckinRecord, UserFlow};

/// A record id: a random 63-bit number in decimal (the platform's ids are
/// numbers of up to 19 digits).
pub fn new_record_id() -> String {
    (u64::from_le_bytes(crate::model::ids::random_bytes::<8>()) >> 1).to_string()
}

/// One punch a terminal reported, of a known person.
pub struct Punch {
    pub person_id: i64,
    pub user_id: String,
    pub record: CheckinRecord,
}

const INSERT: &str = "INSERT INTO user_flows(record_id, tenant_id, person_id, check_time,
        creator_id, location_name, comment, idempotent_id, sn, pass_type, pass_method,
        extras, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING";

fn insert(f: &UserFlow) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(INSERT)
        .bind(&f.record_id)
        .bind(f.tenant_id)
        .bind(f.person_id)
        .bind(f.check_time)
        .bind(&f.creator_id)
        .bind(&f.location_name)
        .bind(&f.comment)
        .bind(&f.idempotent_id)
        .bind(&f.sn)
        .bind(f.pass_type)
        .bind(f.pass_method)
        .bind(serde_json::to_string(&f.extras).expect("plain fields serialise"))
        .bind(f.created_at)
}

impl Db {
    /// Stores the punches a terminal reported; one already stored (the
    /// same terminal, person and second: a re-sent frame) is left alone.
    /// The person is the record's creator; the terminal is its place.
    pub async fn insert_checkins(
        &self,
        tenant_id: i64,
        sn: &str,
        punches: &[Punch],
        now: i64,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool()?.begin().await?;
        for p in punches {
            let flow = UserFlow {
                record_id: new_record_id(),
                tenant_id,
                person_id: p.person_id,
                check_time: p.record.timestamp,
                creator_id: p.user_id.clone(),
                location_name: sn.to_string(),
                comment: String::new(),
                idempotent_id: Some(format!(
                    "terminal:{sn}:{}:{}",
                    p.record.timestamp, p.user_id
                )),
                sn: Some(sn.to_string()),
                pass_type: p.record.pass_type,
                pass_method: p.record.pass_method,
                extras: Default::default(),
                created_at: now,
            };
            insert(&flow).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A person's terminal punches in `[from, to)`, oldest first:
    /// (sn, record).
    pub async fn checkins(
        &self,
        person_id: i64,
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<(String, CheckinRecord)>> {
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT sn, check_time, pass_type, pass_method FROM user_flows
             WHERE person_id = $1 AND sn IS NOT NULL AND check_time >= $2 AND check_time < $3
             ORDER BY check_time, sn",
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

    /// Stores records in one transaction and returns them as stored: a
    /// record whose `idempotent_id` the tenant already has is not stored
    /// again, and the stored one is returned in its place.
    pub async fn create_flows(&self, flows: &[UserFlow]) -> anyhow::Result<Vec<UserFlow>> {
        let mut tx = self.pool()?.begin().await?;
        let mut out = Vec::with_capacity(flows.len());
        for f in flows {
            insert(f).execute(&mut *tx).await?;
            let stored: Option<UserFlow> = match &f.idempotent_id {
                Some(key) => {
                    sqlx::query_as(
                        "SELECT * FROM user_flows WHERE tenant_id = $1 AND idempotent_id = $2",
                    )
                    .bind(f.tenant_id)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await?
                }
                None => {
                    sqlx::query_as("SELECT * FROM user_flows WHERE record_id = $1")
                        .bind(&f.record_id)
                        .fetch_optional(&mut *tx)
                        .await?
                }
            };
            out.push(stored.ok_or_else(|| anyhow::anyhow!("a stored record is not there"))?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The records of these people with `from <= check_time <= to`, by
    /// time.
    pub async fn flows_of(
        &self,
        person_ids: &[i64],
        from: i64,
        to: i64,
    ) -> anyhow::Result<Vec<UserFlow>> {
        if person_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM user_flows
             WHERE check_time >= $1 AND check_time <= $2 AND person_id IN ({})
             ORDER BY check_time, record_id",
            placeholders(person_ids.len(), 3)
        );
        let mut q = sqlx::query_as(&sql).bind(from).bind(to);
        for id in person_ids {
            q = q.bind(id);
        }
        Ok(q.fetch_all(self.pool()?).await?)
    }

    /// A record of the tenant.
    pub async fn flow(&self, tenant_id: i64, record_id: &str) -> anyhow::Result<Option<UserFlow>> {
        Ok(
            sqlx::query_as("SELECT * FROM user_flows WHERE tenant_id = $1 AND record_id = $2")
                .bind(tenant_id)
                .bind(record_id)
                .fetch_optional(self.pool()?)
                .await?,
        )
    }

    /// Deletes the tenant's records among `record_ids`; returns the ids it
    /// deleted.
    pub async fn delete_flows(
        &self,
        tenant_id: i64,
        record_ids: &[String],
    ) -> anyhow::Result<Vec<String>> {
        if record_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool()?.begin().await?;
        let mut deleted = Vec::new();
        for id in record_ids {
            let r = sqlx::query("DELETE FROM user_flows WHERE tenant_id = $1 AND record_id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 1 {
                deleted.push(id.clone());
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
