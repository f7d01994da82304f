//! Every frame of the WeCom device protocol, and the only code that knows
//! its JSON: requests are read into the core's typed values ([`read`]),
//! replies and pushes are written from them (here), and the core's errors
//! become `errcode`/`errmsg` ([`device_code`]).
//!
//! Objects are written through `serde_json::Value`, whose maps keep their
//! keys sorted: the bytes on the wire do not depend on the order fields are
//! listed in.

pub mod read;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::domain::devices::DeviceUser;
use crate::domain::devices::checkin::CheckinOutcome;
use crate::domain::devices::codes;
use crate::domain::devices::messages::{
    EnrolPage, PunchRef, Push, TemplateSet, UserCheck, UserInfo, UserPage,
};
use crate::model::Stream;
use crate::model::error::Error;

/// A text frame read as far as the connection needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A request; `body` is `{}` when the frame had none (or `null`).
    Request {
        req_id: String,
        cmd: String,
        body: Value,
    },
    /// A frame without `cmd`: a reply to one of our pushes (the platform
    /// documents none), ignored.
    Reply,
}

/// A frame that cannot be served, with the `req_id` to echo: `None` (a
/// connection-level error) unless the frame carried a valid one.
#[derive(Debug)]
pub struct FrameError {
    pub req_id: Option<String>,
    pub error: Error,
}

/// Reads a text frame: a JSON object (47001 otherwise) with `headers.req_id`
/// a string of 1 to 128 bytes or a number (echoed as text), then `cmd` a
/// string and `body` an object or null (40058 otherwise). Pure, so it can
/// be fuzzed and tested without a connection.
pub fn parse_frame(text: &str) -> std::result::Result<Frame, FrameError> {
    let refuse = |req_id: Option<&str>, error| FrameError {
        req_id: req_id.map(str::to_string),
        error,
    };
    let mut frame = match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Err(refuse(
                None,
                Error::DeviceRefused(codes::BAD_JSON, "frame is not a JSON object".into()),
            ));
        }
        Err(e) => return Err(refuse(None, not_json(e))),
    };
    let req_id = match frame.pointer("/headers/req_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(refuse(
                None,
                Error::param("headers.req_id is required (a string of 1 to 128 bytes)"),
            ));
        }
    };
    let cmd = match frame.get("cmd") {
        Some(Value::String(c)) => c.clone(),
        None => return Ok(Frame::Reply),
        Some(_) => return Err(refuse(Some(&req_id), Error::param("cmd must be a string"))),
    };
    let body = match frame.get_mut("body").map(Value::take) {
        None | Some(Value::Null) => json!({}),
        Some(b @ Value::Object(_)) => b,
        Some(_) => {
            return Err(refuse(
                Some(&req_id),
                Error::param("body must be an object"),
            ));
        }
    };
    Ok(Frame::Request { req_id, cmd, body })
}

/// The error for a frame that is not JSON (`e` says why).
pub fn not_json(e: impl std::fmt::Display) -> Error {
    Error::DeviceRefused(codes::BAD_JSON, format!("frame is not valid JSON: {e}"))
}

/// A successful reply: `body` under the request's `req_id`.
pub fn reply_frame(req_id: &str, body: Value) -> String {
    json!({"headers": {"req_id": req_id}, "body": body, "errcode": 0, "errmsg": "ok"}).to_string()
}

/// The text of an error reply; with no `req_id`, a connection-level error
/// (no `headers`), the shape vendor firmware reads.
pub fn error_frame(req_id: Option<&str>, e: &Error) -> String {
    let (code, msg) = device_code(e);
    match req_id {
        Some(id) => json!({"headers": {"req_id": id}, "body": {}, "errcode": code, "errmsg": msg}),
        None => json!({"errcode": code, "errmsg": msg}),
    }
    .to_string()
}

/// The binary reply to `download_photo`: little-endian `int32
/// format_version (1)`, `int32 req_id_len`, `req_id`, `int32 data_len`,
/// `data` — the layout both device implementations in the notes parse.
pub fn photo_frame(req_id: &str, photo: &[u8]) -> bytes::Bytes {
    let mut out = Vec::with_capacity(12 + req_id.len() + photo.len());
    out.extend_from_slice(&1i32.to_le_bytes());
    out.extend_from_slice(&(req_id.len() as i32).to_le_bytes());
    out.extend_from_slice(req_id.as_bytes());
    out.extend_from_slice(&(photo.len() as i32).to_le_bytes());
    out.extend_from_slice(photo);
    out.into()
}

/// `(errcode, errmsg)` on the WeCom device protocol. The protocol's own
/// codes (6000xx) come from [`Error::DeviceRefused`]; the rest are
/// WeCom's global codes: 40058 invalid parameter, 45009 frequency
/// limit, -1 system busy (see docs/device-protocol.md).
pub fn device_code(e: &Error) -> (i64, String) {
    match e {
        Error::DeviceRefused(code, m) => (*code, m.clone()),
        Error::InvalidParam(m) => (40058, format!("invalid parameter: {m}")),
        Error::UserNotFound(_) => (40003, e.to_string()),
        Error::RateLimited { limit, reset_secs } => (
            45009,
            format!("api freq out of limit: {limit} a second; retry in {reset_secs} s"),
        ),
        Error::Throttled { msg, .. } => (45009, format!("api freq out of limit: {msg}")),
        Error::Internal(_) => (-1, "system busy".into()),
        // The deployment's state, which passes: the terminal retries later.
        Error::StorageFull(_) | Error::Unavailable(_) => (-1, format!("system busy: {e}")),
        other => (40058, other.to_string()),
    }
}

// ------------------------------------------------------------- pushes

/// A push: `cmd`, a fresh `req_id`, `body`. Devices do not answer them.
pub fn push_frame(push: &Push) -> String {
    let (cmd, body) = match push {
        Push::Bound => ("push_bind_corp", json!({})),
        Push::Unbound => ("push_unbind_corp", json!({})),
        Push::Change {
            list: Stream::People,
            version,
            change,
            at,
        } => (
            "push_change_contact",
            json!({
                "timestamp": at,
                "perm_version": version,
                "create_user": change.create_user,
                "update_user": change.update_user,
                "delete_user": change.delete_user,
            }),
        ),
        Push::Change {
            list: Stream::Visitors,
            version,
            change,
            at,
        } => (
            "push_visitor_list_change",
            json!({
                "timestamp": at,
                "visitor_version": version,
                "create_visitor": change.create_user,
                "update_visitor": change.update_user,
                "delete_visitor": change.delete_user,
            }),
        ),
        Push::EnterPage(page) => ("push_enter_page", page_body(page)),
        Push::ExitPage(page) => ("push_exit_page", page_body(page)),
        Push::UserFace {
            oper_id,
            user,
            photos,
        } => {
            let faces: Vec<Value> = photos
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id,
                        "photo_size": p.size,
                        "media_id": p.media_id,
                        "media_type": p.media_type,
                    })
                })
                .collect();
            let body = json!({
                "oper_id": oper_id,
                "userid": user.userid,
                "user_type": user.user_type,
                "face_info": faces,
            });
            ("push_user_face", body)
        }
    };
    let req_id = hex::encode(crate::model::ids::random_bytes::<8>());
    json!({"cmd": cmd, "headers": {"req_id": req_id}, "body": body}).to_string()
}

fn page_body(page: &EnrolPage) -> Value {
    json!({
        "page_type": page.kind,
        "oper_id": page.oper_id,
        "userid": page.user.userid,
        "user_type": page.user.user_type,
    })
}

// ------------------------------------------------------------ replies

/// `register` → `{active_code}`.
pub fn active_code_reply(code: &str) -> Value {
    json!({"active_code": code})
}

/// `active` → `{secret}`.
pub fn secret_reply(secret: &str) -> Value {
    json!({"secret": secret})
}

/// `get_perm_version` → `{perm_version}`.
pub fn perm_version_reply(version: i64) -> Value {
    json!({"perm_version": version})
}

/// `get_userinfo_by_ids` → `{userinfo[]}`. Encodes every template: run it
/// off the async threads.
pub fn userinfo_reply(users: &[UserInfo]) -> Value {
    json!({"userinfo": userinfo(users)})
}

/// `get_userinfo_by_page` → `{is_last, perm_version, userinfo[]}`, and
/// `get_visitor_list` → `{is_last, visitor_version, userinfo[]}`, as
/// [`userinfo_reply`].
pub fn page_reply(page: &UserPage) -> Value {
    let version = match page.list {
        Stream::People => "perm_version",
        Stream::Visitors => "visitor_version",
    };
    json!({"is_last": page.is_last, version: page.version,
           "userinfo": userinfo(&page.users)})
}

/// `userinfo[]` items: `userid, user_type, name, fa_ver, fp_ver`, per
/// modality asked for `fa_list`/`fp` (`[{id, data}]`, base64) with
/// `fa_algorithm`/`fp_algorithm` when the person has templates of one of
/// the device's algorithms, and on a terminal bound to access rules
/// `pass_rule_list[{id, rule, effect_time}]`.
fn userinfo(users: &[UserInfo]) -> Vec<Value> {
    users
        .iter()
        .map(|u| {
            let mut m = Map::new();
            m.insert("userid".into(), json!(u.user.userid));
            m.insert("user_type".into(), json!(u.user.user_type));
            m.insert("name".into(), json!(u.name));
            m.insert("fa_ver".into(), json!(u.fa_ver));
            m.insert("fp_ver".into(), json!(u.fp_ver));
            let mut templates = |set: &Option<TemplateSet>, list: &str, alg: &str| {
                let Some(set) = set else { return };
                if let Some(a) = &set.algorithm {
                    m.insert(alg.into(), json!(a));
                }
                let slots = set
                    .slots
                    .iter()
                    .map(|(id, data)| json!({"id": id, "data": STANDARD.encode(data)}))
                    .collect();
                m.insert(list.into(), Value::Array(slots));
            };
            templates(&u.faces, "fa_list", "fa_algorithm");
            templates(&u.fingerprints, "fp", "fp_algorithm");
            if let Some(rules) = &u.pass_rules {
                let rules = rules
                    .iter()
                    .map(|r| json!({"id": r.id, "rule": r.rule, "effect_time": r.effect_time}))
                    .collect();
                m.insert("pass_rule_list".into(), Value::Array(rules));
            }
            Value::Object(m)
        })
        .collect()
}

/// `check_userid` → `{legal_userid_item[], illegal_userid_item[]}`, and
/// `legal_userid[]`/`illegal_userid[]` when asked in the old form.
pub fn check_reply(check: &UserCheck, old_form: bool) -> Value {
    let mut reply = json!({"legal_userid_item": check.legal, "illegal_userid_item": check.illegal});
    if old_form {
        let ids = |users: &[DeviceUser]| json!(users.iter().map(|u| &u.userid).collect::<Vec<_>>());
        reply["legal_userid"] = ids(&check.legal);
        reply["illegal_userid"] = ids(&check.illegal);
    }
    reply
}

/// `upload_userinfo` → `{fail_list[{userid, user_type}]}`.
pub fn upload_reply(fail_list: &[DeviceUser]) -> Value {
    json!({"fail_list": fail_list})
}

/// `checkin` → `{fail_list[{userid, user_type, timestamp}]}`, and when a
/// capture photo was refused, `photo_fail_list[{userid, user_type,
/// timestamp, errmsg}]` (facehub's: those records are stored, without the
/// photo).
pub fn checkin_reply(outcome: &CheckinOutcome) -> Value {
    let named = |p: &PunchRef| json!({"userid": p.userid, "user_type": p.user_type, "timestamp": p.timestamp});
    let items: Vec<Value> = outcome.fail_list.iter().map(named).collect();
    let mut reply = json!({"fail_list": items});
    if !outcome.photo_fail_list.is_empty() {
        let photos: Vec<Value> = outcome
            .photo_fail_list
            .iter()
            .map(|(p, why)| {
                let mut item = named(p);
                item["errmsg"] = Value::from(why.as_str());
                item
            })
            .collect();
        reply["photo_fail_list"] = Value::from(photos);
    }
    reply
}

#[cfg(test)]
mod tests;
