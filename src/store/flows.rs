//! Punch records ("user flows"): what terminals report and what other
//! systems create over the API, one table.

use std::collections::HashSet;

use super::Db;
use super::audit::insert_audit_in;
use super::sql::{delete_files_in, placeholders};
use crate::model::{AuditEvent, CheckinRecord, UserFlow};

/// One punch a terminal reported, of a known person.
pub struct Punch {
    pub person_id: i64,
    pub user_id: String,
    pub record: CheckinRecord,
    /// Its capture photo, already stored (a file of kind `access_photo`).
    pub photo_file_id: Option<String>,
}

/// The punches of one checkin frame.
pub struct PunchFrame {
    pub tenant_id: i64,
    pub sn: String,
    pub punches: Vec<Punch>,
    pub now: i64,
}

impl PunchFrame {
    fn flows(&self) -> Vec<UserFlow> {
        let sn = &self.sn;
        self.punches
            .iter()
            .map(|p| UserFlow {
                record_id: crate::model::ids::platform_id(),
                tenant_id: self.tenant_id,
                person_id: p.person_id,
                check_time: p.record.timestamp,
                creator_id: p.user_id.clone(),
                location_name: sn.clone(),
                comment: String::new(),
                idempotent_id: Some(Punch::idempotent_id(sn, p.record.timestamp, &p.user_id)),
                sn: Some(sn.clone()),
                pass_type: p.record.pass_type,
                pass_method: p.record.pass_method,
                photo_file_id: p.photo_file_id.clone(),
                extras: Default::default(),
                created_at: self.now,
            })
            .collect()
    }
}

impl Punch {
    /// What makes a re-sent punch the same record: the terminal, the
    /// second and the person.
    pub fn idempotent_id(sn: &str, timestamp: i64, user_id: &str) -> String {
        format!("terminal:{sn}:{timestamp}:{user_id}")
    }
}

/// A door record as `acs/v1/access_records` lists it: the record and its
/// person's ids.
pub struct DoorRecord {
    pub flow: UserFlow,
    pub user_id: String,
    pub union_id: String,
}

/// What one expiry pass deleted in a tenant.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expired {
    pub records: u64,
    /// The capture photos' file ids (their blobs are the caller's to
    /// delete).
    pub photos: Vec<String>,
}

/// One record, as the API creates them (terminals' go as JSON, below).
const INSERT: &str = "INSERT INTO user_flows(record_id, tenant_id, person_id, check_time,
        creator_id, location_name, comment, idempotent_id, sn, pass_type, pass_method,
        photo_file_id, extras, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
    ON CONFLICT (tenant_id, idempotent_id) DO NOTHING";

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
        .bind(&f.photo_file_id)
        .bind(serde_json::to_string(&f.extras).expect("plain fields serialise"))
        .bind(f.created_at)
}

/// Terminals' records per INSERT when they travel as one JSON parameter.
const ROWS_PER_JSON_INSERT: usize = 5000;

/// The records as a JSON array of objects keyed by column: one
/// bound value for any number of records, so a frame's 200 records are
/// one statement and one round trip to the database, not 200.
fn rows_json(flows: &[&UserFlow]) -> String {
    let rows: Vec<serde_json::Value> = flows
        .iter()
        .map(|f| {
            serde_json::json!({
                "record_id": f.record_id, "tenant_id": f.tenant_id, "person_id": f.person_id,
                "check_time": f.check_time, "creator_id": f.creator_id,
                "location_name": f.location_name, "comment": f.comment,
                "idempotent_id": f.idempotent_id, "sn": f.sn, "pass_type": f.pass_type,
                "pass_method": f.pass_method, "photo_file_id": f.photo_file_id,
                "extras": serde_json::to_string(&f.extras).expect("plain fields serialise"),
                "created_at": f.created_at,
            })
        })
        .collect();
    serde_json::Value::from(rows).to_string()
}

/// Each engine's way of reading the rows of [`rows_json`] (SQLite's
/// json_each, PostgreSQL's jsonb_to_recordset); both skip the records
/// already stored and those of people erased since they were looked up
/// (whose rows would break the whole group on the foreign key), and name
/// the photos of the records they stored.
const INSERT_JSON_SQLITE: &str = "INSERT INTO user_flows(record_id, tenant_id, person_id,
        check_time, creator_id, location_name, comment, idempotent_id, sn, pass_type,
        pass_method, photo_file_id, extras, created_at)
    SELECT j.value ->> 'record_id', j.value ->> 'tenant_id', j.value ->> 'person_id',
        j.value ->> 'check_time', j.value ->> 'creator_id', j.value ->> 'location_name',
        j.value ->> 'comment', j.value ->> 'idempotent_id', j.value ->> 'sn',
        j.value ->> 'pass_type', j.value ->> 'pass_method', j.value ->> 'photo_file_id',
        j.value ->> 'extras', j.value ->> 'created_at'
    FROM json_each($1) AS j
    WHERE EXISTS (SELECT 1 FROM people p WHERE p.id = j.value ->> 'person_id')
    ON CONFLICT (tenant_id, idempotent_id) DO NOTHING RETURNING photo_file_id";
const INSERT_JSON_POSTGRES: &str = "INSERT INTO user_flows(record_id, tenant_id, person_id,
        check_time, creator_id, location_name, comment, idempotent_id, sn, pass_type,
        pass_method, photo_file_id, extras, created_at)
    SELECT r.record_id, r.tenant_id, r.person_id, r.check_time, r.creator_id, r.location_name,
        r.comment, r.idempotent_id, r.sn, r.pass_type, r.pass_method, r.photo_file_id,
        r.extras, r.created_at
    FROM jsonb_to_recordset($1::text::jsonb) AS r(record_id TEXT, tenant_id BIGINT,
        person_id BIGINT, check_time BIGINT, creator_id TEXT, location_name TEXT, comment TEXT,
        idempotent_id TEXT, sn TEXT, pass_type BIGINT, pass_method BIGINT, photo_file_id TEXT,
        extras TEXT, created_at BIGINT)
    WHERE EXISTS (SELECT 1 FROM people p WHERE p.id = r.person_id)
    ON CONFLICT (tenant_id, idempotent_id) DO NOTHING RETURNING photo_file_id";

impl Db {
    fn insert_json_sql(&self) -> &'static str {
        match self.backend {
            super::Backend::Sqlite => INSERT_JSON_SQLITE,
            super::Backend::Postgres => INSERT_JSON_POSTGRES,
        }
    }

    /// Which of these idempotent ids the tenant's records already hold.
    pub async fn idempotent_ids_taken(
        &self,
        tenant_id: i64,
        keys: &[String],
    ) -> anyhow::Result<HashSet<String>> {
        let mut taken = HashSet::new();
        for chunk in keys.chunks(200) {
            let sql = format!(
                "SELECT idempotent_id FROM user_flows WHERE tenant_id = $1 AND idempotent_id IN ({})",
                placeholders(chunk.len(), 2)
            );
            let mut q = sqlx::query_scalar(&sql).bind(tenant_id);
            for k in chunk {
                q = q.bind(k);
            }
            let found: Vec<String> = q.fetch_all(self.pool()?).await?;
            taken.extend(found);
        }
        Ok(taken)
    }

    /// Stores the punches terminals reported, every frame's in one
    /// transaction (group commit); one already stored (the same terminal,
    /// person and second: a re-sent frame) is left alone. The person is
    /// the record's creator; the terminal is its place. A capture photo
    /// becomes its person's (erased with them) in the same transaction;
    /// for each frame, the photos of punches that were already stored are
    /// returned, linked to nothing, for the caller to delete.
    pub async fn insert_checkins(&self, frames: &[PunchFrame]) -> anyhow::Result<Vec<Vec<String>>> {
        let flows: Vec<Vec<UserFlow>> = frames.iter().map(PunchFrame::flows).collect();
        let mut tx = self.begin_write().await?;
        // The photos of the records stored now: a re-sent record is
        // already there, a vanished person's is not stored.
        let mut linked = HashSet::new();
        let all: Vec<&UserFlow> = flows.iter().flatten().collect();
        for chunk in all.chunks(ROWS_PER_JSON_INSERT) {
            let rows = sqlx::query(self.insert_json_sql())
                .bind(rows_json(chunk))
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                if let Some(photo) = sqlx::Row::try_get::<Option<String>, _>(&row, 0)? {
                    linked.insert(photo);
                }
            }
        }
        let mut unlinked = Vec::with_capacity(frames.len());
        for frame in &flows {
            let mut mine = Vec::new();
            for f in frame {
                let Some(photo) = &f.photo_file_id else {
                    continue;
                };
                if linked.contains(photo) {
                    sqlx::query("UPDATE files SET person_id = $1 WHERE file_id = $2")
                        .bind(f.person_id)
                        .bind(photo)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    mine.push(photo.clone());
                }
            }
            unlinked.push(mine);
        }
        tx.commit().await?;
        Ok(unlinked)
    }

    /// The tenant's door records (terminal punches with a pass type) with
    /// `from <= check_time <= to`, newest first, after the keyset position
    /// `after` (check_time, record_id), at most `limit`; of one terminal
    /// when `sn` is given.
    pub async fn door_records(
        &self,
        tenant_id: i64,
        (from, to): (i64, i64),
        sn: Option<&str>,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> anyhow::Result<Vec<DoorRecord>> {
        use sqlx::Row;
        // After (t, id): the window ends at t (the index's range), and at t
        // itself only smaller ids are left.
        let (after_time, after_id) = after.unwrap_or((i64::MAX, ""));
        let first = after.is_none();
        let to = to.min(after_time);
        let rows = sqlx::query(
            "SELECT f.*, p.user_id AS p_user_id, p.union_id AS p_union_id
             FROM user_flows f JOIN people p ON p.id = f.person_id
             WHERE f.tenant_id = $1 AND f.sn IS NOT NULL AND f.pass_type IS NOT NULL
               AND f.check_time >= $2 AND f.check_time <= $3
               AND ($4 = '' OR f.sn = $4)
               AND ($5 = 1 OR f.check_time < $6 OR (f.check_time = $6 AND f.record_id < $7))
             ORDER BY f.check_time DESC, f.record_id DESC
             LIMIT $8",
        )
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .bind(sn.unwrap_or(""))
        .bind(i64::from(first))
        .bind(after_time)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool()?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DoorRecord {
                    flow: sqlx::FromRow::from_row(r)?,
                    user_id: r.try_get("p_user_id")?,
                    union_id: r.try_get("p_union_id")?,
                })
            })
            .collect()
    }

    /// Deletes up to `batch` records with `check_time < before` and their
    /// capture photos' rows, auditing per tenant what went (`audit(tenant_id,
    /// expired)`), in one transaction; returns what went by tenant (empty
    /// when nothing is left to expire). Each row is deleted and counted by
    /// one statement, so passes on several nodes count each record once.
    pub async fn expire_flows(
        &self,
        before: i64,
        batch: i64,
        audit: impl Fn(i64, &Expired) -> AuditEvent,
        now: i64,
    ) -> anyhow::Result<Vec<(i64, Expired)>> {
        let mut tx = self.begin_write().await?;
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "DELETE FROM user_flows WHERE record_id IN
                 (SELECT record_id FROM user_flows WHERE check_time < $1 LIMIT $2)
             RETURNING tenant_id, photo_file_id",
        )
        .bind(before)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_tenant: std::collections::BTreeMap<i64, Expired> = Default::default();
        for (tenant_id, photo) in rows {
            let e = by_tenant.entry(tenant_id).or_default();
            e.records += 1;
            e.photos.extend(photo);
        }
        for e in by_tenant.values() {
            delete_files_in(&mut tx, e.photos.iter().map(String::as_str)).await?;
        }
        let events: Vec<AuditEvent> = by_tenant.iter().map(|(t, e)| audit(*t, e)).collect();
        insert_audit_in(&mut tx, &events.iter().collect::<Vec<_>>(), now * 1000).await?;
        tx.commit().await?;
        Ok(by_tenant.into_iter().collect())
    }

    /// Capture photos created before `before` that no record names (a
    /// crash came between storing the photo and its record): their rows
    /// are deleted, the deletion audited per tenant (`audit(tenant_id,
    /// count)`), and their ids returned for the caller to delete the blobs.
    pub async fn delete_unlinked_access_photos(
        &self,
        before: i64,
        audit: impl Fn(i64, usize) -> AuditEvent,
        now: i64,
    ) -> anyhow::Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "DELETE FROM files
             WHERE kind = 'access_photo' AND created_at < $1
               AND NOT EXISTS (SELECT 1 FROM user_flows WHERE photo_file_id = files.file_id)
             RETURNING tenant_id, file_id",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let mut by_tenant: std::collections::BTreeMap<i64, usize> = Default::default();
        for (tenant_id, _) in &rows {
            *by_tenant.entry(*tenant_id).or_default() += 1;
        }
        let events: Vec<AuditEvent> = by_tenant.iter().map(|(t, n)| audit(*t, *n)).collect();
        insert_audit_in(&mut tx, &events.iter().collect::<Vec<_>>(), now * 1000).await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(|(_, id)| id).collect())
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

    /// Deletes the tenant's records among `record_ids` with their capture
    /// photos' rows, each photo's deletion audited (`audit(user_id,
    /// record_id)`) in the same transaction; returns the ids it deleted and
    /// the photos' file ids (their blobs are the caller's to delete).
    pub async fn delete_flows(
        &self,
        tenant_id: i64,
        record_ids: &[String],
        audit: impl Fn(&str, &str, &str) -> AuditEvent,
        now: i64,
    ) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        if record_ids.is_empty() {
            return Ok(Default::default());
        }
        let mut tx = self.begin_write().await?;
        let (mut deleted, mut photos, mut events) = (Vec::new(), Vec::new(), Vec::new());
        for id in record_ids {
            let gone: Option<(Option<String>, String)> = sqlx::query_as(
                "DELETE FROM user_flows WHERE tenant_id = $1 AND record_id = $2
                 RETURNING photo_file_id, creator_id",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((photo, user_id)) = gone else {
                continue;
            };
            if let Some(photo) = photo {
                events.push(audit(&user_id, id, &photo));
                photos.push(photo);
            }
            deleted.push(id.clone());
        }
        delete_files_in(&mut tx, photos.iter().map(String::as_str)).await?;
        insert_audit_in(&mut tx, &events.iter().collect::<Vec<_>>(), now * 1000).await?;
        tx.commit().await?;
        Ok((deleted, photos))
    }
}
