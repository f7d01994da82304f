//! Biometric templates, sealed, one a (person, modality, algorithm, slot).

use std::collections::HashMap;

use super::changes::record_change_in;
use super::sql::{placeholders, values_rows};
use super::{Db, audit};
use crate::model::{AuditEvent, BookKey, Change, Modality, PersonTemplates, StoredTemplate};

impl Db {
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
        let mut tx = self.pool()?.begin().await?;
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
            let rows: Vec<(i64, String, String, i64, String)> = sqlx::query_as(&format!(
                "SELECT person_id, modality, algorithm, slot, digest FROM templates
                 WHERE person_id IN ({ids})"
            ))
            .fetch_all(&mut *tx)
            .await?;
            for (person, m, algorithm, slot, digest) in rows {
                let m = if m == "fa" { "fa" } else { "fp" };
                existing.insert((person, m, algorithm, slot), digest);
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
                values_rows(chunk.len(), 7, 1)
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
                values_rows(chunk.len(), 4, 1)
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
        let change = Change {
            update_user: changed_people
                .iter()
                .map(|&i| people[i].user.clone())
                .collect(),
            ..Change::default()
        };
        let version = record_change_in(&mut tx, tenant_id, &change, now).await?;
        let audit: Vec<&AuditEvent> = audit.iter().collect();
        audit::insert_audit_in(&mut tx, &audit, chrono::Utc::now().timestamp_millis()).await?;
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
        Ok(sqlx::query_as::<_, StoredTemplate>(&format!(
            "SELECT person_id, algorithm, slot, data FROM templates
             WHERE modality = $1 AND person_id IN ({ids}) ORDER BY person_id, algorithm, slot"
        ))
        .bind(modality.as_str())
        .fetch_all(self.pool()?)
        .await?)
    }

    /// People of the tenant in `book` holding a face template of one of
    /// these algorithms: the faces a terminal holding that book and
    /// subscribed with them receives.
    pub async fn face_holders(
        &self,
        tenant_id: i64,
        book: &BookKey,
        algorithms: &[String],
    ) -> anyhow::Result<i64> {
        if algorithms.is_empty() || book.as_ref().is_some_and(Vec::is_empty) {
            return Ok(0);
        }
        let numbers = book.as_deref().unwrap_or_default();
        // The whole tenant holds no visitors.
        let within = if numbers.is_empty() {
            " AND p.user_type <> 1".to_string()
        } else {
            format!(
                " AND t.person_id IN (SELECT person_id FROM access_rule_people WHERE rule_number IN ({}))",
                placeholders(numbers.len(), 2 + algorithms.len())
            )
        };
        let sql = format!(
            "SELECT COUNT(DISTINCT t.person_id) FROM templates t JOIN people p ON p.id = t.person_id
             WHERE p.tenant_id = $1 AND t.modality = 'fa' AND t.algorithm IN ({}){within}",
            placeholders(algorithms.len(), 2)
        );
        let mut q = sqlx::query_scalar(&sql).bind(tenant_id);
        for a in algorithms {
            q = q.bind(a);
        }
        for n in numbers {
            q = q.bind(n);
        }
        Ok(q.fetch_one(self.pool()?).await?)
    }

    /// (modality, algorithm, slot, updated_at) of a person's templates,
    /// without their data, for the admin side.
    pub async fn template_slots(
        &self,
        person_id: i64,
    ) -> anyhow::Result<Vec<(String, String, i64, i64)>> {
        self.rows_by(
            "SELECT modality, algorithm, slot, updated_at FROM templates WHERE person_id = $1
             ORDER BY modality, algorithm, slot",
            person_id,
        )
        .await
    }
}
