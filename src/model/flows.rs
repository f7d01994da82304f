//! Attendance punch records ("user flows", as the platform calls them):
//! punches terminals report and records other systems create over the API.

use serde::{Deserialize, Serialize};

/// The `check_result` values the platform names.
pub const CHECK_RESULTS: &[&str] = &[
    "NoNeedCheck",
    "SystemCheck",
    "Normal",
    "Early",
    "Late",
    "SeriousLate",
    "Lack",
    "Invalid",
    "None",
    "Todo",
];

/// A punch record.
#[derive(Debug, Clone, PartialEq)]
pub struct UserFlow {
    /// A decimal number, unique in the deployment.
    pub record_id: String,
    pub tenant_id: i64,
    pub person_id: i64,
    /// Unix seconds.
    pub check_time: i64,
    pub creator_id: String,
    pub location_name: String,
    pub comment: String,
    /// Makes a repeated create (or a re-sent terminal frame) a no-op; unique
    /// per tenant.
    pub idempotent_id: Option<String>,
    /// The terminal that recorded it.
    pub sn: Option<String>,
    /// The terminal's pass type (1 in, 2 out, 3 unknown) and method
    /// (1 face, 2 QR, 3 remote, 4 fingerprint, 5 and 6 QR variants).
    pub pass_type: Option<i64>,
    pub pass_method: Option<i64>,
    /// The terminal's capture photo of the pass (a file of kind
    /// `access_photo`).
    pub photo_file_id: Option<String>,
    pub extras: FlowExtras,
    /// Unix seconds.
    pub created_at: i64,
}

/// The optional fields of a record created over the API, kept as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowExtras {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bssid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_field: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_wifi: Option<bool>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photo_urls: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}
