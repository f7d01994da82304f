//! What terminals and the core say to each other, whatever the protocol.
//!
//! A protocol surface (`api::wecom`) reads its frames into these values,
//! calls the core, and writes what comes back into its frames; the core
//! never sees a protocol's field names or encodings. What is still raw in
//! a request (a slot the device sent unreadably, say) is carried as such,
//! so the core judges an item's faults in the order the device sent them
//! and reports the first, whichever layer found it.

use super::{Change, DeviceUser};
use crate::model::Stream;

/// Which modalities a pull asks for (by default, none: the people alone).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wanted {
    pub faces: bool,
    pub fingerprints: bool,
}

/// One person as a device receives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// facehub's id of the person (not on any wire).
    pub person_id: i64,
    pub user: DeviceUser,
    pub name: String,
    pub fa_ver: i64,
    pub fp_ver: i64,
    /// `None` when the pull did not ask for faces.
    pub faces: Option<TemplateSet>,
    pub fingerprints: Option<TemplateSet>,
    /// When the person may pass at this terminal: `None` on a terminal
    /// bound to no rule (the whole tenant, at all hours).
    pub pass_rules: Option<Vec<PassRule>>,
}

/// One weekly window of a rule, as a terminal enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassRule {
    /// The rule's number.
    pub id: i64,
    /// `"9:00-18:00 * * 1,2,3,4,5 *"`: times, then day of month, month,
    /// weekday (0 Sunday) and year as in cron.
    pub rule: String,
    /// When the rule starts (Unix seconds; 0 when it always held).
    pub effect_time: i64,
}

/// A person's templates of one modality, as a device may receive them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSet {
    /// The first of the device's algorithms the person has templates of;
    /// `None` (and no slots) when there is none.
    pub algorithm: Option<String>,
    /// `(slot, template)`, in slot order.
    pub slots: Vec<(i64, Vec<u8>)>,
}

/// One page of the full pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub is_last: bool,
    /// Which list, and its version when the page was read.
    pub list: Stream,
    pub version: i64,
    pub users: Vec<UserInfo>,
    /// The id of the last person the page read (before the book's
    /// filtering): where a page by id continues.
    pub last_id: Option<i64>,
}

/// Which of the users a device asked about are people of its tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserCheck {
    pub legal: Vec<DeviceUser>,
    pub illegal: Vec<DeviceUser>,
}

/// A template upload: users, each judged alone, and the enrolment it
/// answers, if any.
#[derive(Debug, Default)]
pub struct Upload {
    /// In the order sent; the items the protocol could not read are kept
    /// (as the user they name, as well as it can, and why) so that they
    /// are reported in that order.
    pub users: Vec<Result<UserUpload, UserFault>>,
    pub answer: Option<EnrolmentAnswer>,
}

/// A user of an upload that fails: named as well as the item allows, and
/// why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFault {
    pub user: DeviceUser,
    pub why: String,
}

/// One user of an upload as the device sent it; the core judges its slots
/// and algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserUpload {
    pub user: DeviceUser,
    pub faces: Option<TemplateList>,
    pub fingerprints: Option<TemplateList>,
    /// Whether the device says it sent faces / fingerprints of this user
    /// (each protocol's reading): what an enrolment answered by the upload
    /// needs to succeed.
    pub sent_faces: bool,
    pub sent_fingerprints: bool,
}

/// The templates of one modality in an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateList {
    /// How the protocol names the list and its algorithm, for the reasons
    /// a failing user is given.
    pub field: &'static str,
    pub algorithm_field: &'static str,
    /// The algorithm as sent (`None`, empty or `default`: the default).
    pub algorithm: Option<String>,
    /// The slots, or why the list could not be read.
    pub slots: Result<Vec<SlotInput>, String>,
}

/// One slot of an uploaded list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInput {
    /// `None` when the id the device sent is not an integer.
    pub id: Option<i64>,
    pub data: SlotData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotData {
    /// No data: the slot is left as it is.
    Unchanged,
    /// Empty data: the slot is deleted.
    Delete,
    Template(Vec<u8>),
    /// Data the protocol could not decode, and why.
    Unreadable(String),
}

/// What the device reports of the enrolment an upload answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentAnswer {
    pub oper_id: String,
    /// 0 is success.
    pub errcode: i64,
    pub errmsg: String,
}

/// One punch as the device reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PunchInput {
    Read(Punch),
    /// A record whose numbers could not be read: it fails as named.
    Unreadable(PunchRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Punch {
    /// Not yet validated (the core checks it after the record's age).
    pub userid: String,
    pub user_type: i64,
    pub timestamp: i64,
    pub pass_type: Option<i64>,
    pub pass_method: Option<i64>,
    /// The capture photo the terminal attached, if any.
    pub photo: Option<CapturePhoto>,
}

/// A punch's capture photo as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapturePhoto {
    Bytes(Vec<u8>),
    /// Not decodable; why.
    Unreadable(String),
}

/// A punch as it is named in a failure list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PunchRef {
    pub userid: String,
    pub user_type: i64,
    pub timestamp: i64,
}

/// What the core pushes to a connected device; each protocol encodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    /// An admin bound the device (it waits to activate).
    Bound,
    /// An admin unbound the device; its connection closes next.
    Unbound,
    /// The tenant's address book (or visitor list) reached `version` by
    /// `change`.
    Change {
        list: Stream,
        version: i64,
        change: Change,
        at: i64,
    },
    /// Open the capture page of an enrolment.
    EnterPage(EnrolPage),
    /// Close it (the enrolment was cancelled).
    ExitPage(EnrolPage),
    /// Enrol from these stored photos, fetched by `media_id`.
    UserFace {
        oper_id: String,
        user: DeviceUser,
        photos: Vec<OfferedPhoto>,
    },
}

/// An on-device capture enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolPage {
    /// `fa` or `fp`.
    pub kind: String,
    pub oper_id: String,
    pub user: DeviceUser,
}

/// A stored photo offered to a device for enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedPhoto {
    /// Its position in the offer.
    pub id: usize,
    pub size: i64,
    pub media_id: String,
    pub media_type: String,
}
