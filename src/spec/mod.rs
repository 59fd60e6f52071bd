//! SLO spec files: which format a document is in (Sloth `prometheus/v1`,
//! Sloth's `PrometheusServiceLevel` CR and `AlertWindows` catalogues, Pyrra's
//! `ServiceLevelObjective`, OpenSLO v1 and v1alpha), reading it, validating
//! it into `model::Slo`, and every user-facing message with
//! `file:line:column`. Takes strings (tests pass text); reading the files
//! is `app::load`'s job. No network.

mod openslo;
mod pyrra;
mod sloth;
mod validate;
mod windows;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use saphyr::YamlData;

use crate::diag::yaml::{self, Cx, Map, Node};
use crate::diag::Diagnostic;
use crate::model::Slo;
use validate::Draft;

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

/// Why a spec file that holds no document at all is refused.
pub const NO_SLO: &str = "defines nothing: expected Sloth prometheus/v1, a Sloth PrometheusServiceLevel or AlertWindows, a Pyrra ServiceLevelObjective or OpenSLO objects";

/// No document at all (empty, comments, `---` only). Syntax errors are
/// left to the parser, which reports them with a position.
pub fn defines_nothing(text: &str) -> bool {
    yaml::load(text).is_ok_and(|docs| documents(&docs).next().is_none())
}
