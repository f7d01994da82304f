//! Templates in the PUSH protocol's text: the `FP` and `FACE` lines of an
//! `OPERLOG` upload and the lines of a `BIODATA` upload read into the
//! core's [`ZkTemplate`]s, a terminal's `table=options` report read, and
//! the template commands written. Hand-written for the reasons `text`
//! gives; every field is bounded.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::access::Dialect;
use super::text::{Malformed, bad, is_version, lines_within, pin, stamp, value};
use crate::domain::devices::zk_bio::{BioType, ZkTemplate};
use crate::domain::devices::zk_commands::{ZkCommand, ZkKind, ZkPhoto};
use crate::model::PushInfo;

/// Bytes one line of `OPERLOG` or `BIODATA` may hold: photo lines
/// (`USERPIC`, `BIOPHOTO`, read past) are the longest.
const MAX_LINE: usize = 4 << 20;

/// Standard base64, padded or not: firmware differs.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A line's `key=value` fields, keys in lower case. Fields are separated
/// by TAB (the manual) or spaces (no value of these lines holds one).
fn fields(n: usize, rest: &str) -> Result<Vec<(String, &str)>, Malformed> {
    rest.split(['\t', ' '])
        .filter(|f| !f.is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => Ok((k.to_ascii_lowercase(), v)),
            None => Err(bad(n, format!("field {:?} is not key=value", clip(f)))),
        })
        .collect()
}

fn clip(s: &str) -> &str {
    crate::domain::devices::clip(s, 32)
}

/// The fields of one line, looked up by name.
struct Line<'a> {
    n: usize,
    fields: Vec<(String, &'a str)>,
}

impl<'a> Line<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    fn need(&self, key: &str) -> Result<&'a str, Malformed> {
        self.get(key)
            .ok_or_else(|| bad(self.n, format!("{key} is missing")))
    }

    /// A whole number from 0 to `max`; `default` when absent.
    fn number(&self, key: &str, max: i64, default: Option<i64>) -> Result<i64, Malformed> {
        let Some(v) = self.get(key) else {
            return default.ok_or_else(|| bad(self.n, format!("{key} is missing")));
        };
        match v.trim().parse::<i64>() {
            Ok(x) if (0..=max).contains(&x) => Ok(x),
            _ => Err(bad(
                self.n,
                format!("{key} must be a number from 0 to {max}"),
            )),
        }
    }

    /// The template: `None` when `Valid=0` marks it invalid (removed).
    /// `Size`, where sent, is its base64 length (the manual), or its
    /// length decoded (some firmware).
    fn template(&self, key: &str) -> Result<Option<Vec<u8>>, Malformed> {
        if self.number("valid", 255, Some(1))? == 0 {
            return Ok(None);
        }
        let text = self.need(key)?.trim();
        let data = LENIENT
            .decode(text)
            .map_err(|_| bad(self.n, format!("{key} is not base64")))?;
        if data.is_empty() {
            return Err(bad(self.n, format!("{key} is empty")));
        }
        if let Some(size) = self.get("size") {
            let size: usize = size
                .trim()
                .parse()
                .map_err(|_| bad(self.n, "Size must be a number"))?;
            if size != text.len() && size != data.len() {
                return Err(bad(
                    self.n,
                    format!("Size is {size}, the template's is {}", text.len()),
                ));
            }
        }
        Ok(Some(data))
    }
}

/// The templates of an `OPERLOG` upload, with their line numbers: `FP`
/// (fingerprint) and `FACE` (infrared face) lines; `USER`, `OPLOG`,
/// photos and any other line are read past. A malformed `FP`/`FACE` line
/// refuses the whole upload.
pub fn operlog(body: &[u8]) -> Result<Vec<(usize, ZkTemplate)>, Malformed> {
    let mut out = Vec::new();
    for (n, text) in lines_within(body, MAX_LINE)? {
        let (tag, rest) = text
            .trim_start()
            .split_once([' ', '\t'])
            .unwrap_or((text, ""));
        let bio_type = match tag {
            "FP" => BioType::Fingerprint,
            "FACE" => BioType::Face,
            _ => continue,
        };
        let line = Line {
            n,
            fields: fields(n, rest)?,
        };
        out.push((
            n,
            ZkTemplate {
                pin: pin(n, line.need("pin")?)?,
                bio_type: bio_type.code(),
                slot: line.number("fid", 255, None)?,
                version: None,
                data: line.template("tmp")?,
            },
        ));
    }
    Ok(out)
}

/// The templates of a `BIODATA` upload (`BIODATA Pin=…\tNo=…\tIndex=…\t
/// Valid=…\tDuress=…\tType=…\tMajorVer=…\tMinorVer=…\tFormat=…\tTmp=…`),
/// the `BIODATA ` tag optional. A fingerprint's number is its finger
/// (`No`), a face's its `Index`; templates in ISO/ANSI format (`Format`
/// other than 0) and further templates of one finger are read past.
pub fn biodata(body: &[u8]) -> Result<Vec<(usize, ZkTemplate)>, Malformed> {
    let mut out = Vec::new();
    for (n, text) in lines_within(body, MAX_LINE)? {
        let text = text.trim_start();
        // `BIODATA ` (the attendance terminals') or `biodata ` (the
        // access terminals' `tabledata`).
        let rest = match text.split_once([' ', '\t']) {
            Some((tag, rest)) if tag.eq_ignore_ascii_case("biodata") => rest,
            _ => text,
        };
        let line = Line {
            n,
            fields: fields(n, rest)?,
        };
        let bio_type = line.number("type", 255, None)?;
        let no = line.number("no", 255, Some(0))?;
        let index = line.number("index", 255, Some(0))?;
        let format = line.number("format", 255, Some(0))?;
        let major = line.number("majorver", 999, None)?;
        let minor = line.number("minorver", 999, Some(0))?;
        let slot = match BioType::of(bio_type) {
            Some(BioType::Fingerprint) if index == 0 => no,
            Some(BioType::Face | BioType::VisibleFace) if no == 0 => index,
            Some(_) => continue,
            // Palm, vein, iris…: no facehub modality.
            None => continue,
        };
        if format != 0 {
            continue;
        }
        out.push((
            n,
            ZkTemplate {
                pin: pin(n, line.need("pin")?)?,
                bio_type,
                slot,
                version: Some((major as u32, minor as u32)),
                data: line.template("tmp")?,
            },
        ));
    }
    Ok(out)
}

/// A `table=options` report or an access terminal's registration
/// (`key=value` pairs separated by commas, TABs or lines; `~` marks some
/// keys): the algorithm versions it names, its kind (`DeviceType`), its
/// firmware and protocol version. What cannot be read is left out, as
/// for `INFO`.
pub fn options_report(body: &[u8]) -> PushInfo {
    let text = String::from_utf8_lossy(&body[..body.len().min(64 << 10)]);
    let mut info = PushInfo::default();
    let multi = |v: &str| {
        value(v).filter(|v| {
            v.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b':')
        })
    };
    for pair in text.split([',', '\t', '\n', '\r']) {
        let Some((key, v)) = pair.split_once('=') else {
            continue;
        };
        match key
            .trim()
            .trim_start_matches('~')
            .to_ascii_lowercase()
            .as_str()
        {
            "fpversion" | "zkfpversion" => info.fp_version = value(v).filter(|v| is_version(v)),
            "faceversion" => info.face_version = value(v).filter(|v| is_version(v)),
            "multibiodatasupport" => info.multi_bio_data = multi(v),
            "multibioversion" => info.multi_bio_version = multi(v),
            "multibiophotosupport" => info.multi_bio_photo = multi(v),
            "devicetype" => {
                info.device_type = value(v).filter(|v| v.bytes().all(|b| b.is_ascii_alphabetic()))
            }
            "firmver" | "fwversion" => info.firmware = value(v),
            "pushversion" => info.push_version = stamp(v),
            _ => {}
        }
    }
    info
}

/// The line of a template or photo command (`Clear`, `Template`,
/// `Photo`), `None` for the others. Sizes are base64 lengths (the
/// manual). A photo's fields are in the order of the server known to work
/// with terminals (kittiu/thai_zkt), the long `Content` last; `Url` is
/// left out, since `Content` carries the photo and an address would be
/// fetched; `PostBackTmpFlag=1` asks for the template made of it.
pub fn command(c: &ZkCommand, dialect: Dialect) -> Option<String> {
    let form = |k: &ZkKind| (k.algorithm.bio_type, k.biodata);
    let (biodata, biophoto) = (dialect.table("BIODATA"), dialect.table("BIOPHOTO"));
    Some(match c {
        ZkCommand::Clear { id, pin, kind } => match form(kind) {
            (t, true) => format!("C:{id}:DATA DELETE {biodata} Pin={pin}\tType={}", t.code()),
            (BioType::Fingerprint, false) => format!("C:{id}:DATA DELETE FINGERTMP PIN={pin}"),
            (_, false) => format!("C:{id}:DATA DELETE FACE PIN={pin}"),
        },
        ZkCommand::Template {
            id,
            pin,
            kind,
            slot,
            data,
        } => {
            let tmp = STANDARD.encode(data);
            let size = tmp.len();
            match form(kind) {
                (t, true) => {
                    let (no, index) = match t {
                        BioType::Fingerprint => (*slot, 0),
                        _ => (0, *slot),
                    };
                    let a = kind.algorithm;
                    format!(
                        "C:{id}:DATA UPDATE {biodata} Pin={pin}\tNo={no}\tIndex={index}\tValid=1\t\
                         Duress=0\tType={}\tMajorVer={}\tMinorVer={}\tFormat=0\tTmp={tmp}",
                        t.code(),
                        a.major,
                        a.minor
                    )
                }
                (BioType::Fingerprint, false) => format!(
                    "C:{id}:DATA UPDATE FINGERTMP PIN={pin}\tFID={slot}\tSize={size}\tValid=1\tTMP={tmp}"
                ),
                (_, false) => format!(
                    "C:{id}:DATA UPDATE FACE PIN={pin}\tFID={slot}\tValid=1\tSize={size}\tTMP={tmp}"
                ),
            }
        }
        ZkCommand::Photo {
            id,
            pin,
            bio_type,
            photo,
        } => {
            // Batches go out with their photos read (`zk_load_photos`).
            let ZkPhoto::Jpeg(jpeg) = photo else {
                return None;
            };
            let content = STANDARD.encode(jpeg);
            format!(
                "C:{id}:DATA UPDATE {biophoto} PIN={pin}\tType={}\tSize={}\tFormat=0\t\
                 PostBackTmpFlag=1\tContent={content}",
                bio_type.code(),
                content.len()
            )
        }
        ZkCommand::User { .. } | ZkCommand::Delete { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::devices::zk_bio::ZkAlgorithm;

    #[test]
    fn operlog_templates_and_what_is_read_past() {
        let body = b"USER PIN=1\tName=Ann Lee\tPri=0\n\
            OPLOG 6\t0\t2026-12-07 09:00:00\t1\t6\t1640\n\
            FP PIN=1\tFID=6\tSize=8\tValid=1\tTMP=AAECAwQ=\r\n\
            FACE PIN=1 FID=3 Valid=1 Size=5 TMP=AAECAwQ\n\
            FP PIN=2\tFID=0\tValid=0\n\
            USERPIC PIN=1\tFileName=1.jpg\tSize=4\tContent=/9j/\n";
        let t = operlog(body).unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].0, t[0].1.bio_type, t[0].1.slot), (3, 1, 6));
        assert_eq!(t[0].1.data.as_deref(), Some(&[0u8, 1, 2, 3, 4][..]));
        // Spaces for TABs, unpadded base64, Size as the decoded length.
        assert_eq!(
            (t[1].1.bio_type, t[1].1.slot, t[1].1.data.is_some()),
            (2, 3, true)
        );
        assert_eq!((t[2].1.pin.as_str(), t[2].1.data.clone()), ("2", None));
    }

    #[test]
    fn malformed_template_lines_are_refused_by_line() {
        for (body, why) in [
            (&b"FP PIN=1\tFID=0\tTMP=***"[..], "not base64"),
            (b"FP PIN=1\tTMP=AAAA", "fid is missing"),
            (b"FP FID=1\tTMP=AAAA", "pin is missing"),
            (b"FP PIN=1\tFID=300\tTMP=AAAA", "0 to 255"),
            (b"FP PIN=1\tFID=1\tSize=99\tTMP=AAAA", "Size is 99"),
            (b"FACE PIN=1\tFID=1\tTMP=", "empty"),
            (b"FACE PIN=1\tFID\tTMP=AAAA", "not key=value"),
        ] {
            let e = operlog(body).unwrap_err();
            assert_eq!(e.line, 1, "{body:?}");
            assert!(e.why.contains(why), "{body:?}: {e}");
        }
    }

    #[test]
    fn biodata_lines() {
        let body = b"BIODATA Pin=1\tNo=0\tIndex=0\tValid=1\tDuress=0\tType=9\tMajorVer=39\tMinorVer=3\tFormat=0\tTmp=AAEC\n\
            Pin=1\tNo=3\tIndex=0\tValid=1\tType=1\tMajorVer=10\tFormat=0\tTmp=AAEC\n\
            BIODATA Pin=1\tNo=3\tIndex=1\tType=1\tMajorVer=10\tTmp=AAEC\n\
            BIODATA Pin=1\tNo=0\tType=1\tMajorVer=10\tFormat=1\tTmp=AAEC\n\
            BIODATA Pin=1\tNo=0\tType=8\tMajorVer=1\tTmp=AAEC\n";
        let t = biodata(body).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].1.bio_type, t[0].1.slot, t[0].1.version),
            (9, 0, Some((39, 3)))
        );
        assert_eq!(
            (t[1].1.bio_type, t[1].1.slot, t[1].1.version),
            (1, 3, Some((10, 0)))
        );
        assert!(
            biodata(b"BIODATA Pin=1\tTmp=AAEC")
                .unwrap_err()
                .why
                .contains("type")
        );
    }

    #[test]
    fn access_terminal_biodata_lines() {
        let t = biodata(
            b"biodata pin=2\tno=0\tindex=0\tvalid=1\tduress=0\ttype=9\tmajorver=58\t\
              minorver=1\tformat=0\ttmp=AAEC\r\n",
        )
        .unwrap();
        assert_eq!(
            (t[0].1.pin.as_str(), t[0].1.bio_type, t[0].1.version),
            ("2", 9, Some((58, 1)))
        );
    }

    #[test]
    fn options_reports() {
        let info = options_report(
            b"~DeviceName=SpeedFace,FPVersion=10,FaceVersion=39,\
              MultiBioDataSupport=0:1:0:0:0:0:0:0:0:1:0,MultiBioVersion=0:10.0:0:0:0:0:0:0:0:39.3:0,\
              MultiBioPhotoSupport=0:0:0:0:0:0:0:0:0:1:0,Bad=\x01",
        );
        assert_eq!(info.fp_version.as_deref(), Some("10"));
        assert_eq!(
            info.multi_bio_version.as_deref(),
            Some("0:10.0:0:0:0:0:0:0:0:39.3:0")
        );
        assert_eq!(
            info.multi_bio_data.as_deref(),
            Some("0:1:0:0:0:0:0:0:0:1:0")
        );
        assert_eq!(
            info.multi_bio_photo.as_deref(),
            Some("0:0:0:0:0:0:0:0:0:1:0")
        );
        let junk = options_report(b"MultiBioVersion=1;rm -rf\n");
        assert_eq!(junk.multi_bio_version, None);
        // An access terminal's registration, a comma inside a value.
        let reg = options_report(
            b"DeviceType=acc,~DeviceName=SpeedFace-V5L[TI],FirmVer=ZAM180-Ver1.1.17,\
              PushVersion=3.1.2,~OEMVendor=ZKTECO CO., LTD.,MultiBioVersion=0:0:0:0:0:0:0:0:0:58.1:0",
        );
        assert_eq!(reg.device_type.as_deref(), Some("acc"));
        assert_eq!(reg.firmware.as_deref(), Some("ZAM180-Ver1.1.17"));
        assert_eq!(reg.push_version.as_deref(), Some("3.1.2"));
        assert_eq!(
            reg.multi_bio_version.as_deref(),
            Some("0:0:0:0:0:0:0:0:0:58.1:0")
        );
        assert_eq!(options_report(b"DeviceType=a;b").device_type, None);
    }

    #[test]
    fn template_commands() {
        let kind = |t, v, biodata| ZkKind {
            algorithm: ZkAlgorithm::of(t, v).unwrap(),
            biodata,
        };
        let put = |k| ZkCommand::Template {
            id: 5,
            pin: "1".into(),
            kind: k,
            slot: 2,
            data: vec![0, 1, 2, 3],
        };
        assert_eq!(
            command(
                &put(kind(BioType::Fingerprint, "10", false)),
                Dialect::Attendance
            )
            .unwrap(),
            "C:5:DATA UPDATE FINGERTMP PIN=1\tFID=2\tSize=8\tValid=1\tTMP=AAECAw=="
        );
        assert_eq!(
            command(&put(kind(BioType::Face, "7", false)), Dialect::Attendance).unwrap(),
            "C:5:DATA UPDATE FACE PIN=1\tFID=2\tValid=1\tSize=8\tTMP=AAECAw=="
        );
        assert_eq!(
            command(
                &put(kind(BioType::VisibleFace, "39.3", true)),
                Dialect::Attendance
            )
            .unwrap(),
            "C:5:DATA UPDATE BIODATA Pin=1\tNo=0\tIndex=2\tValid=1\tDuress=0\tType=9\t\
             MajorVer=39\tMinorVer=3\tFormat=0\tTmp=AAECAw=="
        );
        let photo = ZkCommand::Photo {
            id: 7,
            pin: "1".into(),
            bio_type: BioType::VisibleFace,
            photo: ZkPhoto::Jpeg(vec![0xff, 0xd8, 0xff, 0xe0]),
        };
        assert_eq!(
            command(&photo, Dialect::Attendance).unwrap(),
            "C:7:DATA UPDATE BIOPHOTO PIN=1\tType=9\tSize=8\tFormat=0\tPostBackTmpFlag=1\t\
             Content=/9j/4A=="
        );
        let clear = |k| ZkCommand::Clear {
            id: 6,
            pin: "1".into(),
            kind: k,
        };
        assert_eq!(
            command(
                &clear(kind(BioType::Fingerprint, "10", true)),
                Dialect::Attendance
            )
            .unwrap(),
            "C:6:DATA DELETE BIODATA Pin=1\tType=1"
        );
        assert_eq!(
            command(&clear(kind(BioType::Face, "7", false)), Dialect::Attendance).unwrap(),
            "C:6:DATA DELETE FACE PIN=1"
        );
        // An access terminal's tables are in lower case.
        let access = |c: &ZkCommand| command(c, Dialect::Access).unwrap();
        assert!(
            access(&put(kind(BioType::VisibleFace, "39.3", true)))
                .starts_with("C:5:DATA UPDATE biodata Pin=1\tNo=0\tIndex=2\t")
        );
        assert!(access(&photo).starts_with("C:7:DATA UPDATE biophoto PIN=1\tType=9\t"));
        assert_eq!(
            access(&clear(kind(BioType::VisibleFace, "39.3", true))),
            "C:6:DATA DELETE biodata Pin=1\tType=9"
        );
    }
}
