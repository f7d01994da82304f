//! Stored files: what kind each is, and its metadata row.

/// What a stored file is; each kind is its own namespace of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    AttendancePhoto,
    LingoImage,
    AcsFace,
    AcsFaceCrop,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::AttendancePhoto => "attendance_photo",
            FileKind::LingoImage => "lingo_image",
            FileKind::AcsFace => "acs_face",
            FileKind::AcsFaceCrop => "acs_face_crop",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub file_id: String,
    pub tenant_id: i64,
    pub kind: String,
    pub file_name: String,
    pub format: String,
    pub width: i64,
    pub height: i64,
    pub size: i64,
    pub sha256: String,
    pub key_id: i64,
    pub created_at: i64,
    /// The user_id of the person the file is bound to, if any.
    pub owner: Option<String>,
}
