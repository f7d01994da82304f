//! Image checks done on the bytes as they stream in.
//!
//! [`PhotoCheck`] sees every byte of an upload exactly once and keeps a
//! bounded prefix and suffix: it decides the format from the magic bytes
//! (never the name), reads the dimensions from the header with `imagesize`
//! before the rest arrives, enforces size and dimension bounds as soon as
//! they are known, and at the end checks that the stream is complete (PNG
//! ends with its IEND chunk, JPEG with the EOI marker), which catches
//! truncated uploads without decoding pixels.

use std::fmt;

/// Formats an attendance or door-access face photo may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoFormat {
    Jpeg,
    Png,
}

impl PhotoFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "jpeg",
            PhotoFormat::Png => "png",
        }
    }

    pub fn parse(s: &str) -> Option<PhotoFormat> {
        match s {
            "jpeg" => Some(PhotoFormat::Jpeg),
            "png" => Some(PhotoFormat::Png),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "image/jpeg",
            PhotoFormat::Png => "image/png",
        }
    }

    /// Whether a file name extension (lower-cased, without the dot) names
    /// this format.
    pub fn matches_extension(self, ext: &str) -> bool {
        match self {
            PhotoFormat::Jpeg => matches!(ext, "jpg" | "jpeg"),
            PhotoFormat::Png => ext == "png",
        }
    }
}

impl fmt::Display for PhotoFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PhotoFormat::Jpeg => "JPEG",
            PhotoFormat::Png => "PNG",
        })
    }
}

/// Names the format of the first bytes, for messages about refused files.
pub fn sniff_any(head: &[u8]) -> Option<&'static str> {
    const SIGS: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpeg"),
        (b"GIF87a", "gif"),
        (b"GIF89a", "gif"),
        (b"BM", "bmp"),
        (b"II*\0", "tiff"),
        (b"MM\0*", "tiff"),
        (b"\0\0\x01\0", "ico"),
        (b"%PDF", "pdf"),
        (b"PK\x03\x04", "zip"),
    ];
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("webp");
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some("heif/avif");
    }
    SIGS.iter()
        .find(|(sig, _)| head.starts_with(sig))
        .map(|(_, name)| *name)
}

#[derive(Debug, Clone, Copy)]
pub struct PhotoRules {
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub min_side: u32,
    pub max_side: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoInfo {
    pub format: PhotoFormat,
    pub width: u32,
    pub height: u32,
    pub size: u64,
}

/// Why a photo was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("file is empty")]
    Empty,
    #[error("file size exceeds {max} bytes")]
    TooLarge { max: u64 },
    #[error("file size {size} bytes is below {min} bytes")]
    TooSmall { size: u64, min: u64 },
    #[error("format {0} is not accepted, only JPEG and PNG")]
    WrongFormat(String),
    #[error("file is not a JPEG or PNG image")]
    NotAnImage,
    #[error("{0} header is corrupt or incomplete")]
    BadHeader(PhotoFormat),
    #[error("{axis} {value} px is outside {min}..={max} px")]
    Dimension {
        axis: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error("{0} data is truncated (no end marker)")]
    Truncated(PhotoFormat),
}

/// How many leading bytes may be buffered while looking for the dimensions
/// (a JPEG's frame header can follow large EXIF/ICC segments).
const MAX_HEAD: usize = 512 * 1024;
const TAIL: usize = 64;
const PNG_IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];

pub struct PhotoCheck {
    rules: PhotoRules,
    head: Vec<u8>,
    tail: Vec<u8>,
    size: u64,
    format: Option<PhotoFormat>,
    dims: Option<(u32, u32)>,
    /// `head.len()` at the last header parse attempt, to avoid re-parsing
    /// for every small piece.
    tried_at: usize,
}

impl PhotoCheck {
    pub fn new(rules: PhotoRules) -> PhotoCheck {
        PhotoCheck {
            rules,
            head: Vec::new(),
            tail: Vec::with_capacity(2 * TAIL),
            size: 0,
            format: None,
            dims: None,
            tried_at: 0,
        }
    }

    /// Feeds the next bytes; fails as soon as a rule is known to be broken.
    pub fn push(&mut self, data: &[u8]) -> Result<(), PhotoError> {
        self.size += data.len() as u64;
        if self.size > self.rules.max_bytes {
            return Err(PhotoError::TooLarge {
                max: self.rules.max_bytes,
            });
        }
        // Keep the last TAIL bytes.
        self.tail
            .extend_from_slice(&data[data.len().saturating_sub(TAIL)..]);
        if self.tail.len() > TAIL {
            self.tail.drain(..self.tail.len() - TAIL);
        }
        if self.dims.is_none() {
            let room = MAX_HEAD - self.head.len();
            self.head.extend_from_slice(&data[..data.len().min(room)]);
            self.try_header(false)?;
        }
        Ok(())
    }

    fn try_header(&mut self, at_end: bool) -> Result<(), PhotoError> {
        if self.format.is_none() {
            if self.head.len() < 12 && !at_end {
                return Ok(());
            }
            self.format = Some(if self.head.starts_with(b"\x89PNG\r\n\x1a\n") {
                PhotoFormat::Png
            } else if self.head.starts_with(b"\xff\xd8\xff") {
                PhotoFormat::Jpeg
            } else {
                return Err(match sniff_any(&self.head) {
                    Some(other) => PhotoError::WrongFormat(other.to_string()),
                    None => PhotoError::NotAnImage,
                });
            });
        }
        let format = self.format.expect("set above");
        let grown = self.head.len() - self.tried_at;
        if !at_end && self.tried_at != 0 && grown < 16 * 1024 && self.head.len() < MAX_HEAD {
            return Ok(());
        }
        self.tried_at = self.head.len();
        match imagesize::image_type(&self.head) {
            Ok(imagesize::ImageType::Jpeg) | Ok(imagesize::ImageType::Png) => {}
            _ => return Err(PhotoError::BadHeader(format)),
        }
        match imagesize::blob_size(&self.head) {
            Ok(size) if size.width > 0 && size.height > 0 => {
                let (w, h) = (
                    u32::try_from(size.width).unwrap_or(u32::MAX),
                    u32::try_from(size.height).unwrap_or(u32::MAX),
                );
                self.check_side("width", w)?;
                self.check_side("height", h)?;
                self.dims = Some((w, h));
                self.head = Vec::new();
                Ok(())
            }
            Ok(_) => Err(PhotoError::BadHeader(format)),
            Err(_) if !at_end && self.head.len() < MAX_HEAD => Ok(()),
            Err(_) => Err(PhotoError::BadHeader(format)),
        }
    }

    fn check_side(&self, axis: &'static str, value: u32) -> Result<(), PhotoError> {
        if value < self.rules.min_side || value > self.rules.max_side {
            return Err(PhotoError::Dimension {
                axis,
                value,
                min: self.rules.min_side,
                max: self.rules.max_side,
            });
        }
        Ok(())
    }

    /// Called after the last byte: completes the checks.
    pub fn finish(mut self) -> Result<PhotoInfo, PhotoError> {
        if self.size == 0 {
            return Err(PhotoError::Empty);
        }
        if self.dims.is_none() {
            self.try_header(true)?;
        }
        let format = self.format.ok_or(PhotoError::NotAnImage)?;
        let (width, height) = self.dims.ok_or(PhotoError::BadHeader(format))?;
        let complete = match format {
            PhotoFormat::Png => self.tail.ends_with(&PNG_IEND),
            PhotoFormat::Jpeg => {
                // Some encoders pad after EOI; zero/whitespace padding is fine.
                let end = self
                    .tail
                    .iter()
                    .rposition(|b| !matches!(b, 0 | b'\r' | b'\n' | b' '))
                    .map(|i| i + 1)
                    .unwrap_or(0);
                self.tail[..end].ends_with(&[0xFF, 0xD9])
            }
        };
        if !complete {
            return Err(PhotoError::Truncated(format));
        }
        if self.size < self.rules.min_bytes {
            return Err(PhotoError::TooSmall {
                size: self.size,
                min: self.rules.min_bytes,
            });
        }
        Ok(PhotoInfo {
            format,
            width,
            height,
            size: self.size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: PhotoRules = PhotoRules {
        min_bytes: 1,
        max_bytes: 1 << 20,
        min_side: 64,
        max_side: 4096,
    };

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    fn check(bytes: &[u8], piece: usize) -> Result<PhotoInfo, PhotoError> {
        let mut c = PhotoCheck::new(RULES);
        for p in bytes.chunks(piece) {
            c.push(p)?;
        }
        c.finish()
    }

    #[test]
    fn accepts_real_png_and_jpeg_in_any_piece_size() {
        for piece in [1, 7, 4096, 1 << 20] {
            let p = check(&png(100, 80), piece).unwrap();
            assert_eq!((p.format, p.width, p.height), (PhotoFormat::Png, 100, 80));
            let j = check(&jpeg(120, 90), piece).unwrap();
            assert_eq!((j.format, j.width, j.height), (PhotoFormat::Jpeg, 120, 90));
        }
    }

    #[test]
    fn refuses_truncated_files() {
        let p = png(100, 100);
        assert_eq!(
            check(&p[..p.len() - 5], 999),
            Err(PhotoError::Truncated(PhotoFormat::Png))
        );
        let j = jpeg(100, 100);
        assert_eq!(
            check(&j[..j.len() / 2], 999),
            Err(PhotoError::Truncated(PhotoFormat::Jpeg))
        );
        // Cut inside the header.
        assert_eq!(
            check(&p[..20], 999),
            Err(PhotoError::BadHeader(PhotoFormat::Png))
        );
    }

    #[test]
    fn refuses_other_formats_and_junk() {
        assert_eq!(check(b"", 10), Err(PhotoError::Empty));
        assert_eq!(
            check(b"GIF89a\x01\x00\x01\x00junkjunkjunk", 10),
            Err(PhotoError::WrongFormat("gif".into()))
        );
        assert_eq!(
            check(b"hello, this is text", 10),
            Err(PhotoError::NotAnImage)
        );
        assert_eq!(check(b"\x89PNG", 10), Err(PhotoError::NotAnImage));
    }

    #[test]
    fn dimension_bounds() {
        assert!(matches!(
            check(&png(63, 100), 4096),
            Err(PhotoError::Dimension {
                axis: "width",
                value: 63,
                ..
            })
        ));
        assert!(matches!(
            check(&png(100, 4097), 4096),
            Err(PhotoError::Dimension {
                axis: "height",
                value: 4097,
                ..
            })
        ));
        assert!(check(&png(64, 4096), 1 << 20).is_ok());
    }

    #[test]
    fn size_limit_stops_early() {
        let mut c = PhotoCheck::new(PhotoRules {
            max_bytes: 10,
            ..RULES
        });
        assert_eq!(c.push(&[0xff; 11]), Err(PhotoError::TooLarge { max: 10 }));
    }

    #[test]
    fn forged_header_with_huge_dimensions_is_refused_before_the_body() {
        // A PNG header declaring 60000x60000: refused on the header alone.
        let mut p = png(100, 100);
        p[16..20].copy_from_slice(&60000u32.to_be_bytes());
        let mut c = PhotoCheck::new(RULES);
        assert!(matches!(
            c.push(&p[..64]),
            Err(PhotoError::Dimension { value: 60000, .. })
        ));
    }
}
