//! Metadata of the device protocol: terminals, templates, the tenant's
//! change log, enrolments and punch records.

use std::collections::HashMap;

use sqlx::Row;

use super::{Db, person_from_row};
use crate::model::{
    AuditEvent, Change, CheckinRecord, DeviceKey, DeviceRow, DeviceUser, Enrolment, Modality,
    Person, PersonTemplates, StoredTemplate,
};

impl Db {
    // ------------------------------------------------------------- devices

    pub async fn insert_device(
        &self,
        sn: &str,
        tenant_id: i64,
        sealed_secret_no: &[u8],
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO devices(sn, tenant_id, secret_no, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(sn)
        .bind(tenant_id)
        .bind(sealed_secret_no)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn device(&self, sn: &str) -> anyhow::Result<Option<DeviceRow>> {
        let row = sqlx::query("SELECT * FROM devices WHERE sn = $1")
            .bind(sn)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| device_from_row(&r)))
    }

    pub async fn devices(&self, tenant_id: i64) -> anyhow::Result<Vec<DeviceRow>> {
        let rows = sqlx::query("SELECT * FROM devices WHERE tenant_id = $1 ORDER BY sn")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(device_from_row).collect())
    }

    /// Records a `register` and its new active code, unless its
    /// (timestamp, nonce) is older than or the same as the last one's — a
    /// replay. `false` for a replay.
    pub async fn record_register(
        &self,
        sn: &str,
        ts: i64,
        nonce: &str,
        code_hash: &str,
    ) -> anyhow::Result<bool> {
        let r = sqlx::query(
            "UPDATE devices SET active_code_hash = $1, register_ts = $2, register_nonce = $3
             WHERE sn = $4 AND (register_ts IS NULL OR register_ts < $5
                               OR (register_ts = $6 AND register_nonce IS DISTINCT FROM $7))",
        )
        .bind(code_hash)
        .bind(ts)
        .bind(nonce)
        .bind(sn)
        .bind(ts)
        .bind(ts)
        .bind(nonce)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn device_by(
        &self,
        column: DeviceKey,
        hash: &str,
    ) -> anyhow::Result<Option<DeviceRow>> {
        let sql = match column {
            DeviceKey::ActiveCode => "SELECT * FROM devices WHERE active_code_hash = $1",
            DeviceKey::Secret => "SELECT * FROM devices WHERE secret_hash = $1",
        };
        let row = sqlx::query(sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| device_from_row(&r)))
    }

    /// Binds (with the secret `active` will hand out) or unbinds; unbinding
    /// kills the secret and the active code. `false` if nothing changed.
    pub async fn set_bound(
        &self,
        sn: &str,
        tenant_id: i64,
        secret: Option<(&[u8], &str)>,
    ) -> anyhow::Result<bool> {
        let r = match secret {
            Some((sealed, hash)) => {
                sqlx::query(
                    "UPDATE devices SET bound = 1, secret = $1, secret_hash = $2
                     WHERE sn = $3 AND tenant_id = $4 AND bound = 0",
                )
                .bind(sealed)
                .bind(hash)
                .bind(sn)
                .bind(tenant_id)
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE devices SET bound = 0, secret = NULL, secret_hash = NULL,
                            active_code_hash = NULL, seen_version = 0
                     WHERE sn = $1 AND tenant_id = $2 AND bound = 1",
                )
                .bind(sn)
                .bind(tenant_id)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(r.rows_affected() == 1)
    }

    pub async fn unbound_devices(&self, tenant_id: i64) -> anyhow::Result<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT sn FROM devices WHERE tenant_id = $1 AND bound = 0")
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn set_subscription(
        &self,
        sn: &str,
        firmware: &str,
        fa: &[String],
        fp: &[String],
        now: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE devices SET firmware_version = $1, fa_algorithms = $2, fp_algorithms = $3, last_seen = $4
             WHERE sn = $5",
        )
        .bind(firmware)
        .bind(serde_json::to_string(fa)?)
        .bind(serde_json::to_string(fp)?)
        .bind(now)
        .bind(sn)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that the device was sent everything up to `version`.
    pub async fn set_seen(&self, sn: &str, version: i64, now: i64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE devices SET seen_version = MAX(seen_version, $1), last_seen = $2 WHERE sn = $3",
        )
        .bind(version)
        .bind(now)
        .bind(sn)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------- changes

    pub async fn perm_version(&self, tenant_id: i64) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT perm_version FROM tenants WHERE id = $1")
                .bind(tenant_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Current versions of all tenants that have any.
    pub async fn perm_versions(&self) -> anyhow::Result<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT id, perm_version FROM tenants WHERE perm_version > 0")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("id"), r.get("perm_version")))
            .collect())
    }

    /// Records one change as the tenant's next version, in its own
    /// transaction; returns the version.
    pub async fn record_change(
        &self,
        tenant_id: i64,
        change: &Change,
        now: i64,
    ) -> anyhow::Result<i64> {
        let mut tx = self.pool.begin().await?;
        let v = record_change_in(&mut tx, tenant_id, change, now).await?;
        tx.commit().await?;
        Ok(v)
    }

    /// The changes after `after`, oldest first, at most `limit`.
    pub async fn changes_after(
        &self,
        tenant_id: i64,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<(i64, Change)>> {
        let rows = sqlx::query(
            "SELECT perm_version, changes FROM tenant_changes
             WHERE tenant_id = $1 AND perm_version > $2 ORDER BY perm_version LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let json: String = r.get("changes");
                Ok((r.get("perm_version"), serde_json::from_str(&json)?))
            })
            .collect()
    }

    // ----------------------------------------------------------- templates

    /// Applies the template writes of one upload in one transaction: sets
    /// and deletes that change nothing are skipped (compared by digest),
    /// each person whose templates changed gets its counters bumped, and
    /// if anyone changed the tenant's version rises by exactly one.
    /// Returns the people that changed and the new version.
    ///
    /// The current digests are read in one query and the effective writes
    /// go out as multi-row statements: a full frame is 2,400 templates, and
    /// a statement per template costs more than the work itself.
    ///
    /// `audit`, the upload's records, commit with the templates.
    pub async fn apply_templates(
        &self,
        tenant_id: i64,
        people: &[PersonTemplates],
        now: i64,
        audit: &[AuditEvent],
    ) -> anyhow::Result<(Vec<usize>, Option<i64>)> {
        type Key = (i64, &'static str, String, i64);
        /// A slot, the state it should end in (`None`: deleted), its person's index.
        type Final<'a> = (Key, Option<&'a (Vec<u8>, String)>, usize);
        let mut tx = self.pool.begin().await?;
        // Take the write lock first (see the module comment in mod.rs).
        sqlx::query("UPDATE tenants SET perm_version = perm_version WHERE id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let mut existing: HashMap<Key, String> = HashMap::new();
        if !people.is_empty() {
            let ids = people
                .iter()
                .map(|p| p.person_id.to_string())
                .collect::<Vec<_>>()
                .join(",");
            // Ids are integers from our own rows, safe to inline.
            let rows = sqlx::query(&format!(
                "SELECT person_id, modality, algorithm, slot, digest FROM templates
                 WHERE person_id IN ({ids})"
            ))
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let m: String = r.get("modality");
                let m = if m == "fa" { "fa" } else { "fp" };
                existing.insert(
                    (r.get("person_id"), m, r.get("algorithm"), r.get("slot")),
                    r.get("digest"),
                );
            }
        }
        // The final state each touched slot should have; later writes win.
        let mut finals: Vec<Final> = Vec::new();
        let mut position: HashMap<Key, usize> = HashMap::new();
        for (index, p) in people.iter().enumerate() {
            for w in &p.writes {
                let key = (
                    p.person_id,
                    w.modality.as_str(),
                    w.algorithm.clone(),
                    w.slot,
                );
                match position.get(&key) {
                    Some(&i) => finals[i].1 = w.sealed.as_ref(),
                    None => {
                        position.insert(key.clone(), finals.len());
                        finals.push((key, w.sealed.as_ref(), index));
                    }
                }
            }
        }
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        let mut changed: HashMap<usize, (bool, bool)> = HashMap::new();
        for (key, target, index) in finals {
            let now_digest = existing.get(&key);
            let effective = match target {
                Some((_, digest)) => now_digest != Some(digest),
                None => now_digest.is_some(),
            };
            if !effective {
                continue;
            }
            let flags = changed.entry(index).or_default();
            if key.1 == "fa" {
                flags.0 = true;
            } else {
                flags.1 = true;
            }
            match target {
                Some(sealed) => upserts.push((key, sealed)),
                None => deletes.push(key),
            }
        }
        for chunk in upserts.chunks(100) {
            let sql = format!(
                "INSERT INTO templates(person_id, modality, algorithm, slot, data, digest, updated_at)
                 VALUES {}
                 ON CONFLICT(person_id, modality, algorithm, slot) DO UPDATE SET
                 data = excluded.data, digest = excluded.digest, updated_at = excluded.updated_at",
                super::values_rows(chunk.len(), 7, 1)
            );
            let mut q = sqlx::query(&sql);
            for ((person, m, alg, slot), (data, digest)) in chunk {
                q = q
                    .bind(*person)
                    .bind(*m)
                    .bind(alg.as_str())
                    .bind(*slot)
                    .bind(data.as_slice())
                    .bind(digest.as_str())
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in deletes.chunks(100) {
            let sql = format!(
                "DELETE FROM templates WHERE (person_id, modality, algorithm, slot) IN ({})",
                super::values_rows(chunk.len(), 4, 1)
            );
            let mut q = sqlx::query(&sql);
            for (person, m, alg, slot) in chunk {
                q = q.bind(*person).bind(*m).bind(alg.as_str()).bind(*slot);
            }
            q.execute(&mut *tx).await?;
        }
        let mut changed_people: Vec<usize> = changed.keys().copied().collect();
        changed_people.sort_unstable();
        for (column, pick) in [("fa_ver", 0), ("fp_ver", 1)] {
            let ids: Vec<String> = changed_people
                .iter()
                .filter(|i| {
                    if pick == 0 {
                        changed[i].0
                    } else {
                        changed[i].1
                    }
                })
                .map(|&i| people[i].person_id.to_string())
                .collect();
            if !ids.is_empty() {
                sqlx::query(&format!(
                    "UPDATE people SET {column} = {column} + 1 WHERE id IN ({})",
                    ids.join(",")
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
        let version = if changed_people.is_empty() {
            None
        } else {
            let change = Change {
                update_user: changed_people
                    .iter()
                    .map(|&i| people[i].user.clone())
                    .collect(),
                ..Change::default()
            };
            Some(record_change_in(&mut tx, tenant_id, &change, now).await?)
        };
        let audit: Vec<&AuditEvent> = audit.iter().collect();
        super::audit::insert_audit_in(&mut tx, &audit, chrono::Utc::now().timestamp_millis())
            .await?;
        tx.commit().await?;
        Ok((changed_people, version))
    }

    /// The sealed templates of these people and this modality.
    pub async fn templates_of(
        &self,
        person_ids: &[i64],
        modality: Modality,
    ) -> anyhow::Result<Vec<StoredTemplate>> {
        if person_ids.is_empty() {
            return Ok(Vec::new());
        }
        // Ids are integers from our own rows, so inlining them is safe; it
        // avoids 200 bind parameters per page.
        let ids = person_ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let rows = sqlx::query(&format!(
            "SELECT person_id, algorithm, slot, data FROM templates
             WHERE modality = $1 AND person_id IN ({ids}) ORDER BY person_id, algorithm, slot"
        ))
        .bind(modality.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredTemplate {
                person_id: r.get("person_id"),
                algorithm: r.get("algorithm"),
                slot: r.get("slot"),
                sealed: r.get("data"),
            })
            .collect())
    }

    /// (modality, algorithm, slot, updated_at) of a person's templates,
    /// without their data, for the admin side.
    pub async fn template_slots(
        &self,
        person_id: i64,
    ) -> anyhow::Result<Vec<(String, String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT modality, algorithm, slot, updated_at FROM templates WHERE person_id = $1
             ORDER BY modality, algorithm, slot",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get("modality"),
                    r.get("algorithm"),
                    r.get("slot"),
                    r.get("updated_at"),
                )
            })
            .collect())
    }

    /// One page of the tenant's people in a stable order, with the total
    /// and the version they were read at (one read transaction, so the page
    /// and the version agree).
    pub async fn people_page(
        &self,
        tenant_id: i64,
        offset: i64,
        limit: i64,
    ) -> anyhow::Result<(Vec<Person>, i64, i64)> {
        let mut tx = self.pool.begin().await?;
        let version: i64 = sqlx::query_scalar("SELECT perm_version FROM tenants WHERE id = $1")
            .bind(tenant_id)
            .fetch_one(&mut *tx)
            .await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM people WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&mut *tx)
            .await?;
        let rows =
            sqlx::query("SELECT * FROM people WHERE tenant_id = $1 ORDER BY id LIMIT $2 OFFSET $3")
                .bind(tenant_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok((rows.iter().map(person_from_row).collect(), total, version))
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
        let mut rows = Vec::new();
        // Pairs as a VALUES table (its columns are column1, column2 in both
        // engines), 400 pairs a statement.
        for chunk in users.chunks(400) {
            let sql = format!(
                "SELECT p.* FROM people p
                 JOIN (VALUES {}) w ON p.user_id = w.column1 AND p.user_type = w.column2
                 WHERE p.tenant_id = $1",
                super::values_rows(chunk.len(), 2, 2)
            );
            let mut q = sqlx::query(&sql).bind(tenant_id);
            for u in chunk {
                q = q.bind(u.userid.as_str()).bind(u.user_type);
            }
            rows.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(rows
            .iter()
            .map(|r| {
                let p = person_from_row(r);
                let key = DeviceUser {
                    userid: p.user_id.clone(),
                    user_type: p.user_type.as_i64(),
                };
                (key, p)
            })
            .collect())
    }

    // ---------------------------------------------------------- enrolments

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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn enrolment(&self, oper_id: &str) -> anyhow::Result<Option<Enrolment>> {
        let row = sqlx::query("SELECT * FROM enrolments WHERE oper_id = $1")
            .bind(oper_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| enrolment_from_row(&r)))
    }

    /// Enrolments waiting for these (online) devices to be told.
    pub async fn queued_enrolments(&self, sns: &[String]) -> anyhow::Result<Vec<Enrolment>> {
        let mut found = Vec::new();
        for chunk in sns.chunks(500) {
            let sql = format!(
                "SELECT * FROM enrolments WHERE status = 'queued' AND sn IN ({})",
                super::placeholders(chunk.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for sn in chunk {
                q = q.bind(sn.as_str());
            }
            found.extend(
                q.fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(enrolment_from_row),
            );
        }
        found.sort_by_key(|e| e.created_at);
        Ok(found)
    }

    pub async fn open_enrolments(&self, sn: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM enrolments WHERE sn = $1 AND status IN ('queued', 'sent')",
        )
        .bind(sn)
        .fetch_one(&self.pool)
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
            super::placeholders(from.len(), 6)
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
        let r = q.execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Marks enrolments started before `before` and still open as timed out.
    pub async fn expire_enrolments(&self, before: i64, now: i64) -> anyhow::Result<u64> {
        Ok(sqlx::query(
            "UPDATE enrolments SET status = 'timed_out', finished_at = $1
             WHERE status IN ('queued', 'sent') AND created_at < $2",
        )
        .bind(now)
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    // ------------------------------------------------------------ checkins

    /// Stores punch records; already stored ones are left alone.
    pub async fn insert_checkins(
        &self,
        tenant_id: i64,
        sn: &str,
        records: &[(i64, CheckinRecord)],
        now: i64,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
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
        let rows = sqlx::query(
            "SELECT sn, timestamp, pass_type, pass_method FROM checkins
             WHERE person_id = $1 AND timestamp >= $2 AND timestamp < $3 ORDER BY timestamp, sn",
        )
        .bind(person_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get("sn"),
                    CheckinRecord {
                        timestamp: r.get("timestamp"),
                        pass_type: r.get("pass_type"),
                        pass_method: r.get("pass_method"),
                    },
                )
            })
            .collect())
    }
}

pub(super) async fn record_change_in(
    tx: &mut super::Tx<'_>,
    tenant_id: i64,
    change: &Change,
    now: i64,
) -> anyhow::Result<i64> {
    let v: i64 = sqlx::query_scalar(
        "UPDATE tenants SET perm_version = perm_version + 1 WHERE id = $1 RETURNING perm_version",
    )
    .bind(tenant_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO tenant_changes(tenant_id, perm_version, changes, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant_id)
    .bind(v)
    .bind(serde_json::to_string(change)?)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(v)
}

fn device_from_row(r: &sqlx::any::AnyRow) -> DeviceRow {
    let list = |col: &str| -> Vec<String> {
        let json: String = r.get(col);
        serde_json::from_str(&json).unwrap_or_default()
    };
    DeviceRow {
        sn: r.get("sn"),
        tenant_id: r.get("tenant_id"),
        sealed_secret_no: r.get("secret_no"),
        sealed_secret: r.get("secret"),
        bound: r.get::<i64, _>("bound") != 0,
        firmware_version: r.get("firmware_version"),
        fa_algorithms: list("fa_algorithms"),
        fp_algorithms: list("fp_algorithms"),
        seen_version: r.get("seen_version"),
        last_seen: r.get("last_seen"),
        register_ts: r.get("register_ts"),
        created_at: r.get("created_at"),
    }
}

fn enrolment_from_row(r: &sqlx::any::AnyRow) -> Enrolment {
    Enrolment {
        oper_id: r.get("oper_id"),
        tenant_id: r.get("tenant_id"),
        person_id: r.get("person_id"),
        sn: r.get("sn"),
        kind: r.get("kind"),
        file_ids: serde_json::from_str(r.get::<&str, _>("file_ids")).unwrap_or_default(),
        status: r.get("status"),
        errcode: r.get("errcode"),
        errmsg: r.get("errmsg"),
        created_at: r.get("created_at"),
        finished_at: r.get("finished_at"),
    }
}
