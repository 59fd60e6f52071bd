//! The series `docs/interface.md` documents, read from its `## Metrics`
//! table, so tests compare what is exposed with what is written down
//! instead of with a list of their own. Std only: the integration tests
//! include this file too.

use std::path::Path;

/// One documented series: its name and type (gauge, counter, histogram).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Documented {
    pub name: String,
    pub kind: String,
}

/// Every row of the Metrics table of `docs/interface.md`.
pub fn documented_series() -> Vec<Documented> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/interface.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The rows of the table under `## Metrics` whose header is
/// `| Series | Type | Labels | Meaning |`.
pub fn parse(text: &str) -> Result<Vec<Documented>, String> {
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("Metrics\n"))
        .ok_or("no \"## Metrics\" section")?;
    let mut lines = section
        .lines()
        .skip_while(|l| !l.starts_with("| Series | Type |"));
    lines
        .next()
        .ok_or("no \"| Series | Type | Labels | Meaning |\" table")?;
    let mut out = Vec::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(name), Some(kind)) = (cells.get(1), cells.get(2)) else {
            return Err(format!("row without name and type: {line}"));
        };
        let name = name
            .strip_prefix('`')
            .and_then(|n| n.strip_suffix('`'))
            .ok_or_else(|| format!("series name not in backticks: {line}"))?;
        out.push(Documented {
            name: name.to_string(),
            kind: kind.to_string(),
        });
    }
    if out.is_empty() {
        return Err("the Metrics table has no rows".into());
    }
    Ok(out)
}
