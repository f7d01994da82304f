//! Attendance face photos and the face settings that bind them to people.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

use super::audit::AuditEvent;
use super::auth::Caller;
use super::files::{FileDownload, FileKind, Filing};
use super::people::EmployeeType;
use super::{AttendanceSetting, Core, FileId, FileRecord, PhotoName};
use crate::image::{FormatSet, ImageFormat, ImageRules};
use crate::model::error::{Error, Result};

/// One entry of `user_settings/query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFaceSetting {
    pub user_id: String,
    pub setting: Option<AttendanceSetting>,
}

impl Core {
    /// Attendance photos: JPEG or PNG, bounds from `limits.photo_*`.
    pub fn attendance_rules(&self) -> ImageRules {
        let l = &self.config.limits;
        ImageRules {
            formats: FormatSet::of(&[ImageFormat::Jpeg, ImageFormat::Png]),
            min_bytes: l.photo_min_bytes,
            max_bytes: l.photo_max_bytes,
            min_side: l.photo_min_side,
            max_side: l.photo_max_side,
        }
    }

    /// Stores an attendance face photo from a stream of its bytes; the id
    /// is returned only once blob and metadata are durable. `hold` is
    /// released when the work is done (see [`Core::commit_image`]).
    pub async fn store_attendance_photo<S>(
        self: &Arc<Self>,
        caller: &Caller,
        name: &PhotoName,
        body: S,
        hold: impl Send + 'static,
    ) -> Result<FileRecord>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        // Success is recorded with the file's row; a refusal here.
        let stored = AuditEvent::by(caller, "photo.upload", &Ok(()));
        let outcome = self
            .store_photo(caller.tenant_id, name, body, hold, stored)
            .await;
        let refused = AuditEvent::by(caller, "photo.upload", &outcome);
        self.audited_if_failed(refused, outcome).await
    }

    async fn store_photo<S>(
        self: &Arc<Self>,
        tenant_id: i64,
        name: &PhotoName,
        body: S,
        hold: impl Send + 'static,
        audit: AuditEvent,
    ) -> Result<FileRecord>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let staged = self.receive_image(self.attendance_rules(), body).await?;
        if !staged.format().matches_extension(name.extension()) {
            let format = staged.format();
            staged.discard().await;
            return Err(Error::param(format!(
                "file_name extension .{} does not match the file content ({format})",
                name.extension(),
            )));
        }
        let filing = Filing::new(tenant_id, FileKind::AttendancePhoto, name.as_str());
        self.commit_image(staged, filing.audited(audit), hold).await
    }

    /// Opens an attendance photo of the tenant. Unknown ids and other
    /// tenants' ids look the same: not found.
    pub async fn open_attendance_photo(
        &self,
        caller: &Caller,
        file_id: &str,
    ) -> Result<FileDownload> {
        let not_found = || Error::param(format!("file_id {file_id:?} not found"));
        let outcome = match FileId::parse(file_id) {
            Some(id) => self
                .open_file(caller.tenant_id, FileKind::AttendancePhoto, &id)
                .await
                .and_then(|f| f.ok_or_else(not_found)),
            None => Err(not_found()),
        };
        let owner = outcome
            .as_ref()
            .ok()
            .and_then(|f| f.record.owner.as_deref());
        let event = AuditEvent::by(caller, "photo.download", &outcome)
            .subject(owner)
            .object(super::devices::clip(file_id, 128));
        self.audited(event, outcome).await
    }

    /// `user_settings/modify`: binds a stored photo to a person.
    pub async fn modify_user_setting(
        &self,
        caller: &Caller,
        kind: EmployeeType,
        user_id: &str,
        face_key: &str,
        face_key_open: Option<bool>,
        update_time: Option<i64>,
    ) -> Result<AttendanceSetting> {
        let described = |e: AuditEvent| {
            e.subject(Some(super::devices::clip(user_id, 128)))
                .object(super::devices::clip(face_key, 128))
        };
        // Success is recorded with the binding; a refusal here.
        let bound = described(AuditEvent::by(caller, "photo.bind", &Ok(())));
        let outcome = self
            .bind_photo(
                caller.tenant_id,
                kind,
                user_id,
                face_key,
                face_key_open,
                update_time,
                &bound,
            )
            .await;
        let refused = described(AuditEvent::by(caller, "photo.bind", &outcome));
        self.audited_if_failed(refused, outcome).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn bind_photo(
        &self,
        tenant_id: i64,
        kind: EmployeeType,
        user_id: &str,
        face_key: &str,
        face_key_open: Option<bool>,
        update_time: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<AttendanceSetting> {
        let person = self
            .find_person(tenant_id, kind, user_id)
            .await?
            .ok_or_else(|| Error::UserNotFound(user_id.to_string()))?;
        let exists = match FileId::parse(face_key) {
            Some(id) => {
                self.file_exists(tenant_id, FileKind::AttendancePhoto, &id)
                    .await?
            }
            None => false,
        };
        if !exists {
            return Err(Error::param(format!(
                "face_key {face_key:?} is not an uploaded face photo"
            )));
        }
        let setting = AttendanceSetting {
            face_key: face_key.to_string(),
            face_key_open: face_key_open.unwrap_or(true),
            face_key_update_time: update_time.unwrap_or_else(|| self.now()),
        };
        self.db
            .set_attendance(person.id, &setting, self.now(), Some(audit))
            .await?;
        // Terminals that make templates from photos are sent it.
        self.devices_changed().await;
        Ok(setting)
    }

    /// `user_settings/query`: the face settings of up to 100 people. People
    /// unknown to the tenant are left out of the answer.
    pub async fn query_user_settings(
        &self,
        tenant_id: i64,
        kind: EmployeeType,
        user_ids: &[String],
    ) -> Result<Vec<UserFaceSetting>> {
        if user_ids.is_empty() {
            return Err(Error::param("user_ids is required"));
        }
        if user_ids.len() > 100 {
            return Err(Error::param(format!(
                "user_ids has {} entries, at most 100 are allowed",
                user_ids.len()
            )));
        }
        let mut out = Vec::with_capacity(user_ids.len());
        for uid in user_ids {
            if let Some(p) = self.find_person(tenant_id, kind, uid).await? {
                out.push(UserFaceSetting {
                    user_id: uid.clone(),
                    setting: self.db.attendance(p.id).await?,
                });
            }
        }
        Ok(out)
    }
}
