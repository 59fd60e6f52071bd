//! Helpers for the property tests that fuzz parsers: a checked-in corpus
//! of realistic inputs, and a strategy that mutates them byte by byte so
//! the tests reach deep into valid-looking input, not only random noise.

use proptest::prelude::*;

/// Reads every file of a corpus directory under `tests/fixtures/`.
pub fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let out: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    assert!(!out.is_empty(), "corpus {} is empty", path.display());
    out
}

/// One edit: replace, insert or delete a byte at a position (taken modulo
/// the input length).
#[derive(Clone, Debug)]
pub enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to YAML and JSON are over-represented.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b":{}[],\"'-# \n\t\\|>&*!%@`.0123456789eE+".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

pub fn apply(mut input: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = input.len();
        match *e {
            Edit::Replace(i, b) if n > 0 => input[i % n] = b,
            Edit::Insert(i, b) => input.insert(i % (n + 1), b),
            Edit::Delete(i) if n > 0 => {
                input.remove(i % n);
            }
            Edit::Truncate(i) => input.truncate(i % (n + 1)),
            _ => {}
        }
    }
    input
}

/// A corpus entry with up to `max_edits` edits applied.
pub fn mutated(corpus: Vec<Vec<u8>>, max_edits: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(corpus),
        prop::collection::vec(edit(), 0..=max_edits),
    )
        .prop_map(|(input, edits)| apply(input, &edits))
}
