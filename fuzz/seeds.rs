//! Writes the seed corpus for the `validate` fuzz target to
//! `fuzz/corpus/validate/`: small samples of every accepted format (flat
//! and patterned, still and animated, icons with PNG and bitmap entries),
//! a few that pass the lingo rules, a forged decompression-bomb header, and
//! truncated variants of each. Deterministic, so the corpus need not be
//! committed: run
//!
//!     cargo run --manifest-path fuzz/Cargo.toml --example seeds

use std::path::PathBuf;

use facehub::image::samples::{self, IcoEntry};
use facehub::image::{ImageFormat, ImageRules, check};

/// The `-max_len` the fuzzer is run with; larger seeds would be cut.
const MAX_LEN: usize = 65536;

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/validate");
    std::fs::create_dir_all(&dir)?;

    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for format in ImageFormat::ALL {
        for (w, h) in [(1, 1), (7, 3), (16, 16), (33, 17), (64, 64)] {
            seeds.push((
                format!("{format}-flat-{w}x{h}"),
                samples::flat(format, w, h),
            ));
        }
        for (w, h) in [(16, 16), (40, 24)] {
            seeds.push((format!("{format}-of-{w}x{h}"), samples::of(format, w, h)));
        }
    }
    // Files the lingo rules accept (320 px and 3 KB at least).
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Gif] {
        let padded = samples::pad_to(&samples::flat(format, 320, 320), 3 * 1024);
        seeds.push((format!("{format}-lingo-320x320"), padded));
    }
    seeds.push((
        "webp-lingo-320x320".into(),
        samples::of(ImageFormat::Webp, 320, 320),
    ));
    seeds.push((
        "ico-lingo-320x320".into(),
        samples::ico(&[IcoEntry::Png(320, 320), IcoEntry::Bmp(16, 16)]),
    ));
    // Multi-frame and multi-entry shapes.
    seeds.push(("gif-animated-8x8x3".into(), samples::gif_animated(8, 8, 3)));
    seeds.push(("ico-bmp-8x8".into(), samples::ico(&[IcoEntry::Bmp(8, 8)])));
    seeds.push((
        "ico-mixed".into(),
        samples::ico(&[
            IcoEntry::Png(16, 16),
            IcoEntry::Bmp(32, 32),
            IcoEntry::Png(48, 48),
        ]),
    ));
    // A PNG header declaring 60000x60000 (refused on its header).
    seeds.push((
        "png-bomb-header".into(),
        samples::forge_png_size(&samples::flat(ImageFormat::Png, 4, 4), 60000, 60000),
    ));

    // Truncated variants: half the file, and all but the last byte.
    let whole = seeds.clone();
    for (name, bytes) in &whole {
        if bytes.len() > 2 {
            seeds.push((
                format!("{name}-cut-half"),
                bytes[..bytes.len() / 2].to_vec(),
            ));
            seeds.push((format!("{name}-cut-1"), bytes[..bytes.len() - 1].to_vec()));
        }
    }

    let relaxed = ImageRules {
        min_bytes: 1,
        min_side: 1,
        ..ImageRules::lingo()
    };
    let (mut written, mut accepted, mut lingo) = (0, 0, 0);
    for (name, bytes) in &seeds {
        if bytes.len() > MAX_LEN {
            println!("skip {name}: {} bytes", bytes.len());
            continue;
        }
        let verdict = match check(bytes, &relaxed) {
            Ok(info) => {
                accepted += 1;
                format!("ok {}x{} x{}", info.width, info.height, info.frames)
            }
            Err(e) => format!("refused: {e}"),
        };
        if check(bytes, &ImageRules::lingo()).is_ok() {
            lingo += 1;
        }
        println!("{name:28} {:6} bytes  {verdict}", bytes.len());
        std::fs::write(dir.join(name), bytes)?;
        written += 1;
    }
    println!(
        "{written} seeds in {} ({accepted} accepted with relaxed rules, {lingo} with lingo rules)",
        dir.display()
    );
    Ok(())
}
