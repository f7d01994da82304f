//! Punch records ("user flows") over the platform's attendance API: what
//! terminals report (`devices::checkin` stores those) and what other
//! systems create, queried, read and deleted the same way.

use std::collections::HashMap;

use super::audit::AuditEvent;
use super::auth::Caller;
use super::people::EmployeeType;
use super::{Core, Person};
use crate::model::error::{Error, Result};
use crate::model::flows::CHECK_RESULTS;
use crate::model::{FlowExtras, UserFlow};

/// Records one call may create or delete, and people one query may name.
pub const MAX_BATCH: usize = 50;
/// The widest time range one query may span: 30 days.
pub const MAX_QUERY_SPAN_SECS: i64 = 30 * 86_400;
/// Longest text field, in bytes.
const MAX_TEXT: usize = 1024;
/// Most photo URLs on a record.
const MAX_PHOTO_URLS: usize = 10;

/// A record to create, as read off the request.
#[derive(Debug, Clone)]
pub struct FlowDraft {
    /// In the request's `employee_type`.
    pub user_id: String,
    pub creator_id: String,
    pub location_name: String,
    pub check_time: i64,
    pub comment: String,
    pub idempotent_id: Option<String>,
    pub extras: FlowExtras,
}

/// A record with the person it is of.
#[derive(Debug, Clone)]
pub struct PersonFlow {
    pub flow: UserFlow,
    pub person: Person,
}

impl PersonFlow {
    /// The person's id in `kind` (an employee number not set: empty).
    pub fn user_id(&self, kind: EmployeeType) -> String {
        match kind {
            EmployeeType::EmployeeId => self.person.user_id.clone(),
            EmployeeType::EmployeeNo => self.person.employee_no.clone().unwrap_or_default(),
        }
    }
}

fn text(field: &str, value: &str) -> Result<()> {
    if value.len() > MAX_TEXT {
        return Err(Error::param(format!(
            "{field} is longer than {MAX_TEXT} bytes"
        )));
    }
    Ok(())
}

/// The limits on one record's fields.
fn check_draft(i: usize, d: &FlowDraft) -> Result<()> {
    let at = |f: &str| format!("flow_records[{i}].{f}");
    for (f, v) in [
        ("creator_id", d.creator_id.as_str()),
        ("location_name", d.location_name.as_str()),
        ("comment", d.comment.as_str()),
    ] {
        text(&at(f), v)?;
    }
    if d.creator_id.is_empty() {
        return Err(Error::param(format!("{} is required", at("creator_id"))));
    }
    if d.location_name.is_empty() {
        return Err(Error::param(format!("{} is required", at("location_name"))));
    }
    if let Some(k) = &d.idempotent_id {
        text(&at("idempotent_id"), k)?;
        if k.starts_with("terminal:") {
            return Err(Error::param(format!(
                "{} must not start with \"terminal:\" (terminals' records use it)",
                at("idempotent_id")
            )));
        }
    }
    let e = &d.extras;
    for (f, v) in [
        ("ssid", &e.ssid),
        ("bssid", &e.bssid),
        ("device_id", &e.device_id),
        ("external_id", &e.external_id),
    ] {
        if let Some(v) = v {
            text(&at(f), v)?;
        }
    }
    if let Some(r) = &e.check_result
        && !CHECK_RESULTS.contains(&r.as_str())
    {
        return Err(Error::param(format!(
            "{} must be one of {}",
            at("check_result"),
            CHECK_RESULTS.join(", ")
        )));
    }
    if let Some(urls) = &e.photo_urls {
        if urls.len() > MAX_PHOTO_URLS {
            return Err(Error::param(format!(
                "{} holds more than {MAX_PHOTO_URLS} URLs",
                at("photo_urls")
            )));
        }
        for u in urls {
            text(&at("photo_urls"), u)?;
        }
    }
    let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
    if !finite(e.longitude) || !finite(e.latitude) {
        return Err(Error::param(format!(
            "{} and latitude must be numbers",
            at("longitude")
        )));
    }
    Ok(())
}

fn batch_size(what: &str, n: usize) -> Result<()> {
    if n == 0 || n > MAX_BATCH {
        return Err(Error::param(format!(
            "{what} must hold 1 to {MAX_BATCH} items, not {n}"
        )));
    }
    Ok(())
}

impl Core {
    /// The tenant's people named in `kind`, by that id; an unknown one is
    /// [`Error::UserNotFound`] when `strict`, else left out.
    async fn people_named(
        &self,
        tenant_id: i64,
        kind: EmployeeType,
        ids: &[String],
        strict: bool,
    ) -> Result<HashMap<String, Person>> {
        let mut out = HashMap::new();
        for id in ids {
            if out.contains_key(id) {
                continue;
            }
            match self.find_person(tenant_id, kind, id).await? {
                Some(p) => {
                    out.insert(id.clone(), p);
                }
                None if strict => return Err(Error::UserNotFound(id.clone())),
                None => {}
            }
        }
        Ok(out)
    }

    /// Creates records (all or none): each person must be the tenant's; a
    /// record whose `idempotent_id` the tenant already has is not created
    /// again, and the stored one is answered in its place.
    pub async fn create_user_flows(
        &self,
        tenant_id: i64,
        kind: EmployeeType,
        drafts: Vec<FlowDraft>,
    ) -> Result<Vec<PersonFlow>> {
        batch_size("flow_records", drafts.len())?;
        for (i, d) in drafts.iter().enumerate() {
            check_draft(i, d)?;
        }
        let ids: Vec<String> = drafts.iter().map(|d| d.user_id.clone()).collect();
        let people = self.people_named(tenant_id, kind, &ids, true).await?;
        let now = self.now();
        let flows: Vec<UserFlow> = drafts
            .into_iter()
            .map(|d| UserFlow {
                record_id: crate::model::ids::platform_id(),
                tenant_id,
                person_id: people[&d.user_id].id,
                check_time: d.check_time,
                creator_id: d.creator_id,
                location_name: d.location_name,
                comment: d.comment,
                idempotent_id: d.idempotent_id.filter(|k| !k.is_empty()),
                sn: None,
                pass_type: None,
                pass_method: None,
                photo_file_id: None,
                extras: d.extras,
                created_at: now,
            })
            .collect();
        let by_id: HashMap<i64, Person> = people.into_values().map(|p| (p.id, p)).collect();
        self.with_people(self.db.create_flows(&flows).await?, &by_id)
            .await
    }

    /// The records of these people (named in `kind`; unknown ones are left
    /// out) with `from <= check_time <= to`, by time.
    pub async fn query_user_flows(
        &self,
        tenant_id: i64,
        kind: EmployeeType,
        user_ids: &[String],
        from: i64,
        to: i64,
    ) -> Result<Vec<PersonFlow>> {
        batch_size("user_ids", user_ids.len())?;
        if to < from {
            return Err(Error::param("check_time_to is before check_time_from"));
        }
        if to - from > MAX_QUERY_SPAN_SECS {
            return Err(Error::param(format!(
                "check_time_from to check_time_to spans more than {} days",
                MAX_QUERY_SPAN_SECS / 86_400
            )));
        }
        let people = self.people_named(tenant_id, kind, user_ids, false).await?;
        let by_id: HashMap<i64, Person> = people.into_values().map(|p| (p.id, p)).collect();
        let ids: Vec<i64> = by_id.keys().copied().collect();
        self.with_people(self.db.flows_of(&ids, from, to).await?, &by_id)
            .await
    }

    /// One record of the tenant.
    pub async fn user_flow(&self, tenant_id: i64, record_id: &str) -> Result<PersonFlow> {
        let not_found = || {
            Error::param(format!(
                "user_flow_id {record_id:?} is not a record of this tenant"
            ))
        };
        let flow = self
            .db
            .flow(tenant_id, record_id)
            .await?
            .ok_or_else(not_found)?;
        let person = self
            .db
            .person(flow.person_id)
            .await?
            .ok_or_else(not_found)?;
        Ok(PersonFlow { flow, person })
    }

    /// Deletes the tenant's records among `record_ids`: (deleted, the ids
    /// that are not the tenant's records), each in the order given.
    /// A door record's capture photo goes with it, the deletion audited.
    pub async fn delete_user_flows(
        &self,
        caller: &Caller,
        record_ids: &[String],
    ) -> Result<(Vec<String>, Vec<String>)> {
        batch_size("record_ids", record_ids.len())?;
        let audit = |user_id: &str, record_id: &str, photo: &str| {
            AuditEvent::by(caller, "access_photo.delete", &Ok(()))
                .subject(Some(user_id))
                .object(format!("{photo} of record {record_id}"))
        };
        let (deleted, photos) = self
            .db
            .delete_flows(caller.tenant_id, record_ids, audit, self.now())
            .await?;
        for id in &photos {
            self.drop_blob(id).await?;
        }
        let failed = record_ids
            .iter()
            .filter(|id| !deleted.contains(id))
            .cloned()
            .collect();
        Ok((deleted, failed))
    }

    /// Each record with its person: from `people`, else (a record an
    /// idempotent_id matched, of someone else) from the store.
    async fn with_people(
        &self,
        flows: Vec<UserFlow>,
        people: &HashMap<i64, Person>,
    ) -> Result<Vec<PersonFlow>> {
        let mut out = Vec::with_capacity(flows.len());
        for flow in flows {
            let person = match people.get(&flow.person_id) {
                Some(p) => p.clone(),
                None => self
                    .db
                    .person(flow.person_id)
                    .await?
                    .ok_or_else(|| Error::internal("a record's person is gone"))?,
            };
            out.push(PersonFlow { flow, person });
        }
        Ok(out)
    }
}
