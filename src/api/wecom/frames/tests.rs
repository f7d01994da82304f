//! Frames as the device sends and receives them: parsing, error replies,
//! and upload items read here and judged by the core, JSON in, reasons out.

use serde_json::{Value, json};

use super::read::read_user_item;
use super::*;
use crate::domain::devices::Modality;
use crate::domain::devices::sync::MAX_USERS;
use crate::domain::devices::upload::{MAX_TEMPLATE_BYTES, Plain, Subscribed, judge_user};

fn refused(text: &str) -> (Option<String>, i64) {
    let e = parse_frame(text).unwrap_err();
    (e.req_id, device_code(&e.error).0)
}

#[test]
fn requests_are_read() {
    let f = parse_frame(r#"{"cmd":"ping","headers":{"req_id":"r1"}}"#).unwrap();
    assert_eq!(
        f,
        Frame::Request {
            req_id: "r1".into(),
            cmd: "ping".into(),
            body: json!({})
        }
    );
    let f = parse_frame(r#"{"cmd":"x","headers":{"req_id":7},"body":{"a":1}}"#).unwrap();
    assert_eq!(
        f,
        Frame::Request {
            req_id: "7".into(),
            cmd: "x".into(),
            body: json!({"a": 1})
        }
    );
    let f = parse_frame(r#"{"cmd":"x","headers":{"req_id":"r"},"body":null}"#).unwrap();
    assert!(matches!(f, Frame::Request { body, .. } if body == json!({})));
    // No cmd: a reply, whatever its body.
    let f = parse_frame(r#"{"headers":{"req_id":"r"},"body":5,"errcode":0}"#).unwrap();
    assert_eq!(f, Frame::Reply);
}

#[test]
fn unreadable_frames_are_connection_errors() {
    assert_eq!(refused("not json"), (None, codes::BAD_JSON));
    assert_eq!(refused("[1]"), (None, codes::BAD_JSON));
    assert_eq!(refused(r#"{"cmd":"ping"}"#), (None, 40058));
    assert_eq!(
        refused(r#"{"cmd":"ping","headers":{"req_id":""}}"#),
        (None, 40058)
    );
    let long = "r".repeat(129);
    let text = json!({"cmd": "ping", "headers": {"req_id": long}}).to_string();
    assert_eq!(refused(&text), (None, 40058));
    // Without a valid req_id even a reply is refused.
    assert_eq!(refused(r#"{"headers":{"req_id":[]}}"#), (None, 40058));
}

#[test]
fn request_errors_echo_the_req_id() {
    let id = Some("r".to_string());
    assert_eq!(
        refused(r#"{"cmd":1,"headers":{"req_id":"r"}}"#),
        (id.clone(), 40058)
    );
    assert_eq!(
        refused(r#"{"cmd":"x","headers":{"req_id":"r"},"body":[]}"#),
        (id, 40058)
    );
}

#[test]
fn error_frames() {
    let e = Error::param("nope");
    let v: Value = serde_json::from_str(&error_frame(Some("r"), &e)).unwrap();
    assert_eq!(
        v,
        json!({"headers": {"req_id": "r"}, "body": {}, "errcode": 40058,
               "errmsg": "invalid parameter: nope"})
    );
    let v: Value = serde_json::from_str(&error_frame(None, &e)).unwrap();
    assert_eq!(
        v,
        json!({"errcode": 40058, "errmsg": "invalid parameter: nope"})
    );
}

/// An upload item as the core judges it once read.
fn judged(item: &Value, subs: &Subscribed) -> Result<Plain, String> {
    read_user_item(item)
        .and_then(|u| judge_user(u, subs))
        .map(|(_, writes)| writes)
        .map_err(|f| f.why)
}

/// A slot and its new data (`None` deletes it).
type SlotWrite = (i64, Option<Vec<u8>>);

fn faces_of(list: Value) -> Result<Vec<SlotWrite>, String> {
    let subs: Subscribed = (vec!["default".into()], vec!["default".into()]);
    let item = json!({"userid": "u1", "fa_list": list});
    Ok(judged(&item, &subs)?
        .into_iter()
        .map(|(_, _, slot, data)| (slot, data))
        .collect())
}

#[test]
fn slot_rules() {
    let ok = faces_of(json!([{"id": 0, "data": "AAEC"}, {"id": "11", "data": ""}])).unwrap();
    assert_eq!(ok, vec![(0, Some(vec![0, 1, 2])), (11, None)]);
    // No id: the item's position. No data: no change.
    let ok = faces_of(json!([{"data": "AAEC"}, {"id": 5}, {"data": "AQID"}])).unwrap();
    assert_eq!(ok, vec![(0, Some(vec![0, 1, 2])), (2, Some(vec![1, 2, 3]))]);
    for (bad, why) in [
        (
            json!([{"id": 12, "data": "AAEC"}]),
            "fa_list id must be 0 to 11",
        ),
        (
            json!([{"id": -1, "data": "AAEC"}]),
            "fa_list id must be 0 to 11",
        ),
        (
            json!([{"id": 1.5, "data": "AAEC"}]),
            "fa_list id must be 0 to 11",
        ),
        (
            json!([{"id": 1, "data": "!!!"}]),
            "fa_list slot 1: data is not valid base64",
        ),
        (
            json!([{"id": 1, "data": 5}]),
            "fa_list slot 1: data must be a string",
        ),
        (
            json!([{"id": 1, "data": "AA"}, {"id": 1, "data": "AA"}]),
            "fa_list names slot 1 twice",
        ),
        (json!({"id": 1}), "fa_list must be an array"),
    ] {
        assert_eq!(faces_of(bad.clone()).unwrap_err(), why, "{bad}");
    }
    let subs: Subscribed = (vec!["default".into()], vec!["default".into()]);
    let prints = |id: i64| json!({"userid": "u1", "fp": [{"id": id, "data": "AAEC"}]});
    assert_eq!(
        judged(&prints(10), &subs).unwrap_err(),
        "fp id must be 0 to 9"
    );
    assert!(judged(&prints(9), &subs).is_ok());
    // Unpadded base64 is accepted; oversize is refused before decoding.
    assert!(faces_of(json!([{"id": 0, "data": "AAE"}])).is_ok());
    let big = STANDARD.encode(vec![7u8; MAX_TEMPLATE_BYTES + 1]);
    assert_eq!(
        faces_of(json!([{"id": 0, "data": big}])).unwrap_err(),
        format!("fa_list slot 0: template is larger than {MAX_TEMPLATE_BYTES} bytes")
    );
    let max = STANDARD.encode(vec![7u8; MAX_TEMPLATE_BYTES]);
    assert!(faces_of(json!([{"id": 0, "data": max}])).is_ok());
}

#[test]
fn legacy_fa_is_ignored_when_fa_list_is_present() {
    let subs: Subscribed = (vec!["default".into()], vec!["zk10".into()]);
    let writes_of = |v: Value| {
        let mut item = v;
        item["userid"] = json!("u1");
        judged(&item, &subs)
    };
    let w = writes_of(json!({"fa": "AAAA", "fa_list": [{"id": 3, "data": "AQID"}]})).unwrap();
    assert_eq!(
        w,
        vec![(
            Modality::Face,
            "default".to_string(),
            3,
            Some(vec![1, 2, 3])
        )]
    );
    let w = writes_of(json!({"fa": "AQID", "fa_algorithm": "default"})).unwrap();
    assert_eq!(
        w,
        vec![(
            Modality::Face,
            "default".to_string(),
            0,
            Some(vec![1, 2, 3])
        )]
    );
    let w = writes_of(json!({"fp": [{"id": 2, "data": ""}], "fp_algorithm": "zk10"})).unwrap();
    assert_eq!(
        w,
        vec![(Modality::Fingerprint, "zk10".to_string(), 2, None)]
    );
    assert_eq!(
        writes_of(json!({"fa_algorithm": 3, "fa": "AQID"})).unwrap_err(),
        "fa_algorithm must be a string"
    );
    // Only the algorithms the device subscribed with.
    assert!(writes_of(json!({"fa": "AQID", "fa_algorithm": "other"})).is_err());
    assert!(writes_of(json!({"fp": [{"id": 1, "data": "AQID"}]})).is_err());
    // fa is for employees only.
    assert_eq!(
        writes_of(json!({"fa": "AQID", "user_type": 1})).unwrap_err(),
        "fa is for employees only; visitors and students use fa_list"
    );
    assert!(writes_of(json!({"fa_list": [{"id": 0, "data": "AQID"}], "user_type": 1})).is_ok());
}

#[test]
fn unreadable_items_are_named_as_well_as_they_can_be() {
    let long = "u".repeat(300);
    let f = read_user_item(&json!({"userid": long, "user_type": "2"})).unwrap_err();
    assert_eq!(f.user.userid.len(), 128);
    assert_eq!(f.user.user_type, 2);
    assert_eq!(f.why, "userid must be 1 to 128 bytes");
    let f = read_user_item(&json!({"userid": 42, "user_type": 9})).unwrap_err();
    assert_eq!(
        (f.user.userid.as_str(), f.why.as_str()),
        ("42", "userid is required and must be a string")
    );
    let f = read_user_item(&json!({"userid": "u", "user_type": 9})).unwrap_err();
    assert_eq!(f.why, "user_type must be 0, 1 or 2");
    assert_eq!(
        read_user_item(&json!(7)).unwrap_err().why,
        "user item is not an object"
    );
}

#[test]
fn pulls_name_their_users() {
    let body = json!({"user_item": [{"userid": "a", "user_type": 1}]});
    let users = read::users_by_ids(&body).unwrap();
    assert_eq!((users[0].userid.as_str(), users[0].user_type), ("a", 1));
    let ids: Vec<String> = (0..=MAX_USERS).map(|i| i.to_string()).collect();
    let e = read::users_by_ids(&json!({"userids": ids})).unwrap_err();
    assert_eq!(
        device_code(&e).1,
        "invalid parameter: 201 users requested, at most 200"
    );
    let (_, old) = read::check_userid(&json!({"userid": ["a"]})).unwrap();
    assert!(old);
}

#[test]
fn replies_keep_their_bytes() {
    // Keys sorted, as serde_json writes a Value.
    let named = |t| crate::domain::devices::messages::PunchRef {
        userid: "u1".into(),
        user_type: 0,
        timestamp: t,
    };
    let mut outcome = crate::domain::devices::checkin::CheckinOutcome {
        fail_list: vec![named(7)],
        photo_fail_list: Vec::new(),
    };
    assert_eq!(
        reply_frame("r", checkin_reply(&outcome)),
        r#"{"body":{"fail_list":[{"timestamp":7,"user_type":0,"userid":"u1"}]},"errcode":0,"errmsg":"ok","headers":{"req_id":"r"}}"#
    );
    // A refused capture photo is named with why, beside the failed records.
    outcome.fail_list.clear();
    outcome.photo_fail_list.push((named(8), "too small".into()));
    assert_eq!(
        reply_frame("r", checkin_reply(&outcome)),
        r#"{"body":{"fail_list":[],"photo_fail_list":[{"errmsg":"too small","timestamp":8,"user_type":0,"userid":"u1"}]},"errcode":0,"errmsg":"ok","headers":{"req_id":"r"}}"#
    );
}

#[test]
fn capture_photos_are_read_as_base64_and_a_bad_one_is_named() {
    use crate::domain::devices::messages::{CapturePhoto, PunchInput};
    let body = json!({"checkin_data": [
        {"userid": "a", "timestamp": 1_763_900_000, "capture_photo": "AAEC"},
        {"userid": "a", "timestamp": 1_763_900_001, "capture_photo": "not base64"},
        {"userid": "a", "timestamp": 1_763_900_002, "capture_photo": 5},
        {"userid": "a", "timestamp": 1_763_900_003, "capture_photo": ""},
        {"userid": "a", "timestamp": 1_763_900_004, "capture_photo": null},
        {"userid": "a", "timestamp": 1_763_900_005},
    ]});
    let photos: Vec<Option<CapturePhoto>> = read::checkin(&body)
        .unwrap()
        .into_iter()
        .map(|p| match p {
            PunchInput::Read(p) => p.photo,
            PunchInput::Unreadable(r) => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(photos[0], Some(CapturePhoto::Bytes(vec![0, 1, 2])));
    assert!(matches!(&photos[1], Some(CapturePhoto::Unreadable(w)) if w.contains("base64")));
    assert!(matches!(&photos[2], Some(CapturePhoto::Unreadable(w)) if w.contains("string")));
    assert_eq!(photos[3..], [None, None, None]);
}

#[test]
fn a_full_disk_is_system_busy_for_a_terminal() {
    let (code, msg) = device_code(&Error::disk_full());
    assert_eq!(code, -1);
    assert!(msg.starts_with("system busy: storage full"), "{msg}");
}
