//! Punch records: stored per person, listed per day.

use super::messages::{PunchInput, PunchRef};
use super::sync::MAX_USERS;
use super::{CheckinRecord, DeviceUser, Session};
use crate::domain::Core;
use crate::model::error::{Error, Result};
use crate::store::flows::Punch;

/// Records before 2018-01-01 are dropped without failing, as the platform
/// does (a device with an unset clock).
pub const EARLIEST: i64 = 1_514_764_800;

impl Core {
    /// Stores the punches of known people; returns the failed ones, in the
    /// order sent. A punch fails when it is unreadable, its `user_type` is
    /// not 0–2, its pass type not 1–3 or pass method not 1–6, or (unless it
    /// is too old to keep) its userid is not 1–128 bytes of a known person.
    pub async fn checkin(
        &self,
        session: &Session,
        punches: Vec<PunchInput>,
    ) -> Result<Vec<PunchRef>> {
        if punches.len() > MAX_USERS {
            return Err(Error::param(format!(
                "checkin_data holds {} records, at most {MAX_USERS}",
                punches.len()
            )));
        }
        // Judge each record first, then look the people up in one query.
        let mut fail = Vec::new();
        let mut valid: Vec<(usize, DeviceUser, CheckinRecord)> = Vec::new();
        for (i, punch) in punches.into_iter().enumerate() {
            let p = match punch {
                PunchInput::Read(p) => p,
                PunchInput::Unreadable(named) => {
                    fail.push((i, named));
                    continue;
                }
            };
            let named = PunchRef {
                userid: p.userid.clone(),
                user_type: p.user_type,
                timestamp: p.timestamp,
            };
            let in_range =
                |v: Option<i64>, r: std::ops::RangeInclusive<i64>| v.is_none_or(|v| r.contains(&v));
            if !(0..=2).contains(&p.user_type)
                || !in_range(p.pass_type, 1..=3)
                || !in_range(p.pass_method, 1..=6)
            {
                fail.push((i, named));
                continue;
            }
            if p.timestamp < EARLIEST {
                continue;
            }
            if p.userid.is_empty() || p.userid.len() > 128 {
                fail.push((i, named));
                continue;
            }
            let user = DeviceUser {
                userid: p.userid,
                user_type: p.user_type,
            };
            valid.push((
                i,
                user,
                CheckinRecord {
                    timestamp: p.timestamp,
                    pass_type: p.pass_type,
                    pass_method: p.pass_method,
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
                Some(p) => keep.push(Punch {
                    person_id: p.id,
                    user_id: p.user_id.clone(),
                    record,
                }),
                None => fail.push((
                    i,
                    PunchRef {
                        userid: user.userid,
                        user_type: user.user_type,
                        timestamp: record.timestamp,
                    },
                )),
            }
        }
        // Failures in request order.
        fail.sort_by_key(|f| f.0);
        let fail: Vec<PunchRef> = fail.into_iter().map(|f| f.1).collect();
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
        let person = self.known_person(tenant_id, user_id).await?;
        Ok(self.db.checkins(person.id, start, start + 86_400).await?)
    }
}
