//! The layers, checked: which top-level module may name which
//! (docs/architecture.md draws the same picture). A test reads the sources,
//! so a `use` that points the wrong way fails CI instead of growing a
//! cycle a reader has to untangle later.

/// Each top-level module and its layer: a module may name only modules of
/// a lower layer.
const LAYERS: &[(&str, u8)] = &[
    // Leaves: values and primitives with no facehub dependency.
    ("image", 0),
    ("durable", 0),
    ("faults", 0),
    ("metrics", 0),
    ("quiet", 0),
    // The values the store and the core share; a stored file's format is
    // an image format.
    ("model", 1),
    // Configuration and sealing, used by every layer above.
    ("config", 1),
    ("crypto", 1),
    // Metadata and blobs.
    ("store", 2),
    // The core: people, files, faces, templates, fleet.
    ("domain", 3),
    // Wire surfaces.
    ("api", 4),
    // Composition roots.
    ("server", 5),
    ("cli", 6),
];

/// Edges the layer order allows but the design does not: a surface goes
/// through the core, never around it.
const FORBIDDEN: &[(&str, &str)] = &[("api", "store"), ("api", "server")];

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

/// Every `crate::<module>` a non-comment line of `text` names.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((n + 1, name));
        }
    }
    out
}

/// `(file, line, from, to)` for every reference that breaks the layering.
fn violations(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut files = Vec::new();
    rust_files(root, &mut files);
    for path in files {
        let rel = path.strip_prefix(root).unwrap();
        let from = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // The crate root and this file name every module by design.
        if matches!(from.as_str(), "lib" | "main" | "architecture") {
            continue;
        }
        let Some(from_layer) = layer(&from) else {
            found.push(format!(
                "{}: top-level module `{from}` has no layer in architecture.rs",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for (line, to) in named_modules(&text) {
            if to == from {
                continue;
            }
            let Some(to_layer) = layer(&to) else {
                continue;
            };
            if to_layer >= from_layer || FORBIDDEN.contains(&(from.as_str(), to.as_str())) {
                found.push(format!("{}:{line}: {from} -> {to}", rel.display()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn dependencies_point_down_the_layers() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "references against the layering (docs/architecture.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.strip_prefix("pub mod ").or(line.strip_prefix("mod ")) {
            let name = name.trim_end_matches(';');
            assert!(
                layer(name).is_some() || name == "architecture",
                "`{name}` has no layer in architecture.rs"
            );
        }
    }
}

#[test]
fn the_check_sees_a_reference_against_the_layers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("store")).unwrap();
    std::fs::write(
        dir.path().join("store/people.rs"),
        "// crate::domain in a comment is fine\nuse crate::model::Person;\nuse crate::domain::Core;\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("api.rs"), "use crate::store::Db;\n").unwrap();
    assert_eq!(
        violations(dir.path()),
        [
            "api.rs:1: api -> store",
            "store/people.rs:3: store -> domain"
        ]
    );
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The API, the CLI and the server ask the core (`domain::Core`), in its
/// terms, instead of reading and writing its store: the store can then
/// change behind the core, and what a request may do is decided in one
/// place. Only the domain and the store itself touch the store's handle;
/// the escape hatch for tests (`Core::store_for_tests`) is used outside
/// `src/` only.
#[test]
fn only_the_core_touches_the_store() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offences = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        // This file names the patterns it looks for.
        if rel == "architecture.rs" {
            continue;
        }
        let inside = rel.starts_with("domain/") || rel.starts_with("store/");
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            // `.db` alone: the handle on a line of its own in a call chain.
            let store = [".db.", "core.db", ".db()"]
                .iter()
                .any(|p| line.contains(p))
                || line.trim() == ".db";
            let hatch = line.contains("store_for_tests") && rel != "domain/mod.rs";
            if (store && !inside) || hatch {
                offences.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "outside src/domain and src/store, go through a Core method instead of its store:\n{}",
        offences.join("\n")
    );
}

/// The core's state is its own, like its store: a surface asks a `Core`
/// method (`config()`, `is_online`, `audited`…) instead of reaching into a
/// field, so the privacy the compiler enforces cannot quietly be given
/// up by marking a field `pub` again.
#[test]
fn the_core_has_no_public_fields() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let text = std::fs::read_to_string(src.join("domain/mod.rs")).unwrap();
    let body = text
        .split_once("pub struct Core {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .expect("domain/mod.rs declares `pub struct Core { … }`");
    let public: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("pub"))
        .collect();
    assert!(
        public.is_empty(),
        "Core's fields are private; add a method instead:\n{}",
        public.join("\n")
    );
}

/// A module a reader can hold: longer files are split by what they do.
const MAX_LINES: usize = 600;

#[test]
fn no_module_is_too_long_to_hold() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let lines = std::fs::read_to_string(&path).unwrap().lines().count();
            if lines > MAX_LINES {
                found.push(format!("{rel}: {lines} lines, over {MAX_LINES}"));
            }
        }
    }
    found.sort();
    assert!(found.is_empty(), "{}", found.join("\n"));
}
