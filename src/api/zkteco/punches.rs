//! Punches in the PUSH protocol's text: an attendance terminal's `ATTLOG`
//! and an access terminal's `rtlog` read into the core's [`AttPunch`]es.
//! Hand-written for the reasons `text` gives; every field is bounded.

use chrono::NaiveDateTime;

use super::text::{Malformed, bad, lines, pin};
use crate::domain::devices::zk::AttPunch;

/// A small number field (state, verify mode): 0 to 255.
fn small(n: usize, name: &str, s: &str) -> Result<i64, Malformed> {
    match s.trim().parse::<i64>() {
        Ok(v) if (0..=255).contains(&v) => Ok(v),
        _ => Err(bad(n, format!("{name} must be a number from 0 to 255"))),
    }
}

/// `YYYY-MM-DD hh:mm:ss`, the terminal's wall clock, as seconds read as UTC.
fn wall_clock(n: usize, s: &str) -> Result<i64, Malformed> {
    let s = s.trim();
    // Four-digit years only (chrono's `%Y` also takes signed, longer ones).
    if s.len() != 19 || !s.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        return Err(bad(n, "time must be YYYY-MM-DD hh:mm:ss"));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp())
        .map_err(|_| bad(n, "time must be YYYY-MM-DD hh:mm:ss"))
}

/// An `ATTLOG` upload: one punch a line, either positional
/// (`PIN\ttime\tstate\tverify[\tworkcode…]`, the PUSH manual's) or as
/// `key=value` fields (`time=…\tpin=…\tinoutstatus=…\tverifytype=…`, which
/// some firmware sends for this table too). Any malformed line refuses
/// the whole upload.
pub fn attlog(body: &[u8]) -> Result<Vec<AttPunch>, Malformed> {
    lines(body)?
        .into_iter()
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields[0].contains('=') {
                return keyed(n, &Keyed(fields));
            }
            if fields.len() < 4 {
                return Err(bad(n, "expected PIN, time, state and verify mode"));
            }
            Ok(AttPunch {
                pin: pin(n, fields[0])?,
                wall_clock: wall_clock(n, fields[1])?,
                status: small(n, "state", fields[2])?,
                verify: small(n, "verify mode", fields[3])?,
                pass_type: None,
            })
        })
        .collect()
}

/// A PUSH 3.x `rtlog` upload: one event a line, as `key=value` fields
/// (`time=…\tpin=…\tcardno=…\teventaddr=…\tevent=…\tinoutstatus=…\t
/// verifytype=…\tindex=…`). An event naming a person (`pin` other than
/// empty or `0`) is a punch; the others (doors opening, alarms, a card
/// nobody holds) are read past. A malformed line refuses the upload.
/// Each is a door passage: `inoutstatus` 0 in, 1 out, any other unknown
/// (WeCom's `pass_type` 1, 2, 3).
pub fn rtlog(body: &[u8]) -> Result<Vec<AttPunch>, Malformed> {
    let mut out = Vec::new();
    for (n, line) in lines(body)? {
        let fields = Keyed(line.split('\t').collect());
        match fields.get("pin").map(str::trim) {
            None | Some("" | "0") => continue,
            Some(_) => {
                let mut p = keyed(n, &fields)?;
                p.pass_type = Some(match p.status {
                    0 => 1,
                    1 => 2,
                    _ => 3,
                });
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// A line's `key=value` fields, looked up by key in any case.
struct Keyed<'a>(Vec<&'a str>);

impl<'a> Keyed<'a> {
    fn get(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find_map(|f| {
            let (k, v) = f.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then_some(v)
        })
    }
}

/// A punch written as `key=value` fields: `pin=` and `time=` required,
/// `inoutstatus=` and `verifytype=` 0 when absent.
fn keyed(n: usize, f: &Keyed) -> Result<AttPunch, Malformed> {
    let need = |key: &str| f.get(key).ok_or_else(|| bad(n, format!("no {key}=")));
    Ok(AttPunch {
        pin: pin(n, need("pin")?)?,
        wall_clock: wall_clock(n, need("time")?)?,
        status: f
            .get("inoutstatus")
            .map_or(Ok(0), |v| small(n, "inoutstatus", v))?,
        verify: f
            .get("verifytype")
            .map_or(Ok(0), |v| small(n, "verifytype", v))?,
        pass_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::zkteco::text::{MAX_LINE, MAX_LINES};

    #[test]
    fn attlog_lines() {
        let body = b"982\t2008-02-25 12:08:21\t1\t0\t9001\r\n\n7\t2024-01-02 03:04:05\t0\t15\n";
        let got = attlog(body).unwrap();
        assert_eq!(
            got,
            [
                AttPunch {
                    pin: "982".into(),
                    wall_clock: 1_203_941_301,
                    status: 1,
                    verify: 0,
                    pass_type: None
                },
                AttPunch {
                    pin: "7".into(),
                    wall_clock: 1_704_164_645,
                    status: 0,
                    verify: 15,
                    pass_type: None
                }
            ]
        );
        let kv = b"time=2026-08-14 15:28:03\tpin=123456\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=1\tverifytype=15\tindex=0\n";
        let got = attlog(kv).unwrap();
        assert_eq!(
            (got[0].pin.as_str(), got[0].status, got[0].verify),
            ("123456", 1, 15)
        );
    }

    #[test]
    fn attlog_refusals_name_the_line() {
        let cases: [(&[u8], usize, &str); 8] = [
            (b"1\t2024-01-02 03:04:05\t0\n", 1, "expected"),
            (
                b"1\t2024-01-02 03:04:05\t0\t1\n1\t2024-13-02 03:04:05\t0\t1",
                2,
                "time",
            ),
            (b"1\t+12024-01-02 03:04:05\t0\t1", 1, "time"),
            (b"1\t2024-01-02 03:04:05\t256\t1", 1, "state"),
            (b"1\t2024-01-02 03:04:05\t0\t-1", 1, "verify"),
            (b"\t2024-01-02 03:04:05\t0\t1", 1, "PIN"),
            (b"ok\n\xff\xfe", 2, "UTF-8"),
            (b"time=2024-01-02 03:04:05\tverifytype=1", 1, "pin="),
        ];
        for (body, line, says) in cases {
            let e = attlog(body).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.why.contains(says), "{e}");
        }
        let long = format!("1\t{}\t0\t1", "x".repeat(MAX_LINE));
        assert!(attlog(long.as_bytes()).is_err());
        let many = "1\t2024-01-02 03:04:05\t0\t1\n".repeat(MAX_LINES + 1);
        assert_eq!(attlog(many.as_bytes()).unwrap_err().line, 0);
        assert!(attlog(b"\n\r\n").unwrap().is_empty());
    }

    #[test]
    fn rtlog_events_of_people_are_punches() {
        let body = b"time=2026-02-23 14:13:48\tpin=2\tcardno=0\teventaddr=1\tevent=0\t\
            inoutstatus=1\tverifytype=15\tindex=140\tsitecode=0\tlinkid=0\tmaskflag=0\r\n\
            time=2026-02-23 14:13:50\tpin=0\tcardno=0\teventaddr=1\tevent=200\tverifytype=200\n\
            time=2026-02-23 14:13:51\tpin=\tcardno=123\tevent=27\n\
            sensor=01\trelay=00\n";
        let got = rtlog(body).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (
                got[0].pin.as_str(),
                got[0].status,
                got[0].verify,
                got[0].pass_type
            ),
            ("2", 1, 15, Some(2))
        );
        assert_eq!(got[0].wall_clock, 1_771_856_028);
        // A person's event with a bad time or state refuses the upload.
        let e = rtlog(b"time=2026-02-23 14:13:48\tpin=2\nTime=bad\tPin=3\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(rtlog(b"time=2026-02-23 14:13:48\tpin=2\tverifytype=300").is_err());
        assert!(rtlog(b"pin=2\tevent=0").is_err());
    }
}
