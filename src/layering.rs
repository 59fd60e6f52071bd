//! The layers of `lib.rs` hold: no module imports a module of a layer
//! above its own. The layers are read from `lib.rs` itself (each
//! `pub mod` belongs to the `// N. name` heading above it), so the listing
//! there is the one that is checked; imports are read from the `use` lines
//! and paths of every source file outside test modules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Top-level module → layer number, from the headings of `lib.rs`.
fn layers() -> BTreeMap<String, u32> {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("read src/lib.rs");
    let heading = regex::Regex::new(r"^// (\d+)\. ").expect("pattern");
    let module = regex::Regex::new(r"^pub mod ([a-z_]+);").expect("pattern");
    let mut layer = None;
    let mut out = BTreeMap::new();
    for line in lib.lines() {
        if let Some(c) = heading.captures(line) {
            layer = c[1].parse().ok();
        } else if let Some(c) = module.captures(line) {
            let n = layer.unwrap_or_else(|| panic!("pub mod {} has no layer heading", &c[1]));
            out.insert(c[1].to_string(), n);
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's code before its test module; whole test files count as none.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "tests.rs" || name == "layering.rs" || name == "fuzzing.rs" {
        return String::new();
    }
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `(importer, imported)` top-level module pairs, across modules.
fn imports(known: &BTreeMap<String, u32>) -> Vec<(String, String, PathBuf)> {
    let root = src_dir();
    let mut files = Vec::new();
    sources(&root, &mut files);
    // `crate::x`, and the names inside `crate::{x, y::z}`.
    let path = regex::Regex::new(r"crate::(\{[^;]*?\}|[a-z_]+)").expect("pattern");
    let name = regex::Regex::new(r"(?:^|[{,\s])([a-z_]+)(?:::|[,}\s])").expect("pattern");
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&root).expect("under src");
        let Some(first) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else {
            continue;
        };
        let from = first.trim_end_matches(".rs").to_string();
        if !known.contains_key(&from) {
            continue;
        }
        let text = code(&f);
        for c in path.captures_iter(&text) {
            let g = &c[1];
            let names: Vec<String> = if g.starts_with('{') {
                name.captures_iter(g).map(|n| n[1].to_string()).collect()
            } else {
                vec![g.to_string()]
            };
            for n in names {
                if known.contains_key(&n) && n != from {
                    out.push((from.clone(), n, rel.to_path_buf()));
                }
            }
        }
    }
    out
}

#[test]
fn no_module_imports_a_layer_above_its_own() {
    let layers = layers();
    assert!(layers.len() > 20, "lib.rs lists {} modules", layers.len());
    let mut wrong = Vec::new();
    for (from, to, file) in imports(&layers) {
        if layers[&to] > layers[&from] {
            wrong.push(format!(
                "{}: {from} (layer {}) imports {to} (layer {})",
                file.display(),
                layers[&from],
                layers[&to]
            ));
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// The checker sees an import when there is one: `eval` uses `prom`.
#[test]
fn the_checker_finds_imports() {
    let layers = layers();
    let found = imports(&layers);
    assert!(found.iter().any(|(f, t, _)| f == "eval" && t == "prom"));
    assert!(found.iter().any(|(f, t, _)| f == "spec" && t == "diag"));
}
