//! Stored files: what kind each is, and its metadata row.

use crate::image::ImageFormat;

/// What a stored file is; each kind is its own namespace of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    AttendancePhoto,
    LingoImage,
    AcsFace,
    AcsFaceCrop,
    /// A terminal's capture photo of a door pass.
    AccessPhoto,
}

impl FileKind {
    pub const ALL: [FileKind; 5] = [
        FileKind::AttendancePhoto,
        FileKind::LingoImage,
        FileKind::AcsFace,
        FileKind::AcsFaceCrop,
        FileKind::AccessPhoto,
    ];

    /// The name stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::AttendancePhoto => "attendance_photo",
            FileKind::LingoImage => "lingo_image",
            FileKind::AcsFace => "acs_face",
            FileKind::AcsFaceCrop => "acs_face_crop",
            FileKind::AccessPhoto => "access_photo",
        }
    }

    pub fn parse(s: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub file_id: String,
    pub tenant_id: i64,
    pub kind: FileKind,
    pub file_name: String,
    /// Stored under [`ImageFormat::name`].
    pub format: ImageFormat,
    pub width: i64,
    pub height: i64,
    pub size: i64,
    pub sha256: String,
    pub key_id: i64,
    pub created_at: i64,
    /// The user_id of the person the file is bound to, if any.
    pub owner: Option<String>,
}
