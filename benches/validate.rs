//! Cost of validating an upload (`facehub::image::check`: streaming probe
//! plus full decode) against the floor of touching the same bytes in
//! memory, on files of realistic size: a ~2 MB JPEG and a PNG just under
//! the 10 MiB lingo limit, both of noise so they barely compress.
//!
//!     cargo bench --bench validate

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use facehub::image::{ImageRules, check, samples};
use image::ImageEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;

const MIB: usize = 1024 * 1024;

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&samples::noise(w, h, 1))
        .expect("encoding the JPEG sample");
    out
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            samples::noise(w, h, 2).as_raw(),
            w,
            h,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encoding the PNG sample");
    out
}

/// A square quality-90 JPEG of noise of about `target` bytes: the side is
/// scaled from the bytes per pixel of a smaller one.
fn jpeg_about(target: usize) -> Vec<u8> {
    let side = 512u32;
    let per_px = jpeg(side, side).len() as f64 / f64::from(side * side);
    let side = ((target as f64 / per_px).sqrt() as u32).clamp(320, 4096);
    jpeg(side, side)
}

/// A 2048-wide PNG of noise as tall as fits under `limit` bytes (noise
/// does not compress: about 3 bytes per pixel plus a filter byte a row).
fn png_under(limit: usize) -> Vec<u8> {
    let w = 2048u32;
    let row = 3 * w as usize + 1;
    let mut h = ((limit - 64 * 1024) / row) as u32;
    loop {
        let bytes = png(w, h);
        if bytes.len() <= limit {
            return bytes;
        }
        h -= (bytes.len() - limit).div_ceil(row) as u32 + 1;
    }
}

/// A PNG like a photograph's, for contrast: a gradient plus three bits of
/// noise (from `samples::noise`), so deflate codes it with Huffman tables
/// and the filters matter, sized square to just under `limit` bytes. (Full
/// noise does not compress at all: its PNG is stored deflate blocks, and
/// decoding it is mostly copying.)
fn png_photo_under(limit: usize) -> Vec<u8> {
    let encode = |side: u32| {
        let mut img = samples::noise(side, side, 3);
        for (x, y, px) in img.enumerate_pixels_mut() {
            let base = ((x + y) / 16) as u8;
            for (i, c) in px.0.iter_mut().enumerate() {
                *c = base.wrapping_add(i as u8 * 60).wrapping_add(*c >> 5);
            }
        }
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(img.as_raw(), side, side, image::ExtendedColorType::Rgb8)
            .expect("encoding the PNG sample");
        out
    };
    let probe = 512u32;
    let per_px = encode(probe).len() as f64 / f64::from(probe * probe);
    let mut side = (((limit as f64 * 0.97) / per_px).sqrt() as u32).clamp(320, 4096);
    loop {
        let bytes = encode(side);
        if bytes.len() <= limit {
            return bytes;
        }
        side -= side / 50 + 1;
    }
}

/// Reads every byte once (the floor a validator cannot go below).
fn xor_fold(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .fold(0, |a, b| a ^ b)
        ^ bytes
            .chunks_exact(8)
            .remainder()
            .iter()
            .fold(0, |a, &b| a ^ u64::from(b))
}

fn validate(c: &mut Criterion) {
    let rules = ImageRules::lingo();
    let cases = [
        ("jpeg_2mb", jpeg_about(2_000_000)),
        ("png_10mib", png_under(10 * MIB)),
        ("png_10mib_photo", png_photo_under(10 * MIB)),
    ];
    for (name, bytes) in cases {
        let info = check(&bytes, &rules).expect("the sample passes the lingo rules");
        eprintln!(
            "{name}: {} bytes, {}x{} {}",
            bytes.len(),
            info.width,
            info.height,
            info.format
        );
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.sample_size(20);
        group.bench_function("check", |b| {
            b.iter(|| check(black_box(&bytes), &rules).expect("valid"))
        });
        let mut copy = vec![0u8; bytes.len()];
        group.bench_function("floor_copy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&bytes));
                black_box(&copy);
            })
        });
        group.bench_function("floor_xor", |b| b.iter(|| xor_fold(black_box(&bytes))));
        group.finish();
    }
}

/// A 2 KiB face template (random features, as real ones look) checked
/// for pictures and containers inside it, next to one pass that reads
/// every byte.
fn template_content(c: &mut Criterion) {
    let template = facehub::image::samples::features(2048, 1);
    assert_eq!(facehub::image::contained::file_within(&template), None);
    let mut group = c.benchmark_group("template_2kib");
    group.throughput(Throughput::Bytes(template.len() as u64));
    group.bench_function("file_within", |b| {
        b.iter(|| facehub::image::contained::file_within(black_box(&template)))
    });
    group.bench_function("floor_xor", |b| b.iter(|| xor_fold(black_box(&template))));
    group.finish();
}

criterion_group!(benches, validate, template_content);
criterion_main!(benches);
