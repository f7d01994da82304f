//! Wiki (lingo) images: named images addressed by a `file_token`.

use std::sync::Arc;

use super::files::{FileDownload, FileKind, Filing, StagedImage};
use super::{Core, FileId};
use crate::image::{ImageFormat, ImageRules};
use crate::model::error::{Error, Result};

/// A wiki image's `name`: 1–100 characters, no path separators or control
/// characters. Its extension, when it names an image format, must agree
/// with the content (the content decides the format; a name that claims
/// another one is a client mistake worth reporting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName(String);

/// Extensions of image formats wiki images do not accept: a name ending in
/// one of these claims a format the content cannot have.
const OTHER_IMAGE_EXTENSIONS: &[&str] = &[
    "tif", "tiff", "heic", "heif", "avif", "svg", "psd", "jxl", "jp2", "cur", "tga", "qoi",
];

impl ImageName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(s: &str) -> Result<ImageName> {
        let chars = s.chars().count();
        if s.trim().is_empty() {
            return Err(Error::param("name is required"));
        }
        if chars > Self::MAX_CHARS {
            return Err(Error::param(format!(
                "name is {chars} characters, at most {} are allowed",
                Self::MAX_CHARS
            )));
        }
        if s.chars().any(char::is_control) || s.contains(['/', '\\']) {
            return Err(Error::param(
                "name must not contain path separators or control characters",
            ));
        }
        Ok(ImageName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased extension, if the name has one.
    fn extension(&self) -> Option<String> {
        match self.0.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() => {
                Some(ext.to_ascii_lowercase())
            }
            _ => None,
        }
    }

    /// Refuses a name whose extension names another image format than the
    /// content's. Names without an image extension are titles, not claims.
    pub fn check_format(&self, format: ImageFormat) -> Result<()> {
        let Some(ext) = self.extension() else {
            return Ok(());
        };
        let claims = ImageFormat::from_extension(&ext).is_some()
            || OTHER_IMAGE_EXTENSIONS.contains(&ext.as_str());
        if claims && !format.matches_extension(&ext) {
            return Err(Error::param(format!(
                "name extension .{ext} does not match the file content ({format})"
            )));
        }
        Ok(())
    }
}

/// `file_token`s are `box` followed by the file's 32 hex id.
const TOKEN_PREFIX: &str = "box";

pub fn file_token(id: &str) -> String {
    format!("{TOKEN_PREFIX}{id}")
}

fn parse_token(token: &str) -> Option<FileId> {
    FileId::parse(token.strip_prefix(TOKEN_PREFIX)?)
}

impl Core {
    /// Stores a received wiki image under its name; returns its token.
    /// `hold` is released when the work is done (see [`Core::commit_image`]).
    pub async fn store_lingo_image(
        self: &Arc<Self>,
        tenant_id: i64,
        staged: StagedImage,
        name: &ImageName,
        hold: impl Send + 'static,
    ) -> Result<String> {
        if let Err(e) = name.check_format(staged.format()) {
            staged.discard().await;
            return Err(e);
        }
        let record = self
            // (Wiki images are not biometric data: not audited.)
            .commit_image(
                staged,
                Filing::new(tenant_id, FileKind::LingoImage, name.as_str()),
                hold,
            )
            .await?;
        Ok(file_token(&record.file_id))
    }

    pub fn lingo_rules(&self) -> ImageRules {
        ImageRules::lingo()
    }

    /// Opens a wiki image of the tenant; unknown tokens and other tenants'
    /// tokens get the same answer.
    pub async fn open_lingo_image(&self, tenant_id: i64, token: &str) -> Result<FileDownload> {
        let not_found = || Error::param(format!("file_token {token:?} not found"));
        let id = parse_token(token).ok_or_else(not_found)?;
        self.open_file(tenant_id, FileKind::LingoImage, &id)
            .await?
            .ok_or_else(not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(ImageName::parse("示例图片.png").is_ok());
        assert!(ImageName::parse(&"a".repeat(100)).is_ok());
        assert!(ImageName::parse(&"图".repeat(100)).is_ok());
        for (bad, want) in [
            ("", "name is required"),
            ("   ", "name is required"),
            ("../x.png", "path separators"),
            ("a\\b.png", "path separators"),
            ("a\nb.png", "control characters"),
            ("a\u{0}.png", "control characters"),
        ] {
            let e = ImageName::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
        assert_eq!(
            ImageName::parse(&"a".repeat(101)).unwrap_err().to_string(),
            "name is 101 characters, at most 100 are allowed"
        );
    }

    #[test]
    fn extension_must_agree_with_content() {
        let png = ImageFormat::Png;
        for ok in [
            "a.png",
            "a.PNG",
            "a.apng",
            "a",
            ".png",
            "summary v2",
            "a.final",
        ] {
            ImageName::parse(ok).unwrap().check_format(png).unwrap();
        }
        ImageName::parse("a.icon")
            .unwrap()
            .check_format(ImageFormat::Ico)
            .unwrap();
        ImageName::parse("a.JPG")
            .unwrap()
            .check_format(ImageFormat::Jpeg)
            .unwrap();
        for bad in ["a.gif", "a.jpg", "a.tiff", "a.webp"] {
            let e = ImageName::parse(bad)
                .unwrap()
                .check_format(png)
                .unwrap_err();
            assert!(
                e.to_string()
                    .contains("does not match the file content (png)"),
                "{e}"
            );
        }
    }

    #[test]
    fn tokens_round_trip_and_refuse_junk() {
        let id = FileId::generate();
        let t = file_token(id.as_str());
        assert!(t.starts_with("box") && t.len() == 35);
        assert_eq!(parse_token(&t), Some(id.clone()));
        for junk in ["", "box", "boxZZ", "abc", &id.to_string()] {
            assert_eq!(parse_token(junk), None, "{junk}");
        }
    }
}
