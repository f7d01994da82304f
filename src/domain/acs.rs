//! Door access (ACS): the directory of people granted door access, their
//! cards, and their enrolled faces (original and detected crop).

use std::sync::Arc;

use serde_json::json;

use super::audit::AuditEvent;
use super::auth::Caller;
use super::files::{FileDownload, FileKind, Filing, StagedImage};
use super::{Core, FileId, Person, Tenant};
use crate::image::ImageFormat;
use crate::image::face::{self, FaceRules};
use crate::model::PersonKey;
use crate::model::error::{Error, Result};
use crate::store::AcsRow;

/// How a request names a user (`user_id_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    OpenId,
    UnionId,
    UserId,
}

impl IdType {
    /// `open_id` when absent, as the platform defaults.
    pub fn parse(s: Option<&str>) -> Result<IdType> {
        match s.unwrap_or("") {
            "" | "open_id" => Ok(IdType::OpenId),
            "union_id" => Ok(IdType::UnionId),
            "user_id" => Ok(IdType::UserId),
            other => Err(Error::param(format!(
                "user_id_type {other:?} is not one of open_id, union_id, user_id"
            ))),
        }
    }
}

/// A door-access user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsUser {
    /// In the id type of the request.
    pub user_id: String,
    pub card: Option<i64>,
    pub face_uploaded: bool,
}

pub struct AcsPage {
    pub items: Vec<AcsUser>,
    pub page_token: Option<String>,
    pub has_more: bool,
}

/// The face stored for a door-access user.
pub struct EnrolledFace {
    pub face_file_id: String,
    pub crop_file_id: String,
    pub faces_found: usize,
}

impl Core {
    /// The person `id` names for this caller, in `id_type`.
    pub async fn resolve(
        &self,
        caller: &Caller,
        id_type: IdType,
        id: &str,
    ) -> Result<Option<Person>> {
        Ok(match id_type {
            IdType::OpenId => self.db.person_by_open_id(&caller.app_id, id).await?,
            IdType::UnionId => {
                let key = PersonKey::UnionId;
                self.db.person_by(caller.tenant_id, key, id).await?
            }
            IdType::UserId => self.person(caller.tenant_id, id).await?,
        }
        .filter(|p| p.tenant_id == caller.tenant_id))
    }

    fn external_id(&self, caller: &Caller, id_type: IdType, p: &Person) -> String {
        self.external_user_id(caller, id_type, &p.user_id, &p.union_id)
    }

    /// A person's id in the request's id type, from their user and union
    /// ids.
    pub(crate) fn external_user_id(
        &self,
        caller: &Caller,
        id_type: IdType,
        user_id: &str,
        union_id: &str,
    ) -> String {
        match id_type {
            IdType::OpenId => self.open_id(&caller.app_id, user_id),
            IdType::UnionId => union_id.to_string(),
            IdType::UserId => user_id.to_string(),
        }
    }

    /// The door-access user `id` names, or 1490101.
    async fn acs_member(
        &self,
        caller: &Caller,
        id_type: IdType,
        id: &str,
    ) -> Result<(Person, AcsRow)> {
        let person = self
            .resolve(caller, id_type, id)
            .await?
            .ok_or(Error::AcsUserNotFound)?;
        let row = self
            .db
            .acs_user(person.id)
            .await?
            .ok_or(Error::AcsUserNotFound)?;
        Ok((person, row))
    }

    /// Grants door access to people of the tenant (by user_id); returns how
    /// many were newly granted.
    pub async fn acs_grant(&self, tenant: &Tenant, user_ids: &[String]) -> Result<usize> {
        let mut n = 0;
        for uid in user_ids {
            let p = self.known_person(tenant.id, uid).await?;
            n += usize::from(self.db.acs_grant(tenant.id, p.id, self.now()).await?);
        }
        Ok(n)
    }

    /// Revokes door access and deletes the enrolled faces.
    pub async fn acs_revoke(&self, tenant: &Tenant, user_ids: &[String]) -> Result<usize> {
        let mut n = 0;
        for uid in user_ids {
            let p = self.known_person(tenant.id, uid).await?;
            if let Some(row) = self.db.acs_revoke(p.id).await? {
                if row.face_file_id.is_some() {
                    let event = AuditEvent {
                        tenant_id: tenant.id,
                        actor_kind: super::audit::ActorKind::Admin,
                        actor: "cli".into(),
                        action: "face.delete",
                        subject: Some(p.user_id.clone()),
                        object: row.face_file_id.clone(),
                        result: "ok".into(),
                        log_id: None,
                    };
                    self.audit.record(vec![event]).await?;
                }
                self.delete_blobs([row.face_file_id, row.crop_file_id])
                    .await;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes blobs whose rows are gone already. A failure leaves its
    /// key doomed, and the start-up sweep deletes the blob.
    async fn delete_blobs(&self, ids: impl IntoIterator<Item = Option<String>>) {
        for id in ids.into_iter().flatten() {
            if let Err(e) = self.drop_blob(&id).await {
                tracing::warn!(error = %e, "deleting a replaced face's blob");
            }
        }
    }

    async fn delete_files(&self, ids: impl IntoIterator<Item = Option<String>>) {
        for id in ids.into_iter().flatten() {
            if let Err(e) = self.db.delete_file(&id).await {
                tracing::warn!(error = %e, "deleting a replaced face's metadata");
                continue;
            }
            if let Err(e) = self.drop_blob(&id).await {
                tracing::warn!(error = %e, "deleting a replaced face's blob");
            }
        }
    }

    pub async fn acs_users(
        &self,
        caller: &Caller,
        id_type: IdType,
        page_size: i64,
        page_token: Option<&str>,
    ) -> Result<AcsPage> {
        let after = match page_token.filter(|t| !t.is_empty()) {
            None => 0,
            Some(t) => t
                .strip_prefix("acs")
                .and_then(|n| i64::from_str_radix(n, 16).ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::param(format!("page_token {t:?} is not valid")))?,
        };
        let mut rows = self
            .db
            .acs_users_page(caller.tenant_id, after, page_size + 1)
            .await?;
        let has_more = rows.len() as i64 > page_size;
        rows.truncate(page_size as usize);
        let page_token = if has_more {
            rows.last().map(|(_, a)| format!("acs{:x}", a.person_id))
        } else {
            None
        };
        Ok(AcsPage {
            items: rows
                .iter()
                .map(|(p, a)| self.acs_view(caller, id_type, p, a))
                .collect(),
            page_token,
            has_more,
        })
    }

    fn acs_view(&self, caller: &Caller, id_type: IdType, p: &Person, a: &AcsRow) -> AcsUser {
        AcsUser {
            user_id: self.external_id(caller, id_type, p),
            card: a.card,
            face_uploaded: a.crop_file_id.is_some(),
        }
    }

    pub async fn acs_user(&self, caller: &Caller, id_type: IdType, id: &str) -> Result<AcsUser> {
        let (p, a) = self.acs_member(caller, id_type, id).await?;
        Ok(self.acs_view(caller, id_type, &p, &a))
    }

    pub async fn acs_set_card(
        &self,
        caller: &Caller,
        id_type: IdType,
        id: &str,
        card: Option<i64>,
    ) -> Result<()> {
        if card.is_some_and(|c| c < 0) {
            return Err(Error::param("feature.card must not be negative"));
        }
        let (p, _) = self.acs_member(caller, id_type, id).await?;
        self.db.acs_set_card(p.id, card, self.now()).await?;
        Ok(())
    }

    /// Checks that the named user may receive a face before the photo is
    /// read.
    pub async fn acs_check_member(&self, caller: &Caller, id_type: IdType, id: &str) -> Result<()> {
        self.acs_member(caller, id_type, id).await.map(|_| ())
    }

    /// Enrols a door-access face: the photo (already streamed and checked)
    /// must be of `declared` type, decode in full, and hold a usable face;
    /// then the original and the crop are stored and replace any earlier
    /// face. `hold` is released when the work is done.
    #[allow(clippy::too_many_arguments)]
    pub async fn acs_enrol_face(
        self: &Arc<Self>,
        caller: &Caller,
        id_type: IdType,
        id: &str,
        staged: StagedImage,
        declared: ImageFormat,
        file_name: &str,
        hold: impl Send + 'static,
    ) -> Result<EnrolledFace> {
        // Success is recorded with the enrolment, in its transaction; a
        // refusal is recorded once the attempt has failed.
        let outcome: Result<EnrolledFace> = async {
            let (person, _) = match self.acs_member(caller, id_type, id).await {
                Ok(m) => m,
                Err(e) => {
                    staged.discard().await;
                    return Err(e);
                }
            };
            if staged.format() != declared {
                let found = staged.format();
                staged.discard().await;
                return Err(Error::param(format!(
                    "file_type {declared} does not match the file content ({found})"
                )));
            }
            let limits = crate::image::limits(&self.attendance_rules());
            let rules = FaceRules::default();
            let detect_seconds = self.metrics.face_detect_seconds.clone();
            let (original, enrolment) = self
                .commit_image_with(
                    staged,
                    Filing::new(caller.tenant_id, FileKind::AcsFace, file_name),
                    hold,
                    move |bytes, _| {
                        let upright = face::upright(bytes, limits).map_err(|e| {
                            Error::FaceCropFail(format!("the photo cannot be read: {e}"))
                        })?;
                        let started = std::time::Instant::now();
                        let enrolled = face::enrol(&upright, &rules);
                        detect_seconds.observe(started.elapsed().as_secs_f64());
                        enrolled.map_err(|e| match e {
                            face::FaceError::Detector(m) => Error::internal(m),
                            other => Error::FaceCropFail(other.to_string()),
                        })
                    },
                )
                .await?;
            let crop_bytes = bytes::Bytes::from(enrolment.crop_jpeg);
            let crop_name = match file_name.rsplit_once('.') {
                Some((stem, _)) => format!("{stem}-crop.jpg"),
                None => format!("{file_name}-crop.jpg"),
            };
            let stored = async {
                let staged = self
                    .receive_image(
                        self.attendance_rules(),
                        futures_util::stream::iter([Ok(crop_bytes)]),
                    )
                    .await?;
                let filing = Filing::new(caller.tenant_id, FileKind::AcsFaceCrop, &crop_name);
                self.commit_image(staged, filing, ()).await
            }
            .await;
            let crop = match stored {
                Ok(c) => c,
                Err(e) => {
                    self.delete_files([Some(original.file_id)]).await;
                    return Err(e);
                }
            };
            let f = enrolment.face;
            let face_box = json!({
                "x": f.x, "y": f.y, "w": f.w, "h": f.h, "score": f.score,
                "crop": [enrolment.crop_box.0, enrolment.crop_box.1, enrolment.crop_box.2],
            })
            .to_string();
            // The enrolment and its audit record commit together.
            let enrolled = AuditEvent::by(caller, "face.enrol", &Ok(()))
                .subject(Some(&person.user_id))
                .object(format!("{} {}", original.file_id, crop.file_id));
            let old = self
                .db
                .acs_set_face(
                    person.id,
                    &original.file_id,
                    &crop.file_id,
                    &face_box,
                    self.now(),
                    Some(&enrolled),
                )
                .await?;
            // Terminals that make templates from photos are sent it.
            self.devices_changed().await;
            if let Some(old) = old {
                self.delete_blobs([old.face_file_id, old.crop_file_id])
                    .await;
            }
            Ok(EnrolledFace {
                face_file_id: original.file_id,
                crop_file_id: crop.file_id,
                faces_found: enrolment.faces,
            })
        }
        .await;
        let refused = AuditEvent::by(caller, "face.enrol", &outcome);
        self.audited_if_failed(refused, outcome).await
    }

    /// The enrolled face (crop or original) of a door-access user.
    pub async fn acs_face(
        &self,
        caller: &Caller,
        id_type: IdType,
        id: &str,
        cropped: bool,
    ) -> Result<FileDownload> {
        let outcome: Result<FileDownload> = async {
            let (_, row) = self.acs_member(caller, id_type, id).await?;
            let file = if cropped {
                row.crop_file_id
            } else {
                row.face_file_id
            };
            let Some(file_id) = file.as_deref().and_then(FileId::parse) else {
                return Err(Error::param("the user has no face uploaded"));
            };
            let kind = if cropped {
                FileKind::AcsFaceCrop
            } else {
                FileKind::AcsFace
            };
            self.open_file(caller.tenant_id, kind, &file_id)
                .await?
                .ok_or_else(|| Error::internal(format!("face file {file_id} is missing")))
        }
        .await;
        let owner = outcome
            .as_ref()
            .ok()
            .and_then(|f| f.record.owner.as_deref());
        let mut event = AuditEvent::by(caller, "face.download", &outcome).subject(owner);
        if let Ok(f) = &outcome {
            event = event.object(&f.record.file_id);
        }
        self.audited(event, outcome).await
    }
}
