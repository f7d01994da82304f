//! The PUSH 3.x access-control ("security") dialect: what an access
//! terminal (`DeviceType=acc`: SpeedFace, ProFace, SenseFace and the like)
//! says and is told beyond the attendance terminals' protocol. It
//! registers (`/iclock/registry`, answered with a `RegistryCode`), fetches
//! its settings (`/iclock/push`), posts its events as `rtlog`, its tables
//! as `tabledata` (each answered `<table>=<count>`, not `OK`, or it posts
//! them again), and names tables in lower case in its commands (`DATA
//! UPDATE user …`, `biodata`, `biophoto`). See docs/zkteco-protocol.md.

use crate::model::PushInfo;

/// The command forms a terminal reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `USERINFO`, `BIODATA`, `BIOPHOTO` (the attendance terminals').
    Attendance,
    /// `user`, `biodata`, `biophoto` (PUSH 3.x access terminals').
    Access,
}

impl Dialect {
    /// The dialect of a terminal: access when it said `DeviceType=acc`.
    pub fn of(info: Option<&PushInfo>) -> Dialect {
        match info.and_then(|i| i.device_type.as_deref()) {
            Some(t) if t.eq_ignore_ascii_case("acc") => Dialect::Access,
            _ => Dialect::Attendance,
        }
    }

    /// A table's name as the terminal writes it.
    pub fn table(self, upper: &'static str) -> &'static str {
        match (self, upper) {
            (Dialect::Attendance, t) => t,
            (Dialect::Access, "USERINFO") => "user",
            (Dialect::Access, "BIODATA") => "biodata",
            (Dialect::Access, "BIOPHOTO") => "biophoto",
            (Dialect::Access, t) => t,
        }
    }
}

/// The version of the protocol facehub speaks with access terminals.
pub const ACCESS_VERSION: &str = "3.1.2";

/// The lines an access terminal's init answer adds to the options
/// (`text::options`): it is registered (`registry=ok`, its code), its
/// session, how often to poll, and which tables to post on its own.
pub fn init_lines(code: &str, session: &str, poll_secs: u64) -> Vec<String> {
    vec![
        "registry=ok".into(),
        format!("RegistryCode={code}"),
        "ServerName=facehub".into(),
        format!("ServerVersion={ACCESS_VERSION}"),
        format!("SessionID={session}"),
        format!("RequestDelay={poll_secs}"),
        // Its user table (templates enrolled on it) and its events.
        "TransTables=User Transaction".into(),
        "TimeoutSec=10".into(),
    ]
}

/// `/iclock/push`'s answer: the settings an access terminal runs with.
pub fn settings(session: &str, poll_secs: u64) -> String {
    let lines = [
        format!("ServerVersion={ACCESS_VERSION}"),
        "ServerName=facehub".into(),
        format!("PushVersion={ACCESS_VERSION}"),
        "ErrorDelay=60".into(),
        format!("RequestDelay={poll_secs}"),
        "TransTimes=00:00;14:05".into(),
        "TransInterval=1".into(),
        "TransTables=User Transaction".into(),
        "Realtime=1".into(),
        format!("SessionID={session}"),
        "TimeoutSec=10".into(),
        // Templates and photos-to-templates, of the types of `options`.
        "BioDataFun=1".into(),
        "BioPhotoFun=1".into(),
        super::text::MULTI_BIO_DATA.into(),
        super::text::MULTI_BIO_PHOTO.into(),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// A `tabledata` upload's table name (`tablename=`): 1 to 32 ASCII
/// letters, digits or `_`, in lower case; `None` when it is not one.
pub fn table_name(name: Option<&str>) -> Option<String> {
    let name = name?.trim();
    (!name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then(|| name.to_ascii_lowercase())
}

/// The records of a `tabledata` upload of a table facehub does not take
/// (`user`, `biophoto`, `userpic`, …): its non-blank lines, which the
/// answer counts.
pub fn records(body: &[u8]) -> usize {
    body.split(|b| *b == b'\n')
        .filter(|l| l.iter().any(|b| !b.is_ascii_whitespace()))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dialect_is_the_device_type() {
        let info = |t: &str| PushInfo {
            device_type: Some(t.into()),
            ..PushInfo::default()
        };
        assert_eq!(Dialect::of(Some(&info("acc"))), Dialect::Access);
        assert_eq!(Dialect::of(Some(&info("ACC"))), Dialect::Access);
        assert_eq!(Dialect::of(Some(&info("att"))), Dialect::Attendance);
        assert_eq!(Dialect::of(None), Dialect::Attendance);
        assert_eq!(Dialect::Access.table("USERINFO"), "user");
        assert_eq!(Dialect::Attendance.table("USERINFO"), "USERINFO");
        assert_eq!(Dialect::Access.table("FINGERTMP"), "FINGERTMP");
    }

    #[test]
    fn table_names_and_records() {
        assert_eq!(table_name(Some("BioData")).as_deref(), Some("biodata"));
        assert_eq!(table_name(Some("user")).as_deref(), Some("user"));
        for bad in [
            None,
            Some(""),
            Some("a b"),
            Some("x\r\nOK"),
            Some(&"t".repeat(33)[..]),
        ] {
            assert_eq!(table_name(bad), None, "{bad:?}");
        }
        assert_eq!(records(b"user uid=1\tpin=1\r\n\r\n \nuser uid=2\tpin=2"), 2);
        assert_eq!(records(b""), 0);
    }

    #[test]
    fn settings_are_lines_of_key_and_value() {
        let s = settings("ab12", 7);
        assert!(s.ends_with('\n'));
        for line in s.lines() {
            assert!(line.split_once('=').is_some(), "{line:?}");
        }
        assert!(s.contains("\nRequestDelay=7\n"));
        assert!(s.contains("\nSessionID=ab12\n"));
        assert!(s.contains("\nMultiBioDataSupport=0:1:1:0:0:0:0:0:0:1:0\n"));
    }
}
