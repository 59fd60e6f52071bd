//! Entry points for the libFuzzer targets in `fuzz/` (a separate cargo
//! workspace built with nightly): each feeds raw bytes to one parser and
//! checks what must hold for any input. Public only so that crate can call
//! the crate-private decoders; nothing else uses it.

use crate::diag::Diagnostic;

/// Every diagnostic points inside the text (or at the file as a whole).
/// Lines are counted as YAML breaks them: `\r\n`, `\n` and a lone `\r`.
fn inside(text: &str, diags: &[Diagnostic]) {
    let lines = text
        .replace("\r\n", "\n")
        .split(['\n', '\r'])
        .count()
        .max(1);
    for d in diags {
        assert!(
            d.line == 0 || (d.line <= lines && d.column >= 1),
            "diagnostic outside the file ({lines} lines): {d}"
        );
        assert!(!d.message.is_empty(), "empty message: {d:?}");
    }
}

pub fn spec(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(d) = crate::spec::parse_specs("fuzz.yaml", text) {
            inside(text, &d);
        }
    }
}

pub fn settings(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(d) = crate::config::parse_settings("fuzz.yaml", text) {
            inside(text, &d);
        }
    }
}

pub fn web_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(d) = crate::web::config::parse("fuzz.yaml", text) {
            inside(text, &d);
        }
    }
}

/// Both decoders; a success never carries a label errbudget sets or a
/// series twice.
pub fn prom_answer(data: &[u8]) {
    use std::collections::HashSet;
    let reserved = |l: &std::collections::BTreeMap<String, String>| {
        l.keys()
            .any(|k| crate::model::RESERVED_LABELS.contains(&k.as_str()))
    };
    if let Ok(d) = crate::prom::decode::decode_instant(data, 200) {
        let mut seen = HashSet::new();
        for s in &d.data {
            assert!(!reserved(&s.labels) && seen.insert(&s.labels));
        }
    }
    if let Ok(d) = crate::prom::decode::decode_range(data, 200) {
        let mut seen = HashSet::new();
        for s in &d.data {
            assert!(!reserved(&s.labels) && seen.insert(&s.labels));
        }
    }
    let _ = crate::prom::decode::decode_error_body(data, 500);
}
