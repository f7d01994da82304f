//! People of a tenant: the directory that faces and settings hang off.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};

use serde_json::{Map, Value};

use super::{AttendanceSetting, Core, Person, PersonDraft, Tenant, UserId, UserType};
use crate::model::error::{Error, Result};
use crate::model::{Change, DeviceUser, PersonKey};
use crate::store::{Upsert, is_unique_violation};

/// How `employee_type` names the person in attendance requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmployeeType {
    EmployeeId,
    EmployeeNo,
}

impl EmployeeType {
    pub fn parse(s: &str) -> Result<EmployeeType> {
        match s {
            "employee_id" => Ok(EmployeeType::EmployeeId),
            "employee_no" => Ok(EmployeeType::EmployeeNo),
            "" => Err(Error::param("employee_type is required")),
            _ => Err(Error::param(format!(
                "employee_type invalid: {s:?}, use employee_id or employee_no"
            ))),
        }
    }
}

impl PersonDraft {
    pub fn new(user_id: &str, name: &str, employee_no: Option<&str>) -> Result<PersonDraft> {
        let user_id = UserId::parse(user_id)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
            return Err(Error::param("name must be 1 to 128 printable characters"));
        }
        let employee_no = match employee_no.map(str::trim) {
            None | Some("") => None,
            Some(no) if no.len() > 64 || no.chars().any(char::is_control) => {
                return Err(Error::param("employee_no must be 1 to 64 printable bytes"));
            }
            Some(no) => Some(no.to_string()),
        };
        Ok(PersonDraft {
            user_id,
            name: name.to_string(),
            employee_no,
            extra: Value::Object(Map::new()),
            user_type: None,
        })
    }
}

/// Result of a CSV import.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// (line number, reason)
    pub rejected: Vec<(u64, String)>,
}

/// What terminals are told when a person is written: on the device
/// protocol (userid, user_type) is the person, so a new person is created
/// there and a new type replaces the old identity (terminals drop it and
/// fetch the new one). Names and numbers are not on the protocol.
fn identity_change(user_id: &str, old: Option<i64>, new: i64) -> Option<Change> {
    let who = |user_type| DeviceUser {
        userid: user_id.to_string(),
        user_type,
    };
    match old {
        None => Some(Change {
            create_user: vec![who(new)],
            ..Change::default()
        }),
        Some(old) if old != new => Some(Change {
            create_user: vec![who(new)],
            delete_user: vec![who(old)],
            ..Change::default()
        }),
        Some(_) => None,
    }
}

/// A person and what is stored against them ([`Core::person_detail`]).
#[derive(Debug, Clone)]
pub struct PersonDetail {
    pub person: Person,
    /// (app_id, open_id), by app_id.
    pub open_ids: Vec<(String, String)>,
    pub attendance: Option<AttendanceSetting>,
    pub acs: Option<crate::store::AcsRow>,
    /// (modality, algorithm, slot, updated_at) of each stored template.
    pub templates: Vec<(String, String, i64, i64)>,
}

impl Core {
    pub async fn upsert_person(
        &self,
        tenant: &Tenant,
        draft: &PersonDraft,
    ) -> Result<(Person, Upsert)> {
        let union_id = self.union_id(&tenant.tenant_key, draft.user_id.as_str());
        let apps = self.db.apps_of_tenant(tenant.id).await?;
        let open_ids: Vec<(String, String)> = apps
            .iter()
            .map(|a| {
                (
                    a.app_id.clone(),
                    self.open_id(&a.app_id, draft.user_id.as_str()),
                )
            })
            .collect();
        match self
            .db
            .upsert_person(
                tenant.id,
                draft,
                &union_id,
                &open_ids,
                self.now(),
                |old, new| identity_change(draft.user_id.as_str(), old, new),
            )
            .await
        {
            Ok((p, Upsert::Created)) => {
                self.devices_changed().await;
                Ok((p, Upsert::Created))
            }
            Ok(r) => Ok(r),
            Err(e) if is_unique_violation(&e) => Err(Error::param(format!(
                "employee_no {:?} already belongs to another person",
                draft.employee_no.as_deref().unwrap_or_default()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn person(&self, tenant_id: i64, user_id: &str) -> Result<Option<Person>> {
        Ok(self
            .db
            .person_by(tenant_id, PersonKey::UserId, user_id)
            .await?)
    }

    /// The tenant's person with this user id, or [`Error::UserNotFound`].
    pub(crate) async fn known_person(&self, tenant_id: i64, user_id: &str) -> Result<Person> {
        self.person(tenant_id, user_id)
            .await?
            .ok_or_else(|| Error::UserNotFound(user_id.to_string()))
    }

    /// A tenant's people, by user_id.
    pub async fn people(&self, tenant_id: i64) -> anyhow::Result<Vec<Person>> {
        self.db.people(tenant_id).await
    }

    /// Everything stored of a person, for an administrator's eyes.
    pub async fn person_detail(
        &self,
        tenant_id: i64,
        user_id: &str,
    ) -> anyhow::Result<Option<PersonDetail>> {
        let Some(person) = self.person(tenant_id, user_id).await? else {
            return Ok(None);
        };
        Ok(Some(PersonDetail {
            open_ids: self.db.open_ids_of(person.id).await?,
            attendance: self.db.attendance(person.id).await?,
            acs: self.db.acs_user(person.id).await?,
            templates: self.db.template_slots(person.id).await?,
            person,
        }))
    }

    /// Finds a person of the tenant by the id kind the request names.
    pub async fn find_person(
        &self,
        tenant_id: i64,
        kind: EmployeeType,
        id: &str,
    ) -> Result<Option<Person>> {
        let key = match kind {
            EmployeeType::EmployeeId => PersonKey::UserId,
            EmployeeType::EmployeeNo => PersonKey::EmployeeNo,
        };
        Ok(self.db.person_by(tenant_id, key, id).await?)
    }

    /// Imports people from CSV with a header row naming at least `user_id`
    /// and `name` (`employee_no` and any further columns optional; further
    /// columns are kept as extra attributes). Each row stands alone: a bad
    /// row is reported with its line number and the rest still go in. A
    /// user_id the file already named is reported, not applied: which of
    /// the two rows is meant is the file's author's to say. A file that is
    /// not text (a spreadsheet, an archive, a picture) is refused whole.
    /// `progress` is called with the number of bytes consumed so far.
    pub async fn import_people<R: Read>(
        &self,
        tenant: &Tenant,
        input: R,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportReport> {
        let mut input = BufReader::with_capacity(4096, input);
        let head = input
            .fill_buf()
            .map_err(|e| Error::param(format!("cannot read the file: {e}")))?;
        if let Some(file) = crate::image::contained::file_at_front(head) {
            return Err(Error::param(format!(
                "the file is {}, not CSV: export it as CSV (UTF-8)",
                file.mime
            )));
        }
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = rdr
            .headers()
            .map_err(|e| Error::param(format!("cannot read the CSV header: {e}")))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (Some(uid_col), Some(name_col)) = (col("user_id"), col("name")) else {
            return Err(Error::param(
                "the CSV header must name the columns user_id and name",
            ));
        };
        let no_col = col("employee_no");
        let type_col = col("user_type");
        let mut report = ImportReport::default();
        let mut record = csv::StringRecord::new();
        // user_id → the line that named it first.
        let mut named: HashMap<String, u64> = HashMap::new();
        loop {
            let line = rdr.position().line();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(line);
                    report.rejected.push((line, format!("unreadable row: {e}")));
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                    continue;
                }
            }
            let line = record.position().map(|p| p.line()).unwrap_or(line);
            progress(record.position().map(|p| p.byte()).unwrap_or(0));
            let get = |i: usize| record.get(i).unwrap_or("");
            if let Some(first) = named.get(get(uid_col)) {
                report.rejected.push((
                    line,
                    format!(
                        "user_id {} is already on line {first} of this file; not applied",
                        get(uid_col)
                    ),
                ));
                continue;
            }
            let known = [Some(uid_col), Some(name_col), no_col, type_col];
            let draft =
                PersonDraft::new(get(uid_col), get(name_col), no_col.map(get)).and_then(|mut d| {
                    let mut extra = Map::new();
                    for (i, h) in headers.iter().enumerate() {
                        if !known.contains(&Some(i)) && !get(i).is_empty() {
                            extra.insert(h.to_string(), Value::String(get(i).to_string()));
                        }
                    }
                    d.extra = Value::Object(extra);
                    if let Some(c) = type_col {
                        d.user_type = Some(UserType::parse(get(c))?);
                    }
                    Ok(d)
                });
            let outcome = match draft {
                Ok(d) => self.upsert_person(tenant, &d).await,
                Err(e) => Err(e),
            };
            if outcome.is_ok() {
                // Claimed once applied: a corrected repeat of a refused row
                // still goes in.
                named.insert(get(uid_col).to_string(), line);
            }
            match outcome {
                Ok((_, Upsert::Created)) => report.created += 1,
                Ok((_, Upsert::Updated)) => report.updated += 1,
                Ok((_, Upsert::Unchanged)) => report.unchanged += 1,
                Err(Error::InvalidParam(msg)) => report.rejected.push((line, msg)),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::core;
    use crate::model::Stream;

    #[tokio::test]
    async fn import_reports_each_row() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        core.create_app(&t, &[]).await.unwrap();
        let csv = "user_id,name,employee_no,dept\n\
                   u1,Ann,E1,R&D\n\
                   u2,Bob,,\n\
                   ,NoId,E3,\n\
                   u3,Cid,E1,\n\
                   u1,Ann Lee,E1,R&D\n\
                   u2,Bob,,\n";
        let mut seen = 0;
        let r = core
            .import_people(&t, csv.as_bytes(), |b| seen = b)
            .await
            .unwrap();
        assert_eq!((r.created, r.updated, r.unchanged), (2, 0, 0));
        assert_eq!(r.rejected.len(), 4, "{:?}", r.rejected);
        assert_eq!(r.rejected[0].0, 4);
        assert_eq!(r.rejected[1].0, 5);
        assert!(r.rejected[1].1.contains("employee_no"));
        // A user_id named again: reported with its first line, not applied.
        assert_eq!(
            r.rejected[2],
            (
                6,
                "user_id u1 is already on line 2 of this file; not applied".into()
            )
        );
        assert_eq!(r.rejected[3].0, 7);
        assert!(seen > 0);
        let ann = core.person(t.id, "u1").await.unwrap().unwrap();
        assert_eq!(ann.name, "Ann");
        assert_eq!(ann.extra.get("dept").unwrap(), "R&D");
        assert!(ann.union_id.starts_with("on_"));
        let open = core.db.open_ids_of(ann.id).await.unwrap();
        assert_eq!(open.len(), 1);
        assert!(open[0].1.starts_with("ou_"));
    }

    #[tokio::test]
    async fn import_refuses_what_is_not_csv() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        let png = crate::image::samples::png(64, 64);
        let e = core.import_people(&t, png.as_slice(), |_| {}).await;
        let e = e.expect_err("a PNG is not CSV").to_string();
        assert!(e.contains("the file is image/png, not CSV"), "{e}");
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend([0u8; 200]);
        let e = core.import_people(&t, zip.as_slice(), |_| {}).await;
        let e = e.expect_err("a ZIP is not CSV").to_string();
        assert!(e.contains("application/zip, not CSV"), "{e}");
        assert!(core.people(t.id).await.unwrap().is_empty());
        // A CSV that starts like a script is still CSV.
        let r = core
            .import_people(&t, "#!user_id,name\n".as_bytes(), |_| {})
            .await;
        assert!(r.is_err_and(|e| e.to_string().contains("user_id and name")));
    }

    #[tokio::test]
    async fn ids_are_stable_and_per_app() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        let a1 = core.create_app(&t, &[]).await.unwrap();
        let d = PersonDraft::new("u1", "Ann", None).unwrap();
        let (p, _) = core.upsert_person(&t, &d).await.unwrap();
        let a2 = core.create_app(&t, &[]).await.unwrap();
        let open = core.db.open_ids_of(p.id).await.unwrap();
        assert_eq!(open.len(), 2);
        assert_eq!(
            open.iter().find(|o| o.0 == a1.app.app_id).unwrap().1,
            core.open_id(&a1.app.app_id, "u1")
        );
        assert_eq!(
            open.iter().find(|o| o.0 == a2.app.app_id).unwrap().1,
            core.open_id(&a2.app.app_id, "u1")
        );
        assert_ne!(open[0].1, open[1].1);
        assert_eq!(p.union_id, core.union_id(&t.tenant_key, "u1"));
    }

    #[tokio::test]
    async fn a_new_person_is_one_change_for_the_terminals() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        let mut d = PersonDraft::new("v1", "Vera", None).unwrap();
        d.user_type = Some(UserType::Visitor);
        core.upsert_person(&t, &d).await.unwrap();
        // A visitor is a change of the visitor list, not of the staff's.
        let versions = core.db.versions(t.id).await.unwrap();
        assert_eq!((versions.people, versions.visitors), (0, 1));
        let changes = core
            .db
            .changes_after(t.id, Stream::Visitors, 0, 10)
            .await
            .unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].1.create_user,
            vec![crate::domain::devices::DeviceUser {
                userid: "v1".into(),
                user_type: 1
            }]
        );
        // Updating or re-importing the same person is not a change.
        d.name = "Vera Lee".into();
        core.upsert_person(&t, &d).await.unwrap();
        core.upsert_person(&t, &d).await.unwrap();
        assert_eq!(core.db.versions(t.id).await.unwrap(), versions);
        // A CSV user_type column is read; a bad one rejects its row.
        let csv = "user_id,name,user_type\ns1,Sam,student\nbad,Bo,7\n";
        let r = core
            .import_people(&t, csv.as_bytes(), |_| {})
            .await
            .unwrap();
        assert_eq!((r.created, r.rejected.len()), (1, 1));
        let sam = core.person(t.id, "s1").await.unwrap().unwrap();
        assert_eq!(sam.user_type, UserType::Student);
        assert!(!sam.extra.contains_key("user_type"));
        // A re-import without the column keeps the type; a new type is one
        // change: the old identity deleted, the new one created.
        let before = core.perm_version(t.id).await.unwrap();
        let r = core
            .import_people(&t, "user_id,name\ns1,Sam\n".as_bytes(), |_| {})
            .await
            .unwrap();
        assert_eq!(r.unchanged, 1);
        assert_eq!(core.perm_version(t.id).await.unwrap(), before);
        let mut e = PersonDraft::new("s1", "Sam", None).unwrap();
        e.user_type = Some(UserType::Employee);
        core.upsert_person(&t, &e).await.unwrap();
        let last = core
            .db
            .changes_after(t.id, Stream::People, before, 10)
            .await
            .unwrap();
        assert_eq!(last.len(), 1);
        let dev = |t| crate::domain::devices::DeviceUser {
            userid: "s1".into(),
            user_type: t,
        };
        assert_eq!(last[0].1.delete_user, vec![dev(2)]);
        assert_eq!(last[0].1.create_user, vec![dev(0)]);
    }

    #[tokio::test]
    async fn header_must_name_columns() {
        let (_dir, core) = core().await;
        let t = core.create_tenant("acme").await.unwrap();
        assert!(
            core.import_people(&t, "id,who\n1,2\n".as_bytes(), |_| {})
                .await
                .is_err()
        );
    }
}
