//! The one image-validation core every upload goes through (attendance
//! photos, door-access faces, wiki images).
//!
//! Validation is decided by the bytes, never by a name or a declared
//! Content-Type, and happens in two stages:
//!
//! 1. [`Probe`] sees every byte exactly once while the upload streams in and
//!    keeps only a bounded prefix and suffix. It names the format from the
//!    magic bytes, reads the dimensions from the header before the pixels
//!    arrive (a decompression bomb is refused on its header, without
//!    allocating for it), cuts the body off as soon as it passes the size
//!    limit, and at the end checks the size floor. (Where a file ends is
//!    left to the decoder: phones append data after a JPEG's end marker.)
//! 2. [`decode`] decodes the complete file under explicit memory limits:
//!    dimensions are taken from the decoder's own header parse and checked
//!    before any pixel buffer exists, animation frames and icon entries are
//!    checked against the header that declares them, and a pixel budget
//!    bounds the work of animations. A truncated or corrupt file fails here.
//!
//! [`check`] runs both over a slice (fuzzing, benchmarks, tests).

pub mod contained;
mod decode;
pub mod face;
mod ico;
/// Sample images for tests, benchmarks and fuzz seeds.
#[doc(hidden)]
pub mod samples;

use std::fmt;

pub use decode::{decode, limits};

/// The formats any surface can accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Ico,
    Bmp,
    Gif,
    Png,
    Jpeg,
    Webp,
}

impl ImageFormat {
    pub const ALL: [ImageFormat; 6] = [
        ImageFormat::Ico,
        ImageFormat::Bmp,
        ImageFormat::Gif,
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Webp,
    ];

    /// The stable lower-case name (stored in metadata, shown in messages).
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Ico => "ico",
            ImageFormat::Bmp => "bmp",
            ImageFormat::Gif => "gif",
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Webp => "webp",
        }
    }

    pub fn parse(name: &str) -> Option<ImageFormat> {
        ImageFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Ico => "image/x-icon",
            ImageFormat::Bmp => "image/bmp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }

    /// File name extensions (lower case, no dot) that name this format.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            ImageFormat::Ico => &["ico", "icon"],
            ImageFormat::Bmp => &["bmp", "dib"],
            ImageFormat::Gif => &["gif"],
            ImageFormat::Png => &["png", "apng"],
            ImageFormat::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            ImageFormat::Webp => &["webp"],
        }
    }

    pub fn matches_extension(self, ext: &str) -> bool {
        self.extensions().contains(&ext)
    }

    /// The image format an extension names, if any.
    pub fn from_extension(ext: &str) -> Option<ImageFormat> {
        ImageFormat::ALL
            .into_iter()
            .find(|f| f.matches_extension(ext))
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Image(ImageFormat),
    /// A known format that no surface accepts (named in the refusal).
    Other(&'static str),
    Unknown,
}

/// Bytes [`sniff`] needs to decide.
pub const SNIFF_LEN: usize = 12;

pub fn sniff(head: &[u8]) -> Sniffed {
    const SIGS: &[(&[u8], Sniffed)] = &[
        (b"\x89PNG\r\n\x1a\n", Sniffed::Image(ImageFormat::Png)),
        (b"\xff\xd8\xff", Sniffed::Image(ImageFormat::Jpeg)),
        (b"GIF87a", Sniffed::Image(ImageFormat::Gif)),
        (b"GIF89a", Sniffed::Image(ImageFormat::Gif)),
        (b"BM", Sniffed::Image(ImageFormat::Bmp)),
        (b"\0\0\x01\0", Sniffed::Image(ImageFormat::Ico)),
        (b"\0\0\x02\0", Sniffed::Other("cur")),
        (b"II*\0", Sniffed::Other("tiff")),
        (b"MM\0*", Sniffed::Other("tiff")),
        (b"%PDF", Sniffed::Other("pdf")),
        (b"PK\x03\x04", Sniffed::Other("zip")),
        (b"8BPS", Sniffed::Other("psd")),
        (b"\xff\x0a", Sniffed::Other("jxl")),
        (b"\0\0\0\x0cJXL ", Sniffed::Other("jxl")),
        (b"qoif", Sniffed::Other("qoi")),
        (b"<svg", Sniffed::Other("svg")),
        (b"<?xml", Sniffed::Other("xml")),
    ];
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Sniffed::Image(ImageFormat::Webp);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Sniffed::Other(match &head[8..12] {
            b"avif" | b"avis" => "avif",
            _ => "heif",
        });
    }
    SIGS.iter()
        .find(|(sig, _)| head.starts_with(sig))
        .map(|(_, s)| *s)
        .unwrap_or(Sniffed::Unknown)
}

/// A set of accepted formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatSet(u8);

impl FormatSet {
    pub fn of(formats: &[ImageFormat]) -> FormatSet {
        FormatSet(formats.iter().fold(0, |bits, f| bits | f.bit()))
    }

    pub fn all() -> FormatSet {
        FormatSet::of(&ImageFormat::ALL)
    }

    pub fn contains(self, f: ImageFormat) -> bool {
        self.0 & f.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = ImageFormat> {
        ImageFormat::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

impl fmt::Display for FormatSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, format) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(format.name())?;
        }
        Ok(())
    }
}

/// What one surface accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRules {
    pub formats: FormatSet,
    pub min_bytes: u64,
    pub max_bytes: u64,
    pub min_side: u32,
    pub max_side: u32,
}

impl ImageRules {
    /// Wiki (lingo) images, as the platform page states them: icon, bmp,
    /// gif, png, jpeg, webp; 320–4096 px per side; 3 KB–10 MB (binary
    /// units, as the platform's other size limits).
    pub fn lingo() -> ImageRules {
        ImageRules {
            formats: FormatSet::all(),
            min_bytes: 3 * 1024,
            max_bytes: 10 * 1024 * 1024,
            min_side: 320,
            max_side: 4096,
        }
    }

    /// Pixels an animation (all frames) or icon (all entries) may decode
    /// to: 32 frames of the largest canvas (about a second of decoding).
    /// Bounds the work a small file can demand.
    pub fn pixel_budget(&self) -> u64 {
        32 * u64::from(self.max_side) * u64::from(self.max_side)
    }

    /// Bytes one decoder may allocate: an 8-bit RGBA canvas of the largest
    /// size plus room for the decoders' own tables.
    pub fn max_alloc(&self) -> u64 {
        4 * u64::from(self.max_side) * u64::from(self.max_side) + 16 * 1024 * 1024
    }

    fn check_side(&self, axis: &'static str, value: u32) -> Result<(), ImageError> {
        if value > self.max_side {
            return Err(ImageError::SideTooLarge {
                axis,
                value,
                max: self.max_side,
            });
        }
        if value < self.min_side {
            return Err(ImageError::SideTooSmall {
                axis,
                value,
                min: self.min_side,
            });
        }
        Ok(())
    }

    pub fn check_dims(&self, width: u32, height: u32) -> Result<(), ImageError> {
        self.check_side("width", width)?;
        self.check_side("height", height)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// Animation frames, or icon entries; 1 for a still image.
    pub frames: u32,
}

/// Why an image was refused; the message names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("file is empty")]
    Empty,
    #[error("file size exceeds {}", human_size(*.max))]
    TooLarge { max: u64 },
    #[error("file size {} is below {}", human_size(*.size), human_size(*.min))]
    TooSmall { size: u64, min: u64 },
    #[error("format {found} is not accepted (accepted: {accepted})")]
    FormatNotAccepted {
        found: &'static str,
        accepted: FormatSet,
    },
    #[error("file content is not a recognised image (accepted: {accepted})")]
    NotAnImage { accepted: FormatSet },
    #[error("{axis} {value} exceeds {max}")]
    SideTooLarge {
        axis: &'static str,
        value: u32,
        max: u32,
    },
    #[error("{axis} {value} is below {min}")]
    SideTooSmall {
        axis: &'static str,
        value: u32,
        min: u32,
    },
    #[error("{0} data is truncated")]
    Truncated(ImageFormat),
    #[error("{format} data is corrupt: {detail}")]
    Corrupt { format: ImageFormat, detail: String },
    #[error("{format} structure is inconsistent: {detail}")]
    Inconsistent { format: ImageFormat, detail: String },
    #[error("{format} decodes to more than {budget} pixels in all")]
    TooManyPixels { format: ImageFormat, budget: u64 },
}

impl ImageError {
    /// The rule's name, for metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            ImageError::Empty => "empty",
            ImageError::TooLarge { .. } => "too_large",
            ImageError::TooSmall { .. } => "too_small",
            ImageError::FormatNotAccepted { .. } => "format_not_accepted",
            ImageError::NotAnImage { .. } => "not_an_image",
            ImageError::SideTooLarge { .. } => "side_too_large",
            ImageError::SideTooSmall { .. } => "side_too_small",
            ImageError::Truncated(_) => "truncated",
            ImageError::Corrupt { .. } => "corrupt",
            ImageError::Inconsistent { .. } => "inconsistent",
            ImageError::TooManyPixels { .. } => "too_many_pixels",
        }
    }
}

/// `2.1 KB`, `3 KB`, `10 MB`, `512 bytes` (binary units).
pub fn human_size(n: u64) -> String {
    const KB: u64 = 1024;
    const MB: u64 = 1024 * 1024;
    let (unit, name) = match n {
        n if n >= MB => (MB, "MB"),
        n if n >= KB => (KB, "KB"),
        _ => return format!("{n} bytes"),
    };
    if n.is_multiple_of(unit) {
        format!("{} {name}", n / unit)
    } else {
        // Round down so a size just below a limit never prints as the limit.
        let tenths = n * 10 / unit;
        format!("{}.{} {name}", tenths / 10, tenths % 10)
    }
}

/// What the streaming stage learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probed {
    pub format: ImageFormat,
    pub size: u64,
    /// From the header, when it could be read within the bounded prefix
    /// (icons always leave this to [`decode`]: their directory cannot
    /// express sizes above 256 px).
    pub dims: Option<(u32, u32)>,
}

/// How many leading bytes may be kept while looking for the dimensions (a
/// JPEG's frame header can follow large EXIF/ICC segments); past this the
/// decision is left to [`decode`].
const MAX_HEAD: usize = 512 * 1024;

/// The streaming stage: push every piece, then [`Probe::finish`].
pub struct Probe {
    rules: ImageRules,
    head: Vec<u8>,
    size: u64,
    format: Option<ImageFormat>,
    dims: Option<(u32, u32)>,
    /// Header parsing is over: dimensions known, or left to `decode`.
    header_done: bool,
    /// `head.len()` at the last parse attempt, so that a trickle of small
    /// pieces does not re-parse the header for each one.
    tried_at: usize,
}

impl Probe {
    pub fn new(rules: ImageRules) -> Probe {
        Probe {
            rules,
            head: Vec::new(),
            size: 0,
            format: None,
            dims: None,
            header_done: false,
            tried_at: 0,
        }
    }

    /// Feeds the next bytes; fails as soon as a rule is known to be broken.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ImageError> {
        self.size += data.len() as u64;
        if self.size > self.rules.max_bytes {
            return Err(ImageError::TooLarge {
                max: self.rules.max_bytes,
            });
        }
        if !self.header_done {
            let room = MAX_HEAD - self.head.len();
            self.head.extend_from_slice(&data[..data.len().min(room)]);
            self.try_header(false)?;
        }
        Ok(())
    }

    fn try_header(&mut self, at_end: bool) -> Result<(), ImageError> {
        let format = match self.format {
            Some(f) => f,
            None => {
                if self.head.len() < SNIFF_LEN && !at_end {
                    return Ok(());
                }
                let f = match sniff(&self.head) {
                    Sniffed::Image(f) if self.rules.formats.contains(f) => f,
                    Sniffed::Image(f) => {
                        return Err(ImageError::FormatNotAccepted {
                            found: f.name(),
                            accepted: self.rules.formats,
                        });
                    }
                    Sniffed::Other(name) => {
                        return Err(ImageError::FormatNotAccepted {
                            found: name,
                            accepted: self.rules.formats,
                        });
                    }
                    Sniffed::Unknown => {
                        return Err(ImageError::NotAnImage {
                            accepted: self.rules.formats,
                        });
                    }
                };
                self.format = Some(f);
                f
            }
        };
        // An icon's directory cannot say sizes above 256 px, and bitmap
        // headers are signed (top-down) or 16-bit (OS/2), which the header
        // reader misreads: both are left to `decode`.
        if matches!(format, ImageFormat::Ico | ImageFormat::Bmp) {
            self.end_header();
            return Ok(());
        }
        let grown = self.head.len() - self.tried_at;
        let full = self.head.len() >= MAX_HEAD;
        if !at_end && !full && self.tried_at != 0 && grown < 16 * 1024 {
            return Ok(());
        }
        self.tried_at = self.head.len();
        match imagesize::blob_size(&self.head) {
            Ok(size) => {
                let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
                let (w, h) = (clamp(size.width), clamp(size.height));
                self.rules.check_dims(w, h)?;
                self.dims = Some((w, h));
                self.end_header();
            }
            // Not enough of the header yet; at the end (or with the prefix
            // full) the full decode gives the precise answer.
            Err(_) if at_end || full => self.end_header(),
            Err(_) => {}
        }
        Ok(())
    }

    fn end_header(&mut self) {
        self.header_done = true;
        self.head = Vec::new();
    }

    /// Called after the last byte: completes the streaming checks.
    pub fn finish(mut self) -> Result<Probed, ImageError> {
        if self.size == 0 {
            return Err(ImageError::Empty);
        }
        if !self.header_done {
            self.try_header(true)?;
        }
        let format = self.format.ok_or(ImageError::NotAnImage {
            accepted: self.rules.formats,
        })?;
        if self.size < self.rules.min_bytes {
            return Err(ImageError::TooSmall {
                size: self.size,
                min: self.rules.min_bytes,
            });
        }
        Ok(Probed {
            format,
            size: self.size,
            dims: self.dims,
        })
    }
}

/// Both stages over a complete file.
pub fn check(bytes: &[u8], rules: &ImageRules) -> Result<ImageInfo, ImageError> {
    let mut probe = Probe::new(*rules);
    probe.push(bytes)?;
    let probed = probe.finish()?;
    decode(bytes, probed.format, rules)
}

#[cfg(test)]
mod tests;
