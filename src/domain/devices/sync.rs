//! Templates in and out: `upload_userinfo` (a device enrolled people) and
//! the pulls (`get_userinfo_by_ids`, `get_userinfo_by_page`,
//! `check_userid`) through which the other devices receive them.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::{
    DeviceUser, Modality, PersonTemplates, Session, StoredTemplate, TemplateWrite, algorithm_name,
};
use crate::domain::audit::AuditEvent;
use crate::domain::{Core, Person};
use crate::image::{ImageFormat, Sniffed, sniff};
use crate::model::error::{Error, Result};

/// Users per frame, for uploads and pulls alike.
pub const MAX_USERS: usize = 200;
/// Largest template accepted, after base64 decoding. Feature vectors of
/// face algorithms are 0.5–4 KiB and fingerprint minutiae templates under
/// 2 KiB; twice the largest seen leaves room without letting a frame carry
/// photos in disguise.
pub const MAX_TEMPLATE_BYTES: usize = 8 * 1024;
/// Standard base64, padded or not: firmware differs.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Page size when `get_userinfo_by_page` names none.
pub const DEFAULT_PAGE: i64 = 100;

/// The result of one `upload_userinfo`.
#[derive(Debug, Default)]
pub struct UploadOutcome {
    pub fail_list: Vec<DeviceUser>,
    /// The new `perm_version`, if anything changed.
    pub version: Option<i64>,
    /// (user, why) of each failure, for the enrolment the upload answers.
    pub reasons: Vec<(DeviceUser, String)>,
}

/// A number, or a string holding one (firmware sends both).
pub fn int_field(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional flag that defaults to `default` (`is_req_fa_info` …).
pub fn flag(body: &Value, name: &str, default: bool) -> Result<bool> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => match int_field(v) {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(Error::param(format!("{name} must be 0 or 1"))),
        },
    }
}

/// `(userid, user_type)` of a user item, as well as it can be read; used
/// to name the user in `fail_list` even when the item is malformed.
fn name_of(item: &Value) -> DeviceUser {
    // Echoed in fail_list: at most the 128 bytes a userid may have.
    let userid = match item.get("userid") {
        Some(Value::String(s)) => super::clip(s, 128).to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let user_type = item.get("user_type").and_then(int_field).unwrap_or(0);
    DeviceUser { userid, user_type }
}

/// A user item's identity, validated.
fn user_of(item: &Value) -> Result<DeviceUser, String> {
    let Some(obj) = item.as_object() else {
        return Err("user item is not an object".into());
    };
    let userid = match obj.get("userid") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => s.clone(),
        Some(Value::String(_)) => return Err("userid must be 1 to 128 bytes".into()),
        _ => return Err("userid is required and must be a string".into()),
    };
    let user_type = match obj.get("user_type") {
        None | Some(Value::Null) => 0,
        Some(v) => match int_field(v) {
            Some(t @ 0..=2) => t,
            _ => return Err("user_type must be 0, 1 or 2".into()),
        },
    };
    Ok(DeviceUser { userid, user_type })
}

/// True when the bytes are a picture rather than features: a JPEG, PNG,
/// GIF, WebP or BMP header that describes an image. (ICO's 4-byte magic is
/// too likely inside real templates to count.)
pub fn is_image(data: &[u8]) -> bool {
    match sniff(data) {
        Sniffed::Image(ImageFormat::Ico) => false,
        // "BM" alone is two bytes; also require the header's file size.
        Sniffed::Image(ImageFormat::Bmp) => {
            data.len() >= 26
                && u32::from_le_bytes(data[2..6].try_into().expect("4 bytes")) as usize
                    == data.len()
        }
        Sniffed::Image(_) => imagesize::blob_size(data).is_ok(),
        _ => false,
    }
}

/// A slot and its new data (`None` deletes it).
type SlotWrite = (i64, Option<Vec<u8>>);

/// One slot list (`fa_list` / `fp`) → (slot, data or None to delete).
fn slots(list: &Value, modality: Modality, field: &str) -> Result<Vec<SlotWrite>, String> {
    let Some(items) = list.as_array() else {
        return Err(format!("{field} must be an array"));
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        // `id` is optional on the page: an item without one is its position.
        let id = match item.get("id") {
            None | Some(Value::Null) => Some(position as i64),
            Some(v) => int_field(v),
        }
        .filter(|id| (0..modality.slots()).contains(id))
        .ok_or_else(|| format!("{field} id must be 0 to {}", modality.slots() - 1))?;
        if !seen.insert(id) {
            return Err(format!("{field} names slot {id} twice"));
        }
        let data = match item.get("data") {
            // Only `data:""` deletes; an item without data changes nothing.
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                // Longer text cannot decode within the bound; refuse before decoding.
                if s.len() > MAX_TEMPLATE_BYTES.div_ceil(3) * 4 + 4 {
                    return Err(format!(
                        "{field} slot {id}: template is larger than {MAX_TEMPLATE_BYTES} bytes"
                    ));
                }
                let bytes = LENIENT
                    .decode(s)
                    .map_err(|_| format!("{field} slot {id}: data is not valid base64"))?;
                if bytes.len() > MAX_TEMPLATE_BYTES {
                    return Err(format!(
                        "{field} slot {id}: template is larger than {MAX_TEMPLATE_BYTES} bytes"
                    ));
                }
                if is_image(&bytes) {
                    return Err(format!(
                        "{field} slot {id}: data is an image; upload irreversible features only"
                    ));
                }
                Some(bytes)
            }
            Some(_) => return Err(format!("{field} slot {id}: data must be a string")),
        };
        out.push((id, data));
    }
    Ok(out)
}

/// A user item's template writes, before sealing:
/// (modality, algorithm, slot, data or None).
pub type Plain = Vec<(Modality, String, i64, Option<Vec<u8>>)>;

/// The algorithms a device subscribed with: (face, fingerprint).
pub type Subscribed = (Vec<String>, Vec<String>);

/// One `upload_userinfo` user item, judged alone: its identity and
/// template writes, or the user as well as it can be named and why it
/// fails. Pure (no storage), so the fuzz target reaches it.
pub fn parse_user_item(
    item: &Value,
    subscribed: &Subscribed,
) -> Result<(DeviceUser, Plain), (DeviceUser, String)> {
    user_of(item)
        .and_then(|u| writes_of(item, subscribed).map(|w| (u, w)))
        .map_err(|why| (name_of(item), why))
}

fn writes_of(item: &Value, subscribed: &Subscribed) -> Result<Plain, String> {
    let mut out = Plain::new();
    // A device stores templates only of algorithms it subscribed with, so
    // it can neither mislabel its features nor touch other algorithms'.
    let algorithm = |field: &str, listed: &[String]| {
        let name = algorithm_name(item.get(field).and_then(Value::as_str))?;
        if listed.contains(&name) {
            Ok(name)
        } else {
            Err(format!(
                "{field} {name:?} is not among the algorithms this device subscribed with ({})",
                listed.join(", ")
            ))
        }
    };
    let has = |field: &str| item.get(field).is_some_and(|v| !v.is_null());
    if has("fa_algorithm") && !item["fa_algorithm"].is_string() {
        return Err("fa_algorithm must be a string".into());
    }
    if has("fp_algorithm") && !item["fp_algorithm"].is_string() {
        return Err("fp_algorithm must be a string".into());
    }
    // `fa` (one legacy face) is slot 0, and ignored when `fa_list` is present.
    let faces = if has("fa_list") {
        Some(slots(&item["fa_list"], Modality::Face, "fa_list")?)
    } else if has("fa") {
        if item.get("user_type").and_then(int_field).unwrap_or(0) != 0 {
            return Err("fa is for employees only; visitors and students use fa_list".into());
        }
        Some(slots(
            &json!([{"id": 0, "data": item["fa"]}]),
            Modality::Face,
            "fa",
        )?)
    } else {
        None
    };
    if let Some(faces) = faces {
        let alg = algorithm("fa_algorithm", &subscribed.0)?;
        out.extend(
            faces
                .into_iter()
                .map(|(s, d)| (Modality::Face, alg.clone(), s, d)),
        );
    }
    if has("fp") {
        let alg = algorithm("fp_algorithm", &subscribed.1)?;
        let prints = slots(&item["fp"], Modality::Fingerprint, "fp")?;
        out.extend(
            prints
                .into_iter()
                .map(|(s, d)| (Modality::Fingerprint, alg.clone(), s, d)),
        );
    }
    Ok(out)
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
    fn template_aad(person_id: i64, m: Modality, algorithm: &str, slot: i64) -> Vec<u8> {
        format!("template:{person_id}:{}:{algorithm}:{slot}", m.as_str()).into_bytes()
    }

    /// `upload_userinfo`: each user is judged on its own; the good ones
    /// are stored together (one new version if anything changed), the bad
    /// ones are returned in `fail_list`. Decoding and sealing run off the
    /// async threads: a full frame is thousands of templates.
    pub async fn upload_userinfo(
        &self,
        session: &Session,
        userinfo: Vec<Value>,
    ) -> Result<UploadOutcome> {
        if userinfo.len() > MAX_USERS {
            return Err(Error::param(format!(
                "userinfo holds {} users, at most {MAX_USERS}",
                userinfo.len()
            )));
        }
        let subscribed: Subscribed = (session.fa_algorithms.clone(), session.fp_algorithms.clone());
        let parsed: Vec<Result<(DeviceUser, Plain), (DeviceUser, String)>> =
            tokio::task::spawn_blocking(move || {
                userinfo
                    .iter()
                    .map(|item| parse_user_item(item, &subscribed))
                    .collect()
            })
            .await
            .map_err(|e| Error::internal(format!("upload parser: {e}")))?;
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
                Err((who, why)) => {
                    outcome.fail_list.push(who.clone());
                    outcome.reasons.push((who, why));
                }
            }
        }
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
                AuditEvent::by_device(session.tenant_id, &session.sn, "template.upload")
                    .subject(Some(&p.user.userid))
                    .object(slots.join(" "))
            })
            .collect();
        let (_, version) = self
            .db
            .apply_templates(session.tenant_id, &people, self.now(), &events)
            .await?;
        if version.is_some() {
            self.devices_changed().await;
        }
        outcome.version = version;
        Ok(outcome)
    }

    /// `userinfo[]` items for these people as `session` may see them: per
    /// person and modality, the templates of the first algorithm in the
    /// device's priority list that has any, never another algorithm's.
    pub async fn userinfo(
        &self,
        session: &Session,
        people: &[Person],
        faces: bool,
        prints: bool,
    ) -> Result<Vec<Value>> {
        let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
        let mut wanted = Vec::new();
        for (want, modality, list_field, alg_field, prefs) in [
            (
                faces,
                Modality::Face,
                "fa_list",
                "fa_algorithm",
                &session.fa_algorithms,
            ),
            (
                prints,
                Modality::Fingerprint,
                "fp",
                "fp_algorithm",
                &session.fp_algorithms,
            ),
        ] {
            if want {
                let stored = self.db.templates_of(&ids, modality).await?;
                wanted.push((modality, list_field, alg_field, prefs.clone(), stored));
            }
        }
        // Opening and encoding thousands of templates is CPU work: off the
        // async threads.
        let keys = self.keys.clone();
        let people = people.to_vec();
        let (items, sent) = tokio::task::spawn_blocking(move || {
            // What was sent, per person who got templates.
            let mut sent: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            let mut items: Vec<Map<String, Value>> = people
                .iter()
                .map(|p| {
                    let mut m = Map::new();
                    m.insert("userid".into(), json!(p.user_id));
                    m.insert("user_type".into(), json!(p.user_type.as_i64()));
                    m.insert("name".into(), json!(p.name));
                    m.insert("fa_ver".into(), json!(p.fa_ver));
                    m.insert("fp_ver".into(), json!(p.fp_ver));
                    m
                })
                .collect();
            for (modality, list_field, alg_field, prefs, stored) in &wanted {
                let mut by_person: HashMap<i64, Vec<&StoredTemplate>> = HashMap::new();
                for t in stored {
                    by_person.entry(t.person_id).or_default().push(t);
                }
                for (p, item) in people.iter().zip(items.iter_mut()) {
                    let mine = by_person.get(&p.id).map(Vec::as_slice).unwrap_or_default();
                    let chosen = prefs
                        .iter()
                        .find(|a| mine.iter().any(|t| &t.algorithm == *a));
                    let mut list = Vec::new();
                    if let Some(alg) = chosen {
                        for t in mine.iter().filter(|t| &t.algorithm == alg) {
                            let aad = Self::template_aad(p.id, *modality, alg, t.slot);
                            match keys.open_small(&aad, &t.sealed) {
                                Ok(data) => {
                                    list.push(json!({"id": t.slot, "data": STANDARD.encode(data)}))
                                }
                                // One damaged row must not fail every page
                                // that holds its person.
                                Err(e) => tracing::error!(
                                    person_id = p.id, slot = t.slot, error = %e,
                                    "a stored template cannot be opened; left out"
                                ),
                            }
                        }
                        item.insert((*alg_field).into(), json!(alg));
                        if !list.is_empty() {
                            let what = format!("{}/{alg}:{}", modality.as_str(), list.len());
                            sent.entry(p.user_id.clone()).or_default().push(what);
                        }
                    }
                    item.insert((*list_field).into(), Value::Array(list));
                }
            }
            let items: Vec<Value> = items.into_iter().map(Value::Object).collect();
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

    /// One page of the full pull: (people, is_last, perm_version).
    pub async fn people_page(
        &self,
        tenant_id: i64,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<Person>, bool, i64)> {
        if offset < 0 {
            return Err(Error::param("offset must not be negative"));
        }
        if !(1..=MAX_USERS as i64).contains(&limit) {
            return Err(Error::param(format!("limit must be 1 to {MAX_USERS}")));
        }
        let (people, total, version) = self.db.people_page(tenant_id, offset, limit).await?;
        let is_last = offset + people.len() as i64 >= total;
        Ok((people, is_last, version))
    }
}

/// The `(userid, user_type)` items of a pull request: the new form
/// (`field_new`: `[{userid, user_type}]`) or the old (`field_old`: `[userid]`).
pub fn user_items(body: &Value, field_new: &str, field_old: &str) -> Result<Vec<DeviceUser>> {
    if let Some(items) = body.get(field_new).filter(|v| !v.is_null()) {
        let items = items
            .as_array()
            .ok_or_else(|| Error::param(format!("{field_new} must be an array")))?;
        check_count(items.len())?;
        items
            .iter()
            .map(|i| user_of(i).map_err(|e| Error::param(format!("{field_new}: {e}"))))
            .collect()
    } else if let Some(ids) = body.get(field_old).filter(|v| !v.is_null()) {
        let ids = ids
            .as_array()
            .ok_or_else(|| Error::param(format!("{field_old} must be an array")))?;
        check_count(ids.len())?;
        ids.iter()
            .map(|id| {
                user_of(&json!({"userid": id}))
                    .map_err(|e| Error::param(format!("{field_old}: {e}")))
            })
            .collect()
    } else {
        Err(Error::param(format!("{field_new} is required")))
    }
}

fn check_count(n: usize) -> Result<()> {
    if n > MAX_USERS {
        return Err(Error::param(format!(
            "{n} users requested, at most {MAX_USERS}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised() {
        let jpeg = crate::image::samples::jpeg(64, 64);
        assert!(is_image(&jpeg));
        let png = crate::image::samples::png(64, 64);
        assert!(is_image(&png));
        // Random-looking features, and features that merely start like a
        // file format, are not images.
        assert!(!is_image(&[0x3f; 512]));
        assert!(!is_image(
            b"BM\x00\x00\x00\x00 features that start with BM......"
        ));
        assert!(!is_image(&[0, 0, 1, 0, 9, 9, 9, 9]));
    }

    #[test]
    fn slot_rules() {
        let ok = slots(
            &json!([{"id": 0, "data": "AAEC"}, {"id": "11", "data": ""}]),
            Modality::Face,
            "fa_list",
        )
        .unwrap();
        assert_eq!(ok, vec![(0, Some(vec![0, 1, 2])), (11, None)]);
        // No id: the item's position. No data: no change.
        let ok = slots(
            &json!([{"data": "AAEC"}, {"id": 5}, {"data": "AQID"}]),
            Modality::Face,
            "fa_list",
        )
        .unwrap();
        assert_eq!(ok, vec![(0, Some(vec![0, 1, 2])), (2, Some(vec![1, 2, 3]))]);
        for bad in [
            json!([{"id": 12, "data": "AAEC"}]),
            json!([{"id": -1, "data": "AAEC"}]),
            json!([{"id": 1.5, "data": "AAEC"}]),
            json!([{"id": 1, "data": "!!!"}]),
            json!([{"id": 1, "data": 5}]),
            json!([{"id": 1, "data": "AA"}, {"id": 1, "data": "AA"}]),
            json!({"id": 1}),
        ] {
            assert!(slots(&bad, Modality::Face, "fa_list").is_err(), "{bad}");
        }
        assert!(
            slots(
                &json!([{"id": 10, "data": "AAEC"}]),
                Modality::Fingerprint,
                "fp"
            )
            .is_err()
        );
        assert!(
            slots(
                &json!([{"id": 9, "data": "AAEC"}]),
                Modality::Fingerprint,
                "fp"
            )
            .is_ok()
        );
        // Unpadded base64 is accepted; oversize is refused before decoding.
        assert!(slots(&json!([{"id": 0, "data": "AAE"}]), Modality::Face, "fa").is_ok());
        let big = STANDARD.encode(vec![7u8; MAX_TEMPLATE_BYTES + 1]);
        assert!(slots(&json!([{"id": 0, "data": big}]), Modality::Face, "fa").is_err());
        let max = STANDARD.encode(vec![7u8; MAX_TEMPLATE_BYTES]);
        assert!(slots(&json!([{"id": 0, "data": max}]), Modality::Face, "fa").is_ok());
    }

    #[test]
    fn legacy_fa_is_ignored_when_fa_list_is_present() {
        let subs: Subscribed = (vec!["default".into()], vec!["zk10".into()]);
        let writes_of = |v: &Value| super::writes_of(v, &subs);
        let w = writes_of(&json!({"fa": "AAAA", "fa_list": [{"id": 3, "data": "AQID"}]})).unwrap();
        assert_eq!(
            w,
            vec![(
                Modality::Face,
                "default".to_string(),
                3,
                Some(vec![1, 2, 3])
            )]
        );
        let w = writes_of(&json!({"fa": "AQID", "fa_algorithm": "default"})).unwrap();
        assert_eq!(
            w,
            vec![(
                Modality::Face,
                "default".to_string(),
                0,
                Some(vec![1, 2, 3])
            )]
        );
        let w = writes_of(&json!({"fp": [{"id": 2, "data": ""}], "fp_algorithm": "zk10"})).unwrap();
        assert_eq!(
            w,
            vec![(Modality::Fingerprint, "zk10".to_string(), 2, None)]
        );
        assert!(writes_of(&json!({"fa_algorithm": 3, "fa": "AQID"})).is_err());
        // Only the algorithms the device subscribed with.
        assert!(writes_of(&json!({"fa": "AQID", "fa_algorithm": "other"})).is_err());
        assert!(writes_of(&json!({"fp": [{"id": 1, "data": "AQID"}]})).is_err());
        // fa is for employees only.
        assert!(writes_of(&json!({"fa": "AQID", "user_type": 1})).is_err());
        assert!(
            writes_of(&json!({"fa_list": [{"id": 0, "data": "AQID"}], "user_type": 1})).is_ok()
        );
    }
}
