//! Punch records: stored per person, listed per day; a door pass's
//! capture photo goes through the validation core first.

use std::sync::Arc;

use bytes::Bytes;

use super::messages::{CapturePhoto, PunchInput, PunchRef};
use super::sync::MAX_USERS;
use super::{CheckinRecord, DeviceUser, Session};
use crate::domain::Core;
use crate::domain::audit::AuditEvent;
use crate::domain::files::{FileKind, Filing};
use crate::domain::group_commit::GroupCommit;
use crate::model::error::{Error, Result};
use crate::store::Db;
use crate::store::flows::{Punch, PunchFrame};

/// Records before 2018-01-01 are dropped without failing, as the platform
/// does (a device with an unset clock).
pub const EARLIEST: i64 = 1_514_764_800;

/// Punches in one transaction at most.
const MAX_GROUP: usize = 10_000;

/// The writer of terminals' punches: frames that arrive while one
/// transaction commits share the next (one fsync for all of them, not one
/// each).
pub(crate) fn punch_writer(db: Db) -> GroupCommit<PunchFrame, Vec<String>> {
    GroupCommit::start(
        "punch records",
        |f: &PunchFrame| f.punches.len(),
        MAX_GROUP,
        move |frames: Vec<PunchFrame>| {
            let db = db.clone();
            async move { db.insert_checkins(&frames).await }
        },
    )
}

/// What a `checkin` frame came to.
#[derive(Debug, Default)]
pub struct CheckinOutcome {
    /// Records not stored, in the order sent: the terminal sends them again.
    pub fail_list: Vec<PunchRef>,
    /// Records stored without the capture photo they carried, with why:
    /// sending the photo again would not change the answer.
    pub photo_fail_list: Vec<(PunchRef, String)>,
}

/// What storing a frame's capture photos did: (the punches whose photo
/// was refused, with why; the punches left for the terminal's next frame,
/// by their place in this one).
type CaptureOutcome = (Vec<(PunchRef, String)>, Vec<(usize, PunchRef)>);

impl Core {
    /// Stores the punches of known people; returns the failed ones, in the
    /// order sent. A punch fails when it is unreadable, its `user_type` is
    /// not 0–2, its pass type not 1–3 or pass method not 1–6, or (unless it
    /// is too old to keep) its userid is not 1–128 bytes of a known person.
    /// A capture photo is stored (sealed, audited) only with a new record;
    /// one the validation core refuses leaves the record without it.
    pub async fn checkin(
        self: &Arc<Self>,
        session: &Session,
        punches: Vec<PunchInput>,
    ) -> Result<CheckinOutcome> {
        if punches.len() > MAX_USERS {
            return Err(Error::param(format!(
                "checkin_data holds {} records, at most {MAX_USERS}",
                punches.len()
            )));
        }
        // Judge each record first, then look the people up in one query.
        let mut fail = Vec::new();
        let mut valid: Vec<(usize, DeviceUser, CheckinRecord, Option<CapturePhoto>)> = Vec::new();
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
                p.photo,
            ));
        }
        let wanted: Vec<DeviceUser> = valid.iter().map(|v| v.1.clone()).collect();
        let people = self
            .db
            .people_by_device_ids(session.tenant_id, &wanted)
            .await?;
        let mut keep = Vec::new();
        let mut photos = Vec::new();
        for (i, user, record, photo) in valid {
            match people.get(&user) {
                Some(p) => {
                    let named = PunchRef {
                        userid: user.userid.clone(),
                        user_type: user.user_type,
                        timestamp: record.timestamp,
                    };
                    keep.push(Punch {
                        person_id: p.id,
                        user_id: p.user_id.clone(),
                        record,
                        photo_file_id: None,
                    });
                    photos.push((i, named, photo));
                }
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
        let (photo_fail_list, deferred) = self.store_captures(session, &mut keep, photos).await?;
        fail.extend(deferred);
        // Failures in request order.
        fail.sort_by_key(|f| f.0);
        let fail_list: Vec<PunchRef> = fail.into_iter().map(|f| f.1).collect();
        let frame = PunchFrame {
            tenant_id: session.tenant_id,
            sn: session.sn.clone(),
            punches: keep,
            now: self.now(),
        };
        let photos: Vec<String> = frame
            .punches
            .iter()
            .filter_map(|p| p.photo_file_id.clone())
            .collect();
        let unlinked = if frame.punches.is_empty() {
            Vec::new()
        } else {
            match self.punch_writer.submit(frame).await {
                Ok(unlinked) => unlinked,
                Err(e) => {
                    // The terminal sends the frame again, photos and all.
                    self.discard_captures(session, &photos).await;
                    return Err(e);
                }
            }
        };
        // Another frame stored the same records meanwhile (their photos
        // stay theirs), or their person was erased since.
        self.discard_captures(session, &unlinked).await;
        Ok(CheckinOutcome {
            fail_list,
            photo_fail_list,
        })
    }

    /// Stores the capture photos of the punches that are new (a re-sent
    /// frame's records already have theirs) and names them in `keep`, up
    /// to the frame's budget of photo bytes; returns the punches whose
    /// photo was refused, with why, and those (by their place in the frame)
    /// taken out of `keep` because the budget was spent: they fail, and
    /// come again with the terminal's next frame.
    async fn store_captures(
        self: &Arc<Self>,
        session: &Session,
        keep: &mut Vec<Punch>,
        photos: Vec<(usize, PunchRef, Option<CapturePhoto>)>,
    ) -> Result<CaptureOutcome> {
        if photos.iter().all(|p| p.2.is_none()) {
            return Ok(Default::default());
        }
        let rules = self.attendance_rules();
        let budget = (self.config.device.capture_mib_per_frame << 20).max(rules.max_bytes as usize);
        let mut spent = 0;
        let mut deferred = Vec::new();
        let keys: Vec<String> = keep
            .iter()
            .map(|p| Punch::idempotent_id(&session.sn, p.record.timestamp, &p.user_id))
            .collect();
        let taken = self
            .db
            .idempotent_ids_taken(session.tenant_id, &keys)
            .await?;
        let mut refused = Vec::new();
        for ((i, (at, named, photo)), key) in photos.into_iter().enumerate().zip(&keys) {
            let Some(photo) = photo else { continue };
            if taken.contains(key) {
                continue;
            }
            if let CapturePhoto::Bytes(b) = &photo {
                if spent + b.len() > budget {
                    deferred.push((i, (at, named)));
                    continue;
                }
                spent += b.len();
            }
            if keep[i].record.pass_type.is_none() {
                // Only door records have photos to read (access_records).
                let why = "capture_photo is kept only with a door record (pass_type 1 to 3)";
                refused.push((named, why.to_string()));
                continue;
            }
            let bytes = match photo {
                CapturePhoto::Bytes(b) => b,
                CapturePhoto::Unreadable(why) => {
                    refused.push((named, why));
                    continue;
                }
            };
            match self.store_capture(session, &keep[i].user_id, bytes).await {
                Ok(id) => keep[i].photo_file_id = Some(id),
                Err(Error::InvalidParam(why)) => refused.push((named, why)),
                Err(e) => {
                    // Not acknowledged: the frame comes again, photos and
                    // all; those stored so far go.
                    let stored: Vec<String> = keep
                        .iter_mut()
                        .filter_map(|p| p.photo_file_id.take())
                        .collect();
                    self.discard_captures(session, &stored).await;
                    return Err(e);
                }
            }
        }
        // Last first, so the places of the others hold.
        let mut later = Vec::with_capacity(deferred.len());
        for (i, failed) in deferred.into_iter().rev() {
            keep.remove(i);
            later.push(failed);
        }
        Ok((refused, later))
    }

    /// Deletes capture photos no record will name, each deletion audited;
    /// a failure is logged and leaves the photo to the retention pass.
    async fn discard_captures(&self, session: &Session, ids: &[String]) {
        for id in ids {
            let outcome = async {
                self.db.delete_file(id).await?;
                self.drop_blob(id).await
            }
            .await;
            let mut event =
                AuditEvent::by_device(session.tenant_id, &session.sn, "access_photo.delete")
                    .object(id.as_str());
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "deleting a capture photo without its record");
                event.result = "internal".into();
            }
            if let Err(e) = self.audit.record(vec![event]).await {
                tracing::warn!(error = %e, "auditing a capture photo's deletion");
            }
        }
    }

    /// One capture photo through the validation core (the attendance
    /// photos' rules), sealed; its upload, or its refusal, is audited.
    async fn store_capture(
        self: &Arc<Self>,
        session: &Session,
        user_id: &str,
        bytes: Vec<u8>,
    ) -> Result<String> {
        let event = |result: String| {
            let mut e =
                AuditEvent::by_device(session.tenant_id, &session.sn, "access_photo.upload")
                    .subject(Some(user_id));
            e.result = result;
            e
        };
        let stored = event("ok".into());
        let outcome = async {
            let body = futures_util::stream::once(async move { Ok(Bytes::from(bytes)) });
            let staged = self.receive_image(self.attendance_rules(), body).await?;
            let name = format!("capture.{}", staged.format().extensions()[0]);
            let filing =
                Filing::new(session.tenant_id, FileKind::AccessPhoto, &name).audited(stored);
            self.commit_image(staged, filing, ()).await
        }
        .await;
        let refused = event(crate::domain::audit::result_of(&outcome));
        let record = self.audited_if_failed(refused, outcome).await?;
        Ok(record.file_id)
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
