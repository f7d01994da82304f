//! What a payload that should be opaque features (a face or fingerprint
//! template) holds when it is really a file: a picture anywhere inside it,
//! or a known container at its start.
//!
//! Detection is `infer`'s (a maintained magic-number detector of some 200
//! types), run at every offset of the payload for pictures, so that a photo
//! behind a byte or two of padding is found as surely as one at the front.
//! A magic number of a few bytes also turns up by chance inside random
//! features, so a picture found that way counts only once its header parses
//! (the decoder's own header parse where facehub decodes the format,
//! `imagesize` where it does not). Templates are at most a few KiB, which
//! keeps the scan cheap: a candidate offset costs a handful of byte
//! comparisons, and header parses run only at the rare candidates.

use std::fmt;
use std::io::Cursor;

use infer::MatcherType;

/// A file found inside a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contained {
    /// The detector's MIME type for it (`image/jpeg`, `application/zip`).
    pub mime: &'static str,
    /// The byte it starts at.
    pub offset: usize,
}

impl fmt::Display for Contained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.mime, self.offset)
    }
}

/// Types the detector names on two bytes of magic: one random template in
/// about 30,000 starts like one of them (measured over 16 million random
/// prefixes; every other non-picture type matched under one in a million).
/// Features are no less likely to start so, hence such a match at the front
/// proves nothing.
const CHANCE_AT_FRONT: &[&str] = &["Z", "cpio", "der", "obj", "ps", "sh"];

/// The first picture inside `data` (at any offset), else the container or
/// document `data` is (at offset 0); `None` when neither is found.
pub fn file_within(data: &[u8]) -> Option<Contained> {
    if let Some(kind) = infer::get(data)
        && kind.matcher_type() != MatcherType::Image
        && !CHANCE_AT_FRONT.contains(&kind.extension())
    {
        return Some(Contained {
            mime: kind.mime_type(),
            offset: 0,
        });
    }
    (0..data.len()).find_map(|offset| picture_at(data, offset))
}

/// A picture starting at `offset`, if the detector names one there and its
/// header bears it out.
fn picture_at(data: &[u8], offset: usize) -> Option<Contained> {
    let rest = &data[offset..];
    if !may_start_picture(rest) {
        return None;
    }
    let kind = infer::get(rest).filter(|k| k.matcher_type() == MatcherType::Image)?;
    let confirmed = match kind.extension() {
        // Four bytes (`00 00 01 00`) that little-endian integers inside
        // real templates spell often; an icon is at most a thumbnail.
        "ico" => false,
        // Two bytes of magic: the header's file size must also be the
        // size of what follows.
        "bmp" => {
            rest.len() >= 26
                && u32::from_le_bytes(rest[2..6].try_into().expect("4 bytes")) as usize
                    == rest.len()
                && decoder_reads_header(rest)
        }
        "jpg" | "png" | "gif" | "webp" => decoder_reads_header(rest),
        // Four bytes of magic, and a header `imagesize` parses.
        "tif" | "cr2" | "psd" => {
            imagesize::blob_size(rest).is_ok_and(|s| s.width > 0 && s.height > 0)
        }
        // Eight bytes of magic or more (an ISO-BMFF `ftyp` box with its
        // brand, JPEG 2000's and OpenRaster's signatures, DjVu's form):
        // not chance.
        "heif" | "avif" | "jp2" | "ora" | "djvu" => true,
        // JPEG XL in its box (twelve bytes); its bare codestream's two-byte
        // mark is chance in one template of tens of thousands.
        "jxl" => rest[0] == 0,
        // JPEG XR's three bytes: only at the front.
        _ => offset == 0,
    };
    confirmed.then_some(Contained {
        mime: kind.mime_type(),
        offset,
    })
}

/// `infer`'s picture matchers called directly, which the compiler inlines
/// into a few byte comparisons; the detector itself walks all its ~200
/// types through pointers, 50 ns a byte over a whole template. The front
/// of a payload goes through the whole detector, so a picture type this
/// list lacks is still found there.
fn may_start_picture(b: &[u8]) -> bool {
    use infer::image::*;
    is_jpeg(b)
        || is_png(b)
        || is_gif(b)
        || is_webp(b)
        || is_bmp(b)
        || is_tiff(b)
        || is_cr2(b)
        || is_psd(b)
        || is_heif(b)
        || is_avif(b)
        || is_jpeg2000(b)
        || is_jxl(b)
        || is_jxr(b)
        || is_ora(b)
        || is_djvu(b)
        || is_ico(b)
}

/// The `image` crate's decoder for the format parses the header (JPEG:
/// every marker segment up to the scan, tables included), which chance
/// bytes do not survive.
fn decoder_reads_header(bytes: &[u8]) -> bool {
    image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .is_some_and(|(w, h)| w > 0 && h > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::samples;

    use samples::features;

    fn mime(data: &[u8]) -> Option<(&'static str, usize)> {
        file_within(data).map(|c| (c.mime, c.offset))
    }

    #[test]
    fn pictures_are_found_at_the_front_and_behind_padding() {
        let jpeg = samples::jpeg(64, 64);
        let png = samples::png(64, 64);
        assert_eq!(mime(&jpeg), Some(("image/jpeg", 0)));
        assert_eq!(mime(&png), Some(("image/png", 0)));
        for pad in [1, 2, 7, 300] {
            let mut padded = features(pad, 3);
            padded.extend_from_slice(&jpeg);
            assert_eq!(mime(&padded), Some(("image/jpeg", pad)), "pad {pad}");
            let mut padded = features(pad, 4);
            padded.extend_from_slice(&png);
            padded.extend_from_slice(&features(50, 5));
            assert_eq!(mime(&padded), Some(("image/png", pad)), "pad {pad}");
        }
    }

    #[test]
    fn tiff_heif_and_avif_are_pictures() {
        let tiff = samples::tiff_header(40, 30);
        assert_eq!(mime(&tiff), Some(("image/tiff", 0)));
        let mut padded = vec![0x5a];
        padded.extend_from_slice(&tiff);
        assert_eq!(mime(&padded), Some(("image/tiff", 1)));

        for (brand, want) in [(b"heic", "image/heif"), (b"avif", "image/avif")] {
            let bmff = samples::bmff_picture(brand, &features(200, 6));
            assert_eq!(mime(&bmff), Some((want, 0)), "{want}");
        }
    }

    #[test]
    fn containers_are_found_at_the_front() {
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&features(200, 7));
        assert_eq!(mime(&zip), Some(("application/zip", 0)));
        let mut pdf = b"%PDF-1.7\n".to_vec();
        pdf.extend_from_slice(&features(200, 8));
        assert_eq!(mime(&pdf), Some(("application/pdf", 0)));
    }

    #[test]
    fn features_are_not_files() {
        // Ten thousand random templates of a realistic size: none is
        // taken for a file (a chance magic number does not parse).
        for seed in 0..10_000 {
            let t = features(512 + (seed as usize % 4) * 512, seed);
            assert_eq!(mime(&t), None, "seed {seed}");
        }
        assert_eq!(mime(&[0x3f; 512]), None);
        assert_eq!(mime(b"BM\0\0\0\0 features that start with BM......"), None);
        assert_eq!(mime(&[0, 0, 1, 0, 9, 9, 9, 9]), None);
        // A JPEG's first bytes followed by features are not a picture.
        let mut fake = b"\xff\xd8\xff\xe0".to_vec();
        fake.extend_from_slice(&features(1000, 9));
        assert_eq!(mime(&fake), None);
    }
}
