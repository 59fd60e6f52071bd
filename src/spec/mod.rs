//! SLO spec files: which format a document is in (Sloth `prometheus/v1`,
//! Sloth's `PrometheusServiceLevel` CR and `AlertWindows` catalogues, Pyrra's
//! `ServiceLevelObjective`, OpenSLO v1 and v1alpha), reading it, validating
//! it into `model::Slo`, and every user-facing message with
//! `file:line:column`. Parsing takes strings (tests pass text); only
//! [`load_specs`] and [`load`] touch the file system. No network.

mod diag;
mod openslo;
pub mod promql;
mod pyrra;
mod sloth;
mod validate;
mod windows;
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
    parse_sources(&[(file, text)])
}

/// Reads the SLOs of several files read together, as `check` and the
/// daemon read them: an OpenSLO `indicatorRef` or `alertPolicyRef` may name
/// an object of another file, and a Sloth `AlertWindows` catalogue in any of
/// them applies to the SLOs of every file. Pure: `(file, text)` pairs.
pub fn parse_sources(sources: &[(&str, &str)]) -> Result<Vec<Slo>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut loaded = Vec::new();
    for (file, text) in sources {
        match yaml::load(text) {
            Ok(docs) => loaded.push((*file, *text, docs)),
            Err((pos, msg)) => diags.push(Diagnostic::new(file, pos.line, pos.column, msg)),
        }
    }
    let objects: Vec<(&str, String, &Node<'_>)> = loaded
        .iter()
        .flat_map(|(file, _, docs)| documents(docs).map(move |(path, n)| (*file, path, n)))
        .collect();
    let index = openslo::Index::new(&objects);
    let mut catalogues = windows::Catalogues::default();
    let mut files = Vec::new();
    for (file, text, docs) in &loaded {
        let mut cx = Cx::of_text(file, text);
        let mut drafts = Vec::new();
        for (path, doc) in documents(docs) {
            read_document(&mut cx, doc, &path, &index, &mut catalogues, &mut drafts);
        }
        files.push((cx, drafts));
    }
    index.report_unused(&mut diags);
    diags.extend(catalogues.conflicts());
    let mut slos = Vec::new();
    for (mut cx, mut drafts) in files {
        for d in &mut drafts {
            catalogues.apply(cx.file, d);
        }
        slos.extend(drafts.iter().filter_map(|d| validate::build(&mut cx, d)));
        diags.extend(cx.diags);
    }
    diags.extend(duplicates(&slos, |_, _| true));
    if diags.is_empty() {
        return Ok(slos);
    }
    diags.sort();
    // Service-level problems (labels) are found once per SLO, a shared
    // OpenSLO SLI once per SLO that references it.
    diags.dedup();
    Err(diags)
}

/// The objects of a file with their paths: a document, or each item of a
/// document that is a list (OpenSLO files often are). Empty documents (after
/// a trailing `---`) are skipped.
fn documents<'a, 'i>(docs: &'a [Node<'i>]) -> impl Iterator<Item = (String, &'a Node<'i>)> {
    docs.iter()
        .filter(|d| !yaml::is_null(d))
        .flat_map(|doc| match &doc.data {
            YamlData::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("[{i}]"), n))
                .collect::<Vec<_>>(),
            _ => vec![(String::new(), doc)],
        })
}

/// Picks the reader by `version` / `apiVersion`.
fn read_document(
    cx: &mut Cx<'_>,
    node: &Node<'_>,
    path: &str,
    index: &openslo::Index<'_, '_>,
    catalogues: &mut windows::Catalogues,
    drafts: &mut Vec<Draft>,
) {
    let Some(top) = Map::open_any(cx, node, path) else {
        return;
    };
    let version = |key: &str| {
        top.get(key)
            .and_then(|f| yaml::as_str(f.node).map(|s| (s, f)))
    };
    let kind = top
        .get("kind")
        .and_then(|f| yaml::as_str(f.node).map(|s| (s, f)));
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
        Some(("sloth.slok.dev/v1", _)) => match kind {
            Some(("PrometheusServiceLevel", _)) => drafts.extend(sloth::read_cr(cx, &top)),
            Some(("AlertWindows", _)) => catalogues.read(cx, &top),
            Some((k, f)) => cx.err(
                f.pos(),
                format!(
                    "{}: unsupported kind {k:?}: expected PrometheusServiceLevel or AlertWindows",
                    f.path
                ),
            ),
            None => {
                top.req(cx, "kind");
            }
        },
        Some(("pyrra.dev/v1alpha1", _)) => match kind {
            Some(("ServiceLevelObjective", _)) => drafts.extend(pyrra::read(cx, &top)),
            Some((k, f)) => cx.err(
                f.pos(),
                format!(
                    "{}: unsupported kind {k:?}: expected ServiceLevelObjective",
                    f.path
                ),
            ),
            None => {
                top.req(cx, "kind");
            }
        },
        Some(("openslo/v1", _)) => drafts.extend(openslo::read(cx, &top, index)),
        Some(("openslo/v1alpha", _)) => drafts.extend(openslo::read_v1alpha(cx, &top)),
        Some(("monitoring.coreos.com/v1", f)) => cx.err(
            f.pos(),
            format!(
                "{}: a PrometheusRule holds generated rules, not an SLO spec: give the file it was generated from",
                f.path
            ),
        ),
        Some(("sre.google.com/v2", f)) => cx.err(
            f.pos(),
            format!(
                "{}: slo-generator specs (sre.google.com/v2) are not supported: their windows come from a separate error_budget_policies config; rewrite it as a Sloth prometheus/v1 spec (filter_good / filter_valid become sli.events)",
                f.path
            ),
        ),
        Some((v, f)) => cx.err(
            f.pos(),
            format!(
                "{}: unsupported apiVersion {v:?}: expected sloth.slok.dev/v1, pyrra.dev/v1alpha1, openslo/v1 or openslo/v1alpha",
                f.path
            ),
        ),
        None if top.has("groups") => cx.err(
            top.pos,
            format!(
                "{}: a Prometheus rule file (groups:) holds generated rules, not an SLO spec: give the file it was generated from",
                if path.is_empty() { "top level" } else { path }
            ),
        ),
        None => cx.err(
            top.pos,
            format!(
                "{}: not an SLO spec: expected version: \"prometheus/v1\" or an apiVersion (sloth.slok.dev/v1, pyrra.dev/v1alpha1, openslo/v1, openslo/v1alpha)",
                if path.is_empty() { "top level" } else { path }
            ),
        ),
    }
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

const NO_SLO: &str = "defines nothing: expected Sloth prometheus/v1, a Sloth PrometheusServiceLevel or AlertWindows, a Pyrra ServiceLevelObjective or OpenSLO objects";

/// Reads and parses spec files together (see [`parse_sources`]). A
/// directory stands for every `.yml` / `.yaml` file below it, as Sloth
/// reads `-i DIR`.
pub fn load_specs(paths: &[PathBuf]) -> Result<Vec<Slo>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        for f in expand(p, &mut diags) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    let mut texts = Vec::new();
    for p in &files {
        let file = p.display().to_string();
        match crate::readfile::read_text(p, crate::readfile::SPEC) {
            // A file that defines nothing is a mistake (an empty file, a
            // secret or a device matched by a glob), never "0 SLOs". A file
            // of OpenSLO SLIs or alert policies, or a catalogue, is not.
            Ok(text) if defines_nothing(&text) => {
                diags.push(Diagnostic::whole_file(&file, NO_SLO));
            }
            Ok(text) => texts.push((file, text)),
            Err(e) => diags.push(e.diagnostic(&file)),
        }
    }
    let sources: Vec<(&str, &str)> = texts
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    match parse_sources(&sources) {
        Ok(slos) if diags.is_empty() => Ok(slos),
        Ok(_) => Err(diags),
        Err(d) => {
            diags.extend(d);
            Err(diags)
        }
    }
}

/// No document at all (empty, comments, `---` only). Syntax errors are
/// left to the parser, which reports them with a position.
fn defines_nothing(text: &str) -> bool {
    yaml::load(text).is_ok_and(|docs| documents(&docs).next().is_none())
}

/// A file as itself; a directory as its `.yml` / `.yaml` files, recursively,
/// sorted (Sloth's discovery skips other extensions too).
fn expand(path: &Path, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                diags.push(Diagnostic::whole_file(
                    &dir.display().to_string(),
                    format!("cannot read the directory: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                pending.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
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
        // A directory matched by the glob stands for its spec files;
        // anything else that is not a regular file (a device, a FIFO) is
        // read, and refused by name there.
        let mut found: Vec<PathBuf> = Vec::new();
        for m in matched.filter_map(Result::ok) {
            if m.is_dir() {
                found.extend(expand(&m, &mut diags));
            } else {
                found.push(m);
            }
        }
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
