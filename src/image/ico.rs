//! ICO files: a directory of entries, each a PNG or a headerless BMP (DIB).
//!
//! The directory is read here rather than through `image`'s `IcoDecoder`,
//! which exposes only the entry it would display: validation must see every
//! entry, check that each one's own header agrees with the directory that
//! declares it, and that each lies inside the file. The format is a fixed
//! 6-byte header plus 16-byte records (no variable-length parsing), so the
//! hand-written reader is a few bounds-checked reads.

use std::io::Cursor;

use super::decode::{buffer, limits, png_within};
use super::{ImageError, ImageFormat, ImageRules};

const F: ImageFormat = ImageFormat::Ico;
const DIR_HEADER: usize = 6;
const DIR_ENTRY: usize = 16;

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn inconsistent(detail: String) -> ImageError {
    ImageError::Inconsistent { format: F, detail }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// As declared in the directory (0 means 256).
    dir_width: u32,
    dir_height: u32,
    offset: usize,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Found {
    width: u32,
    height: u32,
    bits: u16,
    png: bool,
}

fn directory(bytes: &[u8]) -> Result<Vec<Entry>, ImageError> {
    if bytes.len() < DIR_HEADER {
        return Err(ImageError::Truncated(F));
    }
    let count = usize::from(u16le(bytes, 4));
    if count == 0 {
        return Err(ImageError::Corrupt {
            format: F,
            detail: "icon directory lists no images".into(),
        });
    }
    let dir_end = DIR_HEADER + count * DIR_ENTRY;
    if bytes.len() < dir_end {
        return Err(ImageError::Truncated(F));
    }
    (0..count)
        .map(|i| {
            let at = DIR_HEADER + i * DIR_ENTRY;
            let side = |b: u8| if b == 0 { 256 } else { u32::from(b) };
            let len = u32le(bytes, at + 8) as usize;
            let offset = u32le(bytes, at + 12) as usize;
            let entry = Entry {
                dir_width: side(bytes[at]),
                dir_height: side(bytes[at + 1]),
                offset,
                len,
            };
            if len == 0 || offset < dir_end {
                return Err(inconsistent(format!(
                    "entry {} has offset {offset} and size {len}, inside the directory",
                    i + 1
                )));
            }
            if offset.checked_add(len).is_none_or(|end| end > bytes.len()) {
                return Err(ImageError::Truncated(F));
            }
            Ok(entry)
        })
        .collect()
}

/// The dimensions and depth an entry's own header declares, after checking
/// that its data is all there; PNG entries are decoded here, charged to
/// the icon's one pixel budget.
fn entry_header(
    i: usize,
    data: &[u8],
    rules: &ImageRules,
    total: &mut u64,
) -> Result<Found, ImageError> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        // Entries may be small (16 px); only the upper bound applies here.
        let entry_rules = ImageRules {
            min_side: 1,
            ..*rules
        };
        let (width, height, _) =
            png_within(data, &entry_rules, total, false).map_err(|e| match e {
                ImageError::Truncated(_) => ImageError::Truncated(F),
                ImageError::TooManyPixels { budget, .. } => {
                    ImageError::TooManyPixels { format: F, budget }
                }
                other => inconsistent(format!("entry {}: {other}", i + 1)),
            })?;
        return Ok(Found {
            width,
            height,
            bits: 32,
            png: true,
        });
    }
    // BITMAPINFOHEADER (or a later version of it), without the file header;
    // the height counts the colour rows and the AND mask rows.
    if data.len() < 40 {
        return Err(ImageError::Truncated(F));
    }
    let header = u32le(data, 0) as usize;
    let width = u32le(data, 4) as i32;
    let height2 = u32le(data, 8) as i32;
    let bits = u16le(data, 14);
    let compression = u32le(data, 16);
    let colors = u32le(data, 32) as usize;
    let bad = |what: String| inconsistent(format!("entry {}: {what}", i + 1));
    if !matches!(header, 40 | 52 | 56 | 108 | 124) {
        return Err(bad(format!(
            "bitmap header size {header} is not a known version"
        )));
    }
    if width <= 0 || height2 <= 0 || height2 % 2 != 0 {
        return Err(bad(format!(
            "bitmap size {width}x{height2} is not a valid icon bitmap"
        )));
    }
    let (width, height) = (width as u32, height2 as u32 / 2);
    if width > rules.max_side || height > rules.max_side {
        return Err(ImageError::SideTooLarge {
            axis: if width > rules.max_side {
                "width"
            } else {
                "height"
            },
            value: width.max(height),
            max: rules.max_side,
        });
    }
    if !matches!(bits, 1 | 4 | 8 | 16 | 24 | 32) || !matches!(compression, 0 | 3) {
        return Err(bad(format!(
            "bitmap of {bits} bits with compression {compression} is not an icon bitmap"
        )));
    }
    let palette = if bits <= 8 {
        let n = if colors == 0 { 1 << bits } else { colors };
        if n > 1 << bits {
            return Err(bad(format!("palette of {n} colours for {bits} bits")));
        }
        n * 4
    } else if compression == 3 && header == 40 {
        12
    } else {
        0
    };
    let row = |bits_per_px: u64| (u64::from(width) * bits_per_px).div_ceil(32) * 4;
    let color = row(u64::from(bits)) * u64::from(height);
    // 32-bit entries carry alpha; their AND mask is often left out.
    let mask = if bits == 32 {
        0
    } else {
        row(1) * u64::from(height)
    };
    let needed = header as u64 + palette as u64 + color + mask;
    if (data.len() as u64) < needed {
        return Err(ImageError::Truncated(F));
    }
    total_add(total, width, height, rules)?;
    Ok(Found {
        width,
        height,
        bits,
        png: false,
    })
}

fn total_add(total: &mut u64, w: u32, h: u32, rules: &ImageRules) -> Result<(), ImageError> {
    *total += u64::from(w) * u64::from(h);
    if *total > rules.pixel_budget() {
        return Err(ImageError::TooManyPixels {
            format: F,
            budget: rules.pixel_budget(),
        });
    }
    Ok(())
}

pub(super) fn decode(bytes: &[u8], rules: &ImageRules) -> Result<(u32, u32, u32), ImageError> {
    let entries = directory(bytes)?;
    // Entries must not share bytes: one large image referenced many times
    // would multiply the decoding work without growing the file.
    let mut ranges: Vec<(usize, usize)> = entries
        .iter()
        .map(|e| (e.offset, e.offset + e.len))
        .collect();
    ranges.sort_unstable();
    if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
        return Err(inconsistent("entries overlap".into()));
    }
    let mut best: Option<Found> = None;
    let mut total = 0u64;
    for (i, e) in entries.iter().enumerate() {
        let found = entry_header(i, &bytes[e.offset..e.offset + e.len], rules, &mut total)?;
        if e.dir_width != found.width.min(256) || e.dir_height != found.height.min(256) {
            return Err(inconsistent(format!(
                "entry {} is declared {}x{} but holds a {}x{} image",
                i + 1,
                e.dir_width,
                e.dir_height,
                found.width,
                found.height
            )));
        }
        let key = |f: &Found| (u64::from(f.width) * u64::from(f.height), f.bits);
        if best.is_none_or(|b| key(&found) > key(&b)) {
            best = Some(found);
        }
    }
    let best = best.expect("at least one entry");
    rules.check_dims(best.width, best.height)?;
    if !best.png {
        // PNG entries were decoded above; a bitmap is decoded by `image`,
        // which picks the same entry (largest, then deepest).
        use ::image::ImageDecoder;
        let err = |e: ::image::ImageError| ImageError::Corrupt {
            format: F,
            detail: e.to_string(),
        };
        let mut decoder = ::image::codecs::ico::IcoDecoder::new(Cursor::new(bytes)).map_err(err)?;
        decoder.set_limits(limits(rules)).map_err(err)?;
        let mut buf = buffer(F, decoder.total_bytes(), rules)?;
        decoder.read_image(&mut buf).map_err(err)?;
    }
    Ok((best.width, best.height, entries.len() as u32))
}
