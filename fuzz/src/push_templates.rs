//! The `push_templates` target: template uploads of ZKTeco's PUSH
//! protocol (`OPERLOG` `FP`/`FACE` lines, `BIODATA` lines) and its
//! `table=options` reports through their readers, and each accepted
//! template through the core's judge and back out as a command. The first
//! byte picks the reader.
//!
//! Properties, besides "never panics":
//! - an accepted upload has at most one template per non-blank line, in
//!   line order, each with a PIN of 1 to 128 printable ASCII bytes and
//!   non-empty data where it has any; a refused one names a line within
//!   the body (or 0) and a bounded reason;
//! - a template the judge takes has its algorithm's name read back to the
//!   same algorithm and a slot within its type's range;
//! - a template written as a `DATA UPDATE BIODATA` command (or an access
//!   terminal's `DATA UPDATE biodata`) reads back (as a terminal's
//!   `BIODATA` upload or `biodata` table) to the same PIN, type, slot,
//!   version and bytes;
//! - an options report (or registration) holds only bounded, control-free
//!   values, its multi-bio values only digits, `.` and `:`, its device
//!   type only letters.
//!
//! This file is also compiled into tests/it/fuzz_regressions.rs (by `#[path]`).

use facehub::api::zkteco::access::Dialect;
use facehub::api::zkteco::bio::{biodata, command, operlog, options_report};
use facehub::domain::devices::zk_bio::{ZkAlgorithm, ZkTemplate, judge_template};
use facehub::domain::devices::zk_commands::{ZkCommand, ZkKind};
use facehub::model::PushInfo;

/// Seeds: one per reader, in the forms the protocol notes record.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with = |selector: u8, body: &[u8]| {
        let mut v = vec![selector];
        v.extend_from_slice(body);
        v
    };
    vec![
        (
            "operlog",
            with(
                0,
                b"USER PIN=1\tName=Ann\tPri=0\nOPLOG 6\t0\t2026-12-07 09:00:00\t1\t6\t8\n\
                  FP PIN=1\tFID=6\tSize=8\tValid=1\tTMP=AAECAwQ=\r\n\
                  FACE PIN=1 FID=3 Valid=1 Size=5 TMP=AAECAwQ\nFP PIN=2\tFID=0\tValid=0\n",
            ),
        ),
        (
            "biodata",
            with(
                1,
                b"BIODATA Pin=1\tNo=0\tIndex=0\tValid=1\tDuress=0\tType=9\tMajorVer=39\tMinorVer=3\tFormat=0\tTmp=AAEC\n\
                  Pin=7\tNo=3\tIndex=0\tValid=1\tType=1\tMajorVer=10\tFormat=0\tTmp=AAECAw==\n",
            ),
        ),
        (
            "options",
            with(
                2,
                b"~DeviceName=SpeedFace,FPVersion=10,FaceVersion=39,MultiBioDataSupport=0:1:0:0:0:0:0:0:0:1:0,\
                  MultiBioVersion=0:10.0:0:0:0:0:0:0:0:39.3:0",
            ),
        ),
    ]
}

pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => check_upload(body, operlog(body)),
        1 => check_upload(body, biodata(body)),
        _ => check_options(body),
    }
}

type Read = Result<Vec<(usize, ZkTemplate)>, facehub::api::zkteco::text::Malformed>;

fn check_upload(body: &[u8], read: Read) {
    let lines = body.split(|b| *b == b'\n').count();
    let templates = match read {
        Ok(t) => t,
        Err(m) => {
            assert!(m.line <= lines, "line {} of {lines}", m.line);
            assert!(m.why.len() <= 256, "unbounded reason");
            return;
        }
    };
    assert!(templates.len() <= lines);
    assert!(templates.windows(2).all(|w| w[0].0 < w[1].0), "line order");
    let info = PushInfo {
        fp_version: Some("10".into()),
        face_version: Some("7".into()),
        ..PushInfo::default()
    };
    for (_, t) in templates {
        assert!(!t.pin.is_empty() && t.pin.len() <= 128);
        assert!(t.pin.bytes().all(|b| b.is_ascii_graphic()));
        assert!(t.data.as_ref().is_none_or(|d| !d.is_empty()));
        let Ok(Some(algorithm)) = judge_template(&t, &info) else {
            continue;
        };
        assert_eq!(ZkAlgorithm::parse(&algorithm.name()), Some(algorithm));
        assert!((0..algorithm.bio_type.slots()).contains(&t.slot));
        let Some(bytes) = t.data.clone() else {
            continue;
        };
        // Out as a command, back in as an upload, in either dialect.
        for dialect in [Dialect::Attendance, Dialect::Access] {
            let line = command(
                &ZkCommand::Template {
                    id: 1,
                    pin: t.pin.clone(),
                    kind: ZkKind {
                        algorithm,
                        biodata: true,
                    },
                    slot: t.slot,
                    data: bytes.clone(),
                },
                dialect,
            )
            .expect("a template command");
            let upload = line
                .strip_prefix("C:1:DATA UPDATE ")
                .expect("the command's form");
            let back = biodata(upload.as_bytes()).expect("its own command reads back");
            let [(_, again)] = &back[..] else {
                panic!("one template back, not {}", back.len());
            };
            assert_eq!(again.pin, t.pin);
            assert_eq!(again.bio_type, algorithm.bio_type.code());
            assert_eq!(again.slot, t.slot);
            assert_eq!(again.version, Some((algorithm.major, algorithm.minor)));
            assert_eq!(again.data.as_deref(), Some(&bytes[..]));
        }
    }
}

fn check_options(body: &[u8]) {
    let info = options_report(body);
    for v in [
        &info.fp_version,
        &info.face_version,
        &info.multi_bio_data,
        &info.multi_bio_version,
        &info.firmware,
        &info.push_version,
        &info.device_type,
    ]
    .into_iter()
    .flatten()
    {
        assert!(!v.is_empty() && v.len() <= 64 && !v.chars().any(char::is_control));
    }
    for v in [&info.multi_bio_data, &info.multi_bio_version]
        .into_iter()
        .flatten()
    {
        assert!(
            v.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b':')
        );
    }
    if let Some(t) = &info.device_type {
        assert!(t.bytes().all(|b| b.is_ascii_alphabetic()));
    }
}
