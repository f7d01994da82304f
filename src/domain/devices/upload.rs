//! Templates in: an upload (a device enrolled people), each user judged
//! alone by the rules here (slot ranges, sizes, pictures, algorithms,
//! counts), the good ones stored in one transaction. Reading the upload
//! off the wire is the protocol's (`api::wecom::frames`).

use std::collections::{HashMap, HashSet};

use super::messages::{SlotData, TemplateList, Upload, UserFault, UserUpload};
use super::sync::{MAX_USERS, template_digest};
use super::{DeviceUser, Modality, PersonTemplates, Session, TemplateWrite, algorithm_name};
use crate::domain::Core;
use crate::domain::audit::AuditEvent;
use crate::image::contained::file_within;
use crate::model::error::{Error, Result};

/// Largest template accepted, after base64 decoding. Feature vectors of
/// face algorithms are 0.5–4 KiB and fingerprint minutiae templates under
/// 2 KiB; twice the largest seen leaves room without letting a frame carry
/// photos in disguise.
pub const MAX_TEMPLATE_BYTES: usize = 8 * 1024;

/// The result of one upload.
#[derive(Debug, Default)]
pub struct UploadOutcome {
    pub fail_list: Vec<DeviceUser>,
    /// The new `perm_version`, if anything changed.
    pub version: Option<i64>,
    /// (user, why) of each failure, for the enrolment the upload answers.
    pub reasons: Vec<(DeviceUser, String)>,
}

/// A slot and its new data (`None` deletes it).
type SlotWrite = (i64, Option<Vec<u8>>);

/// One uploaded list → (slot, data or None to delete): ids in range, each
/// named once, templates within [`MAX_TEMPLATE_BYTES`] and neither holding
/// a picture nor being a known file ([`file_within`]).
/// Slots without data are checked but change nothing.
fn judge_slots(list: TemplateList, modality: Modality) -> Result<Vec<SlotWrite>, String> {
    let field = list.field;
    let items = list.slots?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .id
            .filter(|id| (0..modality.slots()).contains(id))
            .ok_or_else(|| format!("{field} id must be 0 to {}", modality.slots() - 1))?;
        if !seen.insert(id) {
            return Err(format!("{field} names slot {id} twice"));
        }
        let data = match item.data {
            SlotData::Unchanged => continue,
            SlotData::Delete => None,
            SlotData::Unreadable(why) => return Err(format!("{field} slot {id}: {why}")),
            SlotData::Template(bytes) => {
                if let Some(why) = template_fault(&bytes) {
                    return Err(format!("{field} slot {id}: {why}"));
                }
                Some(bytes)
            }
        };
        out.push((id, data));
    }
    Ok(out)
}

/// What is wrong with a template, whatever the protocol that brought it:
/// larger than [`MAX_TEMPLATE_BYTES`], or a picture or other known file
/// ([`file_within`]) rather than features.
pub fn template_fault(bytes: &[u8]) -> Option<String> {
    if bytes.len() > MAX_TEMPLATE_BYTES {
        return Some(format!(
            "template is larger than {MAX_TEMPLATE_BYTES} bytes"
        ));
    }
    file_within(bytes).map(|file| {
        format!("data holds a file ({file}), not features; upload irreversible features only")
    })
}

/// A user item's template writes, before sealing:
/// (modality, algorithm, slot, data or None).
pub type Plain = Vec<(Modality, String, i64, Option<Vec<u8>>)>;

/// The algorithms a device subscribed with: (face, fingerprint).
pub type Subscribed = (Vec<String>, Vec<String>);

/// One user of an upload, judged alone: its template writes, or why it
/// fails. Pure (no storage), so the fuzz target reaches it.
pub fn judge_user(
    upload: UserUpload,
    subscribed: &Subscribed,
) -> Result<(DeviceUser, Plain), UserFault> {
    let UserUpload {
        user,
        faces,
        fingerprints,
        ..
    } = upload;
    match writes_of(faces, fingerprints, subscribed) {
        Ok(writes) => Ok((user, writes)),
        Err(why) => Err(UserFault { user, why }),
    }
}

fn writes_of(
    faces: Option<TemplateList>,
    prints: Option<TemplateList>,
    subscribed: &Subscribed,
) -> Result<Plain, String> {
    // A device stores templates only of algorithms it subscribed with, so
    // it can neither mislabel its features nor touch other algorithms'.
    let algorithm = |list: &TemplateList, listed: &[String]| {
        let name = algorithm_name(list.algorithm.as_deref())?;
        if listed.contains(&name) {
            Ok(name)
        } else {
            Err(format!(
                "{} {name:?} is not among the algorithms this device subscribed with ({})",
                list.algorithm_field,
                listed.join(", ")
            ))
        }
    };
    let mut out = Plain::new();
    if let Some(list) = faces {
        let alg = algorithm(&list, &subscribed.0);
        let slots = judge_slots(list, Modality::Face)?;
        let alg = alg?;
        out.extend(
            slots
                .into_iter()
                .map(|(s, d)| (Modality::Face, alg.clone(), s, d)),
        );
    }
    if let Some(list) = prints {
        let alg = algorithm(&list, &subscribed.1)?;
        let slots = judge_slots(list, Modality::Fingerprint)?;
        out.extend(
            slots
                .into_iter()
                .map(|(s, d)| (Modality::Fingerprint, alg.clone(), s, d)),
        );
    }
    Ok(out)
}

impl Core {
    /// An upload: each user is judged on its own; the good ones are stored
    /// together (one new version if anything changed), the bad ones are
    /// returned in `fail_list`. An upload answering an enrolment finishes
    /// it; one reporting that enrolment failed stores nothing.
    pub async fn upload_userinfo(
        &self,
        session: &Session,
        upload: Upload,
    ) -> Result<UploadOutcome> {
        let Upload { users, answer } = upload;
        // Who the upload names, and whether it carries faces / fingerprints:
        // what an enrolment answered by this upload needs to succeed.
        let uploaded: Vec<(DeviceUser, bool, bool)> = users
            .iter()
            .filter_map(|u| u.as_ref().ok())
            .map(|u| (u.user.clone(), u.sent_faces, u.sent_fingerprints))
            .collect();
        let outcome = match &answer {
            Some(a) if a.errcode != 0 => UploadOutcome::default(),
            _ => self.store_upload(session, users).await?,
        };
        if let Some(a) = &answer {
            self.finish_enrolment(session, a, &uploaded, &outcome)
                .await?;
        }
        Ok(outcome)
    }

    /// Judges and stores the users of an upload. Judging and sealing run
    /// off the async threads: a full frame is thousands of templates.
    async fn store_upload(
        &self,
        session: &Session,
        users: Vec<Result<UserUpload, UserFault>>,
    ) -> Result<UploadOutcome> {
        if users.len() > MAX_USERS {
            return Err(Error::param(format!(
                "userinfo holds {} users, at most {MAX_USERS}",
                users.len()
            )));
        }
        let subscribed: Subscribed = (session.fa_algorithms.clone(), session.fp_algorithms.clone());
        let parsed: Vec<Result<(DeviceUser, Plain), UserFault>> =
            tokio::task::spawn_blocking(move || {
                users
                    .into_iter()
                    .map(|u| u.and_then(|u| judge_user(u, &subscribed)))
                    .collect()
            })
            .await
            .map_err(|e| Error::internal(format!("upload judge: {e}")))?;
        let wanted: Vec<DeviceUser> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|(u, _)| u.clone()))
            .collect();
        let people = self
            .db
            .people_by_device_ids(session.tenant_id, &wanted)
            .await?;
        let mut outcome = UploadOutcome::default();
        let mut known: Vec<(i64, DeviceUser, Plain)> = Vec::new();
        for p in parsed {
            match p {
                Ok((user, writes)) => match people.get(&user) {
                    Some(person) => known.push((person.id, user, writes)),
                    None => {
                        outcome.fail_list.push(user.clone());
                        outcome
                            .reasons
                            .push((user, "userid is not a member of this company".into()));
                    }
                },
                Err(UserFault { user, why }) => {
                    outcome.fail_list.push(user.clone());
                    outcome.reasons.push((user, why));
                }
            }
        }
        outcome.version = self
            .write_templates(session.tenant_id, &session.sn, known)
            .await?;
        Ok(outcome)
    }

    /// Seals and stores the template writes of people of the tenant, with
    /// a `template.upload` audit record each (committed with them); one new
    /// version if anything changed, which it returns.
    pub(super) async fn write_templates(
        &self,
        tenant_id: i64,
        sn: &str,
        known: Vec<(i64, DeviceUser, Plain)>,
    ) -> Result<Option<i64>> {
        let keys = self.keys.clone();
        let digest_key = *self.keys.current().digest_key();
        let people: Vec<PersonTemplates> = tokio::task::spawn_blocking(move || {
            let mut people: Vec<PersonTemplates> = Vec::new();
            let mut index: HashMap<DeviceUser, usize> = HashMap::new();
            for (person_id, user, writes) in known {
                let sealed: Vec<TemplateWrite> = writes
                    .into_iter()
                    .map(|(modality, algorithm, slot, data)| TemplateWrite {
                        sealed: data.map(|d| {
                            let aad = Core::template_aad(person_id, modality, &algorithm, slot);
                            (keys.seal_small(&aad, &d), template_digest(&digest_key, &d))
                        }),
                        modality,
                        algorithm,
                        slot,
                    })
                    .collect();
                // The same user twice in one frame: the later item wins per slot.
                match index.get(&user) {
                    Some(&i) => people[i].writes.extend(sealed),
                    None => {
                        index.insert(user.clone(), people.len());
                        people.push(PersonTemplates {
                            person_id,
                            user,
                            writes: sealed,
                        });
                    }
                }
            }
            people
        })
        .await
        .map_err(|e| Error::internal(format!("template sealing: {e}")))?;
        // The upload's records commit with its templates.
        let events: Vec<AuditEvent> = people
            .iter()
            .filter(|p| !p.writes.is_empty())
            .map(|p| {
                let slots: Vec<String> = p
                    .writes
                    .iter()
                    .map(|w| {
                        let gone = if w.sealed.is_none() { " deleted" } else { "" };
                        format!("{}/{}:{}{gone}", w.modality.as_str(), w.algorithm, w.slot)
                    })
                    .collect();
                AuditEvent::by_device(tenant_id, sn, "template.upload")
                    .subject(Some(&p.user.userid))
                    .object(slots.join(" "))
            })
            .collect();
        let (_, version) = self
            .db
            .apply_templates(tenant_id, &people, self.now(), &events)
            .await?;
        if version.is_some() {
            self.devices_changed().await;
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::devices::bringup::tests::bring_up;
    use crate::domain::devices::messages::{self, SlotInput};
    use crate::domain::testing::core;

    fn list(field: &'static str, slots: Vec<(Option<i64>, SlotData)>) -> TemplateList {
        TemplateList {
            field,
            algorithm_field: "fa_algorithm",
            algorithm: None,
            slots: Ok(slots
                .into_iter()
                .map(|(id, data)| SlotInput { id, data })
                .collect()),
        }
    }

    fn data(b: &[u8]) -> SlotData {
        SlotData::Template(b.to_vec())
    }

    #[test]
    fn slot_rules() {
        let ok = judge_slots(
            list(
                "fa_list",
                vec![
                    (Some(0), data(&[0, 1, 2])),
                    (Some(11), SlotData::Delete),
                    (Some(5), SlotData::Unchanged),
                ],
            ),
            Modality::Face,
        )
        .unwrap();
        assert_eq!(ok, vec![(0, Some(vec![0, 1, 2])), (11, None)]);
        let why = |slots, m| judge_slots(list("fa_list", slots), m).unwrap_err();
        assert_eq!(
            why(vec![(Some(12), data(b"x"))], Modality::Face),
            "fa_list id must be 0 to 11"
        );
        assert_eq!(
            why(vec![(None, data(b"x"))], Modality::Face),
            "fa_list id must be 0 to 11"
        );
        assert_eq!(
            why(vec![(Some(10), data(b"x"))], Modality::Fingerprint),
            "fa_list id must be 0 to 9"
        );
        // A slot without data still counts as named.
        assert_eq!(
            why(
                vec![(Some(1), SlotData::Unchanged), (Some(1), data(b"x"))],
                Modality::Face
            ),
            "fa_list names slot 1 twice"
        );
        assert_eq!(
            why(
                vec![(
                    Some(1),
                    SlotData::Unreadable("data must be a string".into())
                )],
                Modality::Face
            ),
            "fa_list slot 1: data must be a string"
        );
        let jpeg = crate::image::samples::jpeg(64, 64);
        assert_eq!(
            why(vec![(Some(1), data(&jpeg))], Modality::Face),
            "fa_list slot 1: data holds a file (image/jpeg at byte 0), not features; \
             upload irreversible features only"
        );
        // Behind a byte of padding it is still a photo.
        let padded = [&[0x17][..], &jpeg].concat();
        assert!(
            why(vec![(Some(2), data(&padded))], Modality::Face).contains("image/jpeg at byte 1")
        );
        let big = vec![7u8; MAX_TEMPLATE_BYTES + 1];
        assert!(why(vec![(Some(1), data(&big))], Modality::Face).contains("larger than"));
        let max = vec![7u8; MAX_TEMPLATE_BYTES];
        assert!(judge_slots(list("fa", vec![(Some(0), data(&max))]), Modality::Face).is_ok());
        // A list the protocol could not read fails as it says.
        let mut bad = list("fp", vec![]);
        bad.slots = Err("fp must be an array".into());
        assert_eq!(
            judge_slots(bad, Modality::Fingerprint).unwrap_err(),
            "fp must be an array"
        );
    }

    #[test]
    fn only_subscribed_algorithms_are_written() {
        let subs: Subscribed = (vec!["default".into()], vec!["zk10".into()]);
        let user = DeviceUser {
            userid: "u1".into(),
            user_type: 0,
        };
        let upload = |faces, fingerprints| UserUpload {
            user: user.clone(),
            faces,
            fingerprints,
            sent_faces: true,
            sent_fingerprints: true,
        };
        let mut prints = list("fp", vec![(Some(2), SlotData::Delete)]);
        prints.algorithm_field = "fp_algorithm";
        prints.algorithm = Some("zk10".into());
        let (_, w) = judge_user(upload(None, Some(prints.clone())), &subs).unwrap();
        assert_eq!(
            w,
            vec![(Modality::Fingerprint, "zk10".to_string(), 2, None)]
        );
        prints.algorithm = None;
        let e = judge_user(upload(None, Some(prints)), &subs).unwrap_err();
        assert_eq!(e.user, user);
        assert!(
            e.why.starts_with("fp_algorithm \"default\" is not among"),
            "{}",
            e.why
        );
        // A face list's slots are judged before its algorithm.
        let mut faces = list("fa_list", vec![(Some(12), data(b"x"))]);
        faces.algorithm = Some("other".into());
        let e = judge_user(upload(Some(faces), None), &subs).unwrap_err();
        assert_eq!(e.why, "fa_list id must be 0 to 11");
    }

    /// An upload's templates and its audit record commit together; a
    /// template without a record is a problem `check` names.
    #[tokio::test]
    async fn uploaded_templates_are_audited_with_their_write() {
        let (_dir, core) = core().await;
        let (t, session) = bring_up(&core, "SN1").await;
        let d = crate::domain::PersonDraft::new("u1", "U One", None).unwrap();
        core.upsert_person(&t, &d).await.unwrap();
        let slot = |id| messages::SlotInput {
            id: Some(id),
            data: messages::SlotData::Template(b"opaque face features of u1".to_vec()),
        };
        let user = messages::UserUpload {
            user: DeviceUser {
                userid: "u1".into(),
                user_type: 0,
            },
            faces: Some(messages::TemplateList {
                field: "fa_list",
                algorithm_field: "fa_algorithm",
                algorithm: Some("X".into()),
                slots: Ok(vec![slot(0), slot(11)]),
            }),
            fingerprints: None,
            sent_faces: true,
            sent_fingerprints: false,
        };
        let upload = messages::Upload {
            users: vec![Ok(user)],
            answer: None,
        };
        let outcome = core.upload_userinfo(&session, upload).await.unwrap();
        assert!(outcome.fail_list.is_empty());
        let r = core.check(std::time::Duration::ZERO).await.unwrap();
        assert!(r.unaudited.is_empty(), "{r:?}");
        sqlx::query("DELETE FROM audit_log WHERE action = 'template.upload'")
            .execute(core.db.pool().unwrap())
            .await
            .unwrap();
        let r = core.check(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(
            r.unaudited,
            [
                format!("template.upload tenant:{} u1 fa/X:0", t.id),
                format!("template.upload tenant:{} u1 fa/X:11", t.id),
            ]
        );
    }
}
