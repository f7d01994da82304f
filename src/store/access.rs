//! Access rules, and the terminals' address books they make.
//!
//! Every access write (a rule put or deleted, a terminal bound, a rule's
//! valid days starting or ending) runs in one transaction that works out
//! each terminal's book before and after it, and logs the difference as
//! the tenant's next version: what each group of terminals gains, must
//! re-read and loses. A terminal's book is remembered as the rules in
//! force when it was last worked out (`devices.access_rules`), so time
//! passing is a write like any other.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::books::{BookCache, KEYS, device_users, keyed, keys_in, keys_now};
use super::sql::{Tx, audit_in, placeholders};
use super::{Backend, Db};
use crate::model::access::book_diff;
use crate::model::{AccessDelta, AuditEvent, Book, BookKey, Change, DeviceUser, Person, RuleRow};

/// One access write.
#[derive(Debug, Clone)]
pub enum AccessWrite {
    /// Creates (`number` `None`) or replaces a rule. `people` and
    /// `devices` (serial numbers) replace the rule's when given.
    Put {
        number: Option<i64>,
        rule_id: String,
        spec: crate::model::RuleSpec,
        people: Option<Vec<i64>>,
        devices: Option<Vec<String>>,
    },
    Delete {
        number: i64,
    },
    /// Binds terminal `sn` to exactly these rules.
    Bind {
        sn: String,
        numbers: Vec<i64>,
    },
    /// Nothing but the clock: rules whose valid days started or ended.
    Recheck,
}

impl AccessWrite {
    /// The existing rules the write names.
    fn rules(&self) -> Vec<i64> {
        match self {
            AccessWrite::Put { number, .. } => number.iter().copied().collect(),
            AccessWrite::Delete { number } => vec![*number],
            AccessWrite::Bind { numbers, .. } => numbers.clone(),
            AccessWrite::Recheck => Vec::new(),
        }
    }
}

/// What an access write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessOutcome {
    /// The rule put.
    pub number: Option<i64>,
    /// The version logged, if any terminal's book changed.
    pub version: Option<i64>,
    /// A rule the write names is not (or no longer) the tenant's: nothing
    /// was written.
    pub missing: bool,
}

type RuleTuple = (i64, i64, String, String, i64, i64);

fn rule_row(t: RuleTuple) -> anyhow::Result<RuleRow> {
    let (number, tenant_id, rule_id, spec, created_at, updated_at) = t;
    Ok(RuleRow {
        number,
        tenant_id,
        rule_id,
        spec: serde_json::from_str(&spec)?,
        created_at,
        updated_at,
    })
}

const RULE_COLS: &str = "number, tenant_id, rule_id, spec, created_at, updated_at";

impl Db {
    /// The tenant's rules, oldest first.
    pub async fn rules(&self, tenant_id: i64) -> anyhow::Result<Vec<RuleRow>> {
        let sql =
            format!("SELECT {RULE_COLS} FROM access_rules WHERE tenant_id = $1 ORDER BY number");
        let rows: Vec<RuleTuple> = self.rows_by(&sql, tenant_id).await?;
        rows.into_iter().map(rule_row).collect()
    }

    /// The tenant's rule `rule_id`.
    pub async fn rule(&self, tenant_id: i64, rule_id: &str) -> anyhow::Result<Option<RuleRow>> {
        let sql =
            format!("SELECT {RULE_COLS} FROM access_rules WHERE tenant_id = $1 AND rule_id = $2");
        let row: Option<RuleTuple> = sqlx::query_as(&sql)
            .bind(tenant_id)
            .bind(rule_id)
            .fetch_optional(self.pool()?)
            .await?;
        row.map(rule_row).transpose()
    }

    /// Rules by number (those that exist).
    pub async fn rules_by_numbers(&self, numbers: &[i64]) -> anyhow::Result<Vec<RuleRow>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {RULE_COLS} FROM access_rules WHERE number IN ({}) ORDER BY number",
            placeholders(numbers.len(), 1)
        );
        let mut q = sqlx::query_as::<_, RuleTuple>(&sql);
        for n in numbers {
            q = q.bind(n);
        }
        q.fetch_all(self.pool()?)
            .await?
            .into_iter()
            .map(rule_row)
            .collect()
    }

    /// The people of these rules: (rule number, person).
    pub async fn rule_people(&self, numbers: &[i64]) -> anyhow::Result<Vec<(i64, Person)>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT m.rule_number, p.* FROM access_rule_people m JOIN people p ON p.id = m.person_id
             WHERE m.rule_number IN ({}) ORDER BY m.rule_number, p.id",
            placeholders(numbers.len(), 1)
        );
        let mut q = sqlx::query(&sql);
        for n in numbers {
            q = q.bind(n);
        }
        let rows = q.fetch_all(self.pool()?).await?;
        rows.iter()
            .map(|r| {
                use sqlx::{FromRow, Row};
                Ok((r.try_get("rule_number")?, Person::from_row(r)?))
            })
            .collect()
    }

    /// The terminals bound to these rules: (rule number, sn).
    pub async fn rule_devices(&self, numbers: &[i64]) -> anyhow::Result<Vec<(i64, String)>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT rule_number, sn FROM access_rule_devices WHERE rule_number IN ({}) ORDER BY rule_number, sn",
            placeholders(numbers.len(), 1)
        );
        let mut q = sqlx::query_as(&sql);
        for n in numbers {
            q = q.bind(n);
        }
        Ok(q.fetch_all(self.pool()?).await?)
    }

    /// The rules terminal `sn` is bound to.
    pub async fn device_rules(&self, sn: &str) -> anyhow::Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT rule_number FROM access_rule_devices WHERE sn = $1 ORDER BY rule_number",
        )
        .bind(sn)
        .fetch_all(self.pool()?)
        .await?)
    }

    /// What each of the tenant's terminals holds, by sn.
    pub async fn book_keys(&self, tenant_id: i64) -> anyhow::Result<HashMap<String, BookKey>> {
        keyed(self.rows_by(KEYS, tenant_id).await?)
    }

    /// Which of `people` these rules admit: person id → rule numbers.
    pub async fn admitted(&self, numbers: &[i64], people: &[i64]) -> anyhow::Result<Book> {
        let mut book = Book::new();
        if numbers.is_empty() || people.is_empty() {
            return Ok(book);
        }
        let sql = format!(
            "SELECT person_id, rule_number FROM access_rule_people
             WHERE rule_number IN ({}) AND person_id IN ({})",
            placeholders(numbers.len(), 1),
            placeholders(people.len(), numbers.len() + 1)
        );
        let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
        for n in numbers.iter().chain(people) {
            q = q.bind(n);
        }
        for (person, rule) in q.fetch_all(self.pool()?).await? {
            book.entry(person).or_default().push(rule);
        }
        for rules in book.values_mut() {
            rules.sort_unstable();
        }
        Ok(book)
    }

    /// Visitors (tenant, user id) named by rules every one of which ended
    /// before `now`.
    pub async fn visitors_past(&self, now: i64) -> anyhow::Result<Vec<(i64, String)>> {
        let rows: Vec<(i64, String, String)> = self
            .rows(
                "SELECT p.tenant_id, p.user_id, r.spec FROM people p
                 JOIN access_rule_people m ON m.person_id = p.id
                 JOIN access_rules r ON r.number = m.rule_number
                 WHERE p.user_type = 1",
            )
            .await?;
        let mut ended: BTreeMap<(i64, String), bool> = BTreeMap::new();
        for (tenant_id, user_id, spec) in rows {
            let spec: crate::model::RuleSpec = serde_json::from_str(&spec)?;
            let over = spec.valid_to.is_some_and(|t| t < now);
            *ended.entry((tenant_id, user_id)).or_insert(true) &= over;
        }
        Ok(ended
            .into_iter()
            .filter(|(_, over)| *over)
            .map(|(k, _)| k)
            .collect())
    }

    /// Tenants with a rule whose valid days start or end by `now`.
    pub async fn access_due(&self, now: i64) -> anyhow::Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM tenants WHERE access_due IS NOT NULL AND access_due <= $1",
        )
        .bind(now)
        .fetch_all(self.pool()?)
        .await?)
    }

    /// Carries out `write` and logs what it changes for the terminals, in
    /// one transaction with `audit`.
    pub async fn write_access(
        &self,
        tenant_id: i64,
        write: &AccessWrite,
        now: i64,
        audit: Option<&AuditEvent>,
    ) -> anyhow::Result<AccessOutcome> {
        let mut tx = self.begin_write().await?;
        // Writes first: one access write of a tenant at a time (a row lock
        // on PostgreSQL; SQLite has one writer), so each works out its
        // "before" from the one that committed last.
        sqlx::query("UPDATE tenants SET access_due = access_due WHERE id = $1")
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        // The rules named were looked up before this transaction: one may
        // have been deleted since.
        let mine: HashSet<i64> =
            sqlx::query_scalar("SELECT number FROM access_rules WHERE tenant_id = $1")
                .bind(tenant_id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        if !write.rules().iter().all(|n| mine.contains(n)) {
            return Ok(AccessOutcome {
                missing: true,
                ..AccessOutcome::default()
            });
        }
        let keys_before = keys_in(&mut tx, tenant_id).await?;
        let mut books_before = BookCache::default();
        for key in keys_before.values() {
            books_before.load(&mut tx, tenant_id, key).await?;
        }
        let (number, retimed) = apply(self.backend, &mut tx, tenant_id, write, now).await?;
        let (keys_after, due) = keys_now(&mut tx, tenant_id, now).await?;
        let mut books_after = BookCache::default();
        // Terminals grouped by (before, after): each group shares a delta.
        let mut groups: BTreeMap<(BookKey, BookKey), Vec<String>> = BTreeMap::new();
        for (sn, before) in &keys_before {
            let after = keys_after.get(sn).cloned().unwrap_or(None);
            groups
                .entry((before.clone(), after))
                .or_default()
                .push(sn.clone());
        }
        let mut deltas = Vec::new();
        let mut names: Option<HashMap<i64, DeviceUser>> = None;
        for ((before, after), sns) in groups {
            // The whole tenant stays the whole tenant: people come and go
            // through their own changes.
            if before.is_none() && after.is_none() {
                continue;
            }
            books_after.load(&mut tx, tenant_id, &after).await?;
            let (gained, changed, lost) =
                book_diff(books_before.get(&before), books_after.get(&after), &retimed);
            if gained.is_empty() && changed.is_empty() && lost.is_empty() {
                continue;
            }
            if names.is_none() {
                names = Some(device_users(&mut tx, tenant_id).await?);
            }
            let names = names.as_ref().expect("loaded above");
            let named = |ids: Vec<i64>| ids.iter().filter_map(|p| names.get(p).cloned()).collect();
            deltas.push(AccessDelta {
                sns,
                create_user: named(gained),
                update_user: named(changed),
                delete_user: named(lost),
            });
        }
        for (sn, before) in &keys_before {
            let after = keys_after.get(sn).cloned().unwrap_or(None);
            if *before != after {
                let json = after.map(|k| serde_json::to_string(&k)).transpose()?;
                sqlx::query("UPDATE devices SET access_rules = $1 WHERE sn = $2")
                    .bind(json)
                    .bind(sn)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        sqlx::query("UPDATE tenants SET access_due = $1 WHERE id = $2")
            .bind(due)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let change = Change {
            access: deltas,
            ..Change::default()
        };
        let version = super::changes::record_change_in(&mut tx, tenant_id, &change, now).await?;
        audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(AccessOutcome {
            number,
            version,
            missing: false,
        })
    }
}

/// Carries out the write itself: (the rule put, the rules whose windows
/// changed).
async fn apply(
    backend: Backend,
    tx: &mut Tx<'_>,
    tenant_id: i64,
    write: &AccessWrite,
    now: i64,
) -> anyhow::Result<(Option<i64>, HashSet<i64>)> {
    let mut retimed = HashSet::new();
    match write {
        AccessWrite::Put {
            number,
            rule_id,
            spec,
            people,
            devices,
        } => {
            let json = serde_json::to_string(spec)?;
            let number =
                match number {
                    Some(n) => {
                        let old: String =
                            sqlx::query_scalar("SELECT spec FROM access_rules WHERE number = $1")
                                .bind(n)
                                .fetch_one(&mut **tx)
                                .await?;
                        let old: crate::model::RuleSpec = serde_json::from_str(&old)?;
                        if old.pass_rules() != spec.pass_rules() {
                            retimed.insert(*n);
                        }
                        sqlx::query(
                            "UPDATE access_rules SET spec = $1, updated_at = $2 WHERE number = $3",
                        )
                        .bind(&json)
                        .bind(now)
                        .bind(n)
                        .execute(&mut **tx)
                        .await?;
                        *n
                    }
                    None => sqlx::query_scalar(
                        "INSERT INTO access_rules(tenant_id, rule_id, spec, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $4) RETURNING number",
                    )
                    .bind(tenant_id)
                    .bind(rule_id)
                    .bind(&json)
                    .bind(now)
                    .fetch_one(&mut **tx)
                    .await?,
                };
            if let Some(people) = people {
                sqlx::query("DELETE FROM access_rule_people WHERE rule_number = $1")
                    .bind(number)
                    .execute(&mut **tx)
                    .await?;
                // The ids travel as one JSON parameter, however many.
                let sql = match backend {
                    // `WHERE true` tells SQLite's parser the ON CONFLICT
                    // is the insert's, not a join's.
                    Backend::Sqlite => {
                        "INSERT INTO access_rule_people(rule_number, person_id)
                         SELECT $1, value FROM json_each($2) WHERE true ON CONFLICT DO NOTHING"
                    }
                    Backend::Postgres => {
                        "INSERT INTO access_rule_people(rule_number, person_id)
                         SELECT $1, value::bigint FROM jsonb_array_elements_text($2::text::jsonb)
                         ON CONFLICT DO NOTHING"
                    }
                };
                sqlx::query(sql)
                    .bind(number)
                    .bind(serde_json::to_string(people)?)
                    .execute(&mut **tx)
                    .await?;
            }
            if let Some(devices) = devices {
                sqlx::query("DELETE FROM access_rule_devices WHERE rule_number = $1")
                    .bind(number)
                    .execute(&mut **tx)
                    .await?;
                for sn in devices {
                    bind_in(tx, number, sn).await?;
                }
            }
            Ok((Some(number), retimed))
        }
        AccessWrite::Delete { number } => {
            sqlx::query("DELETE FROM access_rules WHERE number = $1 AND tenant_id = $2")
                .bind(number)
                .bind(tenant_id)
                .execute(&mut **tx)
                .await?;
            Ok((None, retimed))
        }
        AccessWrite::Bind { sn, numbers } => {
            sqlx::query("DELETE FROM access_rule_devices WHERE sn = $1")
                .bind(sn)
                .execute(&mut **tx)
                .await?;
            for n in numbers {
                bind_in(tx, *n, sn).await?;
            }
            Ok((None, retimed))
        }
        AccessWrite::Recheck => Ok((None, retimed)),
    }
}

async fn bind_in(tx: &mut Tx<'_>, number: i64, sn: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO access_rule_devices(rule_number, sn) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(number)
    .bind(sn)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
