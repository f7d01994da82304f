//! Photos to templates. A ZKTeco terminal that makes its own templates
//! from photos (its `MultiBioPhotoSupport`) and is put a person with no
//! template of such a type is sent the person's face photo (`DATA UPDATE
//! BIOPHOTO`, asking for the template back). The template it posts back
//! is stored like any other upload, so the rest of that version's fleet
//! gets it, and the terminal, which then holds one, is not sent the photo
//! again.

use super::zk::ZkTerminal;
use super::zk_bio::BioType;
use super::zk_commands::{Group, ZkCommand, ZkPhoto};
use crate::domain::Core;
use crate::domain::FileId;
use crate::domain::audit::AuditEvent;
use crate::domain::files::FileKind;
use crate::image::face;
use crate::model::PushInfo;
use crate::model::error::{Error, Result};

/// The most JPEG bytes sent of a photo: more than a 640 px portrait takes
/// at quality 85, so a large reply does not carry larger photos.
pub const PHOTO_MAX_BYTES: usize = 48 << 10;
/// The least: a smaller photo is not sent (too little to extract from).
pub const PHOTO_MIN_BYTES: usize = 8 << 10;
/// A photo command's line without its content: fields and PIN, from above.
const PHOTO_LINE: usize = 256;

/// The JPEG bytes a person's photo may take in a reply of `max_bytes`
/// whose other commands for them take `rest`: what its base64 leaves of
/// the reply, at most [`PHOTO_MAX_BYTES`]; `None` below
/// [`PHOTO_MIN_BYTES`] (the person goes without it).
pub fn photo_budget(max_bytes: usize, rest: usize) -> Option<usize> {
    let room = max_bytes.saturating_sub(rest + PHOTO_LINE) / 4 * 3;
    let budget = room.min(PHOTO_MAX_BYTES);
    (budget >= PHOTO_MIN_BYTES).then_some(budget)
}

/// The photo budget of a person's commands (`group`): what the commands
/// other than the photo take, and [`photo_budget`] of what they leave.
pub(super) fn group_photo(group: &[ZkCommand], max_bytes: usize) -> (usize, Option<usize>) {
    // A photo not yet read has no size of its own (`ZkCommand::size`).
    let rest: usize = group.iter().map(ZkCommand::size).sum();
    (rest, photo_budget(max_bytes, rest))
}

/// The bytes of a photo command carrying `budget` bytes of JPEG, from
/// above.
pub(super) fn photo_line(budget: usize) -> usize {
    PHOTO_LINE + budget.div_ceil(3) * 4
}

/// The types a terminal is sent photos of: visible-light faces (the only
/// type facehub declares in `MultiBioPhotoSupport`: an infrared extractor
/// gets nothing of a colour photo), when its own `MultiBioPhotoSupport`
/// flags the type 1 (a flag per type, by ZKTeco's type number).
pub fn photo_types(info: &PushInfo) -> Vec<BioType> {
    let Some(flags) = info.multi_bio_photo.as_deref() else {
        return Vec::new();
    };
    let flags: Vec<&str> = flags.split(':').collect();
    [BioType::VisibleFace]
        .into_iter()
        .filter(|t| {
            flags
                .get(t.code() as usize)
                .is_some_and(|f| f.trim() == "1")
        })
        .collect()
}

impl Core {
    /// Reads and shrinks the photos of the groups that go out, each a JPEG
    /// within its [`photo_budget`] (what the group's other commands leave
    /// of the reply), one at a time within the decode limits. A photo
    /// that does not fit, is gone, or cannot be read or made small enough
    /// is left out of its group (logged, without the person). Every photo
    /// read is audited (`photo.send`).
    pub(super) async fn zk_load_photos(
        &self,
        t: &ZkTerminal,
        mut groups: Vec<Group>,
        max_bytes: usize,
    ) -> Result<Vec<Group>> {
        for g in &mut groups {
            let (_, budget) = group_photo(&g.1, max_bytes);
            let mut kept = Vec::with_capacity(g.1.len());
            for mut c in std::mem::take(&mut g.1) {
                if let ZkCommand::Photo { photo, .. } = &mut c
                    && let ZkPhoto::Stored(kind, id) = photo
                {
                    let jpeg = match budget {
                        Some(budget) => self.terminal_photo(t, *kind, id, budget).await?,
                        None => None,
                    };
                    let Some(jpeg) = jpeg else { continue };
                    *photo = ZkPhoto::Jpeg(jpeg);
                }
                kept.push(c);
            }
            g.1 = kept;
        }
        Ok(groups)
    }

    /// One stored photo read (audited) and made a JPEG of at most `budget`
    /// bytes; `None` when it cannot be (logged). Only the audit's failure
    /// is an error: nothing is sent unaudited.
    async fn terminal_photo(
        &self,
        t: &ZkTerminal,
        kind: FileKind,
        id: &FileId,
        budget: usize,
    ) -> Result<Option<Vec<u8>>> {
        let sn = t.sn();
        let skip = |why: &str| {
            tracing::warn!(sn, why, "a face photo was not sent to a terminal");
            Ok(None)
        };
        let file = match self.open_file(t.row.tenant_id, kind, id).await {
            Ok(Some(file)) => file,
            Ok(None) => return skip("gone"),
            Err(_) => return skip("unreadable"),
        };
        let event = AuditEvent::by_device(t.row.tenant_id, sn, "photo.send")
            .subject(file.record.owner.as_deref())
            .object(file.record.file_id.clone());
        self.audit.record(vec![event]).await?;
        let size = usize::try_from(file.record.size).unwrap_or(0);
        let Ok(bytes) = file.body.read_all(size).await else {
            return skip("unreadable");
        };
        // The decode's memory: the file and 8 bytes a pixel (as uploads).
        let pixels = imagesize::blob_size(&bytes).map_or(0, |d| (d.width * d.height) as u64);
        let mib = (bytes.len() as u64 + 8 * pixels).div_ceil(1 << 20);
        let _permits = self.decode_permits(mib).await?;
        let limits = crate::image::limits(&self.attendance_rules());
        let jpeg = tokio::task::spawn_blocking(move || {
            let img = face::upright(&bytes, limits).ok()?;
            face::terminal_jpeg(&img, budget)
        })
        .await
        .map_err(|e| Error::internal(format!("making a terminal photo: {e}")))?;
        match jpeg {
            Some(jpeg) => Ok(Some(jpeg)),
            None => skip("not a photo that shrinks to the reply"),
        }
    }

    /// The person's face photo: (kind, id) of the first they have of the
    /// door-access crop, the door-access photo, the attendance photo (when
    /// face recognition is on for them).
    pub(super) async fn face_photo(&self, person_id: i64) -> Result<Option<(FileKind, FileId)>> {
        if let Some(a) = self.db.acs_user(person_id).await? {
            let door = [
                (FileKind::AcsFaceCrop, a.crop_file_id),
                (FileKind::AcsFace, a.face_file_id),
            ];
            if let Some(found) = door
                .into_iter()
                .find_map(|(k, id)| Some((k, FileId::parse(id.as_deref()?)?)))
            {
                return Ok(Some(found));
            }
        }
        Ok(self
            .db
            .attendance(person_id)
            .await?
            .filter(|a| a.face_key_open)
            .and_then(|a| FileId::parse(&a.face_key))
            .map(|id| (FileKind::AttendancePhoto, id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_types_are_the_flagged_face_types() {
        let info = |flags: &str| PushInfo {
            multi_bio_photo: Some(flags.into()),
            ..PushInfo::default()
        };
        assert_eq!(
            photo_types(&info("0:0:0:0:0:0:0:0:0:1:0")),
            [BioType::VisibleFace]
        );
        // Infrared faces and fingerprints are not sent photos; a short list
        // has no type 9.
        assert!(photo_types(&info("0:1:1")).is_empty());
        assert!(photo_types(&info("0:1:1:1:1:1:1:1:1")).is_empty());
        assert!(photo_types(&info("0:0:0:0:0:0:0:0:0:0:0")).is_empty());
        assert!(photo_types(&PushInfo::default()).is_empty());
    }

    #[test]
    fn a_photo_and_its_person_fit_one_reply() {
        // In the protocol's 40 KiB: what the base64 leaves, about 29 KiB.
        let b = photo_budget(40 << 10, 200).unwrap();
        assert!(b.div_ceil(3) * 4 + 200 + PHOTO_LINE <= 40 << 10);
        assert!(b > 29 << 10);
        // Templates of 34 KiB leave too little for a photo.
        assert_eq!(photo_budget(40 << 10, 34 << 10), None);
        // A large reply sends photos no larger than a small one could use.
        assert_eq!(photo_budget(900 << 10, 200), Some(PHOTO_MAX_BYTES));
    }
}
