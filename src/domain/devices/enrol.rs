//! Enrolments started from the admin side: on-device capture
//! ([`Push::EnterPage`]) and photo-to-device ([`Push::UserFace`], then
//! [`Core::download_photo`]). Each has an `oper_id`; the device's upload
//! answering it is the outcome.

use super::messages::{EnrolPage, EnrolmentAnswer, OfferedPhoto, Push};
use super::upload::UploadOutcome;
use super::{DeviceUser, Enrolment, Session, codes};
use crate::domain::files::FileKind;
use crate::domain::{Core, FileId, Person};
use crate::model::error::{Error, Result};

/// Open enrolments a device may have at once.
pub const MAX_OPEN_PER_DEVICE: i64 = 32;

/// The photo kinds a person's face can come from, in the order offered.
const PHOTO_KINDS: [FileKind; 2] = [FileKind::AttendancePhoto, FileKind::AcsFace];

fn file_kind(s: &str) -> Option<FileKind> {
    PHOTO_KINDS.into_iter().find(|k| k.as_str() == s)
}

impl Core {
    /// Starts an enrolment of `user_id` on device `sn`: `kind` is `fa` or
    /// `fp` (the device opens its capture page) or `photo` (the device is
    /// sent the person's stored face photos). The push goes out as soon as
    /// the device is online.
    pub async fn start_enrolment(
        &self,
        tenant_id: i64,
        sn: &str,
        user_id: &str,
        kind: &str,
    ) -> Result<Enrolment> {
        let person = self.known_person(tenant_id, user_id).await?;
        let device = self.tenant_device(tenant_id, sn).await?;
        if !device.bound {
            return Err(Error::param(format!("device {sn} is not bound")));
        }
        if device.protocol != crate::model::Protocol::WeCom {
            return Err(Error::param(format!(
                "device {sn} is a ZKTeco terminal: enrolments from facehub reach WeCom \
                 terminals only (enrol on the terminal itself)"
            )));
        }
        let file_ids = match kind {
            "fa" | "fp" => Vec::new(),
            "photo" => {
                let mut ids = Vec::new();
                if let Some(a) = self.db.attendance(person.id).await? {
                    ids.push(format!(
                        "{}:{}",
                        FileKind::AttendancePhoto.as_str(),
                        a.face_key
                    ));
                }
                if let Some(f) = self
                    .db
                    .acs_user(person.id)
                    .await?
                    .and_then(|a| a.face_file_id)
                {
                    ids.push(format!("{}:{f}", FileKind::AcsFace.as_str()));
                }
                if ids.is_empty() {
                    return Err(Error::param(format!(
                        "user {user_id} has no face photo (attendance or door access)"
                    )));
                }
                ids
            }
            other => {
                return Err(Error::param(format!(
                    "kind {other:?} is not fa, fp or photo"
                )));
            }
        };
        if self.db.open_enrolments(sn).await? >= MAX_OPEN_PER_DEVICE {
            return Err(Error::param(format!(
                "device {sn} already has {MAX_OPEN_PER_DEVICE} open enrolments"
            )));
        }
        let e = Enrolment {
            oper_id: hex::encode(crate::model::ids::random_bytes::<16>()),
            tenant_id,
            person_id: person.id,
            sn: sn.to_string(),
            kind: kind.to_string(),
            file_ids,
            status: "queued".into(),
            errcode: None,
            errmsg: None,
            created_at: self.now(),
            finished_at: None,
        };
        self.db.insert_enrolment(&e).await?;
        self.devices_changed().await;
        Ok(e)
    }

    /// An enrolment of the tenant (others' look unknown).
    pub async fn enrolment(&self, tenant_id: i64, oper_id: &str) -> Result<Enrolment> {
        self.db
            .enrolment(oper_id)
            .await?
            .filter(|e| e.tenant_id == tenant_id)
            .ok_or_else(|| {
                Error::param(format!(
                    "oper_id {oper_id} is not an enrolment of this tenant"
                ))
            })
    }

    /// Cancels an open enrolment; a capture page open on the device is
    /// closed ([`Push::ExitPage`]) by the node that holds the device's
    /// connection, whichever node (or CLI) cancels.
    pub async fn cancel_enrolment(&self, tenant_id: i64, oper_id: &str) -> Result<Enrolment> {
        let e = self.enrolment(tenant_id, oper_id).await?;
        // Two atomic moves instead of read-then-write: a dispatch between
        // them cannot make the cancel miss the page it must close.
        let now = self.now();
        let was_sent = self.db.cancel_sent_enrolment(oper_id, now).await?;
        if !was_sent
            && !self
                .db
                .move_enrolment(oper_id, &["queued"], "cancelled", None, now)
                .await?
        {
            return Err(Error::param(format!(
                "enrolment {oper_id} is already {}",
                e.status
            )));
        }
        if was_sent {
            self.devices_changed().await;
        }
        self.enrolment(tenant_id, oper_id).await
    }

    /// Sends queued enrolments to their devices that are online, and the
    /// exit pages cancelled ones owe.
    pub(crate) async fn dispatch_enrolments(&self) -> Result<()> {
        let online = self.hub.online_sns();
        if online.is_empty() {
            return Ok(());
        }
        for e in self.db.owed_exits(&online).await? {
            // Claimed before the push, so two nodes never both send it;
            // owed again if this connection could not take it.
            if !self.db.set_exit_owed(&e.oper_id, false).await? {
                continue;
            }
            let Some(p) = self.db.person(e.person_id).await? else {
                continue;
            };
            if !self.hub.push_logged_in(&e.sn, Push::ExitPage(page(&e, &p))) {
                self.db.set_exit_owed(&e.oper_id, true).await?;
            }
        }
        for e in self.db.queued_enrolments(&online).await? {
            if !self.hub.is_online(&e.sn) {
                continue;
            }
            let Some(p) = self.db.person(e.person_id).await? else {
                continue;
            };
            let push = if e.kind == "photo" {
                let mut photos = Vec::new();
                for (i, f) in e.file_ids.iter().enumerate() {
                    if let Some((kind, id)) = photo_ref(f)
                        && let Some((rec, _)) = self.db.file(e.tenant_id, kind, id.as_str()).await?
                    {
                        photos.push(OfferedPhoto {
                            id: i,
                            size: rec.size,
                            media_id: format!("{}_{i}", e.oper_id),
                            media_type: format!("image/{}", rec.format),
                        });
                    }
                }
                let EnrolPage { oper_id, user, .. } = page(&e, &p);
                Push::UserFace {
                    oper_id,
                    user,
                    photos,
                }
            } else {
                Push::EnterPage(page(&e, &p))
            };
            // Recorded as sent first, so the device's answer (or a cancel)
            // never finds it still queued; put back if the push failed.
            if self
                .db
                .move_enrolment(&e.oper_id, &["queued"], "sent", None, self.now())
                .await?
                && !self.hub.push_logged_in(&e.sn, push)
            {
                self.db
                    .move_enrolment(&e.oper_id, &["sent"], "queued", None, self.now())
                    .await?;
            }
        }
        Ok(())
    }

    /// Records what an upload answering an enrolment says of it: failed
    /// with the device's code if it reports one, else succeeded if the
    /// upload stored templates of the enrolled kind for the enrolled user.
    /// Uploads naming another device's or tenant's enrolment, or a
    /// finished one, change nothing.
    pub(super) async fn finish_enrolment(
        &self,
        session: &Session,
        answer: &EnrolmentAnswer,
        uploaded: &[(DeviceUser, bool, bool)],
        outcome: &UploadOutcome,
    ) -> Result<()> {
        let EnrolmentAnswer {
            oper_id,
            errcode,
            errmsg,
        } = answer;
        let (errcode, errmsg) = (*errcode, errmsg.as_str());
        let Some(e) = self
            .db
            .enrolment(oper_id)
            .await?
            .filter(|e| e.tenant_id == session.tenant_id && e.sn == session.sn && e.is_open())
        else {
            tracing::debug!(sn = %session.sn, "upload names no open enrolment of this device");
            return Ok(());
        };
        let Some(p) = self.db.person(e.person_id).await? else {
            return Ok(());
        };
        let who = DeviceUser {
            userid: p.user_id.clone(),
            user_type: p.user_type.as_i64(),
        };
        let (status, code, msg) = if errcode != 0 {
            ("failed", errcode, errmsg.to_string())
        } else if let Some((_, why)) = outcome.reasons.iter().find(|(u, _)| *u == who) {
            ("failed", 40058, why.clone())
        } else if uploaded
            .iter()
            .any(|(u, faces, prints)| *u == who && if e.kind == "fp" { *prints } else { *faces })
        {
            (
                "succeeded",
                0,
                if errmsg.is_empty() {
                    "ok".into()
                } else {
                    errmsg.to_string()
                },
            )
        } else {
            (
                "failed",
                40058,
                "the upload did not include the enrolled user".to_string(),
            )
        };
        let msg: String = msg.chars().take(512).collect();
        self.db
            .move_enrolment(
                oper_id,
                &["queued", "sent"],
                status,
                Some((code, &msg)),
                self.now(),
            )
            .await?;
        Ok(())
    }

    /// A photo offered to this device by an open photo enrolment
    /// ([`Push::UserFace`]), in clear.
    pub async fn download_photo(&self, session: &Session, media_id: &str) -> Result<Vec<u8>> {
        let invalid =
            || Error::DeviceRefused(codes::INVALID_MEDIA_ID, "media_id is invalid".into());
        let (oper_id, index) = media_id.rsplit_once('_').ok_or_else(invalid)?;
        let index: usize = index.parse().map_err(|_| invalid())?;
        let e = self
            .db
            .enrolment(oper_id)
            .await?
            .filter(|e| {
                e.tenant_id == session.tenant_id
                    && e.sn == session.sn
                    && e.kind == "photo"
                    && e.is_open()
            })
            .ok_or_else(invalid)?;
        let (kind, id) = e
            .file_ids
            .get(index)
            .and_then(|f| photo_ref(f))
            .ok_or_else(invalid)?;
        let file = self
            .open_file(e.tenant_id, kind, &id)
            .await?
            .ok_or_else(invalid)?;
        let event = crate::domain::audit::AuditEvent::by_device(
            session.tenant_id,
            &session.sn,
            "photo.download",
        )
        .subject(file.record.owner.as_deref())
        .object(format!("{} (enrolment {oper_id})", file.record.file_id));
        self.audit.record(vec![event]).await?;
        let size = usize::try_from(file.record.size).unwrap_or(0);
        Ok(file.body.read_all(size).await?)
    }
}

fn photo_ref(s: &str) -> Option<(FileKind, FileId)> {
    let (kind, id) = s.split_once(':')?;
    Some((file_kind(kind)?, FileId::parse(id)?))
}

fn page(e: &Enrolment, p: &Person) -> EnrolPage {
    EnrolPage {
        kind: e.kind.clone(),
        oper_id: e.oper_id.clone(),
        user: DeviceUser {
            userid: p.user_id.clone(),
            user_type: p.user_type.as_i64(),
        },
    }
}
