//! Feeds arbitrary bytes to the image-validation core.
//!
//! Properties checked, besides "never panics, hangs or over-allocates":
//! - whatever `check` accepts (under the lingo rules, and under relaxed
//!   rules that let small inputs reach the decoders) is an accepted format
//!   with sides and size within the rules it was checked against;
//! - relaxing the rules never refuses a file the strict rules accepted;
//! - streaming the same bytes through `Probe` in pieces (size taken from
//!   the first byte) and then decoding accepts only files within the rules,
//!   and any dimensions the probe reads on the way are within them too.

#![no_main]

use facehub::image::{ImageError, ImageInfo, ImageRules, Probe, check, decode};
use libfuzzer_sys::fuzz_target;

fn relaxed() -> ImageRules {
    ImageRules {
        min_bytes: 1,
        min_side: 1,
        ..ImageRules::lingo()
    }
}

fn assert_within(info: &ImageInfo, rules: &ImageRules, data: &[u8], path: &str) {
    assert!(
        rules.formats.contains(info.format),
        "{path}: format not accepted: {info:?}"
    );
    assert_eq!(info.size, data.len() as u64, "{path}: size mismatch");
    assert!(
        (rules.min_bytes..=rules.max_bytes).contains(&info.size),
        "{path}: size outside the rules: {info:?}"
    );
    assert!(
        (rules.min_side..=rules.max_side).contains(&info.width)
            && (rules.min_side..=rules.max_side).contains(&info.height),
        "{path}: sides outside the rules: {info:?}"
    );
    assert!(info.frames >= 1, "{path}: no frames: {info:?}");
}

/// Piece size from the first byte: 1..=128 bytes, or a power of two up to
/// 32 KiB, so both odd boundaries and large pieces are exercised.
fn piece_len(first: u8) -> usize {
    if first & 0x80 != 0 {
        1 << (first & 0x0f)
    } else {
        usize::from(first) + 1
    }
}

/// The probe fed in pieces, then the full decode. `whole` is `check` over
/// the same bytes and rules: when both it and the streamed probe accepted,
/// the decode (a pure function of bytes, format and rules) is not repeated.
fn streamed(
    data: &[u8],
    rules: &ImageRules,
    whole: &Result<ImageInfo, ImageError>,
) -> Result<ImageInfo, ImageError> {
    let piece = data.first().map_or(1, |&b| piece_len(b));
    let mut probe = Probe::new(*rules);
    for p in data.chunks(piece) {
        probe.push(p)?;
    }
    let probed = probe.finish()?;
    assert_eq!(probed.size, data.len() as u64, "probe size mismatch");
    if let Some((w, h)) = probed.dims {
        assert!(
            rules.check_dims(w, h).is_ok(),
            "probe passed dimensions {w}x{h} outside the rules"
        );
    }
    match whole {
        Ok(info) if info.format == probed.format => Ok(*info),
        _ => decode(data, probed.format, rules),
    }
}

fuzz_target!(|data: &[u8]| {
    let lingo = ImageRules::lingo();
    let relaxed = relaxed();

    let strict = check(data, &lingo);
    if let Ok(info) = &strict {
        assert_within(info, &lingo, data, "check(lingo)");
    }
    let loose = check(data, &relaxed);
    if let Ok(info) = &loose {
        assert_within(info, &relaxed, data, "check(relaxed)");
    }
    if let Ok(info) = &strict {
        assert_eq!(
            loose.as_ref().ok(),
            Some(info),
            "relaxed rules refused what lingo accepted: {loose:?}"
        );
    }

    if let Ok(info) = streamed(data, &relaxed, &loose) {
        assert_within(&info, &relaxed, data, "streamed(relaxed)");
    }
});
