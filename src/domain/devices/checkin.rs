//! Punch records (`checkin`): stored per person, listed per day.

use serde_json::{Value, json};

use super::Session;
use super::sync::{MAX_USERS, int_field};
use crate::domain::Core;
use crate::error::{Error, Result};

/// Records before 2018-01-01 are dropped without failing, as the platform
/// does (a device with an unset clock).
pub const EARLIEST: i64 = 1_514_764_800;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckinRecord {
    pub timestamp: i64,
    /// 1 in, 2 out, 3 unknown.
    pub pass_type: Option<i64>,
    /// 1 face, 2 QR, 3 remote, 4 fingerprint, 5 and 6 QR variants.
    pub pass_method: Option<i64>,
}

fn optional(
    item: &Value,
    field: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, ()> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => int_field(v)
            .filter(|n| range.contains(n))
            .map(Some)
            .ok_or(()),
    }
}

impl Core {
    /// `checkin`: stores the records of known people; returns `fail_list`.
    pub async fn checkin(&self, session: &Session, data: &[Value]) -> Result<Vec<Value>> {
        if data.len() > MAX_USERS {
            return Err(Error::param(format!(
                "checkin_data holds {} records, at most {MAX_USERS}",
                data.len()
            )));
        }
        let mut fail = Vec::new();
        let mut keep = Vec::new();
        for item in data {
            let userid = item
                .get("userid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let user_type = item.get("user_type").map_or(Some(0), int_field);
            let timestamp = item.get("timestamp").and_then(int_field);
            let fail_item = || json!({"userid": userid, "user_type": user_type.unwrap_or(0), "timestamp": timestamp.unwrap_or(0)});
            let (Some(user_type @ 0..=2), Some(timestamp)) = (user_type, timestamp) else {
                fail.push(fail_item());
                continue;
            };
            let (Ok(pass_type), Ok(pass_method)) = (
                optional(item, "pass_type", 1..=3),
                optional(item, "pass_method", 1..=6),
            ) else {
                fail.push(fail_item());
                continue;
            };
            if timestamp < EARLIEST {
                continue;
            }
            if userid.is_empty() || userid.len() > 128 {
                fail.push(fail_item());
                continue;
            }
            match self
                .db
                .person_by_device_id(session.tenant_id, userid, user_type)
                .await?
            {
                Some(p) => keep.push((
                    p.id,
                    CheckinRecord {
                        timestamp,
                        pass_type,
                        pass_method,
                    },
                )),
                None => fail.push(fail_item()),
            }
        }
        self.db
            .insert_checkins(session.tenant_id, &session.sn, &keep, self.now())
            .await?;
        Ok(fail)
    }

    /// A person's punch records on a UTC day (`YYYY-MM-DD`): (sn, record).
    pub async fn checkins_on(
        &self,
        tenant_id: i64,
        user_id: &str,
        day: &str,
    ) -> Result<Vec<(String, CheckinRecord)>> {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| Error::param(format!("day {day:?} is not YYYY-MM-DD")))?;
        let start = date
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp();
        let person = self
            .db
            .person_by_user_id(tenant_id, user_id)
            .await?
            .ok_or_else(|| Error::UserNotFound(user_id.to_string()))?;
        Ok(self.db.checkins(person.id, start, start + 86_400).await?)
    }
}
