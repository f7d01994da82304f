//! Request bodies → the core's typed values. Shape is judged here (a field
//! missing, of the wrong JSON type, not a number, not base64); the rules
//! (slot ranges, sizes, algorithms, counts) are the core's, and a value
//! that breaks one is passed on for the core to refuse in its words.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use crate::domain::devices::messages::{
    CapturePhoto, EnrolmentAnswer, Punch, PunchInput, PunchRef, SlotData, SlotInput, TemplateList,
    Upload, UserFault, UserUpload, Wanted,
};
use crate::domain::devices::sync::{DEFAULT_PAGE, Page, check_pull_size};
use crate::domain::devices::upload::MAX_TEMPLATE_BYTES;
use crate::domain::devices::{DeviceUser, Subscription, clip};
use crate::model::error::{Error, Result};

/// Standard base64, padded or not: firmware differs.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `register`: (sn, timestamp, nonce, device_signature). Numbers are kept
/// as the text they were sent as: the signature is computed over it.
pub struct Register<'a> {
    pub sn: &'a str,
    pub timestamp: String,
    pub nonce: String,
    pub signature: &'a str,
}

/// `register`'s `sn`, read before the rest so that a frame without one
/// costs nothing of the client's rate.
pub fn register_sn(body: &Value) -> Result<&str> {
    str_field(body, "sn")
}

pub fn register(body: &Value) -> Result<Register<'_>> {
    Ok(Register {
        sn: str_field(body, "sn")?,
        timestamp: scalar(body, "timestamp")?,
        nonce: scalar(body, "nonce")?,
        signature: str_field(body, "device_signature")?,
    })
}

/// `active {active_code}`.
pub fn active_code(body: &Value) -> Result<&str> {
    str_field(body, "active_code")
}

/// `subscribe_corp {secret, firmware_version, ext_args{fa_algorithm,
/// fp_algorithm}}`.
pub fn subscription(body: &Value) -> Result<Subscription> {
    let ext = body.get("ext_args").cloned().unwrap_or(Value::Null);
    Ok(Subscription {
        secret: str_field(body, "secret")?.to_string(),
        firmware_version: body
            .get("firmware_version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        fa_algorithms: string_list(&ext, "fa_algorithm")?,
        fp_algorithms: string_list(&ext, "fp_algorithm")?,
    })
}

/// `download_photo {media_id}`.
pub fn media_id(body: &Value) -> Result<&str> {
    str_field(body, "media_id")
}

/// `is_req_fa_info` / `is_req_fp_info` of a pull (both default 1).
pub fn wanted(body: &Value) -> Result<Wanted> {
    Ok(Wanted {
        faces: flag(body, "is_req_fa_info", true)?,
        fingerprints: flag(body, "is_req_fp_info", true)?,
    })
}

/// `get_userinfo_by_page {offset, limit}` (limit 100 when absent).
pub fn page(body: &Value) -> Result<Page> {
    let offset = opt_int(body, "offset")?.unwrap_or(0);
    let limit = opt_int(body, "limit")?.unwrap_or(DEFAULT_PAGE);
    Page::new(offset, limit)
}

/// `get_userinfo_by_ids {user_item[] | userids[]}`.
pub fn users_by_ids(body: &Value) -> Result<Vec<DeviceUser>> {
    user_items(body, "user_item", "userids")
}

/// `check_userid {userid_item[] | userid[]}`, and whether it was asked in
/// the old form (which is answered in both).
pub fn check_userid(body: &Value) -> Result<(Vec<DeviceUser>, bool)> {
    let old_form = body.get("userid_item").is_none_or(Value::is_null);
    Ok((user_items(body, "userid_item", "userid")?, old_form))
}

/// The `(userid, user_type)` items of a pull request: the new form
/// (`field_new`: `[{userid, user_type}]`) or the old (`field_old`: `[userid]`).
pub fn user_items(body: &Value, field_new: &str, field_old: &str) -> Result<Vec<DeviceUser>> {
    if let Some(items) = body.get(field_new).filter(|v| !v.is_null()) {
        let items = items
            .as_array()
            .ok_or_else(|| Error::param(format!("{field_new} must be an array")))?;
        check_pull_size(items.len())?;
        items
            .iter()
            .map(|i| user_of(i).map_err(|e| Error::param(format!("{field_new}: {e}"))))
            .collect()
    } else if let Some(ids) = body.get(field_old).filter(|v| !v.is_null()) {
        let ids = ids
            .as_array()
            .ok_or_else(|| Error::param(format!("{field_old} must be an array")))?;
        check_pull_size(ids.len())?;
        ids.iter()
            .map(|id| {
                let item = serde_json::json!({"userid": id});
                user_of(&item).map_err(|e| Error::param(format!("{field_old}: {e}")))
            })
            .collect()
    } else {
        Err(Error::param(format!("{field_new} is required")))
    }
}

/// `upload_userinfo {userinfo[], oper_id?, errcode?, errmsg?}`. Decodes
/// every template: run it off the async threads.
pub fn upload(mut body: Value) -> Result<Upload> {
    let users = match body.get_mut("userinfo").map(Value::take) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(Error::param("userinfo must be an array")),
    };
    let answer = body
        .get("oper_id")
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty())
        .map(|oper_id| EnrolmentAnswer {
            oper_id: oper_id.to_string(),
            // An errcode that is not a number is a failure, never success.
            errcode: match body.get("errcode") {
                None | Some(Value::Null) => 0,
                Some(v) => int_field(v).unwrap_or(-1),
            },
            errmsg: body
                .get("errmsg")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    Ok(Upload {
        users: users.iter().map(read_user_item).collect(),
        answer,
    })
}

/// One `upload_userinfo` user item: its identity and template lists, or
/// the user as well as it can be named and why the item is unreadable.
/// Pure, so the fuzz target reaches it.
pub fn read_user_item(item: &Value) -> Result<UserUpload, UserFault> {
    let fault = |why: String| UserFault {
        user: name_of(item),
        why,
    };
    let user = user_of(item).map_err(fault)?;
    let has = |field: &str| item.get(field).is_some_and(|v| !v.is_null());
    for field in ["fa_algorithm", "fp_algorithm"] {
        if has(field) && !item[field].is_string() {
            return Err(fault(format!("{field} must be a string")));
        }
    }
    let algorithm = |field: &str| item.get(field).and_then(Value::as_str).map(str::to_string);
    // `fa` (one legacy face) is slot 0, and ignored when `fa_list` is present.
    let faces = if has("fa_list") {
        Some(TemplateList {
            field: "fa_list",
            algorithm_field: "fa_algorithm",
            algorithm: algorithm("fa_algorithm"),
            slots: slots(&item["fa_list"], "fa_list"),
        })
    } else if has("fa") {
        let slots = if user.user_type != 0 {
            Err("fa is for employees only; visitors and students use fa_list".to_string())
        } else {
            Ok(vec![SlotInput {
                id: Some(0),
                data: slot_data(&item["fa"]),
            }])
        };
        Some(TemplateList {
            field: "fa",
            algorithm_field: "fa_algorithm",
            algorithm: algorithm("fa_algorithm"),
            slots,
        })
    } else {
        None
    };
    let fingerprints = has("fp").then(|| TemplateList {
        field: "fp",
        algorithm_field: "fp_algorithm",
        algorithm: algorithm("fp_algorithm"),
        slots: slots(&item["fp"], "fp"),
    });
    // What the device says it sent, as an enrolment reads it: a non-empty
    // `fa_list` (or `fa` when the item has no `fa_list` key), a non-empty `fp`.
    let nonempty = |f: &str| match item.get(f) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    Ok(UserUpload {
        user,
        faces,
        fingerprints,
        sent_faces: nonempty("fa_list") || (item.get("fa_list").is_none() && nonempty("fa")),
        sent_fingerprints: nonempty("fp"),
    })
}

/// One slot list (`fa_list` / `fp`): each item's `id` (its position when
/// it has none) and data.
fn slots(list: &Value, field: &str) -> Result<Vec<SlotInput>, String> {
    let Some(items) = list.as_array() else {
        return Err(format!("{field} must be an array"));
    };
    Ok(items
        .iter()
        .enumerate()
        .map(|(position, item)| SlotInput {
            id: match item.get("id") {
                None | Some(Value::Null) => Some(position as i64),
                Some(v) => int_field(v),
            },
            data: slot_data(item.get("data").unwrap_or(&Value::Null)),
        })
        .collect())
}

/// A slot's `data`: absent or null changes nothing, `""` deletes, else
/// base64 of the template.
fn slot_data(data: &Value) -> SlotData {
    match data {
        Value::Null => SlotData::Unchanged,
        Value::String(s) if s.is_empty() => SlotData::Delete,
        // Longer text cannot decode within the bound; refuse before decoding.
        Value::String(s) if s.len() > MAX_TEMPLATE_BYTES.div_ceil(3) * 4 + 4 => {
            SlotData::Unreadable(format!(
                "template is larger than {MAX_TEMPLATE_BYTES} bytes"
            ))
        }
        Value::String(s) => match LENIENT.decode(s) {
            Ok(bytes) => SlotData::Template(bytes),
            Err(_) => SlotData::Unreadable("data is not valid base64".into()),
        },
        _ => SlotData::Unreadable("data must be a string".into()),
    }
}

/// `checkin {checkin_data[{userid, user_type, timestamp, pass_type?,
/// pass_method?, capture_photo?}]}`: a record whose numbers cannot be read
/// is named as well as it can be (missing numbers as 0). `capture_photo`
/// (facehub's, docs/device-protocol.md) is the pass's photo in base64; one
/// that does not decode fails the photo, not the record.
pub fn checkin(body: &Value) -> Result<Vec<PunchInput>> {
    Ok(array_field(body, "checkin_data")?
        .iter()
        .map(|item| {
            let userid = item
                .get("userid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let user_type = item.get("user_type").map_or(Some(0), int_field);
            let timestamp = item.get("timestamp").and_then(int_field);
            let optional = |field: &str| match item.get(field) {
                None | Some(Value::Null) => Some(None),
                Some(v) => int_field(v).map(Some),
            };
            match (
                user_type,
                timestamp,
                optional("pass_type"),
                optional("pass_method"),
            ) {
                (Some(user_type), Some(timestamp), Some(pass_type), Some(pass_method)) => {
                    PunchInput::Read(Punch {
                        userid,
                        user_type,
                        timestamp,
                        pass_type,
                        pass_method,
                        photo: capture_photo(item.get("capture_photo")),
                    })
                }
                _ => PunchInput::Unreadable(PunchRef {
                    userid,
                    user_type: user_type.unwrap_or(0),
                    timestamp: timestamp.unwrap_or(0),
                }),
            }
        })
        .collect())
}

/// A punch's `capture_photo`: absent, null and "" are no photo.
fn capture_photo(v: Option<&Value>) -> Option<CapturePhoto> {
    match v? {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(match LENIENT.decode(s) {
            Ok(bytes) => CapturePhoto::Bytes(bytes),
            Err(_) => CapturePhoto::Unreadable("capture_photo is not valid base64".into()),
        }),
        _ => Some(CapturePhoto::Unreadable(
            "capture_photo must be a base64 string".into(),
        )),
    }
}

/// `(userid, user_type)` of a user item, as well as it can be read; used
/// to name the user in `fail_list` even when the item is malformed.
fn name_of(item: &Value) -> DeviceUser {
    // Echoed in fail_list: at most the 128 bytes a userid may have.
    let userid = match item.get("userid") {
        Some(Value::String(s)) => clip(s, 128).to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let user_type = item.get("user_type").and_then(int_field).unwrap_or(0);
    DeviceUser { userid, user_type }
}

/// A user item's identity, validated.
fn user_of(item: &Value) -> Result<DeviceUser, String> {
    let Some(obj) = item.as_object() else {
        return Err("user item is not an object".into());
    };
    let Some(Value::String(userid)) = obj.get("userid") else {
        return Err("userid is required and must be a string".into());
    };
    let user_type = match obj.get("user_type") {
        None | Some(Value::Null) => Some(0),
        Some(v) => int_field(v),
    };
    DeviceUser::checked(userid, user_type)
}

/// A number, or a string holding one (firmware sends both).
pub fn int_field(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An optional flag that defaults to `default` (`is_req_fa_info` …).
pub fn flag(body: &Value, name: &str, default: bool) -> Result<bool> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => match int_field(v) {
            Some(0) => Ok(false),
            Some(1) => Ok(true),
            _ => Err(Error::param(format!("{name} must be 0 or 1"))),
        },
    }
}

fn str_field<'a>(body: &'a Value, name: &str) -> Result<&'a str> {
    match body.get(name) {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 1024 => Ok(s),
        _ => Err(Error::param(format!(
            "{name} is required (a non-empty string)"
        ))),
    }
}

/// A number or numeric string, as the text it was sent as.
fn scalar(body: &Value, name: &str) -> Result<String> {
    match body.get(name) {
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok(s.clone())
        }
        _ => Err(Error::param(format!(
            "{name} is required (an unsigned integer)"
        ))),
    }
}

fn opt_int(body: &Value, name: &str) -> Result<Option<i64>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int_field(v)
            .map(Some)
            .ok_or_else(|| Error::param(format!("{name} must be an integer"))),
    }
}

fn array_field<'a>(body: &'a Value, name: &str) -> Result<&'a [Value]> {
    match body.get(name) {
        Some(Value::Array(a)) => Ok(a),
        _ => Err(Error::param(format!("{name} is required (an array)"))),
    }
}

fn string_list(ext: &Value, name: &str) -> Result<Vec<String>> {
    match ext.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::param(format!("ext_args.{name} must list strings")))
            })
            .collect(),
        Some(_) => Err(Error::param(format!("ext_args.{name} must be an array"))),
    }
}
