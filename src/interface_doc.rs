//! The series `docs/interface.md` documents, read from the document itself:
//! a list kept in the tests as well drifted from both the code and the
//! document, so the document is the one list the tests check against.
//! Test-only and std-only: the unit tests and the integration binary
//! (through `#[path]`) both compile this file.

// Each of the two crates that compile this file uses a part of it.
#![allow(dead_code)]

use std::path::Path;

/// The types the `## Metrics` table may give a series.
const TYPES: [&str; 4] = ["gauge", "counter", "histogram", "info"];

/// `(name, type)` of every row of the `## Metrics` table, in document order.
/// Panics, naming what is missing, if the heading, the table or its rows
/// are not there: an empty list would make every check pass.
pub fn documented_series() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/interface.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    metrics_table(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn metrics_table(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut lines = text
        .lines()
        .skip_while(|l| l.trim_end() != "## Metrics")
        .skip(1)
        .take_while(|l| !l.starts_with("# ") && !l.starts_with("## "));
    let header = lines
        .by_ref()
        .find(|l| l.trim_start().starts_with('|'))
        .ok_or("no table under a `## Metrics` heading")?;
    if cells(header) != ["Series", "Type", "Labels", "Meaning"] {
        return Err(format!(
            "the `## Metrics` table's header is {header:?}, not `| Series | Type | Labels | Meaning |`"
        ));
    }
    let mut series = vec![];
    for row in lines.take_while(|l| l.trim_start().starts_with('|')) {
        let cells = cells(row);
        if cells.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
            continue; // the |---|---| line under the header
        }
        let name = cells
            .first()
            .and_then(|c| c.strip_prefix('`')?.strip_suffix('`'))
            .filter(|n| !n.is_empty() && !n.contains('`'))
            .ok_or_else(|| format!("row {row:?}: the series is not a `name` in backticks"))?;
        let kind = cells.get(1).copied().unwrap_or_default();
        if !TYPES.contains(&kind) {
            return Err(format!(
                "row {row:?}: type {kind:?} is none of {}",
                TYPES.join(", ")
            ));
        }
        series.push((name.to_string(), kind.to_string()));
    }
    if series.is_empty() {
        return Err("the `## Metrics` table has no rows".into());
    }
    Ok(series)
}

fn cells(row: &str) -> Vec<&str> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let row = row.strip_suffix('|').unwrap_or(row);
    row.split('|').map(str::trim).collect()
}

/// Whether `exposed`, a sample's name on `/metrics`, belongs to the
/// documented series `name` of type `kind` (a histogram is exposed as its
/// `_bucket`, `_sum` and `_count`).
pub fn is_sample_of(exposed: &str, name: &str, kind: &str) -> bool {
    exposed == name
        || (kind == "histogram"
            && exposed
                .strip_prefix(name)
                .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s)))
}

#[test]
fn the_metrics_table_is_read_and_malformed_ones_are_refused() {
    let doc = "# T\n\n## Metrics\n\nintro\n\n| Series | Type | Labels | Meaning |\n|---|---|---|---|\n\
               | `a_total` | counter | `x` | A \\| B |\n| `b_seconds` | histogram | — | B |\n\n## Next\n| `c` | gauge | | |\n";
    assert_eq!(
        metrics_table(doc).expect("a good table"),
        [
            ("a_total".to_string(), "counter".to_string()),
            ("b_seconds".to_string(), "histogram".to_string())
        ]
    );
    let cases = [
        (
            "no heading",
            "| Series | Type | Labels | Meaning |\n| `a` | gauge | | |\n",
        ),
        ("no table", "## Metrics\n\ntext\n"),
        (
            "empty",
            "## Metrics\n| Series | Type | Labels | Meaning |\n|---|---|---|---|\n",
        ),
        (
            "bad type",
            "## Metrics\n| Series | Type | Labels | Meaning |\n| `a` | summary | | |\n",
        ),
        (
            "bad name",
            "## Metrics\n| Series | Type | Labels | Meaning |\n| a | gauge | | |\n",
        ),
        (
            "other header",
            "## Metrics\n| Name | Type |\n| `a` | gauge |\n",
        ),
    ];
    for (what, doc) in cases {
        assert!(metrics_table(doc).is_err(), "{what} accepted");
    }
    assert!(is_sample_of("b_seconds_bucket", "b_seconds", "histogram"));
    assert!(!is_sample_of("a_total_sum", "a_total", "counter"));
}
