//! Writes the seed corpora of the fuzz targets to `fuzz/corpus/<target>/`:
//!
//! - `validate`: small samples of every accepted format (flat and
//!   patterned, still and animated, icons with PNG and bitmap entries), a
//!   few that pass the lingo rules, a forged decompression-bomb header, and
//!   truncated variants of each;
//! - `upload`: multipart bodies for the three upload endpoints as the SDKs
//!   send them, with images that pass each endpoint's rules (a face photo
//!   for door access when scikit-image's data is in `.venv`), odd but valid
//!   shapes, broken framing, and cut variants;
//! - `device_frame`: device-protocol frames as firmware and the simulator
//!   send them, and malformed ones;
//! - `push_text`: ZKTeco PUSH-protocol bodies in the forms the protocol
//!   notes record, and cut variants;
//! - `push_templates`: ZKTeco template uploads and options reports, and
//!   cut variants.
//!
//! Deterministic, so the corpora need not be committed: run
//!
//!     cargo run --example fuzz_seeds [TARGET...]
//!
//! It is an example of the main crate, not of the fuzz crate, so that it
//! shares the workspace's build instead of needing a third one of every
//! dependency.

use std::path::{Path, PathBuf};

use facehub::image::samples::{self, IcoEntry};
use facehub::image::{ImageFormat, ImageRules, check};
// The fuzz crate's harness, by path (as tests/it/fuzz_regressions.rs does).
#[allow(dead_code)]
#[path = "src/push_templates.rs"]
mod push_templates;
#[allow(dead_code)]
#[path = "src/push_text.rs"]
mod push_text;
#[allow(dead_code)]
#[path = "src/upload.rs"]
mod upload;

use serde_json::{Value, json};
use upload::{BOUNDARY, Endpoint, selector};

/// The `-max_len` the fuzzers are run with; larger seeds would be cut.
const MAX_LEN: usize = 65536;

type Seeds = Vec<(String, Vec<u8>)>;
type Generator = fn() -> Seeds;

fn main() -> std::io::Result<()> {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let targets: [(&str, Generator); 5] = [
        ("validate", validate),
        ("upload", upload),
        ("device_frame", device_frame),
        ("push_text", push_text),
        ("push_templates", push_templates),
    ];
    for (name, make) in targets {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            write(&root.join(name), make())?;
        }
    }
    Ok(())
}

fn write(dir: &Path, seeds: Seeds) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut written = 0;
    for (name, bytes) in &seeds {
        if bytes.len() > MAX_LEN {
            println!("skip {name}: {} bytes", bytes.len());
            continue;
        }
        std::fs::write(dir.join(name), bytes)?;
        written += 1;
    }
    println!("{written} seeds in {}", dir.display());
    Ok(())
}

/// Half the input, and all but the last byte (except of the door-access
/// faces: all but the last byte of those still reaches face detection).
fn with_cuts(seeds: &mut Seeds) {
    let whole = seeds.clone();
    for (name, bytes) in &whole {
        if bytes.len() > 2 && !name.starts_with("acs-face") {
            seeds.push((
                format!("{name}-cut-half"),
                bytes[..bytes.len() / 2].to_vec(),
            ));
            seeds.push((format!("{name}-cut-1"), bytes[..bytes.len() - 1].to_vec()));
        }
    }
}

fn validate() -> Seeds {
    let mut seeds = Seeds::new();
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
    with_cuts(&mut seeds);

    let relaxed = ImageRules {
        min_bytes: 1,
        min_side: 1,
        ..ImageRules::lingo()
    };
    let (mut accepted, mut lingo) = (0, 0);
    for (name, bytes) in &seeds {
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
    }
    println!("validate: {accepted} accepted with relaxed rules, {lingo} with lingo rules");
    seeds
}

/// A multipart body: `(Content-Disposition, extra header lines, data)` per
/// part, CRLF framing, closing delimiter.
fn form(parts: &[(&str, &[&str], &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (disposition, headers, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(format!("Content-Disposition: {disposition}\r\n").as_bytes());
        for h in *headers {
            body.extend_from_slice(format!("{h}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// An input of the `upload` target.
fn input(endpoint: Endpoint, content_type: u8, file_name: u8, chunk: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![selector(endpoint, content_type, file_name), chunk];
    out.extend_from_slice(body);
    out
}

/// A face photo for door access: the astronaut's head from scikit-image's
/// `astronaut.png` (public domain), 192 px JPEG. `None` when `.venv` has no
/// scikit-image (scripts/test installs it).
fn face() -> Option<Vec<u8>> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    let Some(file) = std::fs::read_dir(lib).ok().and_then(|d| {
        d.flatten()
            .map(|e| e.path().join("site-packages/skimage/data/astronaut.png"))
            .find(|p| p.exists())
    }) else {
        println!("no .venv with scikit-image: no face seed");
        return None;
    };
    let img = image::open(file).expect("astronaut.png").into_rgb8();
    let head = image::imageops::crop_imm(&img, 100, 0, 256, 256).to_image();
    let head = image::imageops::resize(&head, 192, 192, image::imageops::FilterType::Triangle);
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&head)
        .expect("encoding the face");
    Some(jpeg)
}

fn upload() -> Seeds {
    use Endpoint::{Acs, Attendance, Lingo};
    let png = samples::at_least(samples::png(64, 64), 100);
    let jpeg = samples::at_least(samples::jpeg(80, 64), 100);
    let lingo_png = samples::pad_to(&samples::flat(ImageFormat::Png, 320, 320), 3 * 1024);
    let lingo_jpeg = samples::pad_to(&samples::flat(ImageFormat::Jpeg, 320, 320), 3 * 1024);
    let lingo_gif = samples::pad_to(&samples::flat(ImageFormat::Gif, 320, 320), 3 * 1024);
    let lingo_webp = samples::of(ImageFormat::Webp, 320, 320);
    let lingo_ico = samples::ico(&[IcoEntry::Png(320, 320)]);
    let file = "form-data; name=\"file\"";
    let png_file = "form-data; name=\"file\"; filename=\"face.png\"";
    let png_type: &[&str] = &["Content-Type: image/png"];

    let mut seeds = Seeds::new();
    let mut add = |name: &str, bytes: Vec<u8>| seeds.push((name.to_string(), bytes));

    // Attendance: the SDK's one part, and the shapes around it. File name
    // variant 0 is face.png, 1 face.jpg, 2 none.
    add(
        "att-sdk-png",
        input(Attendance, 0, 0, 0, &form(&[(file, &[], &png)])),
    );
    add(
        "att-sdk-jpg",
        input(Attendance, 0, 1, 0, &form(&[(file, &[], &jpeg)])),
    );
    add(
        "att-filename-type",
        input(Attendance, 0, 0, 0, &form(&[(png_file, png_type, &png)])),
    );
    add(
        "att-quoted-boundary",
        input(Attendance, 1, 0, 0, &form(&[(file, &[], &png)])),
    );
    add(
        "att-charset",
        input(Attendance, 2, 0, 0, &form(&[(file, &[], &png)])),
    );
    add(
        "att-extra-parts",
        input(
            Attendance,
            0,
            0,
            0,
            &form(&[
                ("form-data; name=\"note\"", &[], b"hello"),
                (file, &[], &png),
                ("form-data; name=\"file\"", &[], b"second"),
            ]),
        ),
    );
    add(
        "att-ext-mismatch",
        input(Attendance, 0, 1, 0, &form(&[(file, &[], &png)])),
    );
    add(
        "att-no-name",
        input(Attendance, 0, 2, 0, &form(&[(file, &[], &png)])),
    );
    add(
        "att-no-file",
        input(
            Attendance,
            0,
            0,
            0,
            &form(&[("form-data; name=\"other\"", &[], &png)]),
        ),
    );
    add(
        "att-not-image",
        input(Attendance, 0, 0, 0, &form(&[(file, &[], &[b'x'; 300])])),
    );
    for (chunk, label) in [(1u8, "1"), (7, "7"), (0x84, "16"), (0x8a, "1k")] {
        add(
            &format!("att-chunks-{label}"),
            input(Attendance, 0, 0, chunk, &form(&[(file, &[], &png)])),
        );
    }
    for ct in 3..=6 {
        add(
            &format!("att-content-type-{ct}"),
            input(Attendance, ct, 0, 0, &form(&[(file, &[], &png)])),
        );
    }
    // Content-Type from the first line, with another boundary.
    let mut own_body = b"multipart/form-data; boundary=AaB03x\n".to_vec();
    own_body
        .extend_from_slice(b"--AaB03x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n");
    own_body.extend_from_slice(&png);
    own_body.extend_from_slice(b"\r\n--AaB03x--\r\n");
    add(
        "att-own-content-type",
        input(Attendance, 7, 0, 0, &own_body),
    );
    let mut preamble = b"preamble text\r\n".to_vec();
    preamble.extend_from_slice(&form(&[(file, &[], &png)]));
    add("att-preamble", input(Attendance, 0, 0, 0, &preamble));
    let lf_only: Vec<u8> = {
        let mut b =
            format!("--{BOUNDARY}\nContent-Disposition: form-data; name=\"file\"\n\n").into_bytes();
        b.extend_from_slice(&png);
        b.extend_from_slice(format!("\n--{BOUNDARY}--\n").as_bytes());
        b
    };
    add("att-lf-only", input(Attendance, 0, 0, 0, &lf_only));
    add("att-empty", input(Attendance, 0, 0, 0, b""));
    add(
        "att-only-close",
        input(
            Attendance,
            0,
            0,
            0,
            format!("--{BOUNDARY}--\r\n").as_bytes(),
        ),
    );

    // Lingo: `name` and `file` in either order, every accepted format.
    let name = "form-data; name=\"name\"";
    for (label, img, title) in [
        ("png", &lingo_png, "wiki.png"),
        ("jpeg", &lingo_jpeg, "wiki.jpg"),
        ("gif", &lingo_gif, "wiki.gif"),
        ("webp", &lingo_webp, "wiki.webp"),
        ("ico", &lingo_ico, "wiki.ico"),
    ] {
        add(
            &format!("lingo-{label}"),
            input(
                Lingo,
                0,
                0,
                0,
                &form(&[(name, &[], title.as_bytes()), (file, &[], img)]),
            ),
        );
    }
    add(
        "lingo-file-first",
        input(
            Lingo,
            0,
            0,
            0,
            &form(&[
                (png_file, png_type, &lingo_png),
                (name, &[], "图片".as_bytes()),
            ]),
        ),
    );
    add(
        "lingo-no-name",
        input(Lingo, 0, 0, 0, &form(&[(file, &[], &lingo_png)])),
    );
    add(
        "lingo-empty-name",
        input(
            Lingo,
            0,
            0,
            0,
            &form(&[(name, &[], b""), (file, &[], &lingo_png)]),
        ),
    );
    add(
        "lingo-bad-name",
        input(
            Lingo,
            0,
            0,
            0,
            &form(&[(name, &[], b"a/b.png"), (file, &[], &lingo_png)]),
        ),
    );
    add(
        "lingo-long-name",
        input(
            Lingo,
            0,
            0,
            0,
            &form(&[(name, &[], &[b'n'; 450]), (file, &[], &lingo_png)]),
        ),
    );
    add(
        "lingo-name-claims-gif",
        input(
            Lingo,
            0,
            0,
            0,
            &form(&[(name, &[], b"x.gif"), (file, &[], &lingo_png)]),
        ),
    );
    add(
        "lingo-two-files",
        input(
            Lingo,
            0,
            0,
            0,
            &form(&[
                (name, &[], b"x"),
                (file, &[], &lingo_png),
                (file, &[], &lingo_png),
            ]),
        ),
    );
    add(
        "lingo-too-small",
        input(
            Lingo,
            0,
            0,
            0,
            &form(&[(name, &[], b"x"), (file, &[], &png)]),
        ),
    );
    add(
        "lingo-chunks-3",
        input(
            Lingo,
            0,
            0,
            3,
            &form(&[(name, &[], b"wiki"), (file, &[], &lingo_png)]),
        ),
    );

    // Door access: `files`, `file_type`, `file_name` in any order.
    let files = "form-data; name=\"files\"; filename=\"face\"";
    let ftype = "form-data; name=\"file_type\"";
    let fname = "form-data; name=\"file_name\"";
    // A decodable photo of the declared type costs a face detection,
    // seconds under the fuzzer's instrumentation, and every run replays the
    // corpus first: two seeds get that far, the others are refused before.
    let (kind, photo) = match face() {
        Some(jpeg) => ("jpg", jpeg),
        None => ("png", png.clone()),
    };
    add(
        "acs-face",
        input(
            Acs,
            0,
            0,
            0,
            &form(&[
                (files, &[], &photo),
                (ftype, &[], kind.as_bytes()),
                (fname, &[], format!("face.{kind}").as_bytes()),
            ]),
        ),
    );
    add(
        "acs-face-type-first",
        input(
            Acs,
            0,
            0,
            0x8a,
            &form(&[(ftype, &[], kind.as_bytes()), (file, &[], &photo)]),
        ),
    );
    let other = if kind == "png" { "jpg" } else { "png" };
    add(
        "acs-type-mismatch",
        input(
            Acs,
            0,
            0,
            0,
            &form(&[(files, &[], &photo), (ftype, &[], other.as_bytes())]),
        ),
    );
    add(
        "acs-no-type",
        input(Acs, 0, 0, 0, &form(&[(files, &[], &photo)])),
    );
    add(
        "acs-bad-type",
        input(
            Acs,
            0,
            0,
            0,
            &form(&[(files, &[], &photo), (ftype, &[], b"gif")]),
        ),
    );
    add(
        "acs-bad-file-name",
        input(
            Acs,
            0,
            0,
            0,
            &form(&[
                (files, &[], &photo),
                (ftype, &[], kind.as_bytes()),
                (fname, &[], b"../etc/face.png"),
            ]),
        ),
    );
    add(
        "acs-not-image",
        input(
            Acs,
            0,
            0,
            0,
            &form(&[(files, &[], b"GIF89a not really"), (ftype, &[], b"png")]),
        ),
    );
    with_cuts(&mut seeds);
    seeds
}

/// Pseudo-random template bytes (xorshift), as base64.
fn template(len: usize, seed: u64) -> String {
    let mut state = seed | 1;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    b64(&bytes)
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn frame(cmd: &str, req_id: Value, body: Value) -> Vec<u8> {
    json!({"cmd": cmd, "headers": {"req_id": req_id}, "body": body})
        .to_string()
        .into_bytes()
}

fn push_templates() -> Seeds {
    let mut seeds: Seeds = push_templates::seeds()
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect();
    with_cuts(&mut seeds);
    seeds
}

fn push_text() -> Seeds {
    let mut seeds: Seeds = push_text::seeds()
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect();
    with_cuts(&mut seeds);
    seeds
}

fn device_frame() -> Seeds {
    let mut seeds = Seeds::new();
    let mut add = |name: &str, bytes: Vec<u8>| seeds.push((name.to_string(), bytes));
    let id = || json!("0f3c2a9b7d1e4c55");

    // Bring-up and heartbeats, as the simulator sends them.
    add("ping", frame("ping", id(), json!({})));
    add("ping-numeric-id", frame("ping", json!(42), json!({})));
    add(
        "ping-no-body",
        br#"{"cmd":"ping","headers":{"req_id":"r1"}}"#.to_vec(),
    );
    add(
        "ping-null-body",
        br#"{"cmd":"ping","headers":{"req_id":"r1"},"body":null}"#.to_vec(),
    );
    add(
        "register",
        frame(
            "register",
            id(),
            json!({"sn": "FH-0001", "timestamp": 1_763_856_000, "nonce": "98211",
                   "device_signature": "5c8b0c0f1b1e5a0b2e0b6d7c2f0a9e8d7c6b5a49",
                   "net_info": {"wifi_name": "", "mac_address": "00:00:00:00:00:00"}}),
        ),
    );
    add(
        "active",
        frame("active", id(), json!({"active_code": "a1b2c3d4"})),
    );
    add(
        "subscribe_corp",
        frame(
            "subscribe_corp",
            id(),
            json!({"secret": "s3cr3t", "firmware_version": "devsim-1.0",
                   "ext_args": {"fa_algorithm": ["face-v2", "default"], "fp_algorithm": ["zk10"]}}),
        ),
    );
    add(
        "get_perm_version",
        frame("get_perm_version", id(), json!({})),
    );
    add(
        "get_userinfo_by_page",
        frame(
            "get_userinfo_by_page",
            id(),
            json!({"offset": 0, "limit": "100", "is_req_fa_info": 1, "is_req_fp_info": false}),
        ),
    );
    add(
        "get_userinfo_by_ids",
        frame(
            "get_userinfo_by_ids",
            id(),
            json!({"user_item": [{"userid": "u1", "user_type": 0}, {"userid": "v1", "user_type": "1"}]}),
        ),
    );
    add(
        "get_userinfo_by_ids-old",
        frame(
            "get_userinfo_by_ids",
            id(),
            json!({"userids": ["u1", "u2"]}),
        ),
    );
    add(
        "check_userid",
        frame(
            "check_userid",
            id(),
            json!({"userid_item": [{"userid": "u1", "user_type": 2}]}),
        ),
    );
    add(
        "check_userid-old",
        frame("check_userid", id(), json!({"userid": ["u1", 7]})),
    );
    add(
        "checkin",
        frame(
            "checkin",
            id(),
            json!({"checkin_data": [{"userid": "u1", "user_type": 0, "timestamp": 1_763_859_600,
                                     "pass_type": 1, "pass_method": 1}]}),
        ),
    );
    add(
        "checkin-photo",
        frame(
            "checkin",
            id(),
            json!({"checkin_data": [
                {"userid": "u1", "user_type": 0, "timestamp": 1_763_859_600, "pass_type": 1,
                 "pass_method": 1, "capture_photo": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA=="},
                {"userid": "u2", "timestamp": 1_763_859_601, "capture_photo": "not base64"}]}),
        ),
    );
    add(
        "download_photo",
        frame(
            "download_photo",
            id(),
            json!({"media_id": "m-0123456789abcdef", "format_version": 1}),
        ),
    );

    // upload_userinfo: faces, fingerprints, the legacy `fa`, deletes,
    // enrolment answers, and what is refused per user.
    let t = |seed| template(512, seed);
    add(
        "upload-fa_list",
        frame(
            "upload_userinfo",
            id(),
            json!({"userinfo": [{"userid": "u1", "user_type": 0, "fa_algorithm": "face-v2",
                                 "fa_list": [{"id": 0, "data": t(1)}, {"id": "11", "data": t(2)}]}]}),
        ),
    );
    add(
        "upload-fp",
        frame(
            "upload_userinfo",
            id(),
            json!({"userinfo": [{"userid": "u2", "fp_algorithm": "zk10",
                                 "fp": [{"id": 3, "data": t(3)}, {"data": ""}]}]}),
        ),
    );
    add(
        "upload-legacy-fa",
        frame(
            "upload_userinfo",
            id(),
            json!({"userinfo": [{"userid": "u3", "fa": t(4)}]}),
        ),
    );
    add(
        "upload-enrolment-answer",
        frame(
            "upload_userinfo",
            id(),
            json!({"oper_id": "op-1", "errcode": 0, "errmsg": "ok",
                   "userinfo": [{"userid": "u1", "user_type": 0, "fa_list": [{"id": 0, "data": t(5)}],
                                 "fa_algorithm": "default"}]}),
        ),
    );
    add(
        "upload-enrolment-failed",
        frame(
            "upload_userinfo",
            id(),
            json!({"oper_id": "op-2", "errcode": "60001", "errmsg": "capture failed", "userinfo": []}),
        ),
    );
    let png = samples::png(64, 64);
    let jpeg = samples::jpeg(64, 64);
    let mut bmp = samples::bmp(8, 8);
    bmp.truncate(bmp.len().min(MAX_LEN));
    let unpadded = t(6).trim_end_matches('=').to_string();
    add(
        "upload-mixed",
        frame(
            "upload_userinfo",
            id(),
            json!({"userinfo": [
                {"userid": "u1", "fa_list": [{"id": 0, "data": b64(&png)}]},
                {"userid": "u2", "fa_list": [{"id": 1, "data": b64(&jpeg)}]},
                {"userid": "u3", "fp": [{"id": 1, "data": b64(&bmp)}], "fp_algorithm": "zk10"},
                {"userid": "u4", "fa_list": [{"id": 0, "data": unpadded}]},
                {"userid": "u5", "fa_list": [{"id": 0, "data": "not base64!"}]},
                {"userid": "u6", "fa_list": [{"id": 12, "data": t(7)}]},
                {"userid": "u7", "fa_list": [{"id": 1, "data": t(8)}, {"id": 1}]},
                {"userid": "u8", "fa": t(9), "user_type": 1},
                {"userid": "u9", "fa_list": [{"id": 0, "data": t(10)}], "fa_algorithm": "other"},
                {"userid": "", "fa_list": []},
                {"userid": 12345, "user_type": 3},
                "not an object",
                {"userid": "u10", "fp": "nope"},
            ]}),
        ),
    );
    add(
        "upload-largest-template",
        frame(
            "upload_userinfo",
            id(),
            json!({"userinfo": [{"userid": "u1", "fa_list": [
                {"id": 0, "data": template(8 * 1024, 11)},
                {"id": 1, "data": template(8 * 1024 + 1, 12)},
            ]}]}),
        ),
    );

    // Replies, pushes and what cannot be read as a request.
    add(
        "reply",
        br#"{"headers":{"req_id":"r9"},"body":{},"errcode":0,"errmsg":"ok"}"#.to_vec(),
    );
    add(
        "push",
        frame(
            "push_change_contact",
            id(),
            json!({"timestamp": 1_763_856_000, "perm_version": 3}),
        ),
    );
    add("not-json", b"hello".to_vec());
    add("not-object", b"[1,2,3]".to_vec());
    add("no-req-id", br#"{"cmd":"ping","body":{}}"#.to_vec());
    add(
        "empty-req-id",
        br#"{"cmd":"ping","headers":{"req_id":""}}"#.to_vec(),
    );
    add(
        "long-req-id",
        frame("ping", json!("r".repeat(129)), json!({})),
    );
    add(
        "cmd-not-string",
        br#"{"cmd":7,"headers":{"req_id":"r"}}"#.to_vec(),
    );
    add(
        "body-not-object",
        br#"{"cmd":"ping","headers":{"req_id":"r"},"body":[]}"#.to_vec(),
    );
    add(
        "unknown-cmd",
        frame("get_secret_no", id(), json!({"sn": "FH-0001"})),
    );
    add(
        "float-req-id",
        br#"{"cmd":"ping","headers":{"req_id":1.5e300}}"#.to_vec(),
    );
    add(
        "deep",
        format!("{}{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
    );
    seeds
}
