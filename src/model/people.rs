//! People of a tenant and what hangs off them directly.

use super::ids::{UserId, UserType};

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: String,
    pub union_id: String,
    pub name: String,
    pub employee_no: Option<String>,
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// WeCom's user_type: who the person is on the device protocol.
    pub user_type: UserType,
    /// Per-person template counters devices compare.
    pub fa_ver: i64,
    pub fp_ver: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which of a tenant's ids a person is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonKey {
    UserId,
    EmployeeNo,
    UnionId,
}

/// A validated person to create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonDraft {
    pub user_id: UserId,
    pub name: String,
    pub employee_no: Option<String>,
    pub extra: serde_json::Value,
    /// `None` keeps an existing person's type (a new one is an employee).
    pub user_type: Option<UserType>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceSetting {
    pub face_key: String,
    pub face_key_open: bool,
    pub face_key_update_time: i64,
}
