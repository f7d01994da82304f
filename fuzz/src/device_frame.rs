//! The `device_frame` target: text frames of the WeCom device protocol
//! through the frame parser, and the bodies of the commands whose parsing
//! is pure (`upload_userinfo`'s user items, the pulls' user lists and
//! flags), as a connection would read them.
//!
//! Properties, besides "never panics":
//! - a refused frame carries a documented device code: 47001 when it is
//!   not a JSON object, 40058 otherwise, and the `req_id` it echoes is the
//!   frame's own and valid (a string of 1 to 128 bytes, or a number as
//!   text); the error reply is a JSON object with an integer `errcode`, a
//!   string `errmsg` and `headers.req_id` exactly when one is echoed;
//! - an accepted request has a valid `req_id` and an object body;
//! - a user item that is accepted names a valid user (userid 1 to 128
//!   bytes, `user_type` 0 to 2, the item's own) and writes only slots in
//!   range, each at most once, of subscribed algorithms, with templates of
//!   at most `MAX_TEMPLATE_BYTES` that are not images; a refused one is
//!   named with at most 128 bytes and a bounded reason;
//! - a pull's user list is valid and at most `MAX_USERS` long, and its
//!   errors are 40058;
//! - `checkin` reads one punch per record sent (none lost, none invented),
//!   a capture photo that does not decode is named with a bounded reason,
//!   and its errors are 40058.
//!
//! This file is also compiled into tests/it/fuzz_regressions.rs (by `#[path]`).

use std::collections::HashSet;

use facehub::api::wecom::frames::read::{flag, int_field, read_user_item, user_items};
use facehub::api::wecom::{Frame, device_code, error_frame, parse_frame};
use facehub::domain::devices::messages::{CapturePhoto, PunchInput};
use facehub::domain::devices::sync::MAX_USERS;
use facehub::domain::devices::upload::{MAX_TEMPLATE_BYTES, Subscribed, judge_user};
use facehub::domain::devices::{DeviceUser, Modality};
use facehub::image::contained::file_within;
use serde_json::Value;

/// WeCom's "invalid JSON" and "invalid parameter".
const BAD_JSON: i64 = 47001;
const BAD_PARAM: i64 = 40058;

/// The algorithms the simulated device subscribed with; the seeds use
/// these and others.
pub fn subscribed() -> Subscribed {
    (
        vec!["default".into(), "face-v2".into()],
        vec!["default".into(), "zk10".into()],
    )
}

/// The `req_id` a frame carries, if it is one the server may echo.
fn valid_req_id(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v.pointer("/headers/req_id")? {
        Value::String(s) if (1..=128).contains(&s.len()) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_user(u: &DeviceUser, what: &str) {
    assert!(
        (1..=128).contains(&u.userid.len()),
        "{what}: userid of {} bytes",
        u.userid.len()
    );
    assert!((0..=2).contains(&u.user_type), "{what}: {u:?}");
}

/// Runs one input (as UTF-8, lossily) and checks every property.
pub fn check(data: &[u8]) {
    check_text(&String::from_utf8_lossy(data));
}

pub fn check_text(text: &str) {
    let expected_id = valid_req_id(text);
    let (req_id, cmd, body) = match parse_frame(text) {
        Ok(Frame::Request { req_id, cmd, body }) => (req_id, cmd, body),
        Ok(Frame::Reply) => {
            assert!(expected_id.is_some(), "a reply without a valid req_id");
            return;
        }
        Err(e) => {
            let (code, msg) = device_code(&e.error);
            assert!(
                code == BAD_JSON || code == BAD_PARAM,
                "undocumented code {code}: {msg}"
            );
            if code == BAD_JSON {
                assert_eq!(e.req_id, None, "echoed a req_id of unreadable JSON");
            }
            if let Some(id) = &e.req_id {
                assert_eq!(Some(id), expected_id.as_ref(), "echoed an invalid req_id");
            }
            let reply: Value = serde_json::from_str(&error_frame(e.req_id.as_deref(), &e.error))
                .expect("the error reply is JSON");
            assert_eq!(reply["errcode"].as_i64(), Some(code), "{reply}");
            assert!(reply["errmsg"].is_string(), "{reply}");
            assert_eq!(
                reply.pointer("/headers/req_id").and_then(Value::as_str),
                e.req_id.as_deref(),
                "{reply}"
            );
            if e.req_id.is_none() {
                assert!(reply.get("headers").is_none(), "{reply}");
            }
            return;
        }
    };
    assert_eq!(
        Some(&req_id),
        expected_id.as_ref(),
        "accepted an invalid req_id"
    );
    assert!(body.is_object(), "body {body}");
    match cmd.as_str() {
        "upload_userinfo" => upload_userinfo(&body),
        "checkin" => checkin(&body),
        "get_userinfo_by_ids" => pull(&body, "user_item", "userids"),
        "check_userid" => pull(&body, "userid_item", "userid"),
        "get_userinfo_by_page" => {
            for name in ["offset", "limit"] {
                let _ = body.get(name).map(int_field);
            }
            pull_flags(&body);
        }
        _ => {}
    }
}

fn checkin(body: &Value) {
    match facehub::api::wecom::frames::read::checkin(body) {
        Ok(punches) => {
            let sent = body["checkin_data"].as_array().map_or(0, Vec::len);
            assert_eq!(punches.len(), sent, "a record lost or invented");
            for p in punches {
                if let PunchInput::Read(p) = p
                    && let Some(CapturePhoto::Unreadable(why)) = &p.photo
                {
                    assert!(!why.is_empty() && why.len() <= 1024, "reason {why:?}");
                }
            }
        }
        Err(e) => assert_eq!(device_code(&e).0, BAD_PARAM, "{e}"),
    }
}

fn pull(body: &Value, new: &str, old: &str) {
    match user_items(body, new, old) {
        Ok(users) => {
            assert!(users.len() <= MAX_USERS, "{} users", users.len());
            for u in &users {
                check_user(u, "pull");
            }
        }
        Err(e) => assert_eq!(device_code(&e).0, BAD_PARAM, "{e}"),
    }
    pull_flags(body);
}

fn pull_flags(body: &Value) {
    for name in ["is_req_fa_info", "is_req_fp_info"] {
        if let Err(e) = flag(body, name, true) {
            assert_eq!(device_code(&e).0, BAD_PARAM, "{e}");
        }
    }
}

fn upload_userinfo(body: &Value) {
    let items = match body.get("userinfo") {
        Some(Value::Array(a)) if a.len() <= MAX_USERS => a,
        // Refused whole (not an array, too many users) or empty.
        _ => return,
    };
    let subscribed = subscribed();
    for item in items {
        // Read off the wire, then judged by the core, as a connection does.
        match read_user_item(item).and_then(|u| judge_user(u, &subscribed)) {
            Ok((user, writes)) => {
                check_user(&user, "upload");
                assert_eq!(
                    item.get("userid").and_then(Value::as_str),
                    Some(user.userid.as_str()),
                    "not the item's userid"
                );
                let mut seen = HashSet::new();
                for (modality, algorithm, slot, data) in &writes {
                    let listed = match modality {
                        Modality::Face => &subscribed.0,
                        Modality::Fingerprint => &subscribed.1,
                    };
                    assert!(listed.contains(algorithm), "algorithm {algorithm:?}");
                    assert!(
                        (0..modality.slots()).contains(slot),
                        "{modality:?} slot {slot}"
                    );
                    assert!(seen.insert((*modality, *slot)), "slot {slot} written twice");
                    if let Some(d) = data {
                        assert!(d.len() <= MAX_TEMPLATE_BYTES, "template of {}", d.len());
                        assert_eq!(file_within(d), None, "a file stored as a template");
                    }
                }
            }
            Err(fault) => {
                let (who, why) = (fault.user, fault.why);
                assert!(who.userid.len() <= 128, "named with {}", who.userid.len());
                assert!(!why.is_empty() && why.len() <= 1024, "reason {why:?}");
            }
        }
    }
}
