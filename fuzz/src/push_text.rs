//! The `push_text` target: bodies and query values of ZKTeco's PUSH
//! protocol (`/iclock/*`) through its text readers, as the surface reads
//! them. The first byte picks the reader: `ATTLOG` uploads, `devicecmd`
//! results, or `getrequest`'s `INFO` and an upload's `Stamp`.
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
//!   that are not negative; a kept `Stamp` is at most 32 safe bytes.
//!
//! This file is also compiled into tests/it/fuzz_regressions.rs (by `#[path]`).

use facehub::api::zkteco::text::{MAX_LINES, attlog, command_results, info, stamp};

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
    match selector % 3 {
        0 => check_attlog(body),
        1 => check_results(body),
        _ => check_info(body),
    }
}

fn check_attlog(body: &[u8]) {
    let lines = body.split(|b| *b == b'\n').count();
    match attlog(body) {
        Ok(punches) => {
            let text = std::str::from_utf8(body).expect("accepted text is UTF-8");
            let records = text
                .split('\n')
                .filter(|l| !l.strip_suffix('\r').unwrap_or(l).trim().is_empty())
                .count();
            assert_eq!(punches.len(), records, "one punch a line");
            assert!(punches.len() <= MAX_LINES);
            for p in punches {
                assert!(!p.pin.is_empty() && p.pin.len() <= 128);
                assert!(p.pin.bytes().all(|b| b.is_ascii_graphic()));
                assert!((0..=255).contains(&p.status) && (0..=255).contains(&p.verify));
                // 0000-01-01 to 9999-12-31.
                assert!((-62_167_219_200..=253_402_300_799).contains(&p.wall_clock));
            }
        }
        Err(e) => {
            assert!(e.line <= lines, "line {} of {lines}", e.line);
            assert!(e.why.len() <= 200, "{}", e.why);
        }
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
