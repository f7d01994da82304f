//! Access rules (`acs/v1/rule_external`): who may open which terminal,
//! and when. A terminal bound to rules holds exactly the people of its
//! rules in force (their valid days); their weekdays and day windows
//! travel to it as each person's pass rules. A terminal bound to none
//! holds the whole tenant. Every write logs what each terminal gains and
//! loses as one version of the tenant's address book (see `store::access`).

use std::collections::{HashMap, HashSet};

use super::audit::AuditEvent;
use super::auth::Caller;
use super::devices::device_id;
use super::{Core, Person};
use crate::domain::acs::IdType;
use crate::model::error::{Error, Result};
use crate::model::{DayTime, RuleRow, RuleSpec, UserType};
use crate::store::AccessWrite;

/// People in one rule, at most.
pub const MAX_RULE_PEOPLE: usize = 50_000;
/// Terminals bound to one rule, or rules bound to one terminal, at most.
pub const MAX_BINDINGS: usize = 10_000;
/// Rules of one tenant, at most (so that a terminal's rules stay well
/// within the engines' bound parameters).
pub const MAX_RULES: usize = 10_000;
/// Day windows of one rule, at most.
pub const MAX_DAY_TIMES: usize = 24;

/// A rule as a caller writes it; what it leaves out (`None`, or no
/// opening time) stays as it is on an update.
#[derive(Debug, Clone, Default)]
pub struct RuleDraft {
    pub name: Option<String>,
    pub remind_face: Option<bool>,
    pub is_temp: Option<bool>,
    /// Whether the request sets the opening time (the fields below); an
    /// update without one keeps the rule's.
    pub opening: bool,
    pub valid_from: Option<i64>,
    pub valid_to: Option<i64>,
    pub weekdays: Vec<i64>,
    pub day_times: Vec<DayTime>,
    /// Staff, in the request's `user_id_type`.
    pub users: Option<Vec<String>>,
    /// Visitors, by visitor id.
    pub visitors: Option<Vec<String>>,
    /// Terminals, by `device_id`.
    pub devices: Option<Vec<String>>,
}

/// A rule as the API lists it.
#[derive(Debug, Clone)]
pub struct RuleOut {
    pub row: RuleRow,
    /// (id in the request's id type, person).
    pub users: Vec<(String, Person)>,
    pub visitors: Vec<Person>,
    /// (device_id, sn).
    pub devices: Vec<(String, String)>,
}

impl RuleDraft {
    /// The rule's name and times, checked.
    fn spec(&self, old: Option<&RuleSpec>) -> Result<RuleSpec> {
        if let Some(old) = old.filter(|_| !self.opening) {
            let kept = RuleDraft {
                opening: true,
                valid_from: old.valid_from,
                valid_to: old.valid_to,
                weekdays: old.weekdays.clone(),
                day_times: old.day_times.clone(),
                ..self.clone()
            };
            return kept.spec(Some(old));
        }
        let name = match (&self.name, old) {
            (Some(n), _) if !n.trim().is_empty() => n.clone(),
            (_, Some(old)) if self.name.is_none() => old.name.clone(),
            _ => return Err(Error::param("rule.name is required")),
        };
        if name.chars().count() > 255 || name.chars().any(char::is_control) {
            return Err(Error::param(
                "rule.name must be at most 255 characters without control characters",
            ));
        }
        for (field, v) in [("start_day", self.valid_from), ("end_day", self.valid_to)] {
            if v.is_some_and(|v| v < 0) {
                return Err(Error::param(format!(
                    "opening_time.valid_day.{field} must be Unix seconds"
                )));
            }
        }
        if let (Some(from), Some(to)) = (self.valid_from, self.valid_to)
            && from > to
        {
            return Err(Error::param(format!(
                "opening_time.valid_day: start_day {from} is after end_day {to}"
            )));
        }
        let mut weekdays = Vec::new();
        for d in &self.weekdays {
            if !(0..=7).contains(d) {
                return Err(Error::param(format!(
                    "opening_time.weekdays: {d} is not a weekday (1 Monday to 7 Sunday)"
                )));
            }
            if !weekdays.contains(d) {
                weekdays.push(*d);
            }
        }
        if self.day_times.len() > MAX_DAY_TIMES {
            return Err(Error::param(format!(
                "opening_time.day_times: at most {MAX_DAY_TIMES} windows"
            )));
        }
        for w in &self.day_times {
            let ok = |t: i64| (0..=2359).contains(&t) && t % 100 < 60;
            if !ok(w.start_hhmm) || !ok(w.end_hhmm) || w.start_hhmm >= w.end_hhmm {
                return Err(Error::param(format!(
                    "opening_time.day_times: {}-{} is not a window of one day (hhmm, start before end)",
                    w.start_hhmm, w.end_hhmm
                )));
            }
        }
        Ok(RuleSpec {
            name,
            remind_face: self
                .remind_face
                .or(old.map(|o| o.remind_face))
                .unwrap_or(false),
            is_temp: self.is_temp.or(old.map(|o| o.is_temp)).unwrap_or(false),
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            weekdays,
            day_times: self.day_times.clone(),
        })
    }
}

impl Core {
    /// The tenant's terminal with this `device_id`, by sn.
    pub async fn terminal_sn(&self, tenant_id: i64, id: &str) -> Result<String> {
        let mut sns = self.terminals_named(tenant_id, &[id.to_string()]).await?;
        Ok(sns.remove(0))
    }

    /// The tenant's terminals `ids` name, by sn, each once.
    async fn terminals_named(&self, tenant_id: i64, ids: &[String]) -> Result<Vec<String>> {
        let by_id: HashMap<String, String> = self
            .db
            .devices(tenant_id)
            .await?
            .into_iter()
            .map(|d| (device_id(&d.sn), d.sn))
            .collect();
        let mut sns: Vec<String> = Vec::with_capacity(ids.len());
        for id in ids {
            let sn = by_id.get(id).ok_or_else(|| {
                Error::param(format!("device_id {id:?} is not a terminal of this tenant"))
            })?;
            if !sns.contains(sn) {
                sns.push(sn.clone());
            }
        }
        Ok(sns)
    }

    /// The tenant's rule `rule_id`, or a parameter error naming it.
    async fn tenant_rule(&self, tenant_id: i64, rule_id: &str) -> Result<RuleRow> {
        self.db.rule(tenant_id, rule_id).await?.ok_or_else(|| {
            Error::param(format!("rule_id {rule_id:?} is not a rule of this tenant"))
        })
    }

    /// Creates a rule (`rule_id` `None`) or replaces rule `rule_id`;
    /// returns its id.
    pub async fn put_rule(
        &self,
        caller: &Caller,
        id_type: IdType,
        rule_id: Option<&str>,
        draft: RuleDraft,
    ) -> Result<String> {
        let old = match rule_id.filter(|r| !r.is_empty()) {
            Some(id) => Some(self.tenant_rule(caller.tenant_id, id).await?),
            None => None,
        };
        let spec = draft.spec(old.as_ref().map(|r| &r.spec))?;
        let people = self
            .rule_people(caller, id_type, &draft, old.as_ref().map(|r| r.number))
            .await?;
        let devices = match &draft.devices {
            Some(ids) if ids.len() > MAX_BINDINGS => {
                return Err(Error::param(format!(
                    "rule.devices: at most {MAX_BINDINGS} terminals"
                )));
            }
            Some(ids) => Some(self.terminals_named(caller.tenant_id, ids).await?),
            None => None,
        };
        if old.is_none() && self.db.rules(caller.tenant_id).await?.len() >= MAX_RULES {
            return Err(Error::param(format!(
                "a tenant has at most {MAX_RULES} rules"
            )));
        }
        let rule_id = old
            .as_ref()
            .map_or_else(crate::model::ids::platform_id, |r| r.rule_id.clone());
        let write = AccessWrite::Put {
            number: old.as_ref().map(|r| r.number),
            rule_id: rule_id.clone(),
            spec,
            people,
            devices,
        };
        let event = AuditEvent::by(caller, "access_rule.put", &Ok(())).object(rule_id.clone());
        self.write_access(caller.tenant_id, &write, Some(&event))
            .await?;
        Ok(rule_id)
    }

    /// Deletes rule `rule_id`: its people leave the terminals it bound.
    pub async fn delete_rule(&self, caller: &Caller, rule_id: &str) -> Result<()> {
        if rule_id.is_empty() {
            return Err(Error::param("rule_id is required"));
        }
        let rule = self.tenant_rule(caller.tenant_id, rule_id).await?;
        let write = AccessWrite::Delete {
            number: rule.number,
        };
        let event = AuditEvent::by(caller, "access_rule.delete", &Ok(())).object(rule_id);
        self.write_access(caller.tenant_id, &write, Some(&event))
            .await
    }

    /// Binds terminal `device_id` to exactly `rule_ids` (none: back to the
    /// whole tenant).
    pub async fn bind_rules(
        &self,
        caller: &Caller,
        device: &str,
        rule_ids: &[String],
    ) -> Result<()> {
        if device.is_empty() {
            return Err(Error::param("device_id is required"));
        }
        if rule_ids.len() > MAX_BINDINGS {
            return Err(Error::param(format!(
                "rule_ids: at most {MAX_BINDINGS} rules"
            )));
        }
        let sn = self.terminal_sn(caller.tenant_id, device).await?;
        let mut numbers = Vec::new();
        for id in rule_ids {
            let n = self.tenant_rule(caller.tenant_id, id).await?.number;
            if !numbers.contains(&n) {
                numbers.push(n);
            }
        }
        let write = AccessWrite::Bind { sn, numbers };
        let event = AuditEvent::by(caller, "access_rule.bind", &Ok(()))
            .object(format!("{device}:{}", rule_ids.join(",")));
        self.write_access(caller.tenant_id, &write, Some(&event))
            .await
    }

    /// The tenant's rules, or those bound to terminal `device_id`.
    pub async fn rules(
        &self,
        caller: &Caller,
        id_type: IdType,
        device: Option<&str>,
    ) -> Result<Vec<RuleOut>> {
        let mut rows = self.db.rules(caller.tenant_id).await?;
        if let Some(device) = device.filter(|d| !d.is_empty()) {
            let sn = self.terminal_sn(caller.tenant_id, device).await?;
            let bound: HashSet<i64> = self.db.device_rules(&sn).await?.into_iter().collect();
            rows.retain(|r| bound.contains(&r.number));
        }
        let numbers: Vec<i64> = rows.iter().map(|r| r.number).collect();
        let mut people: HashMap<i64, Vec<Person>> = HashMap::new();
        for (n, p) in self.db.rule_people(&numbers).await? {
            people.entry(n).or_default().push(p);
        }
        let mut devices: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        for (n, sn) in self.db.rule_devices(&numbers).await? {
            devices.entry(n).or_default().push((device_id(&sn), sn));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let (mut users, mut visitors) = (Vec::new(), Vec::new());
                for p in people.remove(&row.number).unwrap_or_default() {
                    if p.user_type == UserType::Visitor {
                        visitors.push(p);
                    } else {
                        let id = self.external_user_id(caller, id_type, &p.user_id, &p.union_id);
                        users.push((id, p));
                    }
                }
                RuleOut {
                    devices: devices.remove(&row.number).unwrap_or_default(),
                    row,
                    users,
                    visitors,
                }
            })
            .collect())
    }

    /// Works out again the books of the tenants whose rules started or
    /// ended since they were last worked out.
    pub async fn recheck_access(&self) -> Result<()> {
        let mut first_error = None;
        // One tenant's failure does not hold up the others.
        for tenant_id in self.db.access_due(self.now()).await? {
            if let Err(e) = self
                .write_access(tenant_id, &AccessWrite::Recheck, None)
                .await
            {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn write_access(
        &self,
        tenant_id: i64,
        write: &AccessWrite,
        event: Option<&AuditEvent>,
    ) -> Result<()> {
        let outcome = self
            .db
            .write_access(tenant_id, write, self.now(), event)
            .await?;
        if outcome.missing {
            return Err(Error::param("the rule was deleted meanwhile"));
        }
        if outcome.version.is_some() {
            self.devices_changed().await;
        }
        Ok(())
    }

    /// The people of a draft (staff and visitors), by person id; `None`
    /// when it names neither list. A list it leaves out keeps the people
    /// rule `old` has of that kind.
    async fn rule_people(
        &self,
        caller: &Caller,
        id_type: IdType,
        draft: &RuleDraft,
        old: Option<i64>,
    ) -> Result<Option<Vec<i64>>> {
        if draft.users.is_none() && draft.visitors.is_none() {
            return Ok(None);
        }
        let users = draft.users.as_deref().unwrap_or_default();
        let visitors = draft.visitors.as_deref().unwrap_or_default();
        if users.len() + visitors.len() > MAX_RULE_PEOPLE {
            return Err(Error::param(format!(
                "a rule holds at most {MAX_RULE_PEOPLE} users and visitors"
            )));
        }
        let mut ids = Vec::with_capacity(users.len() + visitors.len());
        if let Some(number) = old {
            let kept = |p: &Person| match p.user_type {
                UserType::Visitor => draft.visitors.is_none(),
                _ => draft.users.is_none(),
            };
            for (_, p) in self.db.rule_people(&[number]).await? {
                if kept(&p) {
                    ids.push(p.id);
                }
            }
        }
        // By user_id, the usual way to name staff here, in one query; the
        // ids of an app (open_id) or of the platform one by one.
        let found: HashMap<String, Person> = match id_type {
            IdType::UserId => self
                .db
                .people_by(caller.tenant_id, crate::model::PersonKey::UserId, users)
                .await?
                .into_iter()
                .map(|p| (p.user_id.clone(), p))
                .collect(),
            _ => HashMap::new(),
        };
        for u in users {
            let person = match found.get(u) {
                Some(p) => Some(p.clone()),
                None if id_type == IdType::UserId => None,
                None => self.resolve(caller, id_type, u).await?,
            };
            let person = person
                .filter(|p| p.user_type != UserType::Visitor)
                .ok_or_else(|| Error::UserNotFound(u.clone()))?;
            ids.push(person.id);
        }
        for v in visitors {
            let person = self
                .person(caller.tenant_id, v)
                .await?
                .filter(|p| p.user_type == UserType::Visitor)
                .ok_or_else(|| {
                    Error::param(format!("visitor {v:?} is not a visitor of this tenant"))
                })?;
            ids.push(person.id);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(Some(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start_hhmm: i64, end_hhmm: i64) -> DayTime {
        DayTime {
            start_hhmm,
            end_hhmm,
        }
    }

    #[test]
    fn a_draft_is_checked_field_by_field() {
        let good = RuleDraft {
            name: Some("front door".into()),
            opening: true,
            weekdays: vec![1, 2, 2, 7],
            day_times: vec![window(830, 1800)],
            valid_from: Some(10),
            valid_to: Some(20),
            ..RuleDraft::default()
        };
        let spec = good.spec(None).unwrap();
        assert_eq!(spec.weekdays, [1, 2, 7]);
        assert_eq!(spec.name, "front door");
        let refused = |d: RuleDraft| d.spec(None).unwrap_err().to_string();
        assert!(refused(RuleDraft::default()).contains("name is required"));
        for bad in [
            window(830, 830),
            window(1800, 830),
            window(860, 900),
            window(0, 2400),
        ] {
            let d = RuleDraft {
                day_times: vec![bad],
                ..good.clone()
            };
            assert!(refused(d).contains("day_times"));
        }
        let d = RuleDraft {
            weekdays: vec![8],
            ..good.clone()
        };
        assert!(refused(d).contains("weekday"));
        let d = RuleDraft {
            valid_from: Some(30),
            ..good.clone()
        };
        assert!(refused(d).contains("after end_day"));
        // An update may leave the name, the flags and the opening time out;
        // it keeps the old ones.
        let old = RuleSpec {
            remind_face: true,
            ..spec.clone()
        };
        let bare = RuleDraft {
            name: None,
            opening: false,
            weekdays: Vec::new(),
            day_times: Vec::new(),
            valid_from: None,
            valid_to: None,
            ..good.clone()
        };
        assert_eq!(bare.spec(Some(&old)).unwrap(), old);
        // A new opening time replaces the whole old one.
        let daily = RuleDraft {
            opening: true,
            ..bare.clone()
        };
        let replaced = daily.spec(Some(&old)).unwrap();
        assert_eq!((replaced.valid_to, replaced.weekdays.len()), (None, 0));
    }
}
