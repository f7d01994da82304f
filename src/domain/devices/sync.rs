//! Templates out: the pulls (by ids, by page, the membership check)
//! through which devices receive the templates others enrolled. Reading
//! requests off the wire and writing the answers is the protocol's
//! (`api::wecom::frames`).

use std::collections::{HashMap, HashSet};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::messages::{PassRule, TemplateSet, UserCheck, UserInfo, UserPage, Wanted};
use super::{DeviceUser, Modality, Session, StoredTemplate};
use crate::domain::audit::AuditEvent;
use crate::domain::{Core, Person};
use crate::model::error::{Error, Result};
use crate::model::{BookKey, RuleSpec, Stream, UserType};

/// Users per frame, for uploads and pulls alike.
pub const MAX_USERS: usize = 200;
/// Page size when a page request names none.
pub const DEFAULT_PAGE: i64 = 100;

/// A page of the full pull, checked: `offset` not negative, `limit` 1 to
/// [`MAX_USERS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Of the people with ids above this (0: all).
    after: i64,
    offset: i64,
    limit: i64,
}

impl Page {
    pub fn new(offset: i64, limit: i64) -> Result<Page> {
        if offset < 0 {
            return Err(Error::param("offset must not be negative"));
        }
        if !(1..=MAX_USERS as i64).contains(&limit) {
            return Err(Error::param(format!("limit must be 1 to {MAX_USERS}")));
        }
        Ok(Page {
            after: 0,
            offset,
            limit,
        })
    }

    /// The first `limit` people with ids above `after`: pages that stay
    /// exact while people before them go.
    pub fn after(after: i64, limit: i64) -> Result<Page> {
        Ok(Page {
            after,
            ..Page::new(0, limit)?
        })
    }
}

/// Refuses a pull naming more than [`MAX_USERS`] users (before they are
/// read one by one).
pub fn check_pull_size(n: usize) -> Result<()> {
    if n > MAX_USERS {
        return Err(Error::param(format!(
            "{n} users requested, at most {MAX_USERS}"
        )));
    }
    Ok(())
}

/// Keyed digest of a template: lets a re-sent upload be recognised as
/// unchanged without decrypting, and reveals nothing of the template.
pub(crate) fn template_digest(key: &[u8], data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"template\0");
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

impl Core {
    pub(super) fn template_aad(person_id: i64, m: Modality, algorithm: &str, slot: i64) -> Vec<u8> {
        format!("template:{person_id}:{}:{algorithm}:{slot}", m.as_str()).into_bytes()
    }

    /// The people named, as `session` may see them (unknown ones are left
    /// out).
    pub async fn users_by_ids(
        &self,
        session: &Session,
        users: &[DeviceUser],
        wanted: Wanted,
    ) -> Result<Vec<UserInfo>> {
        let (people, _) = self.people_by_device_ids(session.tenant_id, users).await?;
        let book = self.book(session).await?;
        let people = self.within(&book, people).await?;
        self.userinfo(session, &book, &people, wanted).await
    }

    /// One page of the full pull of a list (`get_userinfo_by_page` for
    /// staff, `get_visitor_list` for visitors); the people and the list's
    /// version are read together.
    pub async fn users_page(
        &self,
        session: &Session,
        list: Stream,
        page: Page,
        wanted: Wanted,
    ) -> Result<UserPage> {
        let (people, is_last, version, book) = self.people_page(session, list, page).await?;
        let last_id = people.last().map(|p| p.id);
        let people = self.within(&book, people).await?;
        let users = self.userinfo(session, &book, &people, wanted).await?;
        Ok(UserPage {
            is_last,
            list,
            version,
            users,
            last_id,
        })
    }

    /// Which of `users` are people of the device's tenant.
    pub async fn check_users(&self, session: &Session, users: &[DeviceUser]) -> Result<UserCheck> {
        let (people, mut illegal) = self.people_by_device_ids(session.tenant_id, users).await?;
        let book = self.book(session).await?;
        let named = |p: &Person| DeviceUser {
            userid: p.user_id.clone(),
            user_type: p.user_type.as_i64(),
        };
        let all: Vec<DeviceUser> = people.iter().map(named).collect();
        let legal: Vec<DeviceUser> = self
            .within(&book, people)
            .await?
            .iter()
            .map(|(p, _)| named(p))
            .collect();
        // People outside the terminal's book are not in its scope.
        illegal.extend(all.into_iter().filter(|u| !legal.contains(u)));
        Ok(UserCheck { legal, illegal })
    }

    /// These people as `session` may see them: per person and modality,
    /// the templates of the first algorithm in the device's priority list
    /// that has any, never another algorithm's.
    async fn userinfo(
        &self,
        session: &Session,
        book: &BookKey,
        admitted: &[(Person, Vec<i64>)],
        wanted: Wanted,
    ) -> Result<Vec<UserInfo>> {
        let rules: HashMap<i64, RuleSpec> = match book {
            Some(numbers) => self
                .db
                .rules_by_numbers(numbers)
                .await?
                .into_iter()
                .map(|r| (r.number, r.spec))
                .collect(),
            None => HashMap::new(),
        };
        let people: Vec<Person> = admitted.iter().map(|(p, _)| p.clone()).collect();
        let pass_rules: Vec<Option<Vec<PassRule>>> = admitted
            .iter()
            .map(|(_, numbers)| book.as_ref().map(|_| pass_rules(&rules, numbers)))
            .collect();
        let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
        let mut stored = Vec::new();
        for (want, modality, prefs) in [
            (wanted.faces, Modality::Face, &session.fa_algorithms),
            (
                wanted.fingerprints,
                Modality::Fingerprint,
                &session.fp_algorithms,
            ),
        ] {
            if want {
                let templates = self.db.templates_of(&ids, modality).await?;
                stored.push((modality, prefs.clone(), templates));
            }
        }
        // Opening thousands of templates is CPU work: off the async threads.
        let keys = self.keys.clone();
        let people = people.to_vec();
        let (items, sent) = tokio::task::spawn_blocking(move || {
            // What was sent, per person who got templates.
            let mut sent: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            let mut items: Vec<UserInfo> = people
                .iter()
                .zip(pass_rules)
                .map(|(p, pass_rules)| UserInfo {
                    person_id: p.id,
                    user: DeviceUser {
                        userid: p.user_id.clone(),
                        user_type: p.user_type.as_i64(),
                    },
                    name: p.name.clone(),
                    fa_ver: p.fa_ver,
                    fp_ver: p.fp_ver,
                    faces: None,
                    fingerprints: None,
                    pass_rules,
                })
                .collect();
            for (modality, prefs, stored) in &stored {
                let mut by_person: HashMap<i64, Vec<&StoredTemplate>> = HashMap::new();
                for t in stored {
                    by_person.entry(t.person_id).or_default().push(t);
                }
                for (p, item) in people.iter().zip(items.iter_mut()) {
                    let mine = by_person.get(&p.id).map(Vec::as_slice).unwrap_or_default();
                    let chosen = prefs
                        .iter()
                        .find(|a| mine.iter().any(|t| &t.algorithm == *a));
                    let mut set = TemplateSet::default();
                    if let Some(alg) = chosen {
                        for t in mine.iter().filter(|t| &t.algorithm == alg) {
                            let aad = Self::template_aad(p.id, *modality, alg, t.slot);
                            match keys.open_small(&aad, &t.sealed) {
                                Ok(data) => set.slots.push((t.slot, data)),
                                // One damaged row must not fail every page
                                // that holds its person.
                                Err(e) => tracing::error!(
                                    person_id = p.id, slot = t.slot, error = %e,
                                    "a stored template cannot be opened; left out"
                                ),
                            }
                        }
                        set.algorithm = Some(alg.clone());
                        if !set.slots.is_empty() {
                            let what = format!("{}/{alg}:{}", modality.as_str(), set.slots.len());
                            sent.entry(p.user_id.clone()).or_default().push(what);
                        }
                    }
                    match modality {
                        Modality::Face => item.faces = Some(set),
                        Modality::Fingerprint => item.fingerprints = Some(set),
                    }
                }
            }
            (items, sent)
        })
        .await
        .map_err(|e| Error::internal(format!("userinfo builder: {e}")))?;
        let events = sent
            .into_iter()
            .map(|(user_id, what)| {
                AuditEvent::by_device(session.tenant_id, &session.sn, "template.sync")
                    .subject(Some(&user_id))
                    .object(what.join(" "))
            })
            .collect();
        self.audit.record(events).await?;
        Ok(items)
    }

    /// The people named by `(userid, user_type)`, in request order; unknown
    /// ones are left out.
    pub async fn people_by_device_ids(
        &self,
        tenant_id: i64,
        users: &[DeviceUser],
    ) -> Result<(Vec<Person>, Vec<DeviceUser>)> {
        if users.len() > MAX_USERS {
            return Err(Error::param(format!(
                "{} users requested, at most {MAX_USERS}",
                users.len()
            )));
        }
        let people = self.db.people_by_device_ids(tenant_id, users).await?;
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        let mut seen = HashSet::new();
        for u in users {
            if !seen.insert(u.clone()) {
                continue;
            }
            match people.get(u) {
                Some(p) => found.push(p.clone()),
                None => missing.push(u.clone()),
            }
        }
        Ok((found, missing))
    }

    /// What the terminal of `session` holds.
    async fn book(&self, session: &Session) -> Result<BookKey> {
        Ok(self.db.device(&session.sn).await?.and_then(|d| d.book))
    }

    /// Those of `people` the book holds, each with the rules that admit
    /// them there (none for the whole tenant, which holds no visitors).
    async fn within(&self, book: &BookKey, people: Vec<Person>) -> Result<Vec<(Person, Vec<i64>)>> {
        let Some(numbers) = book else {
            return Ok(people
                .into_iter()
                .filter(|p| p.user_type != UserType::Visitor)
                .map(|p| (p, Vec::new()))
                .collect());
        };
        let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
        let mut admitted = self.db.admitted(numbers, &ids).await?;
        Ok(people
            .into_iter()
            .filter_map(|p| admitted.remove(&p.id).map(|rules| (p, rules)))
            .collect())
    }

    /// One page of a list (staff or visitors) the terminal of `session`
    /// pulls: (people, is_last, the list's version, the terminal's book
    /// read with them).
    async fn people_page(
        &self,
        session: &Session,
        list: Stream,
        page: Page,
    ) -> Result<(Vec<Person>, bool, i64, BookKey)> {
        let Page {
            after,
            offset,
            limit,
        } = page;
        let (people, total, version, book) = self
            .db
            .people_page(
                session.tenant_id,
                (list, &session.sn),
                (after, offset, limit),
            )
            .await?;
        let is_last = offset + people.len() as i64 >= total;
        Ok((people, is_last, version, book))
    }
}

/// A person's pass rules on a terminal, from the rules that admit them
/// there: each rule's windows, or all day when one of them has none (it
/// opens at all hours, whatever the others say).
fn pass_rules(rules: &HashMap<i64, RuleSpec>, admitting: &[i64]) -> Vec<PassRule> {
    let mut out = Vec::new();
    for n in admitting {
        let Some(spec) = rules.get(n) else { continue };
        let lines = spec.pass_rules();
        if lines.is_empty() {
            return vec![PassRule {
                id: *n,
                rule: ALL_DAY.to_string(),
                effect_time: spec.valid_from.unwrap_or(0),
            }];
        }
        out.extend(lines.into_iter().map(|rule| PassRule {
            id: *n,
            rule,
            effect_time: spec.valid_from.unwrap_or(0),
        }));
    }
    out
}

/// The pass rule of a person no window limits.
const ALL_DAY: &str = "0:00-23:59 * * * *";
