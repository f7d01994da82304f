use super::samples::{self, IcoEntry};
use super::*;

fn lingo() -> ImageRules {
    ImageRules::lingo()
}

/// Streams `bytes` through the probe in `piece`-sized pieces, then decodes.
fn streamed(bytes: &[u8], piece: usize, rules: &ImageRules) -> Result<ImageInfo, ImageError> {
    let mut probe = Probe::new(*rules);
    for p in bytes.chunks(piece.max(1)) {
        probe.push(p)?;
    }
    let probed = probe.finish()?;
    let info = decode(bytes, probed.format, rules)?;
    if let Some(dims) = probed.dims {
        assert_eq!(
            dims,
            (info.width, info.height),
            "probe and decoder disagree"
        );
    }
    Ok(info)
}

fn msg(r: Result<ImageInfo, ImageError>) -> String {
    r.expect_err("should be refused").to_string()
}

#[test]
fn every_format_at_both_side_edges_in_any_piece_size() {
    for format in ImageFormat::ALL {
        for side in [320, 4096] {
            // An uncompressed 4096² bitmap is 48 MB: keep the other side low.
            let other = if format == ImageFormat::Bmp {
                320
            } else {
                side
            };
            let mut bytes = samples::of(format, side, other);
            if bytes.len() < 3 * 1024 {
                // Flat tiles compress below the floor; noise does not.
                bytes = samples::noisy(format, side, other);
            }
            for piece in [1 << 20, 4093] {
                let info = streamed(&bytes, piece, &lingo())
                    .unwrap_or_else(|e| panic!("{format} {side}px: {e}"));
                assert_eq!(
                    (info.format, info.width, info.height),
                    (format, side, other)
                );
            }
        }
    }
}

#[test]
fn exact_size_edges() {
    let rules = lingo();
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif] {
        let base = samples::flat(format, 320, 320);
        let at_min = samples::pad_to(&base, 3 * 1024);
        assert_eq!(at_min.len(), 3072);
        check(&at_min, &rules).unwrap();
        let at_max = samples::pad_to(&base, 10 * 1024 * 1024);
        assert_eq!(at_max.len(), 10 * 1024 * 1024);
        check(&at_max, &rules).unwrap();
        let mut over = at_max.clone();
        over.push(0);
        assert_eq!(msg(check(&over, &rules)), "file size exceeds 10 MB");
    }
    let small = samples::pad_to(&samples::flat(ImageFormat::Png, 320, 320), 2400);
    assert_eq!(msg(check(&small, &rules)), "file size 2.3 KB is below 3 KB");
    let small = samples::pad_to(&samples::flat(ImageFormat::Png, 320, 320), 3071);
    assert_eq!(msg(check(&small, &rules)), "file size 2.9 KB is below 3 KB");
}

#[test]
fn multi_image_icons_and_animations() {
    let rules = lingo();
    let ico = samples::ico(&[
        IcoEntry::Png(16, 16),
        IcoEntry::Bmp(32, 32),
        IcoEntry::Png(320, 320),
    ]);
    let info = check(&ico, &rules).unwrap();
    assert_eq!(
        (info.format, info.width, info.height, info.frames),
        (ImageFormat::Ico, 320, 320, 3)
    );
    let any_size = ImageRules {
        min_bytes: 1,
        ..rules
    };
    let apng = samples::apng(320, 320, 4);
    let info = check(&apng, &any_size).unwrap();
    assert_eq!(
        (info.format, info.width, info.frames),
        (ImageFormat::Png, 320, 4)
    );
    // A cut inside the last frame (IEND re-appended) is caught by decoding
    // every frame, not just the first.
    let iend = apng.len() - 12;
    let cut = [&apng[..iend - 30], &apng[iend..]].concat();
    let e = check(&cut, &any_size).unwrap_err();
    assert!(
        matches!(e, ImageError::Corrupt { .. } | ImageError::Truncated(_)),
        "{e}"
    );
    let gif = samples::gif_animated(320, 320, 3);
    let info = check(&gif, &rules).unwrap();
    assert_eq!((info.width, info.frames), (320, 3));
    // An icon whose largest entry is a bitmap is decoded by the bitmap path.
    let ico = samples::ico(&[IcoEntry::Bmp(320, 320), IcoEntry::Png(32, 32)]);
    assert_eq!(check(&ico, &rules).unwrap().width, 320);
}

#[test]
fn side_limits_name_the_axis_and_the_rule() {
    let rules = lingo();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            samples::at_least(samples::png(4097, 320), 3072),
            "width 4097 exceeds 4096",
        ),
        (
            samples::at_least(samples::png(320, 319), 3072),
            "height 319 is below 320",
        ),
        (
            samples::at_least(samples::jpeg(319, 400), 3072),
            "width 319 is below 320",
        ),
        (samples::bmp(320, 5000), "height 5000 exceeds 4096"),
        (
            samples::ico(&[IcoEntry::Png(256, 256), IcoEntry::Bmp(32, 32)]),
            "width 256 is below 320",
        ),
    ];
    for (bytes, want) in cases {
        assert_eq!(msg(check(&bytes, &rules)), want);
    }
}

#[test]
fn formats_are_decided_by_the_bytes() {
    let rules = lingo();
    assert_eq!(msg(check(b"", &rules)), "file is empty");
    let tiff = [b"II*\0".as_slice(), &[0u8; 4000]].concat();
    assert_eq!(
        msg(check(&tiff, &rules)),
        "format tiff is not accepted (accepted: ico, bmp, gif, png, jpeg, webp)"
    );
    let mut wrong = samples::at_least(samples::png(320, 320), 4000);
    wrong[..4].copy_from_slice(b"XXXX");
    assert_eq!(
        msg(check(&wrong, &rules)),
        "file content is not a recognised image (accepted: ico, bmp, gif, png, jpeg, webp)"
    );
    let jpeg_only = ImageRules {
        formats: FormatSet::of(&[ImageFormat::Jpeg]),
        ..rules
    };
    assert_eq!(
        msg(check(&samples::webp(320, 320), &jpeg_only)),
        "format webp is not accepted (accepted: jpeg)"
    );
}

#[test]
fn truncated_files_of_every_format_are_refused() {
    let rules = lingo();
    for format in ImageFormat::ALL {
        let whole = samples::noisy(format, 400, 400);
        assert!(whole.len() > 20_000, "{format} sample too small to cut");
        for cut in [whole.len() / 2, whole.len() * 9 / 10] {
            let r = check(&whole[..cut], &rules);
            assert!(
                matches!(
                    r,
                    Err(ImageError::Truncated(_) | ImageError::Corrupt { .. })
                ),
                "{format} cut at {cut} of {}: {r:?}",
                whole.len()
            );
        }
    }
    let png = samples::at_least(samples::png(400, 400), 8000);
    assert_eq!(
        msg(check(&png[..png.len() - 3], &rules)),
        "png data is truncated"
    );
}

#[test]
fn ordinary_files_decoders_accept_are_accepted() {
    let rules = lingo();
    // Phones append data after a JPEG's end marker (Samsung SEFT trailers,
    // motion-photo videos).
    let mut jpeg = samples::noisy(ImageFormat::Jpeg, 400, 400);
    jpeg.extend_from_slice(b"SEFH");
    jpeg.extend(std::iter::repeat_n(7u8, 5000));
    assert_eq!(check(&jpeg, &rules).unwrap().width, 400);
    // A top-down bitmap (negative height).
    let mut bmp = samples::bmp(320, 330);
    let h = i32::from_le_bytes(bmp[22..26].try_into().unwrap());
    bmp[22..26].copy_from_slice(&(-h).to_le_bytes());
    let info = check(&bmp, &rules).unwrap();
    assert_eq!((info.width, info.height), (320, 330));
    // A GIF without its trailer byte, as many encoders write them.
    let gif = samples::gif_animated(320, 320, 3);
    assert_eq!(*gif.last().unwrap(), 0x3B);
    let info = check(&gif[..gif.len() - 1], &rules).unwrap();
    assert_eq!(info.frames, 3);
    // Bytes after a PNG's IEND.
    let mut png = samples::at_least(samples::png(400, 400), 8000);
    png.push(0);
    assert!(check(&png, &rules).is_ok());
}

#[test]
fn work_is_bounded_by_the_pixel_budget() {
    // Small limits so the budget (32 canvases) is cheap to exceed.
    let rules = ImageRules {
        min_bytes: 1,
        max_side: 64,
        min_side: 16,
        ..lingo()
    };
    let over = ImageError::TooManyPixels {
        format: ImageFormat::Gif,
        budget: 32 * 64 * 64,
    };
    assert_eq!(
        check(&samples::gif_animated(64, 64, 32), &rules)
            .unwrap()
            .frames,
        32
    );
    assert_eq!(check(&samples::gif_animated(64, 64, 33), &rules), Err(over));
    // APNG subframes are charged their own rectangle (a quarter here).
    assert_eq!(
        check(&samples::apng(64, 64, 100), &rules).unwrap().frames,
        100
    );
    assert!(matches!(
        check(&samples::apng(64, 64, 140), &rules),
        Err(ImageError::TooManyPixels { .. })
    ));
    // Icon entries share the budget, and may not share bytes.
    let entry = samples::png(64, 64);
    let many: Vec<(u8, u8, &[u8])> = (0..33).map(|_| (64, 64, entry.as_slice())).collect();
    assert!(matches!(
        check(&samples::ico_raw(&many), &rules),
        Err(ImageError::TooManyPixels {
            format: ImageFormat::Ico,
            ..
        })
    ));
    let mut shared = samples::ico_raw(&[(64, 64, entry.as_slice()), (64, 64, entry.as_slice())]);
    // Point the second directory record at the first entry's bytes.
    let first_offset: [u8; 4] = shared[6 + 12..6 + 16].try_into().unwrap();
    shared[6 + 16 + 12..6 + 16 + 16].copy_from_slice(&first_offset);
    assert_eq!(
        msg(check(&shared, &rules)),
        "ico structure is inconsistent: entries overlap"
    );
    // An animated PNG inside an icon.
    let apng = samples::apng(64, 64, 2);
    let ico = samples::ico_raw(&[(64, 64, apng.as_slice())]);
    assert!(msg(check(&ico, &rules)).contains("animated PNG cannot be an icon entry"));
}

#[test]
fn bombs_are_refused_on_their_header() {
    let rules = lingo();
    // A PNG header declaring 60000x60000, refused from its first 64 bytes.
    let png = samples::forge_png_size(
        &samples::at_least(samples::png(320, 320), 4000),
        60000,
        60000,
    );
    let mut probe = Probe::new(rules);
    assert_eq!(
        probe.push(&png[..64]).unwrap_err().to_string(),
        "width 60000 exceeds 4096"
    );
    // Straight to the decoder (no probe), the header check still comes
    // first, so no 60000² buffer is ever requested.
    assert_eq!(
        decode(&png, ImageFormat::Png, &rules)
            .unwrap_err()
            .to_string(),
        "width 60000 exceeds 4096"
    );
    // A GIF whose frame lies outside its canvas.
    let mut gif = samples::gif(320, 320);
    let at = gif.windows(1).position(|w| w[0] == 0x2C).unwrap();
    gif[at + 5..at + 7].copy_from_slice(&60000u16.to_le_bytes());
    let e = msg(check(&gif, &rules));
    assert!(e.contains("lies outside the 320x320 canvas"), "{e}");
    // An icon entry that is not what the directory says.
    let inner = samples::png(400, 400);
    let forged = samples::ico_raw(&[(32, 32, &inner)]);
    assert_eq!(
        msg(check(&forged, &rules)),
        "ico structure is inconsistent: entry 1 is declared 32x32 but holds a 400x400 image"
    );
    // An icon entry pointing past the end of the file.
    let mut short = samples::ico(&[IcoEntry::Png(320, 320), IcoEntry::Bmp(32, 32)]);
    short.truncate(short.len() - 10);
    assert_eq!(msg(check(&short, &rules)), "ico data is truncated");
}

#[test]
fn size_limit_cuts_off_as_soon_as_it_is_passed() {
    let mut probe = Probe::new(ImageRules {
        max_bytes: 10,
        ..lingo()
    });
    assert_eq!(probe.push(&[0; 11]), Err(ImageError::TooLarge { max: 10 }));
}

#[test]
fn human_sizes() {
    assert_eq!(human_size(0), "0 bytes");
    assert_eq!(human_size(1023), "1023 bytes");
    assert_eq!(human_size(3072), "3 KB");
    assert_eq!(human_size(2150), "2.0 KB");
    assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
    assert_eq!(human_size(10 * 1024 * 1024 - 1), "9.9 MB");
}
