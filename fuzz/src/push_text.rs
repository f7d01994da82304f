//! The `push_text` target: bodies and query values of ZKTeco's PUSH
//! protocol (`/iclock/*`) through its text readers, as the surface reads
//! them. The first byte picks the reader: `ATTLOG` uploads, `devicecmd`
//! results, `getrequest`'s `INFO` and an upload's `Stamp`, or an access
//! terminal's `rtlog` events and `tabledata` records.
//!
//! Properties, besides "never panics":
//! - an accepted `ATTLOG` upload reads one punch per non-blank line (none
//!   lost, none invented), each with a PIN of 1 to 128 printable ASCII
//!   bytes, a state and verify mode of 0 to 255, and a time between the
//!   years 0 and 9999; a refused one names a line within the body (or 0)
//!   and a bounded reason;
//! - accepted command results are at most one per `ID=` in the body, each
//!   with a bounded `CMD`;
//! - an `INFO` report holds only bounded, control-free values and counts
//!   that are not negative; a kept `Stamp` is at most 32 safe bytes;
//! - an accepted `rtlog` upload reads at most one punch per non-blank
//!   line, none of them of PIN `0`, each bounded as an `ATTLOG` punch; a
//!   table name is kept only as 1 to 32 lower-case letters, digits or `_`,
//!   and a table's record count never exceeds its lines.
//!
//! This file is also compiled into tests/it/fuzz_regressions.rs (by `#[path]`).

use facehub::api::zkteco::access::{records, table_name};
use facehub::api::zkteco::punches::{attlog, rtlog};
use facehub::api::zkteco::text::{MAX_LINES, Malformed, command_results, info, stamp};
use facehub::domain::devices::zk::AttPunch;

/// Seeds: one per reader, the forms the protocol notes record.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with = |selector: u8, body: &[u8]| {
        let mut v = vec![selector];
        v.extend_from_slice(body);
        v
    };
    vec![
        (
            "attlog",
            with(0, b"982\t2008-02-25 12:08:21\t1\t0\t9001\t0\t0\n7\t2024-01-02 03:04:05\t0\t15\r\n"),
        ),
        (
            "attlog_kv",
            with(
                0,
                b"time=2026-08-14 15:28:03\tpin=123456\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=1\tverifytype=15\tindex=0\n",
            ),
        ),
        (
            "rtlog",
            with(
                3,
                b"time=2026-02-23 14:13:48\tpin=2\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=15\tindex=140\tsitecode=0\tlinkid=0\tmaskflag=0\r\ntime=2026-02-23 14:13:50\tpin=0\tevent=200\n",
            ),
        ),
        (
            "devicecmd",
            with(1, b"ID=1&Return=0&CMD=DATA\nID=2&Return=-1004&CMD=DATA\nID=32\nReturn=0\nCMD=Shell\nContent=x"),
        ),
        (
            "info",
            with(2, b" Ver 6.8.0(build640), 2, 0, 0, 192.168.1.201, 10, -1, -12, 101"),
        ),
    ]
}

pub fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => check_attlog(body),
        1 => check_results(body),
        2 => check_info(body),
        _ => check_rtlog(body),
    }
}

/// An upload's punches as read (`attlog` or `rtlog`): each bounded, and a
/// refusal naming a line of the body and a bounded reason.
fn check_punches(body: &[u8], read: Result<Vec<AttPunch>, Malformed>) -> Option<Vec<AttPunch>> {
    let lines = body.split(|b| *b == b'\n').count();
    match read {
        Ok(punches) => {
            assert!(punches.len() <= MAX_LINES);
            for p in &punches {
                assert!(!p.pin.is_empty() && p.pin.len() <= 128);
                assert!(p.pin.bytes().all(|b| b.is_ascii_graphic()));
                assert!((0..=255).contains(&p.status) && (0..=255).contains(&p.verify));
                // 0000-01-01 to 9999-12-31.
                assert!((-62_167_219_200..=253_402_300_799).contains(&p.wall_clock));
            }
            Some(punches)
        }
        Err(e) => {
            assert!(e.line <= lines, "line {} of {lines}", e.line);
            assert!(e.why.len() <= 200, "{}", e.why);
            None
        }
    }
}

fn check_rtlog(body: &[u8]) {
    if let Some(punches) = check_punches(body, rtlog(body)) {
        assert!(punches.len() <= records(body));
        assert!(
            punches.iter().all(|p| p.pin != "0"),
            "door events are no punches"
        );
    }
    assert!(records(body) <= body.split(|b| *b == b'\n').count());
    let text = String::from_utf8_lossy(body);
    if let Some(name) = table_name(Some(&text)) {
        assert!(!name.is_empty() && name.len() <= 32);
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        );
    }
}

fn check_attlog(body: &[u8]) {
    if let Some(punches) = check_punches(body, attlog(body)) {
        let text = std::str::from_utf8(body).expect("accepted text is UTF-8");
        let records = text
            .split('\n')
            .filter(|l| !l.strip_suffix('\r').unwrap_or(l).trim().is_empty())
            .count();
        assert_eq!(punches.len(), records, "one punch a line");
    }
}

fn check_results(body: &[u8]) {
    if let Ok(results) = command_results(body) {
        let ids = body.windows(3).filter(|w| *w == b"ID=").count();
        assert!(!results.is_empty() && results.len() <= ids);
        assert!(results.iter().all(|r| r.cmd.len() <= 64));
    }
}

fn check_info(body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    let i = info(&text);
    for v in [&i.firmware, &i.address, &i.fp_version, &i.face_version]
        .into_iter()
        .flatten()
    {
        assert!(!v.is_empty() && v.len() <= 64 && !v.chars().any(char::is_control));
    }
    for n in [i.users, i.fingerprints, i.punches, i.faces]
        .into_iter()
        .flatten()
    {
        assert!(n >= 0);
    }
    if let Some(s) = stamp(&text) {
        assert!(s.len() <= 32 && s == text);
    }
}
