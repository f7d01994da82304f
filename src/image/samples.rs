//! Generated sample images for tests, benchmarks and fuzz seeds: every
//! accepted format, padded to exact sizes where a test needs an edge, and
//! the hand-forged shapes that encoders refuse to produce (icons with PNG
//! entries above 256 px, bitmap icon entries).

use std::io::Cursor;

use ::image::{ImageFormat as Codec, Rgb, RgbImage, Rgba, RgbaImage};

use super::ImageFormat;

/// Flat 64 px tiles in at most 256 colours: compresses well (large sides
/// stay small files) and needs no GIF quantisation. Built a row at a time:
/// tests make many 4096² samples in debug builds.
fn smooth(w: u32, h: u32, seed: u8) -> RgbImage {
    let mut buf = Vec::with_capacity(3 * w as usize * h as usize);
    let mut row = Vec::with_capacity(3 * w as usize);
    for y in 0..h {
        if y % 64 == 0 {
            row.clear();
            for x in 0..w {
                row.extend_from_slice(&[
                    ((x / 64) % 16 * 16) as u8 ^ seed,
                    ((y / 64) % 16 * 16) as u8,
                    128,
                ]);
            }
        }
        buf.extend_from_slice(&row);
    }
    RgbImage::from_raw(w, h, buf).expect("buffer matches the dimensions")
}

/// The smallest file of `format` with sides `w`×`h`: one flat colour.
pub fn flat(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_pixel(w, h, Rgb([200, 120, 40]));
    match format {
        ImageFormat::Ico => ico_raw(&[(dir_side(w), dir_side(h), &encode(&img, Codec::Png))]),
        ImageFormat::Jpeg => {
            // Grey and coarse: a colour JPEG of 320² is over 3 KB even flat.
            let grey = ::image::GrayImage::from_pixel(w, h, ::image::Luma([120]));
            let mut out = Vec::new();
            ::image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 30)
                .encode_image(&grey)
                .expect("encoding a sample");
            out
        }
        other => encode(&img, codec(other)),
    }
}

fn codec(format: ImageFormat) -> Codec {
    match format {
        ImageFormat::Png => Codec::Png,
        ImageFormat::Jpeg => Codec::Jpeg,
        ImageFormat::Gif => Codec::Gif,
        ImageFormat::Bmp => Codec::Bmp,
        ImageFormat::Webp => Codec::WebP,
        ImageFormat::Ico => Codec::Ico,
    }
}

/// A sample of `format` whose pixels are noise: realistic sizes (a 320²
/// WebP of flat colour is 200 bytes, of noise hundreds of KB).
pub fn noisy(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = noise(w, h, u64::from(w) << 32 | u64::from(h));
    match format {
        ImageFormat::Ico => ico_raw(&[(dir_side(w), dir_side(h), &encode(&img, Codec::Png))]),
        other => encode(&img, codec(other)),
    }
}

/// Pads `bytes` to `min` bytes if it is smaller (see [`pad_to`]).
pub fn at_least(bytes: Vec<u8>, min: usize) -> Vec<u8> {
    if bytes.len() >= min {
        bytes
    } else {
        pad_to(&bytes, min)
    }
}

/// Rewrites a PNG's IHDR to declare `w`×`h`, with a valid checksum: the
/// shape of a decompression bomb.
pub fn forge_png_size(png: &[u8], w: u32, h: u32) -> Vec<u8> {
    let mut out = png.to_vec();
    out[16..20].copy_from_slice(&w.to_be_bytes());
    out[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&[&out[12..29]]);
    out[29..33].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Deterministic noise: barely compresses, for size-realistic files.
pub fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
    let mut state = seed | 1;
    RgbImage::from_fn(w, h, |_, _| {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let b = state.to_le_bytes();
        Rgb([b[0], b[1], b[2]])
    })
}

fn encode(img: &RgbImage, codec: Codec) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, codec).expect("encoding a sample");
    out.into_inner()
}

pub fn png(w: u32, h: u32) -> Vec<u8> {
    encode(&smooth(w, h, 0), Codec::Png)
}

pub fn jpeg(w: u32, h: u32) -> Vec<u8> {
    encode(&smooth(w, h, 0), Codec::Jpeg)
}

pub fn bmp(w: u32, h: u32) -> Vec<u8> {
    encode(&smooth(w, h, 0), Codec::Bmp)
}

pub fn webp(w: u32, h: u32) -> Vec<u8> {
    encode(&smooth(w, h, 0), Codec::WebP)
}

pub fn gif(w: u32, h: u32) -> Vec<u8> {
    encode(&smooth(w, h, 0), Codec::Gif)
}

/// An animated GIF of `frames` full-canvas frames.
pub fn gif_animated(w: u32, h: u32, frames: u8) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = ::image::codecs::gif::GifEncoder::new(&mut out);
        enc.set_repeat(::image::codecs::gif::Repeat::Infinite)
            .expect("gif repeat");
        for i in 0..frames {
            let img = RgbaImage::from_fn(w, h, |x, y| {
                Rgba([(x / 8) as u8 ^ i.wrapping_mul(40), (y / 8) as u8, i, 255])
            });
            enc.encode_frame(::image::Frame::new(img))
                .expect("gif frame");
        }
    }
    out
}

/// An animated PNG: a full first frame, then `frames - 1` subframes of half
/// the canvas at its centre.
pub fn apng(w: u32, h: u32, frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_animated(frames, 0).expect("apng");
        let mut writer = enc.write_header().expect("png header");
        writer
            .write_image_data(smooth(w, h, 0).as_raw())
            .expect("first frame");
        for i in 1..frames {
            let (fw, fh) = (w / 2, h / 2);
            writer.set_frame_dimension(fw, fh).expect("frame size");
            writer
                .set_frame_position(w / 4, h / 4)
                .expect("frame position");
            writer
                .write_image_data(smooth(fw, fh, i as u8).as_raw())
                .expect("frame");
        }
        writer.finish().expect("png end");
    }
    out
}

/// One icon entry: PNG data, or a 32-bit bitmap (DIB) with its AND mask.
pub enum IcoEntry {
    Png(u32, u32),
    Bmp(u32, u32),
}

fn dib(w: u32, h: u32) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&40u32.to_le_bytes());
    d.extend_from_slice(&(w as i32).to_le_bytes());
    d.extend_from_slice(&(2 * h as i32).to_le_bytes());
    d.extend_from_slice(&1u16.to_le_bytes());
    d.extend_from_slice(&32u16.to_le_bytes());
    d.extend_from_slice(&[0; 24]); // compression .. clr_important
    for y in 0..h {
        for x in 0..w {
            d.extend_from_slice(&[x as u8, y as u8, 0x80, 0xff]);
        }
    }
    let mask_row = (w as usize).div_ceil(32) * 4;
    d.extend(std::iter::repeat_n(0u8, mask_row * h as usize));
    d
}

/// An icon with the given entries, the directory declaring each one's size
/// as the format does (0 for 256 and above).
pub fn ico(entries: &[IcoEntry]) -> Vec<u8> {
    let datas: Vec<(u32, u32, Vec<u8>)> = entries
        .iter()
        .map(|e| match *e {
            IcoEntry::Png(w, h) => (w, h, png(w, h)),
            IcoEntry::Bmp(w, h) => (w, h, dib(w, h)),
        })
        .collect();
    ico_raw(
        &datas
            .iter()
            .map(|(w, h, d)| (dir_side(*w), dir_side(*h), d.as_slice()))
            .collect::<Vec<_>>(),
    )
}

fn dir_side(v: u32) -> u8 {
    if v >= 256 { 0 } else { v as u8 }
}

/// An icon from raw entries: (directory width byte, height byte, data).
pub fn ico_raw(entries: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut out = vec![0, 0, 1, 0];
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    let mut offset = 6 + 16 * entries.len();
    for (w, h, data) in entries {
        out.extend_from_slice(&[*w, *h, 0, 0]);
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&32u16.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(offset as u32).to_le_bytes());
        offset += data.len();
    }
    for (_, _, data) in entries {
        out.extend_from_slice(data);
    }
    out
}

/// A sample of `format` with sides `w`×`h`.
pub fn of(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    match format {
        ImageFormat::Png => png(w, h),
        ImageFormat::Jpeg => jpeg(w, h),
        ImageFormat::Gif => gif(w, h),
        ImageFormat::Bmp => bmp(w, h),
        ImageFormat::Webp => webp(w, h),
        ImageFormat::Ico => ico(&[IcoEntry::Png(w, h)]),
    }
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

/// Grows a PNG, JPEG or GIF to exactly `target` bytes with data every
/// decoder skips (a private PNG chunk, JPEG comments, GIF comments), so the
/// file stays valid. Panics if `bytes` is already larger than the target or
/// the format cannot be padded.
pub fn pad_to(bytes: &[u8], target: usize) -> Vec<u8> {
    assert!(bytes.len() <= target, "sample already larger than target");
    let mut extra = target - bytes.len();
    match super::sniff(bytes) {
        super::Sniffed::Image(ImageFormat::Png) => {
            // A chunk costs 12 bytes of framing; splice it before IEND.
            assert!(extra == 0 || extra >= 12, "PNG padding needs 12 bytes");
            if extra == 0 {
                return bytes.to_vec();
            }
            let iend = bytes.len() - 12;
            let data = vec![0u8; extra - 12];
            let mut out = bytes[..iend].to_vec();
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(b"fhPd");
            out.extend_from_slice(&data);
            out.extend_from_slice(&crc32(&[b"fhPd", &data]).to_be_bytes());
            out.extend_from_slice(&bytes[iend..]);
            out
        }
        super::Sniffed::Image(ImageFormat::Jpeg) => {
            // COM segments after SOI: 4 bytes of framing, at most 65533 data.
            let mut out = bytes[..2].to_vec();
            while extra > 0 {
                assert!(extra >= 4, "JPEG padding needs 4 bytes");
                let take = (extra - 4).min(65533);
                // Leave at least 4 bytes for a last segment.
                let take = if extra - 4 - take > 0 && extra - 4 - take < 4 {
                    take - 4
                } else {
                    take
                };
                out.extend_from_slice(&[0xFF, 0xFE]);
                out.extend_from_slice(&((take + 2) as u16).to_be_bytes());
                out.extend(std::iter::repeat_n(b' ', take));
                extra -= take + 4;
            }
            out.extend_from_slice(&bytes[2..]);
            out
        }
        super::Sniffed::Image(ImageFormat::Gif) => {
            // A comment extension before the trailer: 21 FE, sub-blocks of
            // up to 255 bytes each with a length byte, then a 0 terminator.
            let mut out = bytes[..bytes.len() - 1].to_vec();
            if extra > 0 {
                assert!(extra >= 3, "GIF padding needs 3 bytes");
                out.extend_from_slice(&[0x21, 0xFE]);
                extra -= 3;
                while extra > 0 {
                    let take = (extra - 1).min(255);
                    let take = if extra - 1 - take == 1 {
                        take - 1
                    } else {
                        take
                    };
                    out.push(take as u8);
                    out.extend(std::iter::repeat_n(b'.', take));
                    extra -= take + 1;
                }
                out.push(0);
            }
            out.push(0x3B);
            out
        }
        other => panic!("cannot pad {other:?}"),
    }
}

/// A minimal little-endian TIFF of `w`×`h`: the header and one IFD with
/// the width and height tags (no strips: enough for any header parser).
pub fn tiff_header(w: u32, h: u32) -> Vec<u8> {
    let mut tiff = b"II*\0\x08\0\0\0".to_vec();
    tiff.extend_from_slice(&2u16.to_le_bytes());
    for (tag, value) in [(256u16, w), (257, h)] {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes()); // LONG
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff
}

/// The `ftyp` box an ISO-BMFF picture (HEIC: `heic`, AVIF: `avif`) opens
/// with, followed by `rest`.
pub fn bmff_picture(brand: &[u8; 4], rest: &[u8]) -> Vec<u8> {
    let mut bmff = vec![0, 0, 0, 24];
    bmff.extend_from_slice(b"ftyp");
    bmff.extend_from_slice(brand);
    bmff.extend_from_slice(&[0, 0, 0, 0]);
    bmff.extend_from_slice(b"mif1");
    bmff.extend_from_slice(brand);
    bmff.extend_from_slice(rest);
    bmff
}

/// `len` bytes that look like biometric features (incompressible, with no
/// structure): xorshift from `seed`.
pub fn features(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
