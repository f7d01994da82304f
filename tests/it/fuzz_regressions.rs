//! Inputs of the fuzz targets kept in `tests/fixtures/fuzz/<target>/`
//! (findings and a few seeds, see the README there), replayed under plain
//! `cargo test` through the same harness and property checks the fuzzers
//! run (`fuzz/src/`, included here by path: the fuzz crate is not part of
//! the workspace).

// Some of the harness serves only the fuzzers (seed generation).
#[allow(dead_code)]
#[path = "../../fuzz/src/device_frame.rs"]
mod device_frame;
#[allow(dead_code)]
#[path = "../../fuzz/src/push_templates.rs"]
mod push_templates;
#[allow(dead_code)]
#[path = "../../fuzz/src/push_text.rs"]
mod push_text;
#[allow(dead_code)]
#[path = "../../fuzz/src/upload.rs"]
mod upload;

/// The kept inputs of a target, by file name.
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(target);
    // A target without findings has no directory (git keeps no empty ones).
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    out.sort();
    out
}

#[test]
fn device_frame_inputs_keep_their_properties() {
    for (name, bytes) in inputs("device_frame") {
        eprintln!("device_frame/{name}");
        device_frame::check(&bytes);
    }
}

#[test]
fn upload_inputs_keep_their_properties() {
    for (name, bytes) in inputs("upload") {
        eprintln!("upload/{name}");
        upload::check(&bytes);
    }
}

#[test]
fn push_text_seeds_keep_their_properties() {
    for (name, bytes) in push_text::seeds() {
        eprintln!("push_text/{name}");
        push_text::check(&bytes);
        for cut in [bytes.len() / 2, bytes.len() - 1] {
            push_text::check(&bytes[..cut]);
        }
    }
    for (name, bytes) in inputs("push_text") {
        eprintln!("push_text/{name}");
        push_text::check(&bytes);
    }
}

#[test]
fn push_templates_seeds_keep_their_properties() {
    for (name, bytes) in push_templates::seeds() {
        eprintln!("push_templates/{name}");
        push_templates::check(&bytes);
        for cut in [bytes.len() / 2, bytes.len() - 1] {
            push_templates::check(&bytes[..cut]);
        }
    }
    for (name, bytes) in inputs("push_templates") {
        eprintln!("push_templates/{name}");
        push_templates::check(&bytes);
    }
}
