//! Attendance face photos and the face settings that bind them to people.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::people::EmployeeType;
use super::{AttendanceSetting, Core, FileId, FileRecord, PhotoName};
use crate::error::{Error, Result};
use crate::image::{PhotoCheck, PhotoError, PhotoFormat, PhotoRules};
use crate::store::sealed::{PlainStream, SealedWriter};

pub const ATTENDANCE_PHOTO: &str = "attendance_photo";

/// Associated data binding a sealed file name to its file.
fn name_aad(file_id: &str) -> String {
    format!("file_name:{file_id}")
}

impl From<PhotoError> for Error {
    fn from(e: PhotoError) -> Self {
        Error::InvalidParam(e.to_string())
    }
}

/// A stored photo ready to be streamed back.
pub struct PhotoDownload {
    pub record: FileRecord,
    pub format: PhotoFormat,
    pub body: PlainStream,
}

/// One entry of `user_settings/query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFaceSetting {
    pub user_id: String,
    pub setting: Option<AttendanceSetting>,
}

impl Core {
    fn photo_rules(&self) -> PhotoRules {
        let l = &self.config.limits;
        PhotoRules {
            min_bytes: l.photo_min_bytes,
            max_bytes: l.photo_max_bytes,
            min_side: l.photo_min_side,
            max_side: l.photo_max_side,
        }
    }

    /// Stores an attendance face photo from a stream of its bytes. The bytes
    /// are checked as they arrive and sealed straight to a temporary blob;
    /// the id is returned only once blob and metadata are durable. On any
    /// failure nothing is left behind.
    pub async fn store_attendance_photo<S>(
        &self,
        tenant_id: i64,
        name: &PhotoName,
        body: S,
    ) -> Result<FileRecord>
    where
        S: Stream<Item = Result<Bytes>> + Send,
    {
        let file_id = FileId::generate();
        let mut writer = self
            .blobs
            .create(file_id.as_str())
            .await
            .map_err(Error::Internal)?;
        let mut check = PhotoCheck::new(self.photo_rules());
        let mut body = std::pin::pin!(body);
        let outcome: Result<()> = async {
            while let Some(piece) = body.next().await {
                let piece = piece?;
                check.push(&piece)?;
                writer.write(&piece).await.map_err(Error::Internal)?;
            }
            Ok(())
        }
        .await;
        let info = match outcome.and_then(|()| check.finish().map_err(Error::from)) {
            Ok(info) => info,
            Err(e) => {
                writer.abort().await;
                return Err(e);
            }
        };
        if !info.format.matches_extension(name.extension()) {
            writer.abort().await;
            return Err(Error::param(format!(
                "file_name extension .{} does not match the file content ({})",
                name.extension(),
                info.format
            )));
        }
        let record = FileRecord {
            file_id: file_id.to_string(),
            tenant_id,
            kind: ATTENDANCE_PHOTO.to_string(),
            file_name: name.as_str().to_string(),
            format: info.format.as_str().to_string(),
            width: info.width.into(),
            height: info.height.into(),
            size: info.size as i64,
            sha256: String::new(),
            key_id: self.keys.current().id().into(),
            created_at: self.now(),
        };
        self.commit_blob(writer, record).await
    }

    /// Makes a fully received blob durable and records it. Runs as its own
    /// task: once the last byte is in, a client hanging up (which drops the
    /// request future) can no longer leave a blob without its metadata.
    async fn commit_blob(
        &self,
        writer: SealedWriter,
        mut record: FileRecord,
    ) -> Result<FileRecord> {
        let db = self.db.clone();
        let blobs = self.blobs.clone();
        let sealed_name = self.keys.seal_small(
            name_aad(&record.file_id).as_bytes(),
            record.file_name.as_bytes(),
        );
        tokio::spawn(async move {
            let digest = writer.finish().await.map_err(Error::Internal)?;
            record.sha256 = digest;
            if let Err(e) = db.insert_file(&record, &sealed_name).await {
                // Not acknowledged: do not keep an unreferenced blob.
                let _ = blobs.delete(&record.file_id).await;
                return Err(e.into());
            }
            Ok(record)
        })
        .await
        .map_err(|e| Error::Internal(anyhow::Error::new(e).context("storing an upload")))?
    }

    /// Opens an attendance photo of the tenant. Unknown ids and other
    /// tenants' ids look the same: not found.
    pub async fn open_attendance_photo(
        &self,
        tenant_id: i64,
        file_id: &str,
    ) -> Result<PhotoDownload> {
        let not_found = || Error::param(format!("file_id {file_id:?} not found"));
        let Some(id) = FileId::parse(file_id) else {
            return Err(not_found());
        };
        let Some((mut record, sealed_name)) = self
            .db
            .file(tenant_id, ATTENDANCE_PHOTO, id.as_str())
            .await?
        else {
            return Err(not_found());
        };
        let name = self
            .keys
            .open_small(name_aad(id.as_str()).as_bytes(), &sealed_name)
            .map_err(Error::Internal)?;
        record.file_name = String::from_utf8(name).map_err(|e| Error::Internal(e.into()))?;
        let format = PhotoFormat::parse(&record.format)
            .ok_or_else(|| Error::internal(format!("stored format {:?}", record.format)))?;
        let body = self
            .blobs
            .open(id.as_str())
            .await
            .map_err(Error::Internal)?
            .ok_or_else(|| Error::internal(format!("blob of file {id} is missing")))?;
        Ok(PhotoDownload {
            record,
            format,
            body,
        })
    }

    /// `user_settings/modify`: binds a stored photo to a person.
    pub async fn modify_user_setting(
        &self,
        tenant_id: i64,
        kind: EmployeeType,
        user_id: &str,
        face_key: &str,
        face_key_open: Option<bool>,
        update_time: Option<i64>,
    ) -> Result<AttendanceSetting> {
        let person = self
            .find_person(tenant_id, kind, user_id)
            .await?
            .ok_or_else(|| Error::UserNotFound(user_id.to_string()))?;
        let file = match FileId::parse(face_key) {
            Some(id) => {
                self.db
                    .file(tenant_id, ATTENDANCE_PHOTO, id.as_str())
                    .await?
            }
            None => None,
        };
        if file.is_none() {
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
            .set_attendance(person.id, &setting, self.now())
            .await?;
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
