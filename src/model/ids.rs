//! Validated values: once one exists it is valid, so no caller re-checks.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

use crate::model::error::Error;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// A new id of the platform's shape for what facehub creates (punch
/// records, access rules, visitors): a random 63-bit number in decimal, up
/// to 19 digits.
pub fn platform_id() -> String {
    (u64::from_le_bytes(random_bytes::<8>()) >> 1).to_string()
}

/// HMAC-SHA256 of `parts` joined by NUL, hex, cut to `len` characters.
pub fn derive_hex(secret: &[u8], parts: &[&str], len: usize) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b"\0");
        }
        mac.update(p.as_bytes());
    }
    let mut h = hex::encode(mac.finalize().into_bytes());
    h.truncate(len);
    h
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A person's tenant-wide id (Feishu `user_id` / employee id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn parse(s: &str) -> Result<UserId, Error> {
        if s.is_empty() || s.len() > 128 {
            return Err(Error::param("user_id must be 1 to 128 bytes"));
        }
        if has_control(s) || s.trim() != s {
            return Err(Error::param(
                "user_id must not contain control characters or surrounding spaces",
            ));
        }
        Ok(UserId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// WeCom's `user_type`: the directory a person belongs to on the device
/// protocol. `(userid, user_type)` names one person there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UserType {
    #[default]
    Employee,
    Visitor,
    Student,
}

impl UserType {
    pub fn from_i64(n: i64) -> Option<UserType> {
        match n {
            0 => Some(UserType::Employee),
            1 => Some(UserType::Visitor),
            2 => Some(UserType::Student),
            _ => None,
        }
    }

    pub fn as_i64(self) -> i64 {
        match self {
            UserType::Employee => 0,
            UserType::Visitor => 1,
            UserType::Student => 2,
        }
    }

    /// The CSV / CLI spelling: a number or a name; empty is an employee.
    pub fn parse(s: &str) -> Result<UserType, Error> {
        match s.trim() {
            "" | "0" | "employee" => Ok(UserType::Employee),
            "1" | "visitor" => Ok(UserType::Visitor),
            "2" | "student" => Ok(UserType::Student),
            other => Err(Error::param(format!(
                "user_type {other:?} is not 0 (employee), 1 (visitor) or 2 (student)"
            ))),
        }
    }
}

/// A stored file's id: 128 random bits as 32 lower-case hex digits, the
/// shape of the platform's own ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileId(String);

impl FileId {
    pub fn generate() -> FileId {
        FileId(hex::encode(random_bytes::<16>()))
    }

    /// `None` for anything that cannot be an id we issued.
    pub fn parse(s: &str) -> Option<FileId> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| FileId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `file_name` of an uploaded photo: a plain name with a jpg/jpeg/png
/// extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoName {
    name: String,
    ext: String,
}

impl PhotoName {
    pub const MAX_CHARS: usize = 255;

    pub fn parse(s: &str) -> Result<PhotoName, Error> {
        let chars = s.chars().count();
        if chars == 0 {
            return Err(Error::param("file_name is required"));
        }
        if chars > Self::MAX_CHARS {
            return Err(Error::param(format!(
                "file_name is {chars} characters, at most {} are allowed",
                Self::MAX_CHARS
            )));
        }
        if has_control(s) || s.contains(['/', '\\']) {
            return Err(Error::param(
                "file_name must not contain path separators or control characters",
            ));
        }
        let ext = match s.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
            _ => {
                return Err(Error::param(
                    "file_name must have an extension (.jpg, .jpeg or .png)",
                ));
            }
        };
        if !matches!(ext.as_str(), "jpg" | "jpeg" | "png") {
            return Err(Error::param(format!(
                "file_name extension .{ext} is not accepted, use .jpg, .jpeg or .png"
            )));
        }
        Ok(PhotoName {
            name: s.to_string(),
            ext,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn extension(&self) -> &str {
        &self.ext
    }
}

/// A permission scope an app can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope(String);

impl Scope {
    /// The scopes facehub's endpoints check.
    pub const KNOWN: &'static [&'static str] = &[
        "attendance:rule",
        "attendance:rule:readonly",
        "attendance:task",
        "attendance:task:readonly",
        "acs:access_record",
        "acs:access_record:readonly",
        "acs:device",
        "acs:device:readonly",
        "acs:rule_external",
        "acs:rule_external:readonly",
        "acs:users",
        "acs:visitor",
        "baike:entity",
        "baike:entity:exempt_review",
        "baike:entity:readonly",
        "contact:user.employee_id:readonly",
        // facehub's own: manage the tenant's terminals (enrolment, photo
        // pushes, punch records) over HTTP.
        "facehub:device",
        // facehub's own: erase a person and all their biometric data.
        "facehub:people",
        // facehub's own: read the audit log of biometric data.
        "facehub:audit",
    ];

    pub fn parse(s: &str) -> Result<Scope, String> {
        if Self::KNOWN.contains(&s) {
            Ok(Scope(s.to_string()))
        } else {
            Err(format!(
                "unknown scope {s:?}; known scopes: {}",
                Self::KNOWN.join(", ")
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(UserId::parse("abd754f7").is_ok());
        assert!(UserId::parse("张三").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(" a").is_err());
        assert!(UserId::parse("a\nb").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
        assert!(UserId::parse(&"x".repeat(128)).is_ok());
    }

    #[test]
    fn file_ids() {
        let id = FileId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert_eq!(FileId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(FileId::generate(), id);
        assert!(FileId::parse("../../etc/passwd").is_none());
        assert!(FileId::parse(&"A".repeat(32)).is_none());
    }

    #[test]
    fn photo_names() {
        assert_eq!(PhotoName::parse("人脸照片.JPG").unwrap().extension(), "jpg");
        assert_eq!(PhotoName::parse("a.b.png").unwrap().extension(), "png");
        for bad in [
            "",
            "face",
            ".png",
            "a/b.png",
            "a\\b.jpg",
            "x\u{0}.png",
            "face.gif",
        ] {
            assert!(PhotoName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(PhotoName::parse(&format!("{}.png", "a".repeat(251))).is_ok());
        assert!(PhotoName::parse(&format!("{}.png", "a".repeat(252))).is_err());
    }

    #[test]
    fn derived_ids_are_stable_and_separated() {
        let a = derive_hex(b"k", &["union", "t", "u1"], 32);
        assert_eq!(a, derive_hex(b"k", &["union", "t", "u1"], 32));
        assert_ne!(a, derive_hex(b"k", &["union", "t", "u2"], 32));
        assert_ne!(a, derive_hex(b"k2", &["union", "t", "u1"], 32));
        // NUL separation: ("ab","c") != ("a","bc").
        assert_ne!(
            derive_hex(b"k", &["ab", "c"], 32),
            derive_hex(b"k", &["a", "bc"], 32)
        );
    }

    #[test]
    fn scopes() {
        assert!(Scope::parse("attendance:rule").is_ok());
        assert!(Scope::parse("attendance:rules").is_err());
    }
}
