//! The PUSH protocol's text: what terminals post (lines of TAB-separated
//! fields, `key=value` pairs) read into the core's typed values, and the
//! server's answers written. Hand-written because the format is a few
//! line-and-field rules no crate implements, and every rule here is
//! bounded: line count, field length, numbers' ranges.

use super::access::Dialect;
use crate::domain::devices::zk_commands::ZkCommand;
use crate::model::PushInfo;

/// Lines one upload may carry at most.
pub const MAX_LINES: usize = 20_000;
/// Bytes one line may hold at most (an `ATTLOG` line is well under 200).
pub(super) const MAX_LINE: usize = 4096;
/// Bytes an `INFO` field or a reported value may hold.
const MAX_VALUE: usize = 64;
/// Command results one `devicecmd` may carry: a batch is at most 200
/// commands, and a few more (a terminal's own) leave room.
pub const MAX_RESULTS: usize = 1000;

/// Why an upload is refused: nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based; 0 for the upload as a whole.
    pub line: usize,
    pub why: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.why)
        } else {
            write!(f, "line {}: {}", self.line, self.why)
        }
    }
}

pub(super) fn bad(line: usize, why: impl Into<String>) -> Malformed {
    Malformed {
        line,
        why: why.into(),
    }
}

/// The non-empty lines of a body, numbered from 1, without their `\r`.
pub(super) fn lines(body: &[u8]) -> Result<Vec<(usize, &str)>, Malformed> {
    lines_within(body, MAX_LINE)
}

/// [`lines`], each at most `max_line` bytes.
pub(super) fn lines_within(body: &[u8], max_line: usize) -> Result<Vec<(usize, &str)>, Malformed> {
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = body[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        bad(line, "not UTF-8 text")
    })?;
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > max_line {
            return Err(bad(i + 1, format!("longer than {max_line} bytes")));
        }
        if out.len() == MAX_LINES {
            return Err(bad(0, format!("more than {MAX_LINES} records")));
        }
        out.push((i + 1, line));
    }
    Ok(out)
}

/// A PIN: 1 to 128 bytes of printable ASCII (a person's user_id).
pub(super) fn pin(n: usize, s: &str) -> Result<String, Malformed> {
    let s = s.trim();
    if s.is_empty() || s.len() > 128 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(n, "PIN must be 1 to 128 printable ASCII characters"));
    }
    Ok(s.to_string())
}

/// One `devicecmd` result: `ID=…&Return=…&CMD=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub id: i64,
    pub code: i64,
    pub cmd: String,
}

/// A `devicecmd` body: results one a line (real terminals batch several),
/// or one result's fields one a line (`ID=…\nReturn=…\nCMD=…`, with more
/// `key=value` lines after, as `INFO` and `Shell` results come). A new
/// result starts at each `ID=`.
pub fn command_results(body: &[u8]) -> Result<Vec<CommandResult>, Malformed> {
    /// A result being read: the line its `ID=` was on, and its fields.
    struct Open {
        line: usize,
        id: i64,
        code: Option<i64>,
        cmd: String,
    }
    let close = |r: Open| match r.code {
        Some(code) => Ok(CommandResult {
            id: r.id,
            code,
            cmd: r.cmd,
        }),
        None => Err(bad(r.line, "a result needs ID= and Return=")),
    };
    let mut out: Vec<CommandResult> = Vec::new();
    let mut open: Option<Open> = None;
    for (n, line) in lines(body)? {
        for pair in line.split('&') {
            let Some((k, v)) = pair.split_once('=') else {
                if open.is_some() {
                    continue; // free text inside a result (a Shell's output)
                }
                return Err(bad(n, "expected ID=…&Return=…&CMD=…"));
            };
            // Keys exactly as sent: ` ID` is not `ID`.
            match (k, open.as_mut()) {
                ("ID", _) => {
                    if let Some(r) = open.take() {
                        out.push(close(r)?);
                    }
                    if out.len() == MAX_RESULTS {
                        return Err(bad(n, format!("more than {MAX_RESULTS} results")));
                    }
                    let id = v
                        .trim()
                        .parse()
                        .map_err(|_| bad(n, "ID must be a number"))?;
                    open = Some(Open {
                        line: n,
                        id,
                        code: None,
                        cmd: String::new(),
                    });
                }
                ("Return", Some(r)) => {
                    let code = v.trim().parse();
                    r.code = Some(code.map_err(|_| bad(n, "Return must be a number"))?);
                }
                ("CMD", Some(r)) => {
                    r.cmd = crate::domain::devices::clip(v.trim(), MAX_VALUE).to_string();
                }
                (_, Some(_)) => {} // a result's own fields (INFO, SN=…)
                (_, None) => return Err(bad(n, "expected ID=…&Return=…&CMD=…")),
            }
        }
    }
    if let Some(r) = open.take() {
        out.push(close(r)?);
    }
    if out.is_empty() {
        return Err(bad(0, "no result"));
    }
    Ok(out)
}

/// A reported value: trimmed, bounded, printable.
pub(super) fn value(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && !s.chars().any(char::is_control))
        .then(|| crate::domain::devices::clip(s, MAX_VALUE).to_string())
}

/// `getrequest`'s `INFO`: firmware, users, fingerprints, punches, address,
/// fingerprint algorithm version, face algorithm version, face templates
/// (and flags, unused), comma-separated. Unreadable fields are left out:
/// the report is informative, never a reason to refuse a poll.
pub fn info(s: &str) -> PushInfo {
    let f: Vec<&str> = s.split(',').collect();
    let at = |i: usize| f.get(i).and_then(|v| value(v));
    let count = |i: usize| {
        at(i)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|n| *n >= 0)
    };
    // A version of 0, or -1 or below, means "none" on these terminals.
    let version = |i: usize| at(i).filter(|v| is_version(v));
    PushInfo {
        firmware: at(0),
        users: count(1),
        fingerprints: count(2),
        punches: count(3),
        address: at(4),
        fp_version: version(5),
        face_version: version(6),
        faces: count(7),
        ..PushInfo::default()
    }
}

/// Whether a reported algorithm version names one: `0`, `0.0` and
/// negative ones mean none (kept as absent, so a report of none never
/// overwrites a real version).
pub(super) fn is_version(v: &str) -> bool {
    !v.starts_with('-') && !v.parse::<f64>().is_ok_and(|x| x == 0.0)
}

/// A `Stamp` a terminal posts with an upload, kept to be sent back in its
/// next init: digits, letters and `-:.T`, at most 32 bytes.
pub fn stamp(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'.'));
    ok.then(|| s.to_string())
}

/// A name as a command line carries it: control characters (TAB would
/// end the field) as spaces, at most 64 bytes (firmware keeps 24 or so).
fn field(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    crate::domain::devices::clip(clean.trim(), MAX_VALUE).to_string()
}

/// A poll's answer: `OK` with nothing to do, else one `C:<id>:<command>`
/// line a command (`DATA UPDATE USERINFO` puts a person, `DATA DELETE
/// USERINFO` takes them and their templates off), each ending in `\n`.
/// An access terminal's are `DATA UPDATE user Pin=…\tName=…\tPrivilege=0`
/// and `DATA DELETE user Pin=…` (the field names of kittiu/thai_zkt).
pub fn commands(commands: &[ZkCommand], dialect: Dialect) -> String {
    if commands.is_empty() {
        return "OK".into();
    }
    let mut out = String::new();
    for c in commands {
        match (c, dialect) {
            (ZkCommand::User { id, pin, name }, Dialect::Attendance) => out.push_str(&format!(
                "C:{id}:DATA UPDATE USERINFO PIN={pin}\tName={}\tPri=0\n",
                field(name)
            )),
            (ZkCommand::User { id, pin, name }, Dialect::Access) => out.push_str(&format!(
                "C:{id}:DATA UPDATE user Pin={pin}\tName={}\tPrivilege=0\n",
                field(name)
            )),
            (ZkCommand::Delete { id, pin }, Dialect::Attendance) => {
                out.push_str(&format!("C:{id}:DATA DELETE USERINFO PIN={pin}\n"))
            }
            (ZkCommand::Delete { id, pin }, Dialect::Access) => {
                out.push_str(&format!("C:{id}:DATA DELETE user Pin={pin}\n"))
            }
            (other, _) => {
                // (A photo not yet read has no line: never handed out.)
                if let Some(line) = super::bio::command(other, dialect) {
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// `TimeZone` as terminals read it: whole hours as hours (`8`, `-5`),
/// other offsets as minutes (`330` for +05:30), as ZKTeco's own server
/// sends it.
pub fn time_zone(offset_min: i64) -> String {
    if offset_min % 60 == 0 {
        (offset_min / 60).to_string()
    } else {
        offset_min.to_string()
    }
}

/// What the init (`GET /iclock/cdata?options=all`) answers: the options
/// the terminal runs with. Lines end in `\n`, the last one too.
pub fn options(
    sn: &str,
    utc_offset_min: i64,
    poll_secs: u64,
    stamps: &PushInfo,
    access: Option<Vec<String>>,
) -> String {
    let stamp = |s: &Option<String>| s.clone().unwrap_or_else(|| "0".into());
    // An access terminal is answered in its protocol's version, with the
    // lines of its registration (`access::init_lines`).
    let version = match access {
        Some(_) => super::access::ACCESS_VERSION,
        None => "2.4.1",
    };
    let mut lines = vec![
        format!("GET OPTION FROM: {sn}"),
        format!("ATTLOGStamp={}", stamp(&stamps.attlog_stamp)),
        format!("OPERLOGStamp={}", stamp(&stamps.operlog_stamp)),
        format!("BIODATAStamp={}", stamp(&stamps.biodata_stamp)),
        // Capture photos are not taken yet.
        "ATTPHOTOStamp=9999".into(),
        "ErrorDelay=60".into(),
        format!("Delay={poll_secs}"),
        "TransTimes=00:00;14:05".into(),
        "TransInterval=1".into(),
        // Punches, and the templates enrolled or changed on it (in the
        // operation log); not its own user edits.
        "TransFlag=TransData AttLog\tOpLog\tEnrollFP\tChgFP\tFACE\tEnrollFACE\tChgFACE".into(),
        format!("TimeZone={}", time_zone(utc_offset_min)),
        "Realtime=1".into(),
        "Encrypt=0".into(),
        format!("ServerVer={version}"),
        format!("PushProtVer={version}"),
        // Its algorithm versions, posted as `table=options`.
        "PushOptionsFlag=1".into(),
        "PushOptions=FPVersion,FaceVersion,MultiBioDataSupport,MultiBioVersion,\
         MultiBioPhotoSupport"
            .into(),
        MULTI_BIO_DATA.into(),
        MULTI_BIO_PHOTO.into(),
    ];
    lines.extend(access.unwrap_or_default());
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Template types facehub keeps: fingerprint, face, visible-light face.
pub(super) const MULTI_BIO_DATA: &str = "MultiBioDataSupport=0:1:1:0:0:0:0:0:0:1:0";
/// Photos it sends for the terminal's own extraction: visible-light faces
/// (`DATA UPDATE BIOPHOTO`).
pub(super) const MULTI_BIO_PHOTO: &str = "MultiBioPhotoSupport=0:0:0:0:0:0:0:0:0:1:0";

/// `type=time`'s answer: `Time=` the terminal's wall clock with its offset.
pub fn time(now: i64, utc_offset_min: i64) -> String {
    let offset = chrono::FixedOffset::east_opt((utc_offset_min * 60) as i32)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset"));
    let t = chrono::DateTime::from_timestamp(now, 0)
        .unwrap_or_default()
        .with_timezone(&offset);
    format!("Time={}", t.format("%Y-%m-%dT%H:%M:%S%:z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_results_batched_and_one_field_a_line() {
        let r = |id, code, cmd: &str| CommandResult {
            id,
            code,
            cmd: cmd.into(),
        };
        assert_eq!(
            command_results(b"ID=1&Return=0&CMD=DATA\nID=2&Return=-1004&CMD=DATA\r\n").unwrap(),
            [r(1, 0, "DATA"), r(2, -1004, "DATA")]
        );
        assert_eq!(
            command_results(b"ID=32\nReturn=0\nCMD=Shell\nContent=Tue Mar 24\nfree text").unwrap(),
            [r(32, 0, "Shell")]
        );
        assert_eq!(
            command_results(b"ID=1&Return=0&CMD=INFO\n~DeviceName=SpeedFace\nMAC=00:17").unwrap(),
            [r(1, 0, "INFO")]
        );
        for bad in [
            &b""[..],
            b"Return=0",
            b"ID=x&Return=0",
            b"ID=1&CMD=DATA",
            b"hello",
            b"ID\r\r=1&Return=0",
            b" ID=1&Return=0",
        ] {
            assert!(command_results(bad).is_err(), "{bad:?}");
        }
        let many = "ID=1&Return=0&CMD=DATA\n".repeat(MAX_RESULTS);
        assert_eq!(command_results(many.as_bytes()).unwrap().len(), MAX_RESULTS);
        let more = many + "ID=2&Return=0";
        assert!(command_results(more.as_bytes()).is_err());
    }

    #[test]
    fn info_reads_what_it_can() {
        let i = info(" Ver 6.8.0(build640), 2, 0, 0, 192.168.1.201, 10, -1, -12, 101");
        assert_eq!(i.firmware.as_deref(), Some("Ver 6.8.0(build640)"));
        assert_eq!(
            (i.users, i.fingerprints, i.punches),
            (Some(2), Some(0), Some(0))
        );
        assert_eq!(i.address.as_deref(), Some("192.168.1.201"));
        assert_eq!(i.fp_version.as_deref(), Some("10"));
        assert_eq!((i.face_version, i.faces), (None, None));
        assert_eq!(info(""), PushInfo::default());
    }

    #[test]
    fn command_lines() {
        assert_eq!(commands(&[], Dialect::Attendance), "OK");
        let c = [
            ZkCommand::User {
                id: 7,
                pin: "1001".into(),
                name: "Ann\tLee\n".into(),
            },
            ZkCommand::Delete {
                id: 8,
                pin: "1002".into(),
            },
        ];
        assert_eq!(
            commands(&c, Dialect::Attendance),
            "C:7:DATA UPDATE USERINFO PIN=1001\tName=Ann Lee\tPri=0\nC:8:DATA DELETE USERINFO PIN=1002\n"
        );
        assert_eq!(
            commands(&c, Dialect::Access),
            "C:7:DATA UPDATE user Pin=1001\tName=Ann Lee\tPrivilege=0\nC:8:DATA DELETE user Pin=1002\n"
        );
        let long = ZkCommand::User {
            id: 1,
            pin: "1".into(),
            name: "张".repeat(40),
        };
        let line = commands(&[long], Dialect::Attendance);
        let name = line
            .split("Name=")
            .nth(1)
            .unwrap()
            .split('\t')
            .next()
            .unwrap();
        assert_eq!(
            name,
            "张".repeat(21),
            "64 bytes at most, on a character boundary"
        );
    }

    #[test]
    fn time_zones_and_clock() {
        assert_eq!(time_zone(480), "8");
        assert_eq!(time_zone(-300), "-5");
        assert_eq!(time_zone(330), "330");
        assert_eq!(time_zone(0), "0");
        assert_eq!(time(1_704_164_645, 480), "Time=2024-01-02T11:04:05+08:00");
        assert_eq!(time(1_704_164_645, -210), "Time=2024-01-01T23:34:05-03:30");
        let o = options("SN1", 330, 10, &PushInfo::default(), None);
        assert!(o.starts_with("GET OPTION FROM: SN1\nATTLOGStamp=0\n"));
        assert!(o.contains("\nTimeZone=330\n") && o.contains("\nDelay=10\n") && o.ends_with('\n'));
        assert_eq!(
            stamp("2024-01-02T03:04:05").as_deref(),
            Some("2024-01-02T03:04:05")
        );
        assert_eq!(stamp("9999"), Some("9999".into()));
        assert_eq!(stamp("a b"), None);
        assert_eq!(stamp(""), None);
    }
}
