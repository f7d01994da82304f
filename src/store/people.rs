//! People: a tenant's users, the open ids apps know them by, their
//! attendance settings, and the reads device sync pages through.

use std::collections::HashMap;

use super::sql::{Tx, audit_in, placeholders, record_change};
use super::{Db, Upsert};
use crate::model::{
    AttendanceSetting, AuditEvent, BookKey, Change, DeviceUser, Person, PersonDraft, PersonKey,
    Stream,
};

/// Gives a person the id an app knows them by.
pub(super) async fn insert_open_id(
    tx: &mut Tx<'_>,
    open_id: &str,
    app_id: &str,
    person_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO open_ids(open_id, app_id, person_id) VALUES ($1, $2, $3)")
        .bind(open_id)
        .bind(app_id)
        .bind(person_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Takes the write lock on the person's tenant row first, as every write
/// that records a change must (erasure locks the tenant, then the
/// person's rows: the other order deadlocks on PostgreSQL).
pub(super) async fn lock_tenant_of(tx: &mut Tx<'_>, person_id: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE tenants SET perm_version = perm_version
         WHERE id = (SELECT tenant_id FROM people WHERE id = $1)",
    )
    .bind(person_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Tells terminals, in `tx`, that the person's face photo changed (an
/// update of them): those that make templates from photos are sent it.
pub(super) async fn photo_changed_in(
    tx: &mut Tx<'_>,
    person_id: i64,
    now: i64,
) -> anyhow::Result<()> {
    let (tenant_id, userid, user_type): (i64, String, i64) =
        sqlx::query_as("SELECT tenant_id, user_id, user_type FROM people WHERE id = $1")
            .bind(person_id)
            .fetch_one(&mut **tx)
            .await?;
    let change = Change {
        update_user: vec![DeviceUser { userid, user_type }],
        ..Change::default()
    };
    super::changes::record_change_in(tx, tenant_id, &change, now).await?;
    Ok(())
}

impl Db {
    /// Creates the person or updates name / employee_no / extra. A new
    /// person gets the given (app_id, open_id) pairs. What terminals are
    /// told is the caller's policy: `tell(old, new)` is called with the
    /// person's previous user type (`None` when created) and the new one,
    /// and the change it returns is logged in the same transaction, so
    /// that neither the person nor the change exists without the other.
    pub async fn upsert_person(
        &self,
        tenant_id: i64,
        draft: &PersonDraft,
        union_id: &str,
        open_ids: &[(String, String)],
        now: i64,
        tell: impl FnOnce(Option<i64>, i64) -> Option<Change>,
    ) -> Result<(Person, Upsert), sqlx::Error> {
        let mut tx = self.pool()?.begin().await?;
        // Write first (see the module comment in mod.rs): an insert that does nothing
        // on conflict still takes the write lock.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO people(tenant_id, user_id, union_id, name, employee_no, extra, user_type, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT(tenant_id, user_id) DO NOTHING RETURNING id",
        )
        .bind(tenant_id)
        .bind(draft.user_id.as_str())
        .bind(union_id)
        .bind(&draft.name)
        .bind(draft.employee_no.as_deref())
        .bind(draft.extra.to_string())
        .bind(draft.user_type.unwrap_or_default().as_i64())
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = if let Some(id) = inserted {
            for (app_id, open_id) in open_ids {
                insert_open_id(&mut tx, open_id, app_id, id).await?;
            }
            if let Some(change) = tell(None, draft.user_type.unwrap_or_default().as_i64()) {
                record_change(&mut tx, tenant_id, &change, now).await?;
            }
            Upsert::Created
        } else {
            let old_type: i64 = sqlx::query_scalar(
                "SELECT user_type FROM people WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant_id)
            .bind(draft.user_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
            // No user_type given (a CSV without the column): keep it.
            let new_type = draft.user_type.map_or(old_type, |t| t.as_i64());
            let changed = sqlx::query(
                "UPDATE people SET name = $1, employee_no = $2, extra = $3, user_type = $4, updated_at = $5
                 WHERE tenant_id = $6 AND user_id = $7
                   AND (name IS DISTINCT FROM $8 OR employee_no IS DISTINCT FROM $9 OR extra IS DISTINCT FROM $10 OR user_type IS DISTINCT FROM $11)",
            )
            .bind(&draft.name)
            .bind(draft.employee_no.as_deref())
            .bind(draft.extra.to_string())
            .bind(new_type)
            .bind(now)
            .bind(tenant_id)
            .bind(draft.user_id.as_str())
            .bind(&draft.name)
            .bind(draft.employee_no.as_deref())
            .bind(draft.extra.to_string())
            .bind(new_type)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if let Some(change) = tell(Some(old_type), new_type) {
                record_change(&mut tx, tenant_id, &change, now).await?;
            }
            if changed > 0 {
                Upsert::Updated
            } else {
                Upsert::Unchanged
            }
        };
        let person = sqlx::query_as("SELECT * FROM people WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant_id)
            .bind(draft.user_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((person, outcome))
    }

    /// The tenant's person whose `key` id is `value`.
    pub async fn person_by(
        &self,
        tenant_id: i64,
        key: PersonKey,
        value: &str,
    ) -> anyhow::Result<Option<Person>> {
        let column = match key {
            PersonKey::UserId => "user_id",
            PersonKey::EmployeeNo => "employee_no",
            PersonKey::UnionId => "union_id",
        };
        let sql = format!("SELECT * FROM people WHERE tenant_id = $1 AND {column} = $2");
        Ok(sqlx::query_as(&sql)
            .bind(tenant_id)
            .bind(value)
            .fetch_optional(self.pool()?)
            .await?)
    }

    /// The person with this row id, whichever tenant's.
    /// The tenant's people among `values` of `key` (user_id, union_id or
    /// employee_no), in one query: the values travel as one JSON parameter.
    pub async fn people_by(
        &self,
        tenant_id: i64,
        key: PersonKey,
        values: &[String],
    ) -> anyhow::Result<Vec<Person>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let column = match key {
            PersonKey::UserId => "user_id",
            PersonKey::EmployeeNo => "employee_no",
            PersonKey::UnionId => "union_id",
        };
        let list = match self.backend {
            super::Backend::Sqlite => "SELECT value FROM json_each($2)",
            super::Backend::Postgres => "SELECT jsonb_array_elements_text($2::text::jsonb)",
        };
        let sql = format!("SELECT * FROM people WHERE tenant_id = $1 AND {column} IN ({list})");
        Ok(sqlx::query_as(&sql)
            .bind(tenant_id)
            .bind(serde_json::to_string(values)?)
            .fetch_all(self.pool()?)
            .await?)
    }

    pub async fn person(&self, person_id: i64) -> anyhow::Result<Option<Person>> {
        self.row_by("SELECT * FROM people WHERE id = $1", person_id)
            .await
    }

    /// The person an app knows under `open_id`.
    pub async fn person_by_open_id(
        &self,
        app_id: &str,
        open_id: &str,
    ) -> anyhow::Result<Option<Person>> {
        Ok(sqlx::query_as(
            "SELECT p.* FROM people p JOIN open_ids o ON o.person_id = p.id
             WHERE o.app_id = $1 AND o.open_id = $2",
        )
        .bind(app_id)
        .bind(open_id)
        .fetch_optional(self.pool()?)
        .await?)
    }

    /// The tenant's people, by user id.
    pub async fn people(&self, tenant_id: i64) -> anyhow::Result<Vec<Person>> {
        self.rows_by(
            "SELECT * FROM people WHERE tenant_id = $1 ORDER BY user_id",
            tenant_id,
        )
        .await
    }

    /// (app_id, open_id) pairs of a person.
    pub async fn open_ids_of(&self, person_id: i64) -> anyhow::Result<Vec<(String, String)>> {
        self.rows_by(
            "SELECT app_id, open_id FROM open_ids WHERE person_id = $1 ORDER BY app_id",
            person_id,
        )
        .await
    }

    // ---------------------------------------------------------- attendance

    /// Sets a person's attendance face and makes the photo theirs, with
    /// the write's audit record.
    pub async fn set_attendance(
        &self,
        person_id: i64,
        s: &AttendanceSetting,
        now: i64,
        audit: Option<&AuditEvent>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool()?.begin().await?;
        lock_tenant_of(&mut tx, person_id).await?;
        sqlx::query(
            "INSERT INTO attendance_settings(person_id, face_key, face_key_open, face_key_update_time, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(person_id) DO UPDATE SET face_key = excluded.face_key,
                 face_key_open = excluded.face_key_open,
                 face_key_update_time = excluded.face_key_update_time,
                 updated_at = excluded.updated_at",
        )
        .bind(person_id)
        .bind(&s.face_key)
        .bind(i64::from(s.face_key_open))
        .bind(s.face_key_update_time)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // The photo is theirs from now on, for erasure.
        sqlx::query("UPDATE files SET person_id = $1 WHERE file_id = $2")
            .bind(person_id)
            .bind(&s.face_key)
            .execute(&mut *tx)
            .await?;
        photo_changed_in(&mut tx, person_id, now).await?;
        audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A person's attendance settings, if they have any.
    pub async fn attendance(&self, person_id: i64) -> anyhow::Result<Option<AttendanceSetting>> {
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT face_key, face_key_open, face_key_update_time FROM attendance_settings WHERE person_id = $1",
        )
        .bind(person_id)
        .fetch_optional(self.pool()?)
        .await?;
        Ok(
            row.map(|(face_key, open, face_key_update_time)| AttendanceSetting {
                face_key,
                face_key_open: open != 0,
                face_key_update_time,
            }),
        )
    }

    // --------------------------------------------------------- device sync

    /// One page of a list terminal `sn` pulls (through its book), in a stable
    /// order, with the total, the list's version and the book they were
    /// read at (one read snapshot, so all agree). The staff
    /// list is everyone but visitors; the visitor list holds visitors only,
    /// and only through rules (none on a terminal bound to none).
    pub async fn people_page(
        &self,
        tenant_id: i64,
        (list, sn): (Stream, &str),
        (after, offset, limit): (i64, i64, i64),
    ) -> anyhow::Result<(Vec<Person>, i64, i64, BookKey)> {
        let mut tx = self.pool()?.begin().await?;
        if self.backend == super::Backend::Postgres {
            // One snapshot for the version, the book and the page (SQLite's
            // read transaction is one already).
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let version: i64 = sqlx::query_scalar(match list {
            Stream::People => "SELECT perm_version FROM tenants WHERE id = $1",
            Stream::Visitors => "SELECT visitor_version FROM tenants WHERE id = $1",
        })
        .bind(tenant_id)
        .fetch_one(&mut *tx)
        .await?;
        // The book as of that version: a rule change committed between
        // the two reads would otherwise page an old book under a new
        // version, which the terminal then never corrects.
        let book: Option<Option<String>> =
            sqlx::query_scalar("SELECT access_rules FROM devices WHERE sn = $1")
                .bind(sn)
                .fetch_optional(&mut *tx)
                .await?;
        let book: BookKey = super::books::parse_key(book.flatten())?;
        let book = &book;
        let kind = match list {
            Stream::People => " AND user_type <> 1",
            Stream::Visitors => " AND user_type = 1",
        };
        let within = |first: usize| match book {
            None if list == Stream::Visitors => " AND 1 = 0".to_string(),
            None => String::new(),
            Some(numbers) if numbers.is_empty() => " AND 1 = 0".to_string(),
            Some(numbers) => format!(
                " AND id IN (SELECT person_id FROM access_rule_people WHERE rule_number IN ({}))",
                placeholders(numbers.len(), first)
            ),
        };
        let numbers = book.as_deref().unwrap_or_default();
        // People after id `after` only (0: from the first), so that a
        // reader paging by id misses no one when earlier people go.
        let count = format!(
            "SELECT COUNT(*) FROM people WHERE tenant_id = $1 AND id > $2{kind}{}",
            within(3)
        );
        let mut q = sqlx::query_scalar(&count).bind(tenant_id).bind(after);
        for n in numbers {
            q = q.bind(n);
        }
        let total: i64 = q.fetch_one(&mut *tx).await?;
        let page = format!(
            "SELECT * FROM people WHERE tenant_id = $1 AND id > $4{kind}{} ORDER BY id
             LIMIT $2 OFFSET $3",
            within(5)
        );
        let mut q = sqlx::query_as(&page)
            .bind(tenant_id)
            .bind(limit)
            .bind(offset)
            .bind(after);
        for n in numbers {
            q = q.bind(n);
        }
        let people = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok((people, total, version, book.clone()))
    }

    /// The tenant's people among `users`, in one query.
    pub async fn people_by_device_ids(
        &self,
        tenant_id: i64,
        users: &[DeviceUser],
    ) -> anyhow::Result<HashMap<DeviceUser, Person>> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        // The pairs travel as one JSON parameter (one bound value, however
        // many users: a frame's 200 are one lookup), read as a table by
        // each engine's JSON functions.
        let sql = match self.backend {
            super::Backend::Sqlite => {
                // CROSS JOIN keeps the pairs the outer loop (SQLite's
                // planner takes it as an order): one index lookup a pair,
                // not a scan of the tenant a pair.
                "SELECT p.* FROM json_each($2) w
                 CROSS JOIN people p ON p.tenant_id = $1 AND p.user_id = w.value ->> 'u'
                    AND p.user_type = w.value ->> 't'"
            }
            super::Backend::Postgres => {
                "SELECT p.* FROM jsonb_to_recordset($2::text::jsonb) AS w(u TEXT, t BIGINT)
                 JOIN people p ON p.tenant_id = $1 AND p.user_id = w.u AND p.user_type = w.t"
            }
        };
        let pairs: Vec<serde_json::Value> = users
            .iter()
            .map(|u| serde_json::json!({"u": u.userid, "t": u.user_type}))
            .collect();
        let people: Vec<Person> = sqlx::query_as(sql)
            .bind(tenant_id)
            .bind(serde_json::Value::from(pairs).to_string())
            .fetch_all(self.pool()?)
            .await?;
        Ok(people
            .into_iter()
            .map(|p| {
                let key = DeviceUser {
                    userid: p.user_id.clone(),
                    user_type: p.user_type.as_i64(),
                };
                (key, p)
            })
            .collect())
    }
}
