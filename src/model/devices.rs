//! Terminals and what they hold: stored devices, the tenant's address-book
//! changes they sync from, templates, enrolments and punch records.

use serde::{Deserialize, Serialize};

/// A template's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    Face,
    Fingerprint,
}

impl Modality {
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Face => "fa",
            Modality::Fingerprint => "fp",
        }
    }

    /// Slots per person: `fa_list` ids 0–11, `fp` ids 0–9.
    pub fn slots(self) -> i64 {
        match self {
            Modality::Face => 12,
            Modality::Fingerprint => 10,
        }
    }
}

/// A person as the device protocol names them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceUser {
    pub userid: String,
    pub user_type: i64,
}

impl DeviceUser {
    /// A user a device named: `userid` 1 to 128 bytes, `user_type` 0, 1 or
    /// 2 (`None`: the device sent something that is not a number).
    pub fn checked(userid: &str, user_type: Option<i64>) -> Result<DeviceUser, String> {
        if userid.is_empty() || userid.len() > 128 {
            return Err("userid must be 1 to 128 bytes".into());
        }
        match user_type {
            Some(user_type @ 0..=2) => Ok(DeviceUser {
                userid: userid.to_string(),
                user_type,
            }),
            _ => Err("user_type must be 0, 1 or 2".into()),
        }
    }
}

impl Change {
    /// Nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.create_user.is_empty()
            && self.update_user.is_empty()
            && self.delete_user.is_empty()
            && self.access.iter().all(super::AccessDelta::is_empty)
    }

    /// The part of the change about visitors (user_type 1), or about
    /// everyone else: each travels in its own list.
    pub fn part(&self, visitors: bool) -> Change {
        let keep = |users: &[DeviceUser]| -> Vec<DeviceUser> {
            users
                .iter()
                .filter(|u| (u.user_type == 1) == visitors)
                .cloned()
                .collect()
        };
        let access: Vec<super::AccessDelta> = self
            .access
            .iter()
            .map(|d| super::AccessDelta {
                sns: d.sns.clone(),
                create_user: keep(&d.create_user),
                update_user: keep(&d.update_user),
                delete_user: keep(&d.delete_user),
            })
            .filter(|d| !d.is_empty())
            .collect();
        Change {
            create_user: keep(&self.create_user),
            update_user: keep(&self.update_user),
            delete_user: keep(&self.delete_user),
            access,
        }
    }
}

/// The two lists a terminal is sent, each with its own version: staff
/// (`perm_version`) and visitors (`visitor_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    People,
    Visitors,
}

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::People, Stream::Visitors];
}

/// How far a terminal was sent each list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub people: i64,
    pub visitors: i64,
}

impl Seen {
    pub fn get(&self, stream: Stream) -> i64 {
        match stream {
            Stream::People => self.people,
            Stream::Visitors => self.visitors,
        }
    }

    pub fn set(&mut self, stream: Stream, version: i64) {
        match stream {
            Stream::People => self.people = version,
            Stream::Visitors => self.visitors = version,
        }
    }

    /// The later of each.
    pub fn max(self, other: Seen) -> Seen {
        Seen {
            people: self.people.max(other.people),
            visitors: self.visitors.max(other.visitors),
        }
    }
}

/// One version of a tenant's address book (or of its visitor list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub create_user: Vec<DeviceUser>,
    #[serde(default)]
    pub update_user: Vec<DeviceUser>,
    #[serde(default)]
    pub delete_user: Vec<DeviceUser>,
    /// An access change: what each group of terminals gains and loses
    /// (the lists above are then empty; a terminal in no group is sent
    /// the version alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<super::AccessDelta>,
}

/// A stored device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRow {
    pub sn: String,
    pub tenant_id: i64,
    pub sealed_secret_no: Vec<u8>,
    pub sealed_secret: Option<Vec<u8>>,
    pub bound: bool,
    pub firmware_version: Option<String>,
    pub fa_algorithms: Vec<String>,
    pub fp_algorithms: Vec<String>,
    pub seen_version: i64,
    pub seen_visitor_version: i64,
    pub last_seen: Option<i64>,
    /// Until when the device counts as logged in on some node (a lease
    /// that node renews while the connection lives).
    pub online_until: Option<i64>,
    /// The timestamp of the last accepted `register` (within
    /// the register window of the server's clock): when the current
    /// active code was issued.
    pub register_ts: Option<i64>,
    pub created_at: i64,
    /// What its address book is made of (see [`super::BookKey`]).
    pub book: super::BookKey,
    pub protocol: Protocol,
    /// ZKTeco: the UTC offset its clock is set to, in minutes.
    pub utc_offset_min: i64,
    /// ZKTeco: the client networks it may call from (CIDRs; empty: any).
    pub allow_from: Vec<String>,
    /// ZKTeco: what it last said of itself (`INFO`, the init's options).
    pub push_info: Option<PushInfo>,
    /// ZKTeco: its address book's commands in flight.
    pub zk_queue: ZkQueue,
    /// ZKTeco: +1 at every write of `zk_queue`.
    pub zk_queue_rev: i64,
    /// ZKTeco: the next command id (never reused).
    pub zk_next_id: i64,
}

/// The device protocol a terminal speaks. A terminal is added for one and
/// is refused on the other's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// WeCom's device protocol (one WebSocket per terminal).
    WeCom,
    /// ZKTeco's PUSH/ADMS protocol (`/iclock/*`, the terminal polls).
    ZkTeco,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::WeCom => "wecom",
            Protocol::ZkTeco => "zkteco",
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        match s {
            "wecom" => Some(Protocol::WeCom),
            "zkteco" => Some(Protocol::ZkTeco),
            _ => None,
        }
    }
}

/// What a ZKTeco terminal reports of itself: its `getrequest` `INFO`
/// (firmware, counts, address, algorithm versions), its init's `pushver`
/// and its last upload's `Stamp`. Every field is as sent, bounded in length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_version: Option<String>,
    /// `DeviceType` (its init or registry): `acc` for an access-control
    /// terminal of the PUSH 3.x "security" dialect, `att` for attendance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub punches: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faces: Option<i64>,
    /// The `Stamp` of its last punch upload, sent back in its next init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attlog_stamp: Option<String>,
    /// The `Stamp` of its last operation-log (templates) upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operlog_stamp: Option<String>,
    /// The `Stamp` of its last unified-template (`BIODATA`) upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biodata_stamp: Option<String>,
    /// `MultiBioDataSupport` (its `table=options` report): which biometric
    /// types it keeps templates of, a flag per type, colon-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_bio_data: Option<String>,
    /// `MultiBioVersion`: the algorithm version of each type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_bio_version: Option<String>,
    /// `MultiBioPhotoSupport`: of which types it makes its own templates
    /// from a photo (`DATA UPDATE BIOPHOTO`), a flag per type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_bio_photo: Option<String>,
    /// The algorithms of the templates it uploaded (it reads what it writes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub written: Vec<String>,
}

/// Where a ZKTeco terminal's address book stands: the batch of commands
/// it was last sent and has not all confirmed, and where the next batch
/// starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkQueue {
    /// Ids of the last batch's commands not yet confirmed.
    #[serde(default)]
    pub outstanding: Vec<i64>,
    /// When that batch was sent.
    #[serde(default)]
    pub sent_at: i64,
    /// A command of the batch failed in a way a retry may mend: the batch
    /// is made and sent again.
    #[serde(default)]
    pub retry: bool,
    /// How often this batch has been sent; given up after a few.
    #[serde(default)]
    pub tries: u32,
    /// The version the terminal holds once the batch is confirmed.
    #[serde(default)]
    pub upto: i64,
    /// Versions too large for one batch (too many people, or templates
    /// over the reply's size), sent in parts (their people in PIN order): the PIN the batch's part starts after (`None`: from the
    /// first), kept while the part is in flight so that it can be sent
    /// again as it was…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_after: Option<String>,
    /// …and the last PIN of that part: where the next part starts once
    /// this one is confirmed (`None`: the batch is no part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_end: Option<String>,
    /// The version the parts bring the terminal to: every part is of the
    /// same versions, so a part cannot skip what an earlier one left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_upto: Option<i64>,
    /// A full sync in progress (a new or re-bound terminal, or one whose
    /// template algorithms changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<FullSync>,
    /// The template algorithms the terminal read when its book was sent:
    /// when they change, the book is sent anew.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
}

/// A full sync: the whole book, page by page in person-id order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FullSync {
    /// The tenant's version when it began: the terminal holds it at the end.
    pub from_version: i64,
    /// The person id the batch's page starts after.
    pub after: i64,
    /// The id of the last person the page read: where the next starts.
    pub end: i64,
    /// Whether that page is the last.
    pub last: bool,
    /// Whether each person's templates are cleared before theirs are put
    /// (a terminal that held a book before: what it holds may be stale).
    #[serde(default)]
    pub clear: bool,
}

/// How a ZKTeco terminal is added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZkSettings {
    /// The UTC offset its clock is set to, in minutes (−720 to 840).
    pub utc_offset_min: i64,
    /// The client networks it may call from (CIDRs; empty: any).
    pub allow_from: Vec<String>,
}

/// A serial number that called a device endpoint before it was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDevice {
    pub sn: String,
    pub protocol: Protocol,
    pub address: String,
    pub first_seen: i64,
    /// Written at most once a minute per serial number.
    pub last_seen: i64,
}

/// Which hashed credential a device is looked up by.
#[derive(Debug, Clone, Copy)]
pub enum DeviceKey {
    ActiveCode,
    Secret,
}

/// One slot write of an upload: `sealed` is `(ciphertext, digest)`, or
/// `None` to delete the slot.
#[derive(Debug, Clone)]
pub struct TemplateWrite {
    pub modality: Modality,
    pub algorithm: String,
    pub slot: i64,
    pub sealed: Option<(Vec<u8>, String)>,
}

/// The writes of one person in one upload.
#[derive(Debug, Clone)]
pub struct PersonTemplates {
    pub person_id: i64,
    pub user: DeviceUser,
    pub writes: Vec<TemplateWrite>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredTemplate {
    pub person_id: i64,
    pub algorithm: String,
    pub slot: i64,
    #[sqlx(rename = "data")]
    pub sealed: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinRecord {
    pub timestamp: i64,
    /// 1 in, 2 out, 3 unknown.
    pub pass_type: Option<i64>,
    /// 1 face, 2 QR, 3 remote, 4 fingerprint, 5 and 6 QR variants.
    pub pass_method: Option<i64>,
}

/// An enrolment and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub oper_id: String,
    pub tenant_id: i64,
    pub person_id: i64,
    pub sn: String,
    /// `fa` / `fp` (capture on the device) or `photo` (from a stored photo).
    pub kind: String,
    /// For `photo`: `kind:file_id` of each photo offered.
    pub file_ids: Vec<String>,
    /// queued → sent → succeeded | failed | timed_out | cancelled
    pub status: String,
    pub errcode: Option<i64>,
    pub errmsg: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

impl Enrolment {
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "sent")
    }
}
