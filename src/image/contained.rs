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

/// Types the detector names on two bytes: over every three-byte prefix
/// (with random bytes after it), each of these was named for 256 or more
/// of the 16.8 million, i.e. one random template in 65,536 or more starts
/// like one; HTML (its short tags) for 12. Features start so as often as
/// random bytes do, hence such a match at the front proves nothing. Every
/// other type was named for at most two prefixes (three bytes of magic or
/// more). BMP and JPEG XL's bare codestream are pictures, confirmed by
/// [`picture_at`] where it can.
const CHANCE_AT_FRONT: &[&str] = &[
    "Z", "aac", "bc", "bmp", "cpio", "der", "exe", "html", "jxl", "mp3", "obj", "ps", "sh",
];

/// Picture headers at offsets that do not parse before the scan gives up
/// and calls the payload a file: random features show a three-byte magic
/// in one template of ~2,000, so more than a handful is a payload built to
/// hide a picture behind decoys (and to make the scan parse at every
/// offset).
const MAX_DECOYS: usize = 8;

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
    let mut decoys = 0;
    for offset in 0..data.len() {
        match picture_at(data, offset) {
            Candidate::None => {}
            Candidate::Picture(found) => return Some(found),
            Candidate::Unconfirmed(mime) => {
                decoys += 1;
                if decoys > MAX_DECOYS {
                    return Some(Contained { mime, offset });
                }
            }
        }
    }
    None
}

/// The type a whole file is, judged from its first bytes only (an upload
/// meant to be text, such as a CSV import): `None` for text and for the
/// types two chance bytes name.
pub fn file_at_front(head: &[u8]) -> Option<Contained> {
    infer::get(head)
        .filter(|k| k.matcher_type() != MatcherType::Text)
        .filter(|k| !CHANCE_AT_FRONT.contains(&k.extension()))
        .map(|k| Contained {
            mime: k.mime_type(),
            offset: 0,
        })
}

/// What one offset holds.
enum Candidate {
    None,
    Picture(Contained),
    /// A picture's magic whose header does not parse (its MIME type).
    Unconfirmed(&'static str),
}

/// A picture starting at `offset`, if the detector names one there and its
/// header bears it out.
fn picture_at(data: &[u8], offset: usize) -> Candidate {
    let rest = &data[offset..];
    if !may_start_picture(rest) {
        return Candidate::None;
    }
    let Some(kind) = infer::get(rest).filter(|k| k.matcher_type() == MatcherType::Image) else {
        return Candidate::None;
    };
    let confirmed = match kind.extension() {
        // Four bytes (`00 00 01 00`) that little-endian integers inside
        // real templates spell often; an icon is at most a thumbnail.
        "ico" => false,
        // Two bytes of magic: the header's file size must also be the
        // size of what follows.
        "bmp" => {
            let sized = rest.len() >= 26
                && u32::from_le_bytes(rest[2..6].try_into().expect("4 bytes")) as usize
                    == rest.len();
            if !sized {
                // One template in eight holds a "BM": cheap to rule out,
                // so not a decoy.
                return Candidate::None;
            }
            decoder_reads_header(rest)
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
    match (confirmed, kind.extension()) {
        (true, _) => Candidate::Picture(Contained {
            mime: kind.mime_type(),
            offset,
        }),
        // Parsed and refused by design, not decoys.
        (false, "ico" | "jxl" | "jxr") => Candidate::None,
        (false, _) => Candidate::Unconfirmed(kind.mime_type()),
    }
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
    fn a_picture_behind_decoys_is_still_refused() {
        // Nine JPEG starts that do not parse, then a real PNG: the scan
        // stops at the ninth decoy and calls it a file.
        let mut t = Vec::new();
        for i in 0..9 {
            t.extend_from_slice(b"\xff\xd8\xff\xe0");
            t.extend_from_slice(&features(40, i));
        }
        t.extend_from_slice(&samples::png(16, 16));
        let found = file_within(&t).expect("a file");
        assert_eq!(found.mime, "image/jpeg");
        // Eight are tolerated (the PNG behind them is found).
        let eight = &t[44..];
        assert_eq!(mime(eight).map(|m| m.0), Some("image/png"));
    }

    #[test]
    fn the_front_of_an_upload_names_its_type() {
        assert_eq!(
            file_at_front(&samples::png(16, 16)).map(|c| c.mime),
            Some("image/png")
        );
        assert_eq!(
            file_at_front(b"PK\x03\x04rest").map(|c| c.mime),
            Some("application/zip")
        );
        // Text, and what two chance bytes name, are not files.
        assert_eq!(file_at_front(b"user_id,name\nu1,Ann\n"), None);
        assert_eq!(file_at_front(b"BMI,user_id,name\n"), None);
        assert_eq!(file_at_front(b"<html><body>"), None);
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
        // Two-byte magics at the front are chance, not files.
        for magic in [
            &b"MZ"[..],
            b"BC",
            b"#!",
            b"%!",
            &[0xFF, 0xFB],
            &[0xFF, 0xF1],
            &[0xFF, 0xF9],
        ] {
            let t = [magic, &features(600, 11)].concat();
            assert_eq!(mime(&t), None, "{magic:?}");
        }
        // A JPEG's first bytes followed by features are not a picture.
        let mut fake = b"\xff\xd8\xff\xe0".to_vec();
        fake.extend_from_slice(&features(1000, 9));
        assert_eq!(mime(&fake), None);
    }
}
