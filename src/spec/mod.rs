//! SLO spec files: which format a document is in (Sloth `prometheus/v1`,
//! Sloth's `PrometheusServiceLevel` CR, OpenSLO v1), reading it, validating
//! it into `model::Slo`, and every user-facing message with
//! `file:line:column`. Parsing takes strings (tests pass text); only
//! [`load_specs`] and [`load`] touch the file system. No network.

mod diag;
mod openslo;
mod promql;
mod sloth;
mod validate;
pub(crate) mod yaml;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use saphyr::YamlData;

pub use diag::Diagnostic;
pub use promql::grouping_labels;

use crate::config::{self, Settings};
use crate::model::Slo;
use validate::Draft;
use yaml::{Cx, Map, Node};

/// Reads every SLO of one spec file. Pure: `file` is only used in messages.
/// All problems are reported, sorted by position.
pub fn parse_specs(file: &str, text: &str) -> Result<Vec<Slo>, Vec<Diagnostic>> {
    let docs = yaml::load(text)
        .map_err(|(pos, msg)| vec![Diagnostic::new(file, pos.line, pos.column, msg)])?;
    let mut cx = Cx::new(file);
    let slis = openslo_slis(&docs);
    let mut drafts = Vec::new();
    for doc in &docs {
        if yaml::is_null(doc) {
            continue; // an empty document, e.g. after a trailing `---`
        }
        match &doc.data {
            // OpenSLO files are often a list of objects.
            YamlData::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    read_document(&mut cx, item, &format!("[{i}]"), &slis, &mut drafts);
                }
            }
            _ => read_document(&mut cx, doc, "", &slis, &mut drafts),
        }
    }
    let slos: Vec<Slo> = drafts
        .iter()
        .filter_map(|d| validate::build(&mut cx, d))
        .collect();
    cx.diags.extend(duplicates(&slos, |_, _| true));
    if cx.has_errors() {
        let mut diags = cx.diags;
        diags.sort();
        // Service-level problems (labels) are found once per SLO.
        diags.dedup();
        return Err(diags);
    }
    Ok(slos)
}

/// Picks the reader by `version` / `apiVersion`.
fn read_document(
    cx: &mut Cx<'_>,
    node: &Node<'_>,
    path: &str,
    slis: &openslo::Slis<'_, '_>,
    drafts: &mut Vec<Draft>,
) {
    let Some(top) = Map::open_any(cx, node, path) else {
        return;
    };
    let version = |key: &str| {
        top.get(key)
            .and_then(|f| yaml::as_str(f.node).map(|s| (s, f)))
    };
    if let Some((v, f)) = version("version") {
        if v == "prometheus/v1" {
            drafts.extend(sloth::read_prometheus_v1(cx, &top));
        } else {
            cx.err(
                f.pos(),
                format!(
                    "{}: unsupported version {v:?}: expected \"prometheus/v1\"",
                    f.path
                ),
            );
        }
        return;
    }
    match version("apiVersion") {
        Some(("sloth.slok.dev/v1", _)) => {
            match top.get("kind").and_then(|f| yaml::as_str(f.node).map(|s| (s, f))) {
                Some(("PrometheusServiceLevel", _)) => drafts.extend(sloth::read_cr(cx, &top)),
                Some((k, f)) => cx.err(
                    f.pos(),
                    format!("{}: unsupported kind {k:?}: expected PrometheusServiceLevel", f.path),
                ),
                None => {
                    top.req(cx, "kind");
                }
            }
        }
        Some(("openslo/v1", _)) => drafts.extend(openslo::read(cx, &top, slis)),
        Some(("openslo/v1alpha", f)) => cx.err(
            f.pos(),
            format!(
                "{}: openslo/v1alpha is not supported: convert the spec to openslo/v1 (ratioMetric, timeWindow) or to Sloth prometheus/v1",
                f.path
            ),
        ),
        Some((v, f)) => cx.err(
            f.pos(),
            format!(
                "{}: unsupported apiVersion {v:?}: expected sloth.slok.dev/v1 or openslo/v1",
                f.path
            ),
        ),
        None => cx.err(
            top.pos,
            format!(
                "{}: not an SLO spec: expected version: \"prometheus/v1\", apiVersion: sloth.slok.dev/v1 or apiVersion: openslo/v1",
                if path.is_empty() { "top level" } else { path }
            ),
        ),
    }
}

/// `kind: SLI` objects of an OpenSLO file, by `metadata.name`.
fn openslo_slis<'a, 'i>(docs: &'a [Node<'i>]) -> openslo::Slis<'a, 'i> {
    let mut out = openslo::Slis::new();
    let mut visit = |n: &'a Node<'i>| {
        let YamlData::Mapping(m) = &n.data else {
            return;
        };
        let get = |key: &str| {
            m.iter()
                .find(|(k, _)| yaml::as_str(k) == Some(key))
                .map(|(_, v)| v)
        };
        let is = |key: &str, want: &str| get(key).and_then(yaml::as_str) == Some(want);
        if is("apiVersion", "openslo/v1") && is("kind", "SLI") {
            let name = get("metadata").and_then(|md| match &md.data {
                YamlData::Mapping(mm) => mm
                    .iter()
                    .find(|(k, _)| yaml::as_str(k) == Some("name"))
                    .and_then(|(_, v)| yaml::as_str(v)),
                _ => None,
            });
            if let Some(name) = name {
                out.insert(name.to_string(), n);
            }
        }
    };
    for d in docs {
        match &d.data {
            YamlData::Sequence(items) => items.iter().for_each(&mut visit),
            _ => visit(d),
        }
    }
    out
}

/// The same SLO name twice in a service. `pair` filters which pairs count
/// (within one file, or across files only).
fn duplicates(slos: &[Slo], pair: impl Fn(&Slo, &Slo) -> bool) -> Vec<Diagnostic> {
    let mut first: BTreeMap<(&str, &str), &Slo> = BTreeMap::new();
    let mut out = Vec::new();
    for s in slos {
        match first.get(&(s.service.as_str(), s.name.as_str())) {
            Some(f) if pair(f, s) => out.push(Diagnostic::new(
                &s.origin.file,
                s.origin.line,
                s.origin.column,
                format!(
                    "duplicate SLO {:?} in service {:?}, first defined at {}",
                    s.name, s.service, f.origin
                ),
            )),
            Some(_) => {}
            None => {
                first.insert((&s.service, &s.name), s);
            }
        }
    }
    out
}

const NO_SLO: &str = "defines no SLO: expected Sloth prometheus/v1, a Sloth PrometheusServiceLevel or OpenSLO v1 SLOs";

/// Reads and parses spec files, then checks SLO names across files.
pub fn load_specs(paths: &[PathBuf]) -> Result<Vec<Slo>, Vec<Diagnostic>> {
    let mut slos = Vec::new();
    let mut diags = Vec::new();
    for p in paths {
        let file = p.display().to_string();
        match crate::readfile::read_text(p, crate::readfile::SPEC) {
            Ok(text) => match parse_specs(&file, &text) {
                // A file that defines nothing is a mistake (an empty file,
                // a secret or a device matched by a glob), never "0 SLOs".
                Ok(s) if s.is_empty() => diags.push(Diagnostic::whole_file(&file, NO_SLO)),
                Ok(s) => slos.extend(s),
                Err(d) => diags.extend(d),
            },
            Err(e) => diags.push(e.diagnostic(&file)),
        }
    }
    // Pairs within one file were reported by parse_specs.
    diags.extend(duplicates(&slos, |a, b| a.origin.file != b.origin.file));
    if diags.is_empty() {
        Ok(slos)
    } else {
        Err(diags)
    }
}

/// Settings, then every spec file their `slo_files` globs name (relative to
/// the config file's directory). A glob matching nothing is a problem: it is
/// almost always a typo that would silently drop SLOs.
pub fn load(config_path: &Path) -> Result<(Settings, Vec<Slo>), Vec<Diagnostic>> {
    let file = config_path.display().to_string();
    let text = crate::readfile::read_text(config_path, crate::readfile::SETTINGS)
        .map_err(|e| vec![e.diagnostic(&file)])?;
    let (settings, globs) = config::parse_settings_with_positions(&file, &text)?;
    let dir = config_path.parent().unwrap_or(Path::new(""));
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut diags = Vec::new();
    for (pattern, pos) in settings.slo_files.iter().zip(&globs) {
        let full = dir.join(pattern);
        let full_text = full.to_string_lossy();
        let matched = match glob::glob(&full_text) {
            Ok(m) => m,
            Err(e) => {
                diags.push(Diagnostic::new(
                    &file,
                    pos.line,
                    pos.column,
                    format!("slo_files: invalid glob {pattern:?}: {e}"),
                ));
                continue;
            }
        };
        let mut found: Vec<PathBuf> = matched
            .filter_map(Result::ok)
            // Directories are skipped; anything else that is not a regular
            // file (a device, a FIFO) is read, and refused by name there.
            .filter(|p| !p.is_dir())
            .collect();
        if found.is_empty() {
            diags.push(Diagnostic::new(
                &file,
                pos.line,
                pos.column,
                format!("slo_files: {pattern:?} matches no file (looked for {full_text})"),
            ));
        }
        found.sort();
        for p in found {
            // Overlapping globs must not load a file twice (that would be
            // reported as duplicate SLOs).
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    match load_specs(&paths) {
        Ok(slos) if diags.is_empty() => Ok((settings, slos)),
        Ok(_) => Err(diags),
        Err(d) => {
            diags.extend(d);
            Err(diags)
        }
    }
}
