//! Terminals' address books as an access write works them out, in its
//! transaction: what each terminal held when its book was last worked
//! out, what it holds now, and the people of both.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::sql::{Tx, placeholders};
use crate::model::{Book, BookKey, DeviceUser};

pub(super) fn parse_key(key: Option<String>) -> anyhow::Result<BookKey> {
    key.map(|k| serde_json::from_str(&k))
        .transpose()
        .map_err(Into::into)
}

/// What each terminal held when its book was last worked out.
pub(super) async fn keys_in(
    tx: &mut Tx<'_>,
    tenant_id: i64,
) -> anyhow::Result<BTreeMap<String, BookKey>> {
    let rows = sqlx::query_as(KEYS)
        .bind(tenant_id)
        .fetch_all(&mut **tx)
        .await?;
    keyed(rows)
}

/// The tenant's terminals with the column their book is remembered in.
pub(super) const KEYS: &str = "SELECT sn, access_rules FROM devices WHERE tenant_id = $1";

/// [`KEYS`]' rows, by sn.
pub(super) fn keyed<C: FromIterator<(String, BookKey)>>(
    rows: Vec<(String, Option<String>)>,
) -> anyhow::Result<C> {
    rows.into_iter()
        .map(|(sn, key)| Ok((sn, parse_key(key)?)))
        .collect()
}

/// The tenant's rules: number → spec.
async fn specs_in(
    tx: &mut Tx<'_>,
    tenant_id: i64,
) -> anyhow::Result<HashMap<i64, crate::model::RuleSpec>> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT number, spec FROM access_rules WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(&mut **tx)
            .await?;
    rows.into_iter()
        .map(|(n, spec)| Ok((n, serde_json::from_str(&spec)?)))
        .collect()
}

/// The terminals bound to rules: sn → rule numbers.
async fn bindings_in(
    tx: &mut Tx<'_>,
    tenant_id: i64,
) -> anyhow::Result<BTreeMap<String, Vec<i64>>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT b.sn, b.rule_number FROM access_rule_devices b
         JOIN access_rules r ON r.number = b.rule_number WHERE r.tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (sn, n) in rows {
        out.entry(sn).or_default().push(n);
    }
    Ok(out)
}

/// What each bound terminal holds at `now` (the rules in force of those
/// it is bound to; terminals bound to none are left out: the whole
/// tenant), and when the next bound rule starts or ends.
pub(super) async fn keys_now(
    tx: &mut Tx<'_>,
    tenant_id: i64,
    now: i64,
) -> anyhow::Result<(BTreeMap<String, BookKey>, Option<i64>)> {
    let specs = specs_in(tx, tenant_id).await?;
    let bound = bindings_in(tx, tenant_id).await?;
    let due = bound
        .values()
        .flatten()
        .collect::<HashSet<_>>()
        .into_iter()
        .filter_map(|n| specs.get(n)?.next_turn(now))
        .min();
    let keys = bound
        .into_iter()
        .map(|(sn, numbers)| {
            let mut key: Vec<i64> = numbers
                .into_iter()
                .filter(|n| specs.get(n).is_some_and(|s| s.in_force(now)))
                .collect();
            key.sort_unstable();
            (sn, Some(key))
        })
        .collect();
    Ok((keys, due))
}

/// The tenant's people as terminals name them, by person id.
pub(super) async fn device_users(
    tx: &mut Tx<'_>,
    tenant_id: i64,
) -> anyhow::Result<HashMap<i64, DeviceUser>> {
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, user_id, user_type FROM people WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, userid, user_type)| (id, DeviceUser { userid, user_type }))
        .collect())
}

/// Books read in a transaction, once each.
#[derive(Default)]
pub(super) struct BookCache {
    books: HashMap<BookKey, Book>,
    empty: Book,
}

impl BookCache {
    pub(super) async fn load(
        &mut self,
        tx: &mut Tx<'_>,
        tenant_id: i64,
        key: &BookKey,
    ) -> anyhow::Result<()> {
        if self.books.contains_key(key) {
            return Ok(());
        }
        let mut book = Book::new();
        match key {
            None => {
                // The whole tenant: everyone but visitors, who come only
                // through rules.
                let ids: Vec<i64> = sqlx::query_scalar(
                    "SELECT id FROM people WHERE tenant_id = $1 AND user_type <> 1",
                )
                .bind(tenant_id)
                .fetch_all(&mut **tx)
                .await?;
                book.extend(ids.into_iter().map(|id| (id, Vec::new())));
            }
            Some(numbers) if numbers.is_empty() => {}
            Some(numbers) => {
                let sql = format!(
                    "SELECT person_id, rule_number FROM access_rule_people WHERE rule_number IN ({})",
                    placeholders(numbers.len(), 1)
                );
                let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
                for n in numbers {
                    q = q.bind(n);
                }
                for (person, rule) in q.fetch_all(&mut **tx).await? {
                    book.entry(person).or_default().push(rule);
                }
                for rules in book.values_mut() {
                    rules.sort_unstable();
                }
            }
        }
        self.books.insert(key.clone(), book);
        Ok(())
    }

    pub(super) fn get(&self, key: &BookKey) -> &Book {
        self.books.get(key).unwrap_or(&self.empty)
    }
}
