//! ZKTeco templates: which algorithm a template is (its biometric type and
//! algorithm version), which algorithms a terminal reads, and the
//! templates terminals upload. A ZKTeco algorithm is one of facehub's
//! per-algorithm template stores, named `zkteco-<type>-<major>.<minor>`,
//! so a template reaches every terminal that reads that name (ZKTeco, or
//! WeCom subscribed with it) and no other.

use std::collections::HashMap;

use super::upload::{Plain, template_fault};
use super::zk::ZkTerminal;
use super::{DeviceUser, Modality};
use crate::domain::Core;
use crate::model::error::Result;
use crate::model::{PersonKey, PushInfo};

/// The biometric types facehub keeps templates of, by ZKTeco's `Type`
/// numbers (PUSH protocol, "BIODATA"); palm, vein and iris have no
/// facehub modality and are read past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BioType {
    /// 1: fingerprint (also the `FP` / `FINGERTMP` tables).
    Fingerprint,
    /// 2: near-infrared face (also the `FACE` table).
    Face,
    /// 9: visible-light face (`BIODATA` only).
    VisibleFace,
}

impl BioType {
    pub const ALL: [BioType; 3] = [BioType::Fingerprint, BioType::Face, BioType::VisibleFace];

    pub fn code(self) -> i64 {
        match self {
            BioType::Fingerprint => 1,
            BioType::Face => 2,
            BioType::VisibleFace => 9,
        }
    }

    pub fn of(code: i64) -> Option<BioType> {
        BioType::ALL.into_iter().find(|t| t.code() == code)
    }

    pub fn modality(self) -> Modality {
        match self {
            BioType::Fingerprint => Modality::Fingerprint,
            BioType::Face | BioType::VisibleFace => Modality::Face,
        }
    }

    /// How many templates a person has of it: fingers 0–9; faces 0–14 (an
    /// infrared face is enrolled as up to 15 templates, the count terminals
    /// report in `INFO`).
    pub fn slots(self) -> i64 {
        match self {
            BioType::Fingerprint => 10,
            BioType::Face | BioType::VisibleFace => 15,
        }
    }

    fn word(self) -> &'static str {
        match self {
            BioType::Fingerprint => "fingerprint",
            BioType::Face => "face",
            BioType::VisibleFace => "visible-face",
        }
    }
}

/// A ZKTeco template algorithm: a biometric type and the version of the
/// algorithm that made it (`MajorVer.MinorVer`; `FPVersion` 10 is 10.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZkAlgorithm {
    pub bio_type: BioType,
    pub major: u32,
    pub minor: u32,
}

impl ZkAlgorithm {
    /// `zkteco-face-7.0`: the template store's algorithm name.
    pub fn name(&self) -> String {
        format!(
            "zkteco-{}-{}.{}",
            self.bio_type.word(),
            self.major,
            self.minor
        )
    }

    pub fn parse(name: &str) -> Option<ZkAlgorithm> {
        let rest = name.strip_prefix("zkteco-")?;
        let (word, version) = rest.rsplit_once('-')?;
        let bio_type = BioType::ALL.into_iter().find(|t| t.word() == word)?;
        ZkAlgorithm::of(bio_type, version)
    }

    /// A version as terminals report it: `10`, `10.0`, `39.3`; `0`, empty
    /// or negative is none.
    pub fn of(bio_type: BioType, version: &str) -> Option<ZkAlgorithm> {
        let (major, minor) = version
            .trim()
            .split_once('.')
            .unwrap_or((version.trim(), "0"));
        ZkAlgorithm::new(bio_type, major.parse().ok()?, minor.parse().ok()?)
    }

    /// A version as a `BIODATA` line carries it (`MajorVer`, `MinorVer`);
    /// major 0 is none.
    pub fn new(bio_type: BioType, major: u32, minor: u32) -> Option<ZkAlgorithm> {
        (major > 0 && major < 1000 && minor < 1000).then_some(ZkAlgorithm {
            bio_type,
            major,
            minor,
        })
    }
}

/// What a terminal reports it reads: per type, the version in its
/// `MultiBioVersion` (unless `MultiBioDataSupport` marks the type 0), else
/// its `FPVersion` / `FaceVersion` (an infrared face). At most one per type.
pub fn reported(info: &PushInfo) -> Vec<ZkAlgorithm> {
    let mut out: Vec<ZkAlgorithm> = Vec::new();
    match &info.multi_bio_version {
        Some(versions) => {
            let versions: Vec<&str> = versions.split(':').collect();
            let support: Option<Vec<&str>> = info
                .multi_bio_data
                .as_deref()
                .map(|s| s.split(':').collect());
            for t in BioType::ALL {
                let at = t.code() as usize;
                let lacks = support
                    .as_ref()
                    .is_some_and(|s| s.get(at).is_some_and(|f| f.trim() == "0"));
                if let (false, Some(v)) = (lacks, versions.get(at)) {
                    out.extend(ZkAlgorithm::of(t, v));
                }
            }
        }
        None => {
            let fp = info.fp_version.as_deref();
            out.extend(fp.and_then(|v| ZkAlgorithm::of(BioType::Fingerprint, v)));
            let face = info.face_version.as_deref();
            out.extend(face.and_then(|v| ZkAlgorithm::of(BioType::Face, v)));
        }
    }
    out
}

/// What a terminal reads: what it reports, and, of a type it reports no
/// version of, the algorithm it last uploaded templates of (it reads what
/// it writes). At most one per type, sorted.
pub fn readable(info: &PushInfo) -> Vec<ZkAlgorithm> {
    let mut out = reported(info);
    for w in info.written.iter().filter_map(|n| ZkAlgorithm::parse(n)) {
        if !out.iter().any(|a| a.bio_type == w.bio_type) {
            out.push(w);
        }
    }
    out.sort();
    out
}

/// Whether the terminal takes the unified template table (`BIODATA`): it
/// reported `MultiBioDataSupport`, or uploaded `BIODATA` itself. Others
/// take `FINGERTMP` and `FACE`, which carry no version and so reach them
/// only of the versions they read.
pub fn takes_biodata(info: &PushInfo) -> bool {
    info.multi_bio_data.is_some() || info.biodata_stamp.is_some()
}

/// One template a terminal uploaded (an `FP` / `FACE` line of `OPERLOG`,
/// or a `BIODATA` line), as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkTemplate {
    /// The person's user_id.
    pub pin: String,
    /// ZKTeco's `Type` (1 fingerprint, 2 face, 9 visible-light face, …).
    pub bio_type: i64,
    /// The finger (0–9) or face template number.
    pub slot: i64,
    /// The line's own `MajorVer.MinorVer` (`BIODATA`); `None` when the
    /// table carries none (`FP`, `FACE`: the terminal's reported version).
    pub version: Option<(u32, u32)>,
    /// The template; `None` when the line marks it invalid (`Valid=0`),
    /// which removes it.
    pub data: Option<Vec<u8>>,
}

/// Why one uploaded template is refused: the index of the template in the
/// upload, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFault {
    pub index: usize,
    pub why: String,
}

/// What became of an upload's templates.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TemplatesOutcome {
    /// Templates stored or removed (unchanged ones count).
    pub stored: usize,
    /// Of a type facehub keeps no templates of, or a PIN that is no
    /// person of the tenant: acknowledged and dropped.
    pub dropped: usize,
    /// The algorithms the terminal has written, when this upload adds one
    /// (else empty): for its report ([`PushInfo::written`]).
    pub written: Vec<String>,
}

/// The algorithm of each template, judged before anything is stored: a
/// template of a type facehub keeps must have a readable version, a slot
/// in range and features within [`template_fault`]'s rules. `Ok(None)`
/// for one of another type.
pub fn judge_template(
    t: &ZkTemplate,
    info: &PushInfo,
) -> std::result::Result<Option<ZkAlgorithm>, String> {
    let Some(bio_type) = BioType::of(t.bio_type) else {
        return Ok(None);
    };
    if !(0..bio_type.slots()).contains(&t.slot) {
        return Err(format!(
            "template number {} is out of range (0 to {})",
            t.slot,
            bio_type.slots() - 1
        ));
    }
    if let Some(why) = t.data.as_deref().and_then(template_fault) {
        return Err(why);
    }
    let reported = reported(info).into_iter().find(|a| a.bio_type == bio_type);
    let Some((major, minor)) = t.version else {
        // The version the terminal reads of the type (none yet: it is
        // refused, so the terminal keeps it and sends it again).
        return readable(info)
            .into_iter()
            .find(|a| a.bio_type == bio_type)
            .map(Some)
            .ok_or_else(|| {
                "the terminal has not reported its algorithm version for this template \
                 (FPVersion / FaceVersion in INFO or table=options); it is taken once it has"
                    .to_string()
            });
    };
    // A version no algorithm has (0): no store can hold it; read past.
    let Some(own) = ZkAlgorithm::new(bio_type, major, minor) else {
        return Ok(None);
    };
    match reported {
        // A terminal writes only the version it reads.
        Some(r) if r != own => Err(format!(
            "version {major}.{minor} is not the version this terminal reports for type {} ({}.{})",
            bio_type.code(),
            r.major,
            r.minor
        )),
        _ => Ok(Some(own)),
    }
}

/// Every template of an upload judged, in order: the first refused one
/// refuses it all, as does a second version of one type (a terminal runs
/// one algorithm of a type at a time).
fn judge_all(
    templates: Vec<ZkTemplate>,
    info: &PushInfo,
) -> std::result::Result<Vec<(ZkTemplate, Option<ZkAlgorithm>)>, TemplateFault> {
    let mut versions: HashMap<BioType, ZkAlgorithm> = HashMap::new();
    let mut out = Vec::with_capacity(templates.len());
    for (index, template) in templates.into_iter().enumerate() {
        let algorithm =
            judge_template(&template, info).map_err(|why| TemplateFault { index, why })?;
        if let Some(a) = algorithm {
            let first = *versions.entry(a.bio_type).or_insert(a);
            if first != a {
                return Err(TemplateFault {
                    index,
                    why: format!(
                        "the upload holds templates of type {} in two versions ({}.{} and {}.{})",
                        a.bio_type.code(),
                        first.major,
                        first.minor,
                        a.major,
                        a.minor
                    ),
                });
            }
        }
        out.push((template, algorithm));
    }
    Ok(out)
}

impl Core {
    /// Stores a terminal's uploaded templates: all judged first (one
    /// refused, none stored), then those of people of its tenant written
    /// through the per-algorithm template store, audited, one new version
    /// if anything changed. The algorithms it wrote are to be added to its
    /// report: it reads what it writes.
    pub async fn zk_templates(
        &self,
        t: &ZkTerminal,
        templates: Vec<ZkTemplate>,
    ) -> Result<std::result::Result<TemplatesOutcome, TemplateFault>> {
        let info = t.row.push_info.clone().unwrap_or_default();
        // Judging looks into every template for pictures: off the async
        // threads, as for WeCom uploads.
        let judge_info = info.clone();
        let judged = tokio::task::spawn_blocking(move || judge_all(templates, &judge_info))
            .await
            .map_err(|e| crate::model::Error::internal(format!("template judge: {e}")))?;
        let judged = match judged {
            Ok(j) => j,
            Err(fault) => return Ok(Err(fault)),
        };
        let mut outcome = TemplatesOutcome::default();
        let pins: Vec<String> = judged
            .iter()
            .filter(|(_, a)| a.is_some())
            .map(|(t, _)| t.pin.clone())
            .collect();
        let people: HashMap<String, crate::model::Person> = if pins.is_empty() {
            HashMap::new()
        } else {
            self.db
                .people_by(t.row.tenant_id, PersonKey::UserId, &pins)
                .await?
                .into_iter()
                .map(|p| (p.user_id.clone(), p))
                .collect()
        };
        let mut known: Vec<(i64, DeviceUser, Plain)> = Vec::new();
        let mut index: HashMap<i64, usize> = HashMap::new();
        let mut written: Vec<String> = info.written.clone();
        for (template, algorithm) in judged {
            let person = people.get(&template.pin);
            let (Some(algorithm), Some(person)) = (algorithm, person) else {
                outcome.dropped += 1;
                continue;
            };
            let name = algorithm.name();
            // One written algorithm a type: the latest.
            written
                .retain(|w| ZkAlgorithm::parse(w).is_none_or(|a| a.bio_type != algorithm.bio_type));
            written.push(name.clone());
            let write = (
                algorithm.bio_type.modality(),
                name,
                template.slot,
                template.data,
            );
            match index.get(&person.id) {
                Some(&i) => known[i].2.push(write),
                None => {
                    index.insert(person.id, known.len());
                    let user = DeviceUser {
                        userid: person.user_id.clone(),
                        user_type: person.user_type.as_i64(),
                    };
                    known.push((person.id, user, vec![write]));
                }
            }
            outcome.stored += 1;
        }
        if outcome.dropped > 0 {
            tracing::info!(
                sn = t.sn(),
                dropped = outcome.dropped,
                "templates of no person of the tenant, or of a type facehub keeps none of, dropped"
            );
        }
        if !known.is_empty() {
            self.write_templates(t.row.tenant_id, t.sn(), known).await?;
        }
        written.sort();
        if written != info.written {
            outcome.written = written;
        }
        Ok(Ok(outcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        let a = ZkAlgorithm::of(BioType::VisibleFace, "39.3").unwrap();
        assert_eq!(a.name(), "zkteco-visible-face-39.3");
        assert_eq!(ZkAlgorithm::parse(&a.name()), Some(a));
        assert_eq!(
            ZkAlgorithm::of(BioType::Fingerprint, "10").unwrap().name(),
            "zkteco-fingerprint-10.0"
        );
        for bad in ["0", "", "-1", "x", "10.x", "5000"] {
            assert_eq!(ZkAlgorithm::of(BioType::Face, bad), None, "{bad}");
        }
        assert_eq!(ZkAlgorithm::parse("default"), None);
        assert_eq!(ZkAlgorithm::parse("zkteco-palm-1.0"), None);
    }

    #[test]
    fn what_a_terminal_reads() {
        let old = PushInfo {
            fp_version: Some("10".into()),
            face_version: Some("7".into()),
            ..PushInfo::default()
        };
        let names = |i: &PushInfo| readable(i).iter().map(|a| a.name()).collect::<Vec<_>>();
        assert_eq!(names(&old), ["zkteco-fingerprint-10.0", "zkteco-face-7.0"]);
        assert!(!takes_biodata(&old));
        // The multi-bio report wins over INFO's versions; a type the
        // support flags lack is not read.
        let new = PushInfo {
            face_version: Some("39".into()),
            multi_bio_data: Some("0:1:0:0:0:0:0:0:0:1:0".into()),
            multi_bio_version: Some("0:12.0:7.0:0:0:0:0:0:0:39.3:0".into()),
            written: vec!["zkteco-face-8.0".into(), "default".into()],
            ..PushInfo::default()
        };
        assert_eq!(
            names(&new),
            [
                "zkteco-fingerprint-12.0",
                "zkteco-face-8.0",
                "zkteco-visible-face-39.3"
            ]
        );
        assert!(takes_biodata(&new));
        // A type it reports reads as reported, not as it last wrote it (a
        // firmware upgrade); a written one of a type it does not report
        // counts, one a type.
        let upgraded = PushInfo {
            fp_version: Some("12".into()),
            written: vec!["zkteco-fingerprint-10.0".into(), "zkteco-face-7.0".into()],
            ..PushInfo::default()
        };
        assert_eq!(
            names(&upgraded),
            ["zkteco-fingerprint-12.0", "zkteco-face-7.0"]
        );
    }

    #[test]
    fn templates_are_judged_before_anything_is_stored() {
        let info = PushInfo {
            fp_version: Some("10".into()),
            ..PushInfo::default()
        };
        let fp = |slot, data: &[u8]| ZkTemplate {
            pin: "1".into(),
            bio_type: 1,
            slot,
            version: None,
            data: Some(data.to_vec()),
        };
        let alg = judge_template(&fp(3, b"minutiae"), &info).unwrap().unwrap();
        assert_eq!(alg.name(), "zkteco-fingerprint-10.0");
        assert!(
            judge_template(&fp(10, b"x"), &info)
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            judge_template(&fp(0, &[0u8; 9000]), &info)
                .unwrap_err()
                .contains("larger")
        );
        // A face with no reported face version cannot be labelled.
        let face = ZkTemplate {
            bio_type: 2,
            ..fp(0, b"features")
        };
        assert!(
            judge_template(&face, &info)
                .unwrap_err()
                .contains("version")
        );
        // Its own version labels a BIODATA line; palm is read past.
        let vl = ZkTemplate {
            bio_type: 9,
            version: Some((39, 3)),
            ..fp(0, b"features")
        };
        assert_eq!(
            judge_template(&vl, &info).unwrap().unwrap().name(),
            "zkteco-visible-face-39.3"
        );
        // A terminal writes only the version it reports; an unusable one
        // (0) is read past rather than refused forever.
        let reported = PushInfo {
            multi_bio_version: Some("0:0:0:0:0:0:0:0:0:39.3:0".into()),
            ..PushInfo::default()
        };
        let other = ZkTemplate {
            version: Some((58, 0)),
            ..vl.clone()
        };
        assert!(
            judge_template(&other, &reported)
                .unwrap_err()
                .contains("reports")
        );
        assert!(judge_template(&vl, &reported).unwrap().is_some());
        let zero = ZkTemplate {
            version: Some((0, 0)),
            ..vl.clone()
        };
        assert_eq!(judge_template(&zero, &reported), Ok(None));
        let two = vec![vl.clone(), other.clone()];
        assert!(
            judge_all(two, &info)
                .unwrap_err()
                .why
                .contains("two versions")
        );
        let palm = ZkTemplate {
            bio_type: 8,
            ..fp(0, b"x")
        };
        assert_eq!(judge_template(&palm, &info), Ok(None));
    }
}
