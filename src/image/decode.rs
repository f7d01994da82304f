//! Full decoding under explicit limits: the second stage of validation.
//!
//! Every decoder is driven the same way: read the header, check the
//! dimensions against the rules (nothing sized by the header has been
//! allocated yet), check that the frames the header announces fit the pixel
//! budget, then decode every frame. The codec crates are used directly where
//! `image` would hide what validation needs: zune-jpeg in strict mode (the
//! `image` wrapper is lenient and paints truncated scans grey), PNG row by
//! row (no full-frame buffer), GIF frames in indexed form, and every WebP
//! animation frame.

use std::io::Cursor;

use super::{ImageError, ImageFormat, ImageInfo, ImageRules, ico};

/// Decodes a complete file of `format` and returns what it is.
pub fn decode(
    bytes: &[u8],
    format: ImageFormat,
    rules: &ImageRules,
) -> Result<ImageInfo, ImageError> {
    let (width, height, frames) = match format {
        ImageFormat::Png => png(bytes, rules)?,
        ImageFormat::Jpeg => jpeg(bytes, rules)?,
        ImageFormat::Gif => gif(bytes, rules)?,
        ImageFormat::Webp => webp(bytes, rules)?,
        ImageFormat::Bmp => bmp(bytes, rules)?,
        ImageFormat::Ico => ico::decode(bytes, rules)?,
    };
    Ok(ImageInfo {
        format,
        width,
        height,
        size: bytes.len() as u64,
        frames,
    })
}

type Decoded = (u32, u32, u32);

fn corrupt(format: ImageFormat, detail: impl ToString) -> ImageError {
    ImageError::Corrupt {
        format,
        detail: detail.to_string(),
    }
}

fn is_eof(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof
}

/// Adds one frame's pixels to the running total.
fn spend(
    format: ImageFormat,
    rules: &ImageRules,
    total: &mut u64,
    w: u32,
    h: u32,
) -> Result<(), ImageError> {
    *total += u64::from(w) * u64::from(h);
    if *total > rules.pixel_budget() {
        return Err(ImageError::TooManyPixels {
            format,
            budget: rules.pixel_budget(),
        });
    }
    Ok(())
}

/// A zeroed buffer, refused rather than aborting when it cannot be had.
pub(super) fn buffer(
    format: ImageFormat,
    len: u64,
    rules: &ImageRules,
) -> Result<Vec<u8>, ImageError> {
    if len > rules.max_alloc() {
        return Err(ImageError::TooManyPixels {
            format,
            budget: rules.pixel_budget(),
        });
    }
    let len = usize::try_from(len).map_err(|_| corrupt(format, "image is too large"))?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(len)
        .map_err(|_| corrupt(format, "image is too large to decode"))?;
    buf.resize(len, 0);
    Ok(buf)
}

pub(super) fn png(bytes: &[u8], rules: &ImageRules) -> Result<Decoded, ImageError> {
    png_within(bytes, rules, &mut 0, true)
}

/// A PNG whose frames are charged to `total` (shared with the icon holding
/// it); `animated` says whether APNG frames are allowed at all.
pub(super) fn png_within(
    bytes: &[u8],
    rules: &ImageRules,
    total: &mut u64,
    animated: bool,
) -> Result<Decoded, ImageError> {
    const F: ImageFormat = ImageFormat::Png;
    let err = |e: png::DecodingError| match e {
        png::DecodingError::IoError(ref io) if is_eof(io) => ImageError::Truncated(F),
        png::DecodingError::LimitsExceeded => ImageError::TooManyPixels {
            format: F,
            budget: rules.pixel_budget(),
        },
        e => corrupt(F, e),
    };
    let limit = usize::try_from(rules.max_alloc()).unwrap_or(usize::MAX);
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: limit });
    // Raw samples are enough to prove the data decodes; text and ICC
    // chunks are compressed payloads nobody here reads.
    decoder.set_transformations(png::Transformations::IDENTITY);
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    let header = decoder.read_header_info().map_err(err)?;
    let (w, h) = (header.width, header.height);
    rules.check_dims(w, h)?;
    // Charged before anything is decoded: an icon of many entries pays for
    // each one against the one budget.
    spend(F, rules, total, w, h)?;
    let mut reader = decoder.read_info().map_err(err)?;
    if !animated && reader.info().animation_control.is_some() {
        return Err(ImageError::Inconsistent {
            format: F,
            detail: "an animated PNG cannot be an icon entry".into(),
        });
    }
    let mut frames = 0u32;
    // The first image (IDAT) always spans the canvas; later APNG frames
    // have their own rectangle, which must lie inside it.
    let (mut fw, mut fh) = (w, h);
    loop {
        if frames > 0 {
            spend(F, rules, total, fw, fh)?;
        }
        while reader.next_row().map_err(err)?.is_some() {}
        frames += 1;
        match reader.next_frame_info() {
            Ok(fc) => {
                let fits = u64::from(fc.x_offset) + u64::from(fc.width) <= u64::from(w)
                    && u64::from(fc.y_offset) + u64::from(fc.height) <= u64::from(h);
                if !fits {
                    return Err(ImageError::Inconsistent {
                        format: F,
                        detail: format!(
                            "frame {} at {},{} size {}x{} lies outside the {w}x{h} canvas",
                            frames + 1,
                            fc.x_offset,
                            fc.y_offset,
                            fc.width,
                            fc.height
                        ),
                    });
                }
                (fw, fh) = (fc.width, fc.height);
            }
            Err(png::DecodingError::Parameter(_)) => break,
            Err(e) => return Err(err(e)),
        }
    }
    reader.finish().map_err(err)?;
    Ok((w, h, frames))
}

pub(super) fn jpeg(bytes: &[u8], rules: &ImageRules) -> Result<Decoded, ImageError> {
    use zune_jpeg::errors::DecodeErrors;
    const F: ImageFormat = ImageFormat::Jpeg;
    let side = rules.max_side as usize;
    // Strict: a premature end or garbage inside the entropy-coded data is an
    // error instead of grey pixels.
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(side)
        .set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(
        zune_core::bytestream::ZCursor::new(bytes),
        options,
    );
    let err = |e: DecodeErrors| match e {
        DecodeErrors::LargeDimensions(n) => ImageError::SideTooLarge {
            axis: "width or height",
            value: u32::try_from(n).unwrap_or(u32::MAX),
            max: rules.max_side,
        },
        DecodeErrors::ExhaustedData => ImageError::Truncated(F),
        DecodeErrors::FormatStatic(m) if m.contains("end of buffer") || m.contains("No more") => {
            ImageError::Truncated(F)
        }
        e => corrupt(F, e),
    };
    decoder.decode_headers().map_err(err)?;
    let (w, h) = decoder
        .dimensions()
        .ok_or_else(|| corrupt(F, "no frame header"))?;
    let (w, h) = (w as u32, h as u32);
    rules.check_dims(w, h)?;
    let len = decoder
        .output_buffer_size()
        .ok_or_else(|| corrupt(F, "no frame header"))?;
    let mut out = buffer(F, len as u64, rules)?;
    decoder.decode_into(&mut out).map_err(err)?;
    Ok((w, h, 1))
}

pub(super) fn gif(bytes: &[u8], rules: &ImageRules) -> Result<Decoded, ImageError> {
    const F: ImageFormat = ImageFormat::Gif;
    let err = |e: gif::DecodingError| match e {
        gif::DecodingError::UnexpectedEof => ImageError::Truncated(F),
        gif::DecodingError::Io(ref io) if is_eof(io) => ImageError::Truncated(F),
        e => corrupt(F, e),
    };
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    // Frame placement is checked below, with a message that says which.
    options.check_frame_consistency(false);
    if let Some(limit) = std::num::NonZeroU64::new(rules.max_alloc()) {
        options.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let mut decoder = options.read_info(Cursor::new(bytes)).map_err(err)?;
    let (w, h) = (u32::from(decoder.width()), u32::from(decoder.height()));
    rules.check_dims(w, h)?;
    let mut frames = 0u32;
    let mut total = 0u64;
    let mut buf = Vec::new();
    loop {
        let frame = match decoder.next_frame_info() {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            // Many encoders omit the trailer byte; browsers and giflib end
            // the image there, once a frame has been read whole.
            Err(gif::DecodingError::UnexpectedEof) if frames > 0 => break,
            Err(e) => return Err(err(e)),
        };
        let (fx, fy) = (u32::from(frame.left), u32::from(frame.top));
        let (fw, fh) = (u32::from(frame.width), u32::from(frame.height));
        if fx + fw > w || fy + fh > h {
            return Err(ImageError::Inconsistent {
                format: F,
                detail: format!(
                    "frame {} at {fx},{fy} size {fw}x{fh} lies outside the {w}x{h} canvas",
                    frames + 1
                ),
            });
        }
        spend(F, rules, &mut total, fw, fh)?;
        buf.resize(decoder.buffer_size(), 0);
        decoder.read_into_buffer(&mut buf).map_err(err)?;
        frames += 1;
    }
    if frames == 0 {
        return Err(corrupt(F, "no image frame"));
    }
    Ok((w, h, frames))
}

pub(super) fn webp(bytes: &[u8], rules: &ImageRules) -> Result<Decoded, ImageError> {
    use image_webp::DecodingError as E;
    const F: ImageFormat = ImageFormat::Webp;
    let err = |e: E| match e {
        E::IoError(ref io) if is_eof(io) => ImageError::Truncated(F),
        E::MemoryLimitExceeded => ImageError::TooManyPixels {
            format: F,
            budget: rules.pixel_budget(),
        },
        e => corrupt(F, e),
    };
    // The RIFF header states the file's length; the decoder tolerates a
    // missing last byte (chunk padding), a validator must not.
    if bytes.len() >= 8 {
        let riff = u64::from(u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]));
        if (bytes.len() as u64) < riff + 8 {
            return Err(ImageError::Truncated(F));
        }
    }
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(err)?;
    let (w, h) = decoder.dimensions();
    rules.check_dims(w, h)?;
    decoder.set_memory_limit(usize::try_from(rules.max_alloc()).unwrap_or(usize::MAX));
    let len = decoder
        .output_buffer_size()
        .ok_or_else(|| corrupt(F, "image is too large"))?;
    let mut buf = buffer(F, len as u64, rules)?;
    if decoder.is_animated() {
        let frames = decoder.num_frames();
        let mut total = 0;
        // Each frame is composited onto the whole canvas.
        for _ in 0..frames {
            spend(F, rules, &mut total, w, h)?;
        }
        if frames == 0 {
            return Err(corrupt(F, "animation without frames"));
        }
        for _ in 0..frames {
            decoder.read_frame(&mut buf).map_err(err)?;
        }
        Ok((w, h, frames))
    } else {
        decoder.read_image(&mut buf).map_err(err)?;
        Ok((w, h, 1))
    }
}

pub(super) fn bmp(bytes: &[u8], rules: &ImageRules) -> Result<Decoded, ImageError> {
    use ::image::ImageDecoder;
    const F: ImageFormat = ImageFormat::Bmp;
    let err = |e: ::image::ImageError| match e {
        ::image::ImageError::IoError(ref io) if is_eof(io) => ImageError::Truncated(F),
        ::image::ImageError::Limits(_) => ImageError::TooManyPixels {
            format: F,
            budget: rules.pixel_budget(),
        },
        e => corrupt(F, e),
    };
    let mut decoder = ::image::codecs::bmp::BmpDecoder::new(Cursor::new(bytes)).map_err(err)?;
    let (w, h) = decoder.dimensions();
    rules.check_dims(w, h)?;
    decoder.set_limits(limits(rules)).map_err(err)?;
    let mut buf = buffer(F, decoder.total_bytes(), rules)?;
    decoder.read_image(&mut buf).map_err(err)?;
    Ok((w, h, 1))
}

pub fn limits(rules: &ImageRules) -> ::image::Limits {
    let mut limits = ::image::Limits::default();
    limits.max_image_width = Some(rules.max_side);
    limits.max_image_height = Some(rules.max_side);
    limits.max_alloc = Some(rules.max_alloc());
    limits
}
