//! Punch records (`checkin`): stored per person, listed per day.

use serde_json::{Value, json};

use super::sync::{MAX_USERS, int_field};
use super::{CheckinRecord, DeviceUser, Session};
use crate::domain::Core;
use crate::model::error::{Error, Result};

/// Records before 2018-01-01 are dropped without failing, as the platform
/// does (a device with an unset clock).
pub const EARLIEST: i64 = 1_514_764_800;

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
        // Judge each record first, then look the people up in one query.
        let mut fail = Vec::new();
        let mut valid: Vec<(usize, DeviceUser, CheckinRecord)> = Vec::new();
        for (i, item) in data.iter().enumerate() {
            let userid = item
                .get("userid")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let user_type = item.get("user_type").map_or(Some(0), int_field);
            let timestamp = item.get("timestamp").and_then(int_field);
            let fail_item = json!({"userid": userid, "user_type": user_type.unwrap_or(0),
                                   "timestamp": timestamp.unwrap_or(0)});
            let (Some(user_type @ 0..=2), Some(timestamp)) = (user_type, timestamp) else {
                fail.push((i, fail_item));
                continue;
            };
            let (Ok(pass_type), Ok(pass_method)) = (
                optional(item, "pass_type", 1..=3),
                optional(item, "pass_method", 1..=6),
            ) else {
                fail.push((i, fail_item));
                continue;
            };
            if timestamp < EARLIEST {
                continue;
            }
            if userid.is_empty() || userid.len() > 128 {
                fail.push((i, fail_item));
                continue;
            }
            let user = DeviceUser {
                userid: userid.to_string(),
                user_type,
            };
            valid.push((
                i,
                user,
                CheckinRecord {
                    timestamp,
                    pass_type,
                    pass_method,
                },
            ));
        }
        let wanted: Vec<DeviceUser> = valid.iter().map(|v| v.1.clone()).collect();
        let people = self
            .db
            .people_by_device_ids(session.tenant_id, &wanted)
            .await?;
        let mut keep = Vec::new();
        for (i, user, record) in valid {
            match people.get(&user) {
                Some(p) => keep.push((p.id, record)),
                None => fail.push((
                    i,
                    json!({"userid": user.userid, "user_type": user.user_type, "timestamp": record.timestamp}),
                )),
            }
        }
        // fail_list in request order.
        fail.sort_by_key(|f| f.0);
        let fail: Vec<Value> = fail.into_iter().map(|f| f.1).collect();
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
